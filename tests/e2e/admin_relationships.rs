//! RelationshipService admin relationships (rule 12): a partner asks a customer it works with for
//! admin roles for a bounded time; the customer answers; either side terminates; access ends by
//! itself or extends; ending the customer relationship terminates it; not in the US government
//! cloud. Expiry runs at a time the test chooses (the engine's clock is injected). Their races
//! are in `races.rs`.

use chrono::{DateTime, TimeDelta, Utc};
use pc_api::{
    event::v1::{ListEventsRequest, event::ResourceAfter},
    partner::v1::{Customer, Partner, ProgramRole},
    relationship::v1::{
        admin_relationship::{Role, State},
        *,
    },
    types::v1::Cloud,
};
use pc_server::expiry::{self, BATCH};
use pc_tests::{
    Reply, TestApp, admin_request, audit_actions, audit_history, expect_code, feed_passed, reason, spawn_app,
    violated_field,
};
use tonic::Code;

fn approve(name: &str) -> ApproveAdminRelationshipRequest {
    ApproveAdminRelationshipRequest { name: name.to_owned(), etag: String::new() }
}

fn terminate(name: &str) -> TerminateAdminRelationshipRequest {
    TerminateAdminRelationshipRequest { name: name.to_owned(), etag: String::new() }
}

fn time(timestamp: Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let timestamp = timestamp.expect("a time");
    DateTime::from_timestamp(timestamp.seconds, u32::try_from(timestamp.nanos).unwrap_or(0)).expect("a valid time")
}

/// A direct-bill partner with an ACTIVE relationship with a customer of `cloud`.
async fn related(app: &TestApp, cloud: Cloud) -> (Partner, Customer) {
    let customer = app.customer_by("operator", cloud).await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, cloud).await;
    app.relate(&partner, &customer, None).await;
    (partner, customer)
}

async fn get(app: &TestApp, name: &str) -> AdminRelationship {
    app.relationships().get_admin_relationship(GetAdminRelationshipRequest { name: name.to_owned() }).await.reply()
}

#[tokio::test]
async fn the_customer_approves_and_access_runs_for_the_duration_asked() {
    let app = spawn_app().await;
    let (partner, customer) = related(&app, Cloud::Global).await;
    let asked = app.ask_admin(&partner, &customer, &[Role::GlobalAdmin, Role::BillingReader]).await;
    assert_eq!(asked.state(), State::ApprovalPending);
    assert_eq!(asked.roles, [Role::BillingReader as i32, Role::GlobalAdmin as i32], "each once, catalogue order");
    assert_eq!(asked.duration.map(|d| d.seconds), Some(90 * 86_400));
    let approval_window = time(asked.expire_time) - time(asked.create_time);
    assert!((approval_window - TimeDelta::days(90)).num_seconds().abs() < 5, "an unanswered request waits 90 days");
    assert!(asked.approve_time.is_none() && asked.end_time.is_none());

    let approved =
        app.relationships_as(Some(&customer.name)).approve_admin_relationship(approve(&asked.name)).await.reply();
    assert_eq!(approved.state(), State::Active);
    let (approved_at, end) = (time(approved.approve_time), time(approved.end_time));
    assert_eq!(end - approved_at, TimeDelta::days(90), "access lasts its duration from the approval");
    assert_eq!(time(approved.expire_time), end, "an ACTIVE one lapses at its end");

    // Its partner and customer read it; another partner learns nothing, not even that it exists.
    let read = app.relationships_as(Some(&partner.name));
    assert_eq!(
        read.clone().get_admin_relationship(GetAdminRelationshipRequest { name: asked.name.clone() }).await.reply(),
        approved
    );
    let stranger = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let hidden = app
        .relationships_as(Some(&stranger.name))
        .get_admin_relationship(GetAdminRelationshipRequest { name: asked.name.clone() })
        .await;
    expect_code(hidden, Code::PermissionDenied);
    let listed = app
        .relationships_as(Some(&stranger.name))
        .list_admin_relationships(ListAdminRelationshipsRequest::default())
        .await
        .reply();
    assert!(listed.admin_relationships.is_empty());
    let mine = app
        .relationships_as(Some(&customer.name))
        .list_admin_relationships(ListAdminRelationshipsRequest { state: State::Active as i32, ..Default::default() })
        .await
        .reply();
    assert_eq!(mine.admin_relationships, std::slice::from_ref(&approved));

    assert_eq!(audit_actions(&app, &asked.name).await, ["RequestAdminRelationship", "ApproveAdminRelationship"]);
    feed_passed(&app, &asked.name, "admin_relationship.approved").await;
    let events = app
        .events_as(Some(&partner.name))
        .list_events(ListEventsRequest { resource: asked.name.clone(), ..Default::default() })
        .await
        .reply()
        .events;
    let types: Vec<_> = events.iter().map(|event| event.event_type.as_str()).collect();
    assert_eq!(types, ["admin_relationship.requested", "admin_relationship.approved"]);
    let after = events.last().and_then(|event| event.resource_after.clone());
    assert_eq!(after, Some(ResourceAfter::AdminRelationship(approved)));
}

