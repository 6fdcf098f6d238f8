//! RelationshipService customer relationships: multi-partner relationships, the billing provider
//! of a reseller's relationship, and rule 1 from the partner side.

use pc_api::{
    partner::v1::*,
    relationship::v1::{customer_relationship::State, *},
    types::v1::Cloud,
};
use pc_tests::{Reply, audit_actions, expect_code, reason, spawn_app, violated_field};
use tonic::Code;

fn ask(partner: &Partner, customer: &Customer, provider: Option<&Partner>) -> RequestCustomerRelationshipRequest {
    RequestCustomerRelationshipRequest {
        partner: partner.name.clone(),
        customer: customer.name.clone(),
        indirect_provider: provider.map(|p| p.name.clone()).unwrap_or_default(),
        ..Default::default()
    }
}

fn accept(name: &str) -> AcceptCustomerRelationshipRequest {
    AcceptCustomerRelationshipRequest { name: name.to_owned(), etag: String::new() }
}

fn decline(name: &str) -> DeclineCustomerRelationshipRequest {
    DeclineCustomerRelationshipRequest { name: name.to_owned(), etag: String::new() }
}

fn end(name: &str) -> EndCustomerRelationshipRequest {
    EndCustomerRelationshipRequest { name: name.to_owned(), etag: String::new() }
}

fn get(name: &str) -> GetCustomerRelationshipRequest {
    GetCustomerRelationshipRequest { name: name.to_owned() }
}

#[tokio::test]
async fn a_direct_bill_partner_asks_the_customer_accepts_and_either_side_ends() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let pending = app
        .relationships_as(Some(&partner.name))
        .request_customer_relationship(ask(&partner, &customer, None))
        .await
        .reply();
    assert!(pending.name.starts_with("customerRelationships/"));
    assert_eq!((pending.state(), pending.indirect_provider.as_str()), (State::Pending, ""));

    let active =
        app.relationships_as(Some(&customer.name)).accept_customer_relationship(accept(&pending.name)).await.reply();
    assert_eq!(active.state(), State::Active);
    assert!(active.accept_time.is_some());
    for reader in ["operator", partner.name.as_str(), customer.name.as_str()] {
        let fetched = app.relationships_as(Some(reader)).get_customer_relationship(get(&pending.name)).await.reply();
        assert_eq!(fetched, active, "{reader}");
    }
    let ended = app.relationships_as(Some(&customer.name)).end_customer_relationship(end(&pending.name)).await.reply();
    assert_eq!(ended.state(), State::Ended);
    assert_eq!(
        audit_actions(&app, &pending.name).await,
        ["RequestCustomerRelationship", "AcceptCustomerRelationship", "EndCustomerRelationship"]
    );

    // The partner may end its own, too.
    let again = app.relate(&partner, &customer, None).await;
    let ended = app.relationships_as(Some(&partner.name)).end_customer_relationship(end(&again.name)).await.reply();
    assert_eq!(ended.state(), State::Ended);
}

