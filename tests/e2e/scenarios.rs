//! The scenarios the program documents, end to end: two-tier selling, multi-partner customers,
//! multi-channel support, the same inside the US government cloud, nothing across clouds, no
//! partner as customer, and two partners racing to support one subscription.

use pc_api::{
    channel::v1::{support_assignment::State as AssignmentState, *},
    partner::v1::*,
    relationship::v1::*,
    types::v1::Cloud,
};
use pc_tests::{Reply, TestApp, expect_code, new_customer, reason, spawn_app};
use tonic::Code;

async fn visible_names(app: &TestApp, subject: &str) -> Vec<String> {
    let listed = app.channel_as(Some(subject)).list_subscriptions(ListSubscriptionsRequest::default()).await.unwrap();
    listed.into_inner().subscriptions.into_iter().map(|s| s.name).collect()
}

async fn can_read(app: &TestApp, subject: &str, subscription: &str) -> Result<Subscription, Code> {
    app.channel_as(Some(subject))
        .get_subscription(GetSubscriptionRequest { name: subscription.to_owned() })
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| status.code())
}

/// (a) A reseller sells through a provider: the provider bills and sees the subscription; an
/// unrelated provider does not.
async fn two_tier(cloud: Cloud) {
    let app = spawn_app().await;
    let provider = app.enrol(ProgramRole::IndirectProvider, cloud).await;
    let unrelated = app.enrol(ProgramRole::IndirectProvider, cloud).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, cloud).await;
    let customer = app.customer_by(&reseller.name, cloud).await;
    app.link(&provider, &reseller).await;
    app.relate(&reseller, &customer, Some(&provider)).await;

    let sold = app.sell(&reseller, &customer, "office-365-e3", ProductFamily::Productivity).await;
    assert_eq!(sold.partner_of_record, reseller.name);
    assert_eq!(sold.billing_partner, provider.name);
    assert_eq!(sold.sales_channel(), SalesChannel::ProgramIndirect);

    for party in [&provider.name, &reseller.name, &customer.name] {
        assert_eq!(can_read(&app, party, &sold.name).await, Ok(sold.clone()), "{party}");
        assert_eq!(visible_names(&app, party).await, [sold.name.as_str()], "{party}");
    }
    assert_eq!(can_read(&app, &unrelated.name, &sold.name).await, Err(Code::PermissionDenied));
    assert!(visible_names(&app, &unrelated.name).await.is_empty());
}

#[tokio::test]
async fn two_tier_a_reseller_sells_and_its_provider_bills_and_sees_it() {
    two_tier(Cloud::Global).await;
}

#[tokio::test]
async fn two_tier_inside_the_us_government_cloud() {
    two_tier(Cloud::UsGovernment).await;
}

/// (b) One customer buys its productivity suite through partner A and its cloud platform through
/// partner B; each partner sees only its own, the customer sees both.
async fn multi_partner(cloud: Cloud) {
    let app = spawn_app().await;
    let customer = app.customer_by("operator", cloud).await;
    let partner_a = app.enrol(ProgramRole::DirectBillPartner, cloud).await;
    let provider = app.enrol(ProgramRole::IndirectProvider, cloud).await;
    let partner_b = app.enrol(ProgramRole::IndirectReseller, cloud).await;
    app.link(&provider, &partner_b).await;
    app.relate(&partner_a, &customer, None).await;
    app.relate(&partner_b, &customer, Some(&provider)).await;

    let suite = app.sell(&partner_a, &customer, "office-365-e3", ProductFamily::Productivity).await;
    let platform = app.sell(&partner_b, &customer, "azure-plan", ProductFamily::Azure).await;
    assert_eq!(
        (suite.billing_partner.as_str(), suite.sales_channel()),
        (partner_a.name.as_str(), SalesChannel::ProgramDirectBill)
    );

    assert_eq!(visible_names(&app, &partner_a.name).await, [suite.name.as_str()]);
    assert_eq!(visible_names(&app, &partner_b.name).await, [platform.name.as_str()]);
    assert_eq!(visible_names(&app, &customer.name).await, [suite.name.clone(), platform.name.clone()]);
    assert_eq!(can_read(&app, &partner_a.name, &platform.name).await, Err(Code::PermissionDenied));
    assert_eq!(can_read(&app, &partner_b.name, &suite.name).await, Err(Code::PermissionDenied));
    // A partner cannot widen its view by filtering on another partner.
    let snooping = ListSubscriptionsRequest { partner: partner_b.name.clone(), ..Default::default() };
    let listed = app.channel_as(Some(&partner_a.name)).list_subscriptions(snooping).await.reply();
    assert!(listed.subscriptions.is_empty());
}

