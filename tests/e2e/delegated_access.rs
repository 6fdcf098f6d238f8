//! Rule 13: what an ACTIVE admin relationship's roles let a partner do for its customer, on the
//! methods themselves (Gets, Lists, the moves a global admin makes for the customer, a licence
//! admin's change), what the audit and the feed record of it, why a call is allowed or denied
//! (CheckAccess, and the permission a refusal names), and that nothing is granted after the
//! relationship ended. The matrix of every method by every caller, and CheckAccess's agreement
//! with it, are in `authorization.rs`; the race with a termination is in `races.rs`.

use chrono::TimeDelta;
use pc_api::{
    channel::v1::*,
    event::v1::ListEventsRequest,
    partner::v1::{Customer, GetCustomerRequest, ListCustomersRequest, Partner, ProgramRole},
    relationship::v1::{
        AcceptCustomerRelationshipRequest, CheckAccessRequest, CheckAccessResponse, GetCustomerRelationshipRequest,
        ListCustomerRelationshipsRequest, TerminateAdminRelationshipRequest, admin_relationship::Role,
    },
    types::v1::Cloud,
};
use pc_tests::{Reply, TestApp, audit_history, expect_code, feed_passed, spawn_app, violated_field};
use tonic::Code;
use tonic_types::StatusExt;

/// A customer served by two partners: `seller` sold it a suite (a program sale) and is hired to
/// support what it bought from the vendor (`external`); `holder` works with it too and will hold
/// roles.
struct Setting {
    customer: Customer,
    seller: Partner,
    sold: Subscription,
    external: Subscription,
    assignment: SupportAssignment,
    holder: Partner,
}

async fn setting(app: &TestApp) -> Setting {
    let customer = app.customer_by("operator", Cloud::Global).await;
    let seller = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&seller, &customer, None).await;
    let sold = app.sell(&seller, &customer, "office-365-e3", ProductFamily::Productivity).await;
    let external = app.bought_elsewhere(&customer, 40).await;
    let assignment = app.hire(&seller, &external, &customer).await;
    let holder = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&holder, &customer, None).await;
    Setting { customer, seller, sold, external, assignment, holder }
}

/// What `partner` reads of the setting: the subscriptions, support assignments and customer
/// relationships it lists (names), and whether it gets the seller's sale.
async fn reads(app: &TestApp, partner: &Partner, s: &Setting) -> (usize, usize, usize, Code) {
    let subscriptions =
        app.channel_as(Some(&partner.name)).list_subscriptions(ListSubscriptionsRequest::default()).await.reply();
    let assignments =
        app.channel_as(Some(&partner.name)).list_support_assignments(ListSupportAssignmentsRequest::default()).await;
    let relationships = app
        .relationships_as(Some(&partner.name))
        .list_customer_relationships(ListCustomerRelationshipsRequest::default())
        .await
        .reply();
    let mut channel = app.channel_as(Some(&partner.name));
    let get = channel.get_subscription(GetSubscriptionRequest { name: s.sold.name.clone() }).await;
    let code = get.err().map_or(Code::Ok, |status| status.code());
    (
        subscriptions.subscriptions.len(),
        assignments.reply().support_assignments.len(),
        relationships.customer_relationships.len(),
        code,
    )
}

#[tokio::test]
async fn each_role_reads_what_it_names_of_the_customer_and_nothing_more() {
    let app = spawn_app().await;
    let s = setting(&app).await;
    // Without a role the holder reads its own relationship only (rule 9).
    assert_eq!(reads(&app, &s.holder, &s).await, (0, 0, 1, Code::PermissionDenied));
    // (subscriptions listed, assignments listed, relationships listed, Get of the seller's sale)
    let expected = [
        (Role::HelpdeskAgent, (0, 1, 2, Code::PermissionDenied)),
        (Role::BillingReader, (2, 0, 1, Code::Ok)),
        (Role::LicenseAdmin, (2, 0, 1, Code::Ok)),
        (Role::SupportEngineer, (2, 1, 1, Code::Ok)),
        (Role::GlobalAdmin, (2, 1, 2, Code::Ok)),
    ];
    for (role, read) in expected {
        let granted = app.grant_admin(&s.holder, &s.customer, &[role]).await;
        assert_eq!(reads(&app, &s.holder, &s).await, read, "{role:?}");
        let customers =
            app.partners_as(Some(&s.holder.name)).list_customers(ListCustomersRequest::default()).await.reply();
        assert_eq!(customers.customers, std::slice::from_ref(&s.customer), "{role:?}");
        let end = TerminateAdminRelationshipRequest { name: granted.name, etag: String::new() };
        app.relationships_as(Some(&s.customer.name)).terminate_admin_relationship(end).await.reply();
        assert_eq!(reads(&app, &s.holder, &s).await, (0, 0, 1, Code::PermissionDenied), "after {role:?} ended");
    }
    // A role is of one customer: the seller's other customers stay hidden.
    let elsewhere = app.customer_by("operator", Cloud::Global).await;
    app.relate(&s.seller, &elsewhere, None).await;
    app.sell(&s.seller, &elsewhere, "azure-plan", ProductFamily::Azure).await;
    app.grant_admin(&s.holder, &s.customer, &[Role::GlobalAdmin]).await;
    let listed =
        app.channel_as(Some(&s.holder.name)).list_subscriptions(ListSubscriptionsRequest::default()).await.reply();
    assert!(listed.subscriptions.iter().all(|sub| sub.customer == s.customer.name), "{listed:?}");
    let get = GetCustomerRequest { name: elsewhere.name.clone() };
    expect_code(app.partners_as(Some(&s.holder.name)).get_customer(get).await, Code::PermissionDenied);
}

