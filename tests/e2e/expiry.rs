//! Rule 15: an invitation, a request and a transfer wait for their answer until a deadline; past
//! it they are refused as EXPIRED at once, and the expiry engine marks them EXPIRED with their
//! event, each exactly once however many replicas run it, without waiting for a row a request
//! holds. The engine's passes run here at a time the test chooses (the clock is injected), never
//! after a sleep; only the last test watches the server's own engine.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use pc_api::{
    channel::v1::{AcceptSupportAssignmentRequest, AcceptTransferRequest, RequestSupportRequest},
    event::v1::ListEventsRequest,
    partner::v1::{Partner, ProgramRole},
    relationship::v1::{
        AcceptCustomerRelationshipRequest, AcceptResellerLinkRequest, GetResellerLinkRequest, reseller_link,
    },
    types::v1::Cloud,
};
use pc_domain::ResourceKind;
use pc_server::expiry::{self, BATCH};
use pc_tests::{AppOptions, Reply, TestApp, audit_history, expect_code, reason, spawn_app, spawn_app_with};
use tonic::Code;

/// What waits, one of each kind: an INVITED link, a PENDING relationship, a REQUESTED support
/// assignment and a PENDING transfer, with the partners who would answer them.
struct Waiting {
    link: String,
    provider: Partner,
    reseller: Partner,
    /// The partner asking for the relationship, and the one asking to support `sold`.
    asking: Partner,
    supporting: Partner,
    sold: pc_api::channel::v1::Subscription,
    relationship: String,
    assignment: String,
    transfer: String,
    source: Partner,
    customer: pc_api::partner::v1::Customer,
}

async fn waiting(app: &TestApp) -> Waiting {
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let link = app.invite(&provider, &reseller).await.name;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let source = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&source, &customer, None).await;
    let sold = app.sell(&source, &customer, "office-365-e3", pc_api::channel::v1::ProductFamily::Productivity).await;
    let target = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    app.relate(&target, &customer, None).await;
    let ask =
        RequestSupportRequest { subscription: sold.name.clone(), partner: target.name.clone(), ..Default::default() };
    let assignment = app.channel_as(Some(&target.name)).request_support(ask).await.reply().name;
    let transfer = app.ask_transfer(&target, &source, &customer, &[&sold], None).await.name;
    let asking = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let relationship = app.ask(&asking, &customer, None).await.name;
    Waiting {
        link,
        provider,
        reseller,
        asking,
        supporting: target,
        sold,
        relationship,
        assignment,
        transfer,
        source,
        customer,
    }
}

/// Each of `w` accepted by the side that answers it: too late, FAILED_PRECONDITION `EXPIRED`.
async fn answers_are_expired(app: &TestApp, w: &Waiting) {
    let expired = |answer: Result<(), tonic::Status>, what: &str| {
        assert_eq!(reason(&expect_code(answer, Code::FailedPrecondition)), "EXPIRED", "{what}");
    };
    let accept = AcceptResellerLinkRequest { name: w.link.clone(), etag: String::new() };
    let answer = app.relationships_as(Some(&w.reseller.name)).accept_reseller_link(accept).await;
    expired(answer.map(drop), &w.link);
    let accept = AcceptCustomerRelationshipRequest { name: w.relationship.clone(), etag: String::new() };
    let answer = app.relationships_as(Some(&w.customer.name)).accept_customer_relationship(accept).await;
    expired(answer.map(drop), &w.relationship);
    let accept = AcceptSupportAssignmentRequest { name: w.assignment.clone(), etag: String::new() };
    let answer = app.channel_as(Some(&w.customer.name)).accept_support_assignment(accept).await;
    expired(answer.map(drop), &w.assignment);
    let accept = AcceptTransferRequest { name: w.transfer.clone(), etag: String::new() };
    let answer = app.channel_as(Some(&w.source.name)).accept_transfer(accept).await;
    expired(answer.map(drop), &w.transfer);
}

/// One pass of `app`'s expiry engine as if the clock read `now`.
async fn pass(app: &TestApp, now: DateTime<Utc>) -> Vec<(ResourceKind, usize)> {
    expiry::run_once(&app.db, &app.expiring, now, BATCH).await.expect("an expiry pass")
}

fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

/// The state of `name` as its audit log last recorded it.
async fn last_state(app: &TestApp, name: &str) -> (String, String) {
    let history = audit_history(app, name).await;
    let last = history.last().expect("a change");
    (last.method.clone(), last.state.as_ref().and_then(|delta| delta.to.clone()).unwrap_or_default())
}