#[tokio::test]
async fn multi_partner_each_partner_sees_only_what_it_sold() {
    multi_partner(Cloud::Global).await;
}

#[tokio::test]
async fn multi_partner_inside_the_us_government_cloud() {
    multi_partner(Cloud::UsGovernment).await;
}

/// (c) A customer buys directly from the vendor, hires partner C to support it, and C sees the
/// subscription only while the assignment is ACTIVE.
async fn multi_channel(cloud: Cloud) {
    let app = spawn_app().await;
    let customer = app.customer_by("operator", cloud).await;
    let partner_c = app.enrol(ProgramRole::DirectBillPartner, cloud).await;
    app.relate(&partner_c, &customer, None).await;
    let bought = app.bought_elsewhere(&customer, 25).await;
    assert_eq!((bought.partner_of_record.as_str(), bought.billing_partner.as_str()), ("", ""));
    assert_eq!(visible_names(&app, &customer.name).await, [bought.name.as_str()]);

    let requested = app
        .channel_as(Some(&partner_c.name))
        .request_support(RequestSupportRequest {
            subscription: bought.name.clone(),
            partner: partner_c.name.clone(),
            ..Default::default()
        })
        .await
        .reply();
    assert_eq!(requested.state(), AssignmentState::Requested);
    assert_eq!(can_read(&app, &partner_c.name, &bought.name).await, Err(Code::PermissionDenied), "not yet ACTIVE");

    let active = app
        .channel_as(Some(&customer.name))
        .accept_support_assignment(AcceptSupportAssignmentRequest { name: requested.name.clone(), etag: String::new() })
        .await
        .reply();
    assert_eq!(active.state(), AssignmentState::Active);
    assert_eq!(can_read(&app, &partner_c.name, &bought.name).await, Ok(bought.clone()));
    assert_eq!(visible_names(&app, &partner_c.name).await, [bought.name.as_str()]);

    app.channel_as(Some(&partner_c.name))
        .end_support_assignment(EndSupportAssignmentRequest { name: requested.name.clone(), etag: String::new() })
        .await
        .unwrap();
    assert_eq!(can_read(&app, &partner_c.name, &bought.name).await, Err(Code::PermissionDenied), "ended");
    assert!(visible_names(&app, &partner_c.name).await.is_empty());
}

#[tokio::test]
async fn multi_channel_a_support_partner_sees_the_subscription_only_while_active() {
    multi_channel(Cloud::Global).await;
}

#[tokio::test]
async fn multi_channel_inside_the_us_government_cloud() {
    multi_channel(Cloud::UsGovernment).await;
}