#[tokio::test]
async fn a_reseller_names_a_provider_it_actively_works_with_who_then_sees_the_relationship() {
    let app = spawn_app().await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let unlinked_provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let mut as_reseller = app.relationships_as(Some(&reseller.name));

    let status = expect_code(
        as_reseller.request_customer_relationship(ask(&reseller, &customer, None)).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_field(&status), "indirect_provider");
    let status = expect_code(
        as_reseller.request_customer_relationship(ask(&reseller, &customer, Some(&unlinked_provider))).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "NO_ACTIVE_RESELLER_LINK");

    app.link(&provider, &reseller).await;
    let pending = as_reseller.request_customer_relationship(ask(&reseller, &customer, Some(&provider))).await.reply();
    assert_eq!(pending.indirect_provider, provider.name);

    let seen_by_provider =
        app.relationships_as(Some(&provider.name)).get_customer_relationship(get(&pending.name)).await.reply();
    assert_eq!(seen_by_provider, pending);
    let listed = app
        .relationships_as(Some(&provider.name))
        .list_customer_relationships(ListCustomerRelationshipsRequest::default())
        .await
        .reply();
    assert_eq!(listed.customer_relationships, std::slice::from_ref(&pending));
    // The billing provider watches but does not answer or end.
    expect_code(
        app.relationships_as(Some(&provider.name)).end_customer_relationship(end(&pending.name)).await,
        Code::PermissionDenied,
    );
    expect_code(
        app.relationships_as(Some(&unlinked_provider.name)).get_customer_relationship(get(&pending.name)).await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn a_reseller_whose_link_ended_cannot_have_its_relationship_accepted() {
    let app = spawn_app().await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let link = app.link(&provider, &reseller).await;
    let pending =
        app.relationships().request_customer_relationship(ask(&reseller, &customer, Some(&provider))).await.reply();
    app.relationships()
        .end_reseller_link(EndResellerLinkRequest { name: link.name, etag: String::new() })
        .await
        .unwrap();
    let status = expect_code(
        app.relationships_as(Some(&customer.name)).accept_customer_relationship(accept(&pending.name)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "NO_ACTIVE_RESELLER_LINK");
}

#[tokio::test]
async fn roles_clouds_and_suspensions_are_enforced_when_asking() {
    let app = spawn_app().await;
    let direct = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let german = app.customer_by("operator", Cloud::Germany).await;

    let status = expect_code(
        app.relationships().request_customer_relationship(ask(&provider, &customer, None)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "ROLE_NOT_ALLOWED");
    let status = expect_code(
        app.relationships().request_customer_relationship(ask(&direct, &german, None)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "CROSS_CLOUD");
    let status = expect_code(
        app.relationships().request_customer_relationship(ask(&direct, &customer, Some(&provider))).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_field(&status), "indirect_provider");

    app.partners()
        .suspend_partner(SuspendPartnerRequest { name: direct.name.clone(), etag: String::new() })
        .await
        .unwrap();
    let status = expect_code(
        app.relationships().request_customer_relationship(ask(&direct, &customer, None)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "PARTNER_SUSPENDED");
    let listed =
        app.relationships().list_customer_relationships(ListCustomerRelationshipsRequest::default()).await.unwrap();
    assert!(listed.into_inner().customer_relationships.is_empty(), "a refused request was written");
}

#[tokio::test]
async fn a_customer_works_with_several_partners_and_each_partner_sees_only_its_own() {
    let app = spawn_app().await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let lonely_customer = app.customer_by("operator", Cloud::Global).await;
    let first = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let second = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let with_first = app.relate(&first, &customer, None).await;
    let with_second = app.relate(&second, &customer, None).await;

    let list = |subject: &str, request: ListCustomerRelationshipsRequest| {
        let mut client = app.relationships_as(Some(subject));
        async move {
            let mut names = Vec::new();
            let mut request = ListCustomerRelationshipsRequest { page_size: 1, ..request };
            loop {
                let page = client.list_customer_relationships(request.clone()).await.reply();
                names.extend(page.customer_relationships.into_iter().map(|r| r.name));
                if page.next_page_token.is_empty() {
                    return names;
                }
                request.page_token = page.next_page_token;
            }
        }
    };
    assert_eq!(
        list(&customer.name, ListCustomerRelationshipsRequest::default()).await,
        [with_first.name.clone(), with_second.name.clone()]
    );
    assert_eq!(list(&first.name, ListCustomerRelationshipsRequest::default()).await, [with_first.name.as_str()]);
    assert_eq!(
        list(&second.name, ListCustomerRelationshipsRequest { partner: first.name.clone(), ..Default::default() })
            .await,
        Vec::<String>::new()
    );
    assert!(list(&lonely_customer.name, ListCustomerRelationshipsRequest::default()).await.is_empty());
    assert_eq!(
        list(
            "operator",
            ListCustomerRelationshipsRequest {
                customer: customer.name.clone(),
                state: State::Active as i32,
                ..Default::default()
            }
        )
        .await,
        [with_first.name.clone(), with_second.name]
    );
    expect_code(
        app.relationships_as(Some(&second.name)).get_customer_relationship(get(&with_first.name)).await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn the_customer_answers_a_request_and_a_declined_one_is_final() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let other_customer = app.customer_by("operator", Cloud::Global).await;
    let pending = app.relationships().request_customer_relationship(ask(&partner, &customer, None)).await.reply();

    expect_code(
        app.relationships_as(Some(&partner.name)).accept_customer_relationship(accept(&pending.name)).await,
        Code::PermissionDenied,
    );
    expect_code(
        app.relationships_as(Some(&other_customer.name)).accept_customer_relationship(accept(&pending.name)).await,
        Code::PermissionDenied,
    );
    expect_code(
        app.relationships_as(Some(&partner.name)).request_customer_relationship(ask(&partner, &customer, None)).await,
        Code::AlreadyExists,
    );
    let mut as_customer = app.relationships_as(Some(&customer.name));
    let declined = as_customer.decline_customer_relationship(decline(&pending.name)).await.reply();
    assert_eq!(declined.state(), State::Declined);
    for status in [
        expect_code(as_customer.accept_customer_relationship(accept(&pending.name)).await, Code::FailedPrecondition),
        expect_code(as_customer.end_customer_relationship(end(&pending.name)).await, Code::FailedPrecondition),
    ] {
        assert_eq!(reason(&status), "INVALID_TRANSITION");
    }
    // Declined is not live: the partner may ask again.
    app.relationships().request_customer_relationship(ask(&partner, &customer, None)).await.unwrap();
}

#[tokio::test]
async fn a_tenant_with_an_active_relationship_cannot_enrol_as_a_partner_until_it_ends() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let relationship = app.relate(&partner, &customer, None).await;
    let enrol_customer = |cloud: Cloud| CreatePartnerRequest {
        partner: Some(Partner {
            display_name: "Customer turned partner".into(),
            tenant_id: customer.tenant_id.clone(),
            country_code: "DE".into(),
            cloud: cloud as i32,
            program_role: ProgramRole::DirectBillPartner as i32,
            ..Default::default()
        }),
        request_id: String::new(),
    };
    let status =
        expect_code(app.partners().create_partner(enrol_customer(Cloud::Global)).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "PARTNER_AS_CUSTOMER");
    // Rule 1 is per cloud.
    app.partners().create_partner(enrol_customer(Cloud::China)).await.unwrap();

    app.relationships().end_customer_relationship(end(&relationship.name)).await.unwrap();
    let enrolled = app.partners().create_partner(enrol_customer(Cloud::Global)).await.reply();

    // Now that the tenant is a partner, nobody may take it on as a customer.
    let status = expect_code(
        app.relationships().request_customer_relationship(ask(&partner, &customer, None)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "PARTNER_AS_CUSTOMER");
    assert_eq!(enrolled.tenant_id, customer.tenant_id);
}

#[tokio::test]
async fn a_pending_relationship_of_a_tenant_that_enrolled_meanwhile_cannot_be_accepted() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let pending = app.relationships().request_customer_relationship(ask(&partner, &customer, None)).await.reply();
    let mut as_partner = pc_tests::new_partner(ProgramRole::IndirectReseller, Cloud::Global);
    as_partner.tenant_id = customer.tenant_id.clone();
    app.partners()
        .create_partner(CreatePartnerRequest { partner: Some(as_partner), ..Default::default() })
        .await
        .unwrap();
    let status = expect_code(
        app.relationships_as(Some(&customer.name)).accept_customer_relationship(accept(&pending.name)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&status), "PARTNER_AS_CUSTOMER");
}

#[tokio::test]
async fn racing_requests_for_one_pair_leave_exactly_one_relationship() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let mut client = app.relationships_as(Some(&partner.name));
            let request = ask(&partner, &customer, None);
            tokio::spawn(async move { client.request_customer_relationship(request).await })
        })
        .collect();
    let mut created = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => created += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
                pc_tests::assert_error_info(&status);
            }
        }
    }
    assert_eq!(created, 1);
}
