//! ChannelService subscriptions: validation, rule 6 (who may sell and who bills), updates and
//! cancellation, and rule 8 (what ACTIVE subscriptions keep from ending).

use pc_api::{
    channel::v1::{subscription::State, support_assignment::State as AssignmentState, *},
    partner::v1::*,
    relationship::v1::{customer_relationship::State as RelationshipState, *},
    types::v1::Cloud,
};
use pc_tests::{Reply, TestApp, audit_actions, expect_code, reason, spawn_app, violated_field};
use prost_types::FieldMask;
use tonic::Code;

fn order(partner: &Partner, customer: &Customer) -> Subscription {
    Subscription {
        customer: customer.name.clone(),
        offer_id: "office-365-e3".into(),
        product_family: ProductFamily::Productivity as i32,
        quantity: 5,
        partner_of_record: partner.name.clone(),
        ..Default::default()
    }
}

fn create(subscription: Subscription) -> CreateSubscriptionRequest {
    CreateSubscriptionRequest { subscription: Some(subscription), ..Default::default() }
}

fn cancel(name: &str) -> CancelSubscriptionRequest {
    CancelSubscriptionRequest { name: name.to_owned(), etag: String::new() }
}

/// A direct-bill partner with an ACTIVE relationship to a fresh customer.
async fn seller_and_customer(app: &TestApp) -> (Partner, Customer) {
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    app.relate(&partner, &customer, None).await;
    (partner, customer)
}

#[tokio::test]
async fn create_subscription_validates_every_field_by_name() {
    let app = spawn_app().await;
    let (partner, customer) = seller_and_customer(&app).await;
    let valid = order(&partner, &customer);
    let cases = [
        ("subscription.customer", Subscription { customer: "customers/nope".into(), ..valid.clone() }),
        ("subscription.offer_id", Subscription { offer_id: "Office 365".into(), ..valid.clone() }),
        ("subscription.product_family", Subscription { product_family: 0, ..valid.clone() }),
        ("subscription.quantity", Subscription { quantity: 0, ..valid.clone() }),
        ("subscription.quantity", Subscription { quantity: 2_000_000, ..valid.clone() }),
        ("subscription.partner_of_record", Subscription { partner_of_record: String::new(), ..valid.clone() }),
    ];
    for (field, subscription) in cases {
        let status = expect_code(app.channel().create_subscription(create(subscription)).await, Code::InvalidArgument);
        assert_eq!(violated_field(&status), field);
    }
    let status = expect_code(
        app.channel().create_subscription(CreateSubscriptionRequest { subscription: None, ..Default::default() }).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_field(&status), "subscription");
    let listed = app.channel().list_subscriptions(ListSubscriptionsRequest::default()).await.reply();
    assert!(listed.subscriptions.is_empty());
}

#[tokio::test]
async fn selling_needs_an_active_relationship_an_active_seller_and_a_selling_role() {
    let app = spawn_app().await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let stranger = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let suspended = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&suspended, &customer, None).await;
    app.partners()
        .suspend_partner(SuspendPartnerRequest { name: suspended.name.clone(), etag: String::new() })
        .await
        .unwrap();

    for (partner, expected) in [
        (&stranger, "NO_ACTIVE_RELATIONSHIP"),
        (&provider, "NO_ACTIVE_RELATIONSHIP"),
        (&suspended, "PARTNER_SUSPENDED"),
    ] {
        let status = expect_code(
            app.channel().create_subscription(create(order(partner, &customer))).await,
            Code::FailedPrecondition,
        );
        assert_eq!(reason(&status), expected, "{}", partner.name);
    }

    // A pending relationship is not enough either.
    app.relationships()
        .request_customer_relationship(RequestCustomerRelationshipRequest {
            partner: stranger.name.clone(),
            customer: customer.name.clone(),
            indirect_provider: String::new(),
            ..Default::default()
        })
        .await
        .unwrap();
    let status = expect_code(
        app.channel().create_subscription(create(order(&stranger, &customer))).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "NO_ACTIVE_RELATIONSHIP");
}