#[tokio::test]
async fn the_customer_answers_either_side_terminates_and_nothing_moves_twice() {
    let app = spawn_app().await;
    let (partner, customer) = related(&app, Cloud::Global).await;
    let as_partner = app.relationships_as(Some(&partner.name));
    let as_customer = app.relationships_as(Some(&customer.name));

    let asked = app.ask_admin(&partner, &customer, &[Role::HelpdeskAgent]).await;
    expect_code(as_partner.clone().approve_admin_relationship(approve(&asked.name)).await, Code::PermissionDenied);
    let declined = as_customer
        .clone()
        .decline_admin_relationship(DeclineAdminRelationshipRequest { name: asked.name.clone(), etag: String::new() })
        .await
        .reply();
    assert_eq!(declined.state(), State::Declined);
    assert!(declined.end_time.is_some());
    let late = expect_code(
        as_customer.clone().approve_admin_relationship(approve(&asked.name)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&late), "INVALID_TRANSITION");

    // The partner withdraws a request nobody answered; the customer ends an ACTIVE one.
    let withdrawn = app.ask_admin(&partner, &customer, &[Role::HelpdeskAgent]).await;
    let terminated = as_partner.clone().terminate_admin_relationship(terminate(&withdrawn.name)).await.reply();
    assert_eq!(terminated.state(), State::Terminated);
    let pending = app.ask_admin(&partner, &customer, &[Role::LicenseAdmin]).await;
    let granted = as_customer.clone().approve_admin_relationship(approve(&pending.name)).await.reply();
    let stale = TerminateAdminRelationshipRequest { name: granted.name.clone(), etag: pending.etag.clone() };
    expect_code(as_customer.clone().terminate_admin_relationship(stale).await, Code::Aborted);
    let ended = as_customer.clone().terminate_admin_relationship(terminate(&granted.name)).await.reply();
    assert_eq!(ended.state(), State::Terminated);
    assert!(time(ended.end_time) < time(granted.end_time), "it ended before its time");
    let again = expect_code(
        as_partner.clone().terminate_admin_relationship(terminate(&granted.name)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&again), "INVALID_TRANSITION");
    assert_eq!(
        audit_actions(&app, &granted.name).await,
        ["RequestAdminRelationship", "ApproveAdminRelationship", "TerminateAdminRelationship"]
    );
}

#[tokio::test]
async fn a_request_is_bounded_in_name_roles_and_duration() {
    let app = spawn_app().await;
    let (partner, customer) = related(&app, Cloud::Global).await;
    let ask = |edit: &dyn Fn(&mut AdminRelationship)| {
        let mut request = admin_request(&partner, &customer, &[Role::BillingReader]);
        if let Some(asked) = request.admin_relationship.as_mut() {
            edit(asked);
        }
        let mut client = app.relationships_as(Some(&partner.name));
        async move { client.request_admin_relationship(request).await }
    };
    let days = |days: i64| Some(prost_types::Duration { seconds: days * 86_400, nanos: 0 });
    type Edit<'a> = &'a dyn Fn(&mut AdminRelationship);
    let cases: [(&str, Edit); 8] = [
        ("admin_relationship.display_name", &|a| a.display_name = "x".repeat(51)),
        ("admin_relationship.display_name", &|a| a.display_name.clear()),
        ("admin_relationship.roles", &|a| a.roles.clear()),
        ("admin_relationship.roles", &|a| a.roles = vec![Role::Unspecified as i32]),
        ("admin_relationship.roles", &|a| a.roles = vec![Role::LicenseAdmin as i32; 2]),
        ("admin_relationship.duration", &|a| a.duration = days(731)),
        ("admin_relationship.duration", &|a| a.duration = Some(prost_types::Duration { seconds: 3_600, nanos: 0 })),
        ("admin_relationship.auto_extend", &|a| {
            a.roles = vec![Role::GlobalAdmin as i32];
            a.auto_extend = true;
        }),
    ];
    for (field, edit) in cases {
        let refused = expect_code(ask(edit).await, Code::InvalidArgument);
        assert_eq!(violated_field(&refused), field, "{refused:?}");
    }
    let longest = ask(&|a| {
        a.display_name = "x".repeat(50);
        a.duration = days(730);
        a.auto_extend = true;
    });
    let longest = longest.await.reply();
    assert_eq!(longest.duration.map(|d| d.seconds), Some(730 * 86_400));
    assert!(longest.auto_extend);

    // A display name is unique among the pair's live admin relationships, and free again after.
    let taken = expect_code(ask(&|a| a.display_name = "x".repeat(50)).await, Code::AlreadyExists);
    assert!(taken.message().contains(&"x".repeat(50)), "{taken:?}");
    app.relationships_as(Some(&partner.name)).terminate_admin_relationship(terminate(&longest.name)).await.reply();
    ask(&|a| a.display_name = "x".repeat(50)).await.reply();
    assert_eq!(audit_actions(&app, &longest.name).await, ["RequestAdminRelationship", "TerminateAdminRelationship"]);
}