#[tokio::test]
async fn a_global_admin_answers_for_the_customer_under_its_relationship_but_never_for_itself() {
    let app = spawn_app().await;
    let s = setting(&app).await;
    let admin = app.grant_admin(&s.holder, &s.customer, &[Role::GlobalAdmin]).await;
    let newcomer = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let asked = app.ask(&newcomer, &s.customer, None).await;
    let accept = AcceptCustomerRelationshipRequest { name: asked.name.clone(), etag: String::new() };
    let accepted = app.relationships_as(Some(&s.holder.name)).accept_customer_relationship(accept).await.reply();
    assert_eq!(accepted.partner, newcomer.name);
    let change = audit_history(&app, &asked.name).await.pop().expect("the acceptance");
    assert_eq!(change.method, "AcceptCustomerRelationship");
    assert_eq!((change.principal.as_str(), change.delegation.as_deref()), (&*s.holder.name, Some(&*admin.name)));
    feed_passed(&app, &asked.name, "customer_relationship.accepted").await;
    let events = app
        .events_as(Some(&s.customer.name))
        .list_events(ListEventsRequest { resource: asked.name.clone(), ..Default::default() })
        .await
        .reply()
        .events;
    assert_eq!(events.last().map(|event| event.delegation.as_str()), Some(&*admin.name), "the feed says it too");

    // Its own support request is the customer's to answer, not its own.
    let own = app
        .channel_as(Some(&s.holder.name))
        .request_support(RequestSupportRequest {
            subscription: s.external.name.clone(),
            partner: s.holder.name.clone(),
            request_id: String::new(),
        })
        .await
        .reply();
    let accept = AcceptSupportAssignmentRequest { name: own.name.clone(), etag: String::new() };
    let refused = expect_code(
        app.channel_as(Some(&s.holder.name)).accept_support_assignment(accept).await,
        Code::PermissionDenied,
    );
    assert_eq!(denied_permission(&refused), "supportAssignments.accept");
    // Ending is not a role's (rule 13.6 names accepting and declining only).
    let end = EndSupportAssignmentRequest { name: s.assignment.name.clone(), etag: String::new() };
    let refused =
        expect_code(app.channel_as(Some(&s.holder.name)).end_support_assignment(end).await, Code::PermissionDenied);
    assert_eq!(denied_permission(&refused), "supportAssignments.end");
}

#[tokio::test]
async fn a_licence_admin_changes_what_the_customer_bought_elsewhere_and_no_program_sale() {
    let app = spawn_app().await;
    let s = setting(&app).await;
    let admin = app.grant_admin(&s.holder, &s.customer, &[Role::LicenseAdmin]).await;
    let resize = |name: &str, quantity: i32| UpdateSubscriptionRequest {
        subscription: Some(Subscription { name: name.to_owned(), quantity, ..Default::default() }),
        update_mask: None,
    };
    let resized = app.channel_as(Some(&s.holder.name)).update_subscription(resize(&s.external.name, 45)).await.reply();
    assert_eq!(resized.quantity, 45);
    let change = audit_history(&app, &s.external.name).await.pop().expect("the change");
    assert_eq!(change.delegation.as_deref(), Some(&*admin.name));
    let refused = expect_code(
        app.channel_as(Some(&s.holder.name)).update_subscription(resize(&s.sold.name, 11)).await,
        Code::PermissionDenied,
    );
    assert_eq!(denied_permission(&refused), "subscriptions.update");
    let cancel = CancelSubscriptionRequest { name: s.external.name.clone(), etag: String::new() };
    expect_code(app.channel_as(Some(&s.holder.name)).cancel_subscription(cancel).await, Code::PermissionDenied);
}