#[tokio::test]
async fn a_reseller_whose_link_ended_can_no_longer_sell_through_that_provider() {
    let app = spawn_app().await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let link = app.link(&provider, &reseller).await;
    app.relate(&reseller, &customer, Some(&provider)).await;
    app.relationships()
        .end_reseller_link(EndResellerLinkRequest { name: link.name, etag: String::new() })
        .await
        .unwrap();
    let status = expect_code(
        app.channel().create_subscription(create(order(&reseller, &customer))).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "NO_ACTIVE_RESELLER_LINK");
}

#[tokio::test]
async fn partners_sell_only_as_themselves_and_only_operators_register_external_purchases() {
    let app = spawn_app().await;
    let (partner, customer) = seller_and_customer(&app).await;
    let other = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    for subject in [other.name.as_str(), customer.name.as_str()] {
        expect_code(
            app.channel_as(Some(subject)).create_subscription(create(order(&partner, &customer))).await,
            Code::PermissionDenied,
        );
    }
    let external = Subscription {
        partner_of_record: String::new(),
        sales_channel: SalesChannel::EnterpriseAgreement as i32,
        ..order(&partner, &customer)
    };
    let register = |subscription: Subscription| RegisterExternalSubscriptionRequest {
        subscription: Some(subscription),
        ..Default::default()
    };
    expect_code(
        app.channel_as(Some(&partner.name)).register_external_subscription(register(external.clone())).await,
        Code::PermissionDenied,
    );
    for (field, subscription) in [
        (
            "subscription.sales_channel",
            Subscription { sales_channel: SalesChannel::ProgramDirectBill as i32, ..external.clone() },
        ),
        ("subscription.sales_channel", Subscription { sales_channel: 0, ..external.clone() }),
        (
            "subscription.partner_of_record",
            Subscription { partner_of_record: partner.name.clone(), ..external.clone() },
        ),
    ] {
        let status = expect_code(
            app.channel().register_external_subscription(register(subscription)).await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_field(&status), field);
    }
    let registered = app.channel().register_external_subscription(register(external)).await.reply();
    assert_eq!(registered.sales_channel(), SalesChannel::EnterpriseAgreement);
    assert_eq!(audit_actions(&app, &registered.name).await, ["RegisterExternalSubscription"]);
}