#[tokio::test]
async fn it_rests_on_an_active_customer_relationship_and_ends_with_it() {
    let app = spawn_app().await;
    let (partner, customer) = related(&app, Cloud::Global).await;
    // A partner that may not read the customer learns nothing of it; one that created it but
    // holds no ACTIVE relationship with it reads it, and is told which rule refuses.
    let stranger = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let request = admin_request(&stranger, &customer, &[Role::HelpdeskAgent]);
    expect_code(
        app.relationships_as(Some(&stranger.name)).request_admin_relationship(request).await,
        Code::PermissionDenied,
    );
    let own = app.customer_by(&stranger.name, Cloud::Global).await;
    let request = admin_request(&stranger, &own, &[Role::HelpdeskAgent]);
    let refused = expect_code(
        app.relationships_as(Some(&stranger.name)).request_admin_relationship(request).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&refused), "NO_ACTIVE_RELATIONSHIP");

    let pending = app.ask_admin(&partner, &customer, &[Role::HelpdeskAgent]).await;
    let active = app.grant_admin(&partner, &customer, &[Role::SupportEngineer]).await;
    let relationships = app
        .relationships()
        .list_customer_relationships(ListCustomerRelationshipsRequest {
            partner: partner.name.clone(),
            customer: customer.name.clone(),
            ..Default::default()
        })
        .await
        .reply();
    let relationship = relationships.customer_relationships[0].name.clone();
    let end = EndCustomerRelationshipRequest { name: relationship.clone(), etag: String::new() };
    app.relationships_as(Some(&customer.name)).end_customer_relationship(end).await.reply();
    for name in [&pending.name, &active.name] {
        assert_eq!(get(&app, name).await.state(), State::Terminated, "{name}");
        let last = audit_history(&app, name).await.pop().expect("a change");
        assert_eq!((last.method.as_str(), last.cause.as_deref()), ("TerminateAdminRelationship", Some(&*relationship)));
    }
    // Without the relationship the partner no longer reads the customer (rule 9): a new request
    // learns nothing of it.
    let request = admin_request(&partner, &customer, &[Role::HelpdeskAgent]);
    expect_code(
        app.relationships_as(Some(&partner.name)).request_admin_relationship(request).await,
        Code::PermissionDenied,
    );
}

#[tokio::test]
async fn approving_needs_the_relationship_still_active_and_the_partner_not_suspended() {
    let app = spawn_app().await;
    let (partner, customer) = related(&app, Cloud::Global).await;
    let asked = app.ask_admin(&partner, &customer, &[Role::BillingReader]).await;
    app.partners()
        .suspend_partner(pc_api::partner::v1::SuspendPartnerRequest { name: partner.name.clone(), etag: String::new() })
        .await
        .reply();
    let refused = expect_code(
        app.relationships_as(Some(&customer.name)).approve_admin_relationship(approve(&asked.name)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&refused), "PARTNER_SUSPENDED");
    let request = admin_request(&partner, &customer, &[Role::BillingReader]);
    let refused = expect_code(app.relationships().request_admin_relationship(request).await, Code::FailedPrecondition);
    assert_eq!(reason(&refused), "PARTNER_SUSPENDED");
    assert_eq!(get(&app, &asked.name).await.state(), State::ApprovalPending, "a refusal changes nothing");
}