/// (d) Every attempt to join the global and the US government cloud is refused.
#[tokio::test]
async fn nothing_crosses_clouds() {
    let app = spawn_app().await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let gov_reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::UsGovernment).await;
    let direct = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let gov_direct = app.enrol(ProgramRole::DirectBillPartner, Cloud::UsGovernment).await;
    let gov_customer = app.customer_by("operator", Cloud::UsGovernment).await;
    app.relate(&gov_direct, &gov_customer, None).await;
    let gov_subscription = app.sell(&gov_direct, &gov_customer, "office-365-g3", ProductFamily::Productivity).await;

    let invite = app
        .relationships()
        .invite_reseller(InviteResellerRequest {
            provider: provider.name.clone(),
            reseller: gov_reseller.name.clone(),
            ..Default::default()
        })
        .await;
    let relate = app
        .relationships()
        .request_customer_relationship(RequestCustomerRelationshipRequest {
            partner: direct.name.clone(),
            customer: gov_customer.name.clone(),
            indirect_provider: String::new(),
            ..Default::default()
        })
        .await;
    let sell = app
        .channel()
        .create_subscription(CreateSubscriptionRequest {
            subscription: Some(Subscription {
                customer: gov_customer.name.clone(),
                offer_id: "office-365-e3".into(),
                product_family: ProductFamily::Productivity as i32,
                quantity: 1,
                partner_of_record: direct.name.clone(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await;
    let support = app
        .channel()
        .request_support(RequestSupportRequest {
            subscription: gov_subscription.name.clone(),
            partner: direct.name.clone(),
            ..Default::default()
        })
        .await;
    let create_customer = app
        .partners_as(Some(&direct.name))
        .create_customer(CreateCustomerRequest {
            customer: Some(new_customer(Cloud::UsGovernment)),
            ..Default::default()
        })
        .await;
    for status in [
        expect_code(invite, Code::FailedPrecondition),
        expect_code(relate, Code::FailedPrecondition),
        expect_code(sell, Code::FailedPrecondition),
        expect_code(support, Code::FailedPrecondition),
        expect_code(create_customer, Code::FailedPrecondition),
    ] {
        assert_eq!(reason(&status), "CROSS_CLOUD", "{status:?}");
    }
}

/// (e) A program partner's tenant is refused as a customer.
#[tokio::test]
async fn a_program_partners_tenant_is_refused_as_a_customer() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::IndirectReseller, Cloud::UsGovernment).await;
    let customer = Customer { tenant_id: partner.tenant_id.clone(), ..new_customer(Cloud::UsGovernment) };
    let status = expect_code(
        app.partners().create_customer(CreateCustomerRequest { customer: Some(customer), ..Default::default() }).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "PARTNER_AS_CUSTOMER");
}

/// (f) Two partners race to become the ACTIVE support partner of one subscription: one wins.
#[tokio::test]
async fn two_partners_racing_to_support_one_subscription_leave_exactly_one() {
    let app = spawn_app().await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let seller = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&seller, &customer, None).await;
    let subscription = app.sell(&seller, &customer, "azure-plan", ProductFamily::Azure).await;
    let mut requests = Vec::new();
    for _ in 0..4 {
        let supporter = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
        app.relate(&supporter, &customer, None).await;
        let requested = app
            .channel()
            .request_support(RequestSupportRequest {
                subscription: subscription.name.clone(),
                partner: supporter.name,
                ..Default::default()
            })
            .await
            .reply();
        requests.push(requested.name);
    }
    let accepts: Vec<_> = requests
        .iter()
        .map(|name| {
            let mut client = app.channel_as(Some(&customer.name));
            let request = AcceptSupportAssignmentRequest { name: name.clone(), etag: String::new() };
            tokio::spawn(async move { client.accept_support_assignment(request).await })
        })
        .collect();
    let mut winners = 0;
    for accept in accepts {
        match accept.await.unwrap() {
            Ok(_) => winners += 1,
            Err(status) => {
                assert!(matches!(status.code(), Code::FailedPrecondition | Code::Aborted), "{status:?}");
                pc_tests::assert_error_info(&status);
            }
        }
    }
    assert_eq!(winners, 1);
    let active = app
        .channel()
        .list_support_assignments(ListSupportAssignmentsRequest {
            subscription: subscription.name.clone(),
            state: AssignmentState::Active as i32,
            ..Default::default()
        })
        .await
        .reply();
    assert_eq!(active.support_assignments.len(), 1);
}