#[tokio::test]
async fn each_waiting_kind_expires_once_with_its_event_when_a_pass_runs_after_its_deadline() {
    let app = spawn_app().await;
    let w = waiting(&app).await;
    let active = app.link(&app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await, &w.reseller).await;
    let kinds = [
        ResourceKind::ResellerLink,
        ResourceKind::CustomerRelationship,
        ResourceKind::SupportAssignment,
        ResourceKind::Transfer,
    ];
    let now = pc_store::db::now();

    let early = pass(&app, now + days(29)).await;
    assert!(early.iter().all(|(_, count)| *count == 0), "nothing is due before 30 days: {early:?}");
    let due = pass(&app, now + days(31)).await;
    let mut expired: Vec<_> = due.iter().filter(|(_, count)| *count > 0).copied().collect();
    expired.sort_by_key(|(kind, _)| kind.as_str());
    let mut want: Vec<_> = kinds.iter().map(|kind| (*kind, 1)).collect();
    want.sort_by_key(|(kind, _)| kind.as_str());
    assert_eq!(expired, want, "one of each kind");
    let again = pass(&app, now + days(31)).await;
    assert!(again.iter().all(|(_, count)| *count == 0), "each expires once: {again:?}");

    for (name, method) in [
        (&w.link, "ExpireResellerLink"),
        (&w.relationship, "ExpireCustomerRelationship"),
        (&w.assignment, "ExpireSupportAssignment"),
        (&w.transfer, "ExpireTransfer"),
    ] {
        assert_eq!(last_state(&app, name).await, (method.to_owned(), "EXPIRED".to_owned()), "{name}");
    }
    let link = app.relationships().get_reseller_link(GetResellerLinkRequest { name: w.link.clone() }).await.reply();
    assert_eq!(link.state(), reseller_link::State::Expired);
    assert!(link.end_time.is_some() && link.expire_time.is_some());
    let kept = app.relationships().get_reseller_link(GetResellerLinkRequest { name: active.name.clone() }).await;
    assert_eq!(kept.reply().state(), reseller_link::State::Active, "only what waits expires");

    // Its answer comes too late.
    answers_are_expired(&app, &w).await;

    // The reseller receives the expiry of its invitation on the feed.
    let feed = ListEventsRequest { resource: w.link.clone(), page_size: 100, ..Default::default() };
    let start = std::time::Instant::now();
    let types = loop {
        let events = app.events_as(Some(&w.reseller.name)).list_events(feed.clone()).await.reply().events;
        let types: Vec<_> = events.into_iter().map(|event| event.event_type).collect();
        if types.len() == 2 || start.elapsed() > Duration::from_secs(30) {
            break types;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(types, ["reseller_link.invited", "reseller_link.expired"]);
}

#[tokio::test]
async fn what_waited_past_its_deadline_is_refused_as_expired_before_any_pass_marks_it() {
    let app = spawn_app_with(AppOptions { expiry_days: Some(2), ..Default::default() }).await;
    let w = waiting(&app).await;
    let link = app.relationships().get_reseller_link(GetResellerLinkRequest { name: w.link.clone() }).await.reply();
    let (created, deadline) = (link.create_time.expect("created"), link.expire_time.expect("a deadline"));
    assert_eq!(deadline.seconds - created.seconds, 2 * 24 * 3600, "the configured window");

    for name in [&w.link, &w.relationship, &w.assignment, &w.transfer] {
        app.pass_deadline(name, chrono::Duration::seconds(1)).await;
    }
    answers_are_expired(&app, &w).await;
    // Nothing was marked: the refusals changed nothing, and the next pass finds all four.
    assert_eq!(last_state(&app, &w.link).await.1, "INVITED");
    let due = pass(&app, pc_store::db::now()).await;
    assert_eq!(due.iter().map(|(_, count)| count).sum::<usize>(), 4, "{due:?}");
}

#[tokio::test]
async fn replicas_running_passes_at_once_expire_each_resource_exactly_once() {
    let app = spawn_app().await;
    if app.skipped_without_postgres("replicas share one PostgreSQL database") {
        return;
    }
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let mut links = Vec::new();
    for _ in 0..60 {
        let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
        links.push(app.invite(&provider, &reseller).await.name);
    }
    let later = pc_store::db::now() + days(31);
    // Three processes' worth of pools over the database, each running passes in small batches.
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(pc_store::connect(&app.database_url(), 4).await.expect("a replica's pool"));
    }
    let [a, b, c] = [0, 1, 2].map(|i| expiry::run_once(&replicas[i], &app.expiring, later, 7));
    let (a, b, c) = tokio::join!(a, b, c);
    let counted: usize = [a, b, c].iter().flat_map(|pass| pass.as_ref().expect("a pass")).map(|(_, n)| n).sum();
    assert_eq!(counted, 60, "every due link, counted once over the replicas");
    for link in &links {
        let expiries = audit_history(&app, link).await.into_iter().filter(|c| c.method == "ExpireResellerLink").count();
        assert_eq!(expiries, 1, "{link} expired once");
    }
}

#[tokio::test]
async fn a_pass_never_waits_for_a_resource_a_request_holds() {
    use sea_orm::{EntityTrait, QuerySelect, TransactionTrait, sea_query::LockType};
    let app = spawn_app().await;
    if app.skipped_without_postgres("SQLite runs one writer at a time: nothing holds a row apart") {
        return;
    }
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let held = app.invite(&provider, &app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await).await.name;
    let free = app.invite(&provider, &app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await).await.name;
    let id: uuid::Uuid = held.trim_start_matches("resellerLinks/").parse().expect("an id");
    // A request holds the row, as a move does between its lock and its commit.
    let request = app.db.primary().begin().await.expect("a transaction");
    pc_store::reseller_links::Entity::find_by_id(id).lock(LockType::Update).one(&request).await.expect("lock the link");

    let later = pc_store::db::now() + days(31);
    let first = tokio::time::timeout(Duration::from_secs(10), pass(&app, later)).await.expect("the pass did not wait");
    assert_eq!(first.iter().map(|(_, count)| count).sum::<usize>(), 1, "the free one, not the held one");
    assert_eq!(last_state(&app, &free).await.1, "EXPIRED");
    assert_eq!(last_state(&app, &held).await.1, "INVITED");
    request.rollback().await.expect("release the row");
    let second = pass(&app, later).await;
    assert_eq!(second.iter().map(|(_, count)| count).sum::<usize>(), 1, "the next pass takes it");
}

#[tokio::test]
async fn the_servers_own_engine_expires_what_passed_its_deadline() {
    let options = AppOptions { expiry_interval_secs: Some(1), metrics: true, ..Default::default() };
    let app = spawn_app_with(options).await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let link = app.invite(&provider, &app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await).await.name;
    app.pass_deadline(&link, chrono::Duration::seconds(1)).await;
    // Its first pass comes within a second of startup, then one a second: wait for its work.
    let start = std::time::Instant::now();
    while last_state(&app, &link).await.1 != "EXPIRED" {
        assert!(start.elapsed() < Duration::from_secs(15), "the server's engine never expired {link}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The pass counts what it expired once it has been through every kind.
    let metrics = app.metrics_addr.expect("metrics are served");
    let counted = async || {
        let scraped = pc_tests::scrape_metrics(metrics).await;
        pc_tests::metric_sample(&scraped, "partner_center_expired_total", &[r#"kind="reseller_link""#])
    };
    while counted().await < 1.0 {
        assert!(start.elapsed() < Duration::from_secs(15), "the server's engine never counted its pass");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn asking_again_after_a_lapsed_invitation_or_request_expires_it_first() {
    let app = spawn_app().await;
    let w = waiting(&app).await;
    for name in [&w.link, &w.relationship, &w.assignment] {
        app.pass_deadline(name, chrono::Duration::seconds(1)).await;
    }
    // The same pairs ask again before any pass: each lapsed one is expired in the new one's
    // transaction, and the new one is live (rule 4 counts one live row per pair).
    let again = app.invite(&w.provider, &w.reseller).await;
    assert_eq!(again.state(), reseller_link::State::Invited);
    app.ask(&w.asking, &w.customer, None).await;
    let request = RequestSupportRequest {
        subscription: w.sold.name.clone(),
        partner: w.supporting.name.clone(),
        ..Default::default()
    };
    app.channel_as(Some(&w.supporting.name)).request_support(request).await.reply();
    for (name, method) in [
        (&w.link, "ExpireResellerLink"),
        (&w.relationship, "ExpireCustomerRelationship"),
        (&w.assignment, "ExpireSupportAssignment"),
    ] {
        assert_eq!(last_state(&app, name).await, (method.to_owned(), "EXPIRED".to_owned()), "{name}");
    }
}