#[tokio::test]
async fn not_offered_in_the_us_government_cloud_and_offered_in_the_other_national_clouds() {
    let app = spawn_app().await;
    let (partner, customer) = related(&app, Cloud::UsGovernment).await;
    let request = admin_request(&partner, &customer, &[Role::HelpdeskAgent]);
    let refused = expect_code(
        app.relationships_as(Some(&partner.name)).request_admin_relationship(request).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&refused), "NOT_OFFERED_IN_CLOUD");
    for cloud in [Cloud::China, Cloud::Germany] {
        let (partner, customer) = related(&app, cloud).await;
        assert_eq!(app.grant_admin(&partner, &customer, &[Role::HelpdeskAgent]).await.state(), State::Active);
    }
}

/// One pass of the expiry engine at `now`, as every process runs it.
async fn expiry_pass(app: &TestApp, now: DateTime<Utc>) {
    expiry::run_once(&app.db, &app.expiring, now, BATCH).await.expect("an expiry pass");
}

#[tokio::test]
async fn unanswered_requests_expire_and_access_ends_at_its_end_unless_it_extends() {
    let app = spawn_app().await;
    let (partner, customer) = related(&app, Cloud::Global).await;
    let unanswered = app.ask_admin(&partner, &customer, &[Role::HelpdeskAgent]).await;
    let ending = app.grant_admin(&partner, &customer, &[Role::BillingReader]).await;
    let mut extending = admin_request(&partner, &customer, &[Role::LicenseAdmin]);
    if let Some(asked) = extending.admin_relationship.as_mut() {
        asked.auto_extend = true;
    }
    let extending = app.relationships_as(Some(&partner.name)).request_admin_relationship(extending).await.reply();
    let extending =
        app.relationships_as(Some(&customer.name)).approve_admin_relationship(approve(&extending.name)).await.reply();
    let untouched = app.grant_admin(&partner, &customer, &[Role::SupportEngineer]).await;
    for name in [&unanswered.name, &ending.name, &extending.name] {
        app.pass_deadline(name, TimeDelta::hours(1)).await;
    }

    // Past its deadline, before any pass: refused as EXPIRED; an extending one is still live.
    let late = app.relationships_as(Some(&customer.name)).approve_admin_relationship(approve(&unanswered.name)).await;
    assert_eq!(reason(&expect_code(late, Code::FailedPrecondition)), "EXPIRED");
    let late = app.relationships_as(Some(&partner.name)).terminate_admin_relationship(terminate(&ending.name)).await;
    assert_eq!(reason(&expect_code(late, Code::FailedPrecondition)), "EXPIRED");
    let scheduled_end = time(get(&app, &extending.name).await.end_time);

    expiry_pass(&app, Utc::now()).await;
    assert_eq!(get(&app, &unanswered.name).await.state(), State::Expired);
    let expired = get(&app, &ending.name).await;
    assert_eq!(expired.state(), State::Expired);
    assert!(time(expired.end_time) < Utc::now() - TimeDelta::minutes(59), "it ended at its end, not at the pass");
    let extended = get(&app, &extending.name).await;
    assert_eq!(extended.state(), State::Active);
    assert_eq!(time(extended.end_time), scheduled_end + TimeDelta::days(180));
    assert_eq!(time(extended.expire_time), time(extended.end_time));
    assert_eq!(get(&app, &untouched.name).await, untouched, "what has not reached its end stays");
    assert_eq!(
        audit_actions(&app, &extending.name).await,
        ["RequestAdminRelationship", "ApproveAdminRelationship", "ExtendAdminRelationship"]
    );
    let expiry = audit_history(&app, &ending.name).await.pop().expect("a change");
    assert_eq!((expiry.method.as_str(), expiry.principal.as_str()), ("ExpireAdminRelationship", "operator"));

    // A second pass finds nothing more to do; the extended one still terminates.
    expiry_pass(&app, Utc::now()).await;
    assert_eq!(audit_actions(&app, &extending.name).await.len(), 3);
    let ended = app
        .relationships_as(Some(&customer.name))
        .terminate_admin_relationship(terminate(&extending.name))
        .await
        .reply();
    assert_eq!(ended.state(), State::Terminated);
}

#[tokio::test]
async fn asking_again_under_the_name_of_a_lapsed_request_expires_it_first() {
    let app = spawn_app().await;
    let (partner, customer) = related(&app, Cloud::Global).await;
    let request = admin_request(&partner, &customer, &[Role::HelpdeskAgent]);
    let lapsed = app.relationships_as(Some(&partner.name)).request_admin_relationship(request.clone()).await.reply();
    app.pass_deadline(&lapsed.name, TimeDelta::hours(1)).await;
    let again = app.relationships_as(Some(&partner.name)).request_admin_relationship(request).await.reply();
    assert_ne!(again.name, lapsed.name);
    assert_eq!(get(&app, &lapsed.name).await.state(), State::Expired);
}