/// The `permission` an ErrorInfo names.
fn denied_permission(status: &tonic::Status) -> String {
    let info = status.get_details_error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "PERMISSION_DENIED");
    info.metadata.get("permission").cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_refusal_names_the_permission_to_ask_for_and_nothing_of_what_it_hides() {
    let app = spawn_app().await;
    let s = setting(&app).await;
    let as_holder = app.channel_as(Some(&s.holder.name));
    let hidden = expect_code(
        as_holder.clone().get_subscription(GetSubscriptionRequest { name: s.sold.name.clone() }).await,
        Code::PermissionDenied,
    );
    let missing_name = format!("subscriptions/{}", uuid::Uuid::new_v4());
    let missing = expect_code(
        as_holder.clone().get_subscription(GetSubscriptionRequest { name: missing_name.clone() }).await,
        Code::PermissionDenied,
    );
    assert_eq!(denied_permission(&hidden), "subscriptions.get");
    assert_eq!(denied_permission(&missing), "subscriptions.get");
    assert_eq!(hidden.message().replace(&s.sold.name, "X"), missing.message().replace(&missing_name, "X"));
    let missing_relationship = format!("customerRelationships/{}", uuid::Uuid::new_v4());
    let get = GetCustomerRelationshipRequest { name: missing_relationship };
    let refused = expect_code(
        app.relationships_as(Some(&s.holder.name)).get_customer_relationship(get).await,
        Code::PermissionDenied,
    );
    assert_eq!(denied_permission(&refused), "customerRelationships.get");
}

async fn check(
    app: &TestApp,
    asker: Option<&str>,
    principal: &str,
    permission: &str,
    resource: &str,
) -> CheckAccessResponse {
    let request = CheckAccessRequest {
        principal: principal.to_owned(),
        permission: permission.to_owned(),
        resource: resource.to_owned(),
    };
    app.relationships_as(asker).check_access(request).await.reply()
}

#[tokio::test]
async fn check_access_names_the_path_that_decides() {
    let app = spawn_app().await;
    let s = setting(&app).await;
    let of_record = check(&app, Some("operator"), &s.seller.name, "subscriptions.update", &s.sold.name).await;
    assert!(of_record.allowed);
    assert_eq!(of_record.path, "partner of record");
    let own = check(&app, Some(&s.customer.name), "", "subscriptions.get", &s.sold.name).await;
    assert_eq!((own.allowed, own.path.as_str()), (true, "customer"));
    let denied = check(&app, Some(&s.holder.name), "", "subscriptions.get", &s.sold.name).await;
    assert!(!denied.allowed);
    assert_eq!(denied.denial, format!("{} may not see {}", s.holder.name, s.sold.name));

    let admin = app.grant_admin(&s.holder, &s.customer, &[Role::HelpdeskAgent, Role::LicenseAdmin]).await;
    let via = check(&app, Some(&s.holder.name), "", "subscriptions.update", &s.external.name).await;
    let until = admin.end_time.map(|t| chrono::DateTime::from_timestamp(t.seconds, 0).expect("a time"));
    let until = until.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default();
    assert!(via.allowed);
    assert_eq!(via.path, format!("via {} (ROLE_LICENSE_ADMIN, until {until})", admin.name));
    assert_eq!((via.admin_relationship.as_str(), via.role()), (&*admin.name, Role::LicenseAdmin));
    let program_sale = check(&app, Some(&s.holder.name), "", "subscriptions.update", &s.sold.name).await;
    assert!(!program_sale.allowed, "a licence admin changes no program sale: {program_sale:?}");

    // Asking about someone else is an operator's question; the request is checked like any other.
    let request = CheckAccessRequest {
        principal: s.seller.name.clone(),
        permission: "subscriptions.get".into(),
        resource: s.sold.name.clone(),
    };
    expect_code(app.relationships_as(Some(&s.holder.name)).check_access(request.clone()).await, Code::PermissionDenied);
    let unknown = CheckAccessRequest { permission: "subscriptions.delete".into(), ..request.clone() };
    let refused = expect_code(app.relationships().check_access(unknown).await, Code::InvalidArgument);
    assert_eq!(violated_field(&refused), "permission");
    let mismatched = CheckAccessRequest { permission: "customers.get".into(), ..request };
    let refused = expect_code(app.relationships().check_access(mismatched).await, Code::InvalidArgument);
    assert_eq!(violated_field(&refused), "resource");
}

#[tokio::test]
async fn a_role_past_its_end_grants_nothing_even_before_the_engine_marks_it() {
    let app = spawn_app().await;
    let s = setting(&app).await;
    let admin = app.grant_admin(&s.holder, &s.customer, &[Role::GlobalAdmin]).await;
    assert_eq!(reads(&app, &s.holder, &s).await, (2, 1, 2, Code::Ok));
    app.pass_deadline(&admin.name, TimeDelta::seconds(1)).await;
    assert_eq!(reads(&app, &s.holder, &s).await, (0, 0, 1, Code::PermissionDenied));
    let newcomer = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let asked = app.ask(&newcomer, &s.customer, None).await;
    let accept = AcceptCustomerRelationshipRequest { name: asked.name, etag: String::new() };
    expect_code(
        app.relationships_as(Some(&s.holder.name)).accept_customer_relationship(accept).await,
        Code::PermissionDenied,
    );
    let path = check(&app, Some("operator"), &s.holder.name, "subscriptions.get", &s.sold.name).await;
    assert!(!path.allowed);
}