#[tokio::test]
async fn the_transacting_partners_change_quantities_with_etags() {
    let app = spawn_app().await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    app.link(&provider, &reseller).await;
    app.relate(&reseller, &customer, Some(&provider)).await;
    let sold = app.sell(&reseller, &customer, "office-365-e5", ProductFamily::Productivity).await;
    let resize = |quantity: i32, etag: &str| UpdateSubscriptionRequest {
        subscription: Some(Subscription {
            name: sold.name.clone(),
            quantity,
            etag: etag.to_owned(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask { paths: vec!["quantity".into()] }),
    };

    let by_reseller = app.channel_as(Some(&reseller.name)).update_subscription(resize(20, &sold.etag)).await.reply();
    assert_eq!(by_reseller.quantity, 20);
    expect_code(app.channel_as(Some(&reseller.name)).update_subscription(resize(30, &sold.etag)).await, Code::Aborted);
    let by_provider = app.channel_as(Some(&provider.name)).update_subscription(resize(30, "")).await.reply();
    assert_eq!(by_provider.quantity, 30);
    expect_code(app.channel_as(Some(&customer.name)).update_subscription(resize(40, "")).await, Code::PermissionDenied);

    let status = expect_code(app.channel().update_subscription(resize(0, "")).await, Code::InvalidArgument);
    assert_eq!(violated_field(&status), "subscription.quantity");
    let wrong_mask = UpdateSubscriptionRequest {
        update_mask: Some(FieldMask { paths: vec!["partner_of_record".into()] }),
        ..resize(5, "")
    };
    assert_eq!(
        violated_field(&expect_code(app.channel().update_subscription(wrong_mask).await, Code::InvalidArgument)),
        "update_mask"
    );
    assert_eq!(
        audit_actions(&app, &sold.name).await,
        ["CreateSubscription", "UpdateSubscription", "UpdateSubscription"]
    );
}

#[tokio::test]
async fn cancelling_is_final_and_for_the_transacting_partners() {
    let app = spawn_app().await;
    let (partner, customer) = seller_and_customer(&app).await;
    let sold = app.sell(&partner, &customer, "office-365-e3", ProductFamily::Productivity).await;
    expect_code(
        app.channel_as(Some(&customer.name)).cancel_subscription(cancel(&sold.name)).await,
        Code::PermissionDenied,
    );
    let cancelled = app.channel_as(Some(&partner.name)).cancel_subscription(cancel(&sold.name)).await.reply();
    assert_eq!(cancelled.state(), State::Cancelled);
    let status = expect_code(app.channel().cancel_subscription(cancel(&sold.name)).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "INVALID_TRANSITION");
    let resize = UpdateSubscriptionRequest {
        subscription: Some(Subscription { name: sold.name.clone(), quantity: 3, ..Default::default() }),
        update_mask: None,
    };
    assert_eq!(
        reason(&expect_code(app.channel().update_subscription(resize).await, Code::FailedPrecondition)),
        "INVALID_TRANSITION"
    );
    let active = ListSubscriptionsRequest { state: State::Active as i32, ..Default::default() };
    assert!(app.channel_as(Some(&partner.name)).list_subscriptions(active).await.reply().subscriptions.is_empty());
}

#[tokio::test]
async fn active_subscriptions_keep_their_relationship_and_link_from_ending() {
    let app = spawn_app().await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let link = app.link(&provider, &reseller).await;
    let relationship = app.relate(&reseller, &customer, Some(&provider)).await;
    let sold = app.sell(&reseller, &customer, "azure-plan", ProductFamily::Azure).await;

    let end_link = || EndResellerLinkRequest { name: link.name.clone(), etag: String::new() };
    let end_relationship = || EndCustomerRelationshipRequest { name: relationship.name.clone(), etag: String::new() };
    for status in [
        expect_code(app.relationships().end_reseller_link(end_link()).await, Code::FailedPrecondition),
        expect_code(app.relationships().end_customer_relationship(end_relationship()).await, Code::FailedPrecondition),
    ] {
        assert_eq!(reason(&status), "ACTIVE_SUBSCRIPTIONS");
        assert!(status.message().contains("ACTIVE_SUBSCRIPTIONS"));
    }
    app.channel().cancel_subscription(cancel(&sold.name)).await.unwrap();
    let ended = app.relationships().end_customer_relationship(end_relationship()).await.reply();
    assert_eq!(ended.state(), RelationshipState::Ended);
    app.relationships().end_reseller_link(end_link()).await.unwrap();
}

#[tokio::test]
async fn ending_a_relationship_ends_that_partners_support_assignments_for_the_customer() {
    let app = spawn_app().await;
    let (seller, customer) = seller_and_customer(&app).await;
    let sold = app.sell(&seller, &customer, "office-365-e3", ProductFamily::Productivity).await;
    let supporter = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let relationship = app.relate(&supporter, &customer, None).await;
    let assignment = app.hire(&supporter, &sold, &customer).await;

    app.relationships_as(Some(&supporter.name))
        .end_customer_relationship(EndCustomerRelationshipRequest {
            name: relationship.name.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let after = app
        .channel()
        .get_support_assignment(GetSupportAssignmentRequest { name: assignment.name.clone() })
        .await
        .reply();
    assert_eq!(after.state(), AssignmentState::Ended);
    assert!(after.end_time.is_some());
    assert_eq!(
        audit_actions(&app, &assignment.name).await,
        ["RequestSupport", "AcceptSupportAssignment", "EndSupportAssignment"]
    );
    expect_code(
        app.channel_as(Some(&supporter.name))
            .get_subscription(GetSubscriptionRequest { name: sold.name.clone() })
            .await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn a_partner_pages_through_its_subscriptions_filtered_by_customer() {
    let app = spawn_app().await;
    let (partner, customer) = seller_and_customer(&app).await;
    let second_customer = app.customer_by("operator", Cloud::Global).await;
    app.relate(&partner, &second_customer, None).await;
    let mut first_customers = Vec::new();
    for index in 0..5 {
        first_customers.push(app.sell(&partner, &customer, &format!("offer-{index}"), ProductFamily::Other).await.name);
    }
    app.sell(&partner, &second_customer, "offer-x", ProductFamily::Security).await;

    let mut names = Vec::new();
    let mut request = ListSubscriptionsRequest { page_size: 2, customer: customer.name.clone(), ..Default::default() };
    loop {
        let page = app.channel_as(Some(&partner.name)).list_subscriptions(request.clone()).await.reply();
        names.extend(page.subscriptions.into_iter().map(|s| s.name));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(names, first_customers);
}

/// Every page of `request` as `subject`, `page_size` at a time.
async fn all_pages(app: &TestApp, subject: &str, mut request: ListSubscriptionsRequest) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        let page = app.channel_as(Some(subject)).list_subscriptions(request.clone()).await.reply();
        assert!(page.subscriptions.len() <= 2, "a page holds at most page_size");
        names.extend(page.subscriptions.into_iter().map(|s| s.name));
        if page.next_page_token.is_empty() {
            return names;
        }
        request.page_token = page.next_page_token;
    }
}

#[tokio::test]
async fn a_partners_pages_hold_what_it_sells_bills_or_supports_once_each_in_creation_order() {
    let app = spawn_app().await;
    let (partner, customer) = seller_and_customer(&app).await;
    let other = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&other, &customer, None).await;
    let support = |name: String, partner: &Partner| RequestSupportRequest {
        subscription: name,
        partner: partner.name.clone(),
        ..Default::default()
    };

    // Interleaved: the partner's own sales (partner of record and billing partner at once), other
    // sales it supports (one support ended), and other sales it has nothing to do with.
    let mut expected = Vec::new();
    let mut cancelled = String::new();
    for round in 0..3 {
        let own = app.sell(&partner, &customer, &format!("own-{round}"), ProductFamily::Productivity).await;
        expected.push(own.name.clone());
        cancelled.clone_from(&own.name);
        app.sell(&other, &customer, &format!("unrelated-{round}"), ProductFamily::Azure).await;
        let supported = app.sell(&other, &customer, &format!("supported-{round}"), ProductFamily::Security).await;
        let mut channel = app.channel_as(Some(&partner.name));
        let asked = channel.request_support(support(supported.name.clone(), &partner)).await.reply();
        app.channel_as(Some(&customer.name))
            .accept_support_assignment(AcceptSupportAssignmentRequest { name: asked.name.clone(), etag: String::new() })
            .await
            .unwrap();
        if round == 1 {
            app.channel_as(Some(&partner.name))
                .end_support_assignment(EndSupportAssignmentRequest { name: asked.name, etag: String::new() })
                .await
                .unwrap();
        } else {
            expected.push(supported.name);
        }
    }
    app.channel_as(Some(&partner.name)).cancel_subscription(cancel(&cancelled)).await.unwrap();

    let every_state = ListSubscriptionsRequest { page_size: 2, ..Default::default() };
    assert_eq!(all_pages(&app, &partner.name, every_state.clone()).await, expected);
    let filtered = ListSubscriptionsRequest { partner: partner.name.clone(), ..every_state };
    assert_eq!(all_pages(&app, "operator", filtered.clone()).await, expected, "the operator's view of the partner");
    let active = ListSubscriptionsRequest { state: State::Active as i32, ..filtered };
    let still_active: Vec<_> = expected.iter().filter(|name| **name != cancelled).cloned().collect();
    assert_eq!(all_pages(&app, "operator", active).await, still_active);
}

fn quantity(subscription: &Subscription, quantity: i32) -> UpdateSubscriptionRequest {
    UpdateSubscriptionRequest {
        subscription: Some(Subscription { name: subscription.name.clone(), quantity, ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["quantity".into()] }),
    }
}

#[tokio::test]
async fn a_suspended_partner_may_lower_a_quantity_but_not_raise_it() {
    let app = spawn_app().await;
    let (partner, customer) = seller_and_customer(&app).await;
    let sold = app.channel_as(Some(&partner.name)).create_subscription(create(order(&partner, &customer))).await;
    let sold = sold.reply();
    app.partners()
        .suspend_partner(SuspendPartnerRequest { name: partner.name.clone(), etag: String::new() })
        .await
        .unwrap();
    let mut seller = app.channel_as(Some(&partner.name));
    let status = expect_code(seller.update_subscription(quantity(&sold, 6)).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "PARTNER_SUSPENDED");
    let lowered = seller.update_subscription(quantity(&sold, 4)).await.reply();
    assert_eq!(lowered.quantity, 4);
    assert_eq!(audit_actions(&app, &sold.name).await, ["CreateSubscription", "UpdateSubscription"]);
}

#[tokio::test]
async fn a_subscription_bought_elsewhere_is_not_registered_for_an_enrolled_partners_tenant() {
    let app = spawn_app().await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    // No ACTIVE relationship yet, so the tenant may still enrol (rule 1 for CreatePartner)...
    let mut partner = pc_tests::new_partner(ProgramRole::DirectBillPartner, Cloud::Global);
    partner.tenant_id = customer.tenant_id.clone();
    app.partners().create_partner(CreatePartnerRequest { partner: Some(partner), ..Default::default() }).await.unwrap();
    // ...and from then on it is a program partner, which is no customer however it buys.
    let external = Subscription {
        customer: customer.name.clone(),
        offer_id: "dynamics-365-sales".into(),
        product_family: ProductFamily::Dynamics as i32,
        quantity: 3,
        sales_channel: SalesChannel::VendorDirect as i32,
        ..Default::default()
    };
    let status = expect_code(
        app.channel()
            .register_external_subscription(RegisterExternalSubscriptionRequest {
                subscription: Some(external),
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "PARTNER_AS_CUSTOMER");
    let listed = app.channel().list_subscriptions(ListSubscriptionsRequest::default()).await.reply();
    assert!(listed.subscriptions.is_empty());
}

#[tokio::test]
async fn selling_to_a_customer_the_partner_may_not_read_is_denied_alike_whether_or_not_it_exists() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let unrelated = app.customer_by("operator", Cloud::Global).await;
    let asked = app.customer_by("operator", Cloud::Global).await;
    app.ask(&partner, &asked, None).await; // PENDING
    let german = app.customer_by("operator", Cloud::Germany).await;
    let missing = Customer { name: format!("customers/{}", uuid::Uuid::now_v7()), ..Default::default() };
    let mut seller = app.channel_as(Some(&partner.name));
    let mut answers = Vec::new();
    for customer in [&unrelated, &asked, &german, &missing] {
        let status =
            expect_code(seller.create_subscription(create(order(&partner, customer))).await, Code::PermissionDenied);
        answers.push(status.message().replace(&customer.name, "customers/…"));
    }
    assert!(answers.windows(2).all(|pair| pair[0] == pair[1]), "{answers:?}");
    assert!(!answers[0].to_uppercase().contains("GERMANY"));
    // An operator acting for the partner is told what is wrong.
    let status =
        expect_code(app.channel().create_subscription(create(order(&partner, &missing))).await, Code::NotFound);
    assert!(status.message().contains(&missing.name));
    let listed = app.channel().list_subscriptions(ListSubscriptionsRequest::default()).await.reply();
    assert!(listed.subscriptions.is_empty());
}

#[tokio::test]
async fn a_partner_filter_narrows_the_callers_own_view_and_never_shows_what_another_partner_supports() {
    let app = spawn_app().await;
    let (seller, customer) = seller_and_customer(&app).await;
    let supporter = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&supporter, &customer, None).await;
    let supported = app.sell(&seller, &customer, "dynamics-365-sales", ProductFamily::Dynamics).await;
    app.hire(&supporter, &supported, &customer).await;
    let list = |subject: &str, partner: &Partner| {
        let mut client = app.channel_as(Some(subject));
        let request = ListSubscriptionsRequest { partner: partner.name.clone(), ..Default::default() };
        async move {
            let listed = client.list_subscriptions(request).await.reply();
            listed.subscriptions.into_iter().map(|s| s.name).collect::<Vec<_>>()
        }
    };
    // The seller does not learn who supports its subscription...
    assert!(list(&seller.name, &supporter).await.is_empty());
    // ...the supporter may filter what it sees by the seller named on it...
    assert_eq!(list(&supporter.name, &seller).await, [supported.name.as_str()]);
    // ...and an operator sees the supporter's whole view.
    assert_eq!(list("operator", &supporter).await, [supported.name.as_str()]);
    assert_eq!(list(&seller.name, &seller).await, [supported.name.as_str()]);
}
