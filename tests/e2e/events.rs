//! The change feed (EventService, rule 14): every caller receives exactly the events about what it
//! could read when they happened, pages through them with tokens bound to its view, and a watcher
//! gets each new event once, resuming from its cursor.

use std::collections::BTreeSet;
use std::time::Duration;

use pc_api::channel::v1::{CancelSubscriptionRequest, ProductFamily, Subscription, UpdateSubscriptionRequest};
use pc_api::event::v1::{Event, ListEventsRequest, WatchEventsRequest, watch_events_request::Start};
use pc_api::partner::v1::{ProgramRole, SuspendPartnerRequest};
use pc_api::relationship::v1::{DeclineResellerLinkRequest, EndCustomerRelationshipRequest};
use pc_api::types::v1::Cloud;
use pc_tests::{Reply, TestApp, expect_code, spawn_app, violated_field};
use prost_types::FieldMask;
use tonic::Code;

/// Every event `subject` may list, all pages, with `filter`'s fields.
async fn list_all(app: &TestApp, subject: &str, filter: ListEventsRequest) -> Vec<Event> {
    let mut request = ListEventsRequest { page_size: 7, ..filter };
    let mut events = Vec::new();
    loop {
        let page = app.events_as(Some(subject)).list_events(request.clone()).await.reply();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        request.page_token = page.next_page_token;
    }
}

/// Waits until the feed has passed the change `event_type` of `resource`, the test's last write:
/// on PostgreSQL a change is listed once every transaction that started writing before it has
/// ended, and other tests' transactions run on the same server.
async fn settle(app: &TestApp, resource: &str, event_type: &str) {
    let start = std::time::Instant::now();
    let wanted =
        ListEventsRequest { resource: resource.to_owned(), event_type: event_type.to_owned(), ..Default::default() };
    while list_all(app, "operator", wanted.clone()).await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "the feed never passed {event_type} of {resource}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a caller received, as `event_type resource` lines.
fn seen(events: &[Event]) -> BTreeSet<String> {
    events.iter().map(|event| format!("{} {}", event.event_type, event.resource)).collect()
}

fn expected(lines: &[(&str, &str)]) -> BTreeSet<String> {
    lines.iter().map(|(event, resource)| format!("{event} {resource}")).collect()
}

#[tokio::test]
async fn each_caller_receives_exactly_the_events_of_what_it_could_read_when_they_happened() {
    let app = spawn_app().await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let declining = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let supporter = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let stranger = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let customer = app.customer_by("operator", Cloud::Global).await;
    let link = app.link(&provider, &reseller).await;
    let declined = app.invite(&provider, &declining).await;
    let decline = DeclineResellerLinkRequest { name: declined.name.clone(), etag: String::new() };
    app.relationships_as(Some(&declining.name)).decline_reseller_link(decline).await.reply();
    let billed = app.relate(&reseller, &customer, Some(&provider)).await;
    let supported = app.relate(&supporter, &customer, None).await;
    let sold = app.sell(&reseller, &customer, "office-365-e3", ProductFamily::Productivity).await;
    let assignment = app.hire(&supporter, &sold, &customer).await;
    let resize = UpdateSubscriptionRequest {
        subscription: Some(Subscription { name: sold.name.clone(), quantity: 11, ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["quantity".into()] }),
    };
    app.channel_as(Some(&reseller.name)).update_subscription(resize).await.reply();
    // The supporter's relationship ends, and its assignment with it: it sees both ends, and
    // nothing of the subscription after them.
    let end = EndCustomerRelationshipRequest { name: supported.name.clone(), etag: String::new() };
    app.relationships_as(Some(&supporter.name)).end_customer_relationship(end).await.reply();
    let cancel = CancelSubscriptionRequest { name: sold.name.clone(), etag: String::new() };
    app.channel_as(Some(&reseller.name)).cancel_subscription(cancel).await.reply();
    let suspend = SuspendPartnerRequest { name: stranger.name.clone(), etag: String::new() };
    app.partners().suspend_partner(suspend).await.reply();
    settle(&app, &stranger.name, "partner.suspended").await;

    // The partner directory is everyone's to read.
    let directory = [
        ("partner.created", provider.name.as_str()),
        ("partner.created", reseller.name.as_str()),
        ("partner.created", declining.name.as_str()),
        ("partner.created", supporter.name.as_str()),
        ("partner.created", stranger.name.as_str()),
        ("partner.suspended", stranger.name.as_str()),
    ];
    let with_directory = |lines: &[(&str, &str)]| {
        let mut all = expected(&directory);
        all.extend(expected(lines));
        all
    };
    let linked = [("reseller_link.invited", link.name.as_str()), ("reseller_link.accepted", link.name.as_str())];
    let refused =
        [("reseller_link.invited", declined.name.as_str()), ("reseller_link.declined", declined.name.as_str())];
    let billing = [
        ("customer_relationship.requested", billed.name.as_str()),
        ("customer_relationship.accepted", billed.name.as_str()),
    ];
    let supporting = [
        ("customer_relationship.requested", supported.name.as_str()),
        ("customer_relationship.accepted", supported.name.as_str()),
        ("customer_relationship.ended", supported.name.as_str()),
        ("support_assignment.requested", assignment.name.as_str()),
        ("support_assignment.accepted", assignment.name.as_str()),
        ("support_assignment.ended", assignment.name.as_str()),
    ];
    let sale = [
        ("subscription.created", sold.name.as_str()),
        ("subscription.updated", sold.name.as_str()),
        ("subscription.cancelled", sold.name.as_str()),
    ];

    let cases = [
        (stranger.name.as_str(), with_directory(&[])),
        (declining.name.as_str(), with_directory(&refused)),
        (reseller.name.as_str(), with_directory(&[&linked[..], &billing, &sale].concat())),
        (provider.name.as_str(), with_directory(&[&linked[..], &refused, &billing, &sale].concat())),
        // Supporting the subscription, it read the resize; after its assignment ended, not the cancel.
        (
            supporter.name.as_str(),
            with_directory(&[&supporting[..], &[("subscription.updated", sold.name.as_str())]].concat()),
        ),
        (
            customer.name.as_str(),
            with_directory(
                &[&[("customer.created", customer.name.as_str())][..], &billing, &supporting, &sale].concat(),
            ),
        ),
    ];
    let mut everything = BTreeSet::new();
    for (caller, want) in cases {
        let got = seen(&list_all(&app, caller, ListEventsRequest::default()).await);
        assert_eq!(got, want, "what {caller} receives");
        everything.extend(got);
    }
    let all = list_all(&app, "operator", ListEventsRequest::default()).await;
    assert_eq!(seen(&all), everything, "operators receive every event, and every event reaches a party");
    let cursors: BTreeSet<_> = all.iter().map(|event| event.cursor.clone()).collect();
    assert_eq!(cursors.len(), all.len(), "each event once, with a cursor of its own");
}

#[tokio::test]
async fn an_operator_pages_through_one_resources_changes_and_tokens_keep_their_view() {
    let app = spawn_app().await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let link = app.link(&provider, &reseller).await;
    settle(&app, &link.name, "reseller_link.accepted").await;

    let of_link = ListEventsRequest { resource: link.name.clone(), page_size: 1, ..Default::default() };
    let first = app.events_as(Some("operator")).list_events(of_link.clone()).await.reply();
    let [invited] = <[Event; 1]>::try_from(first.events).expect("one event a page");
    assert_eq!((invited.event_type.as_str(), invited.state.as_str()), ("reseller_link.invited", "INVITED"));
    assert_eq!((invited.method.as_str(), invited.principal.as_str()), ("InviteReseller", provider.name.as_str()));
    assert_eq!(invited.resource_type, "reseller_link");
    let next = ListEventsRequest { page_token: first.next_page_token.clone(), ..of_link.clone() };
    let second = app.events_as(Some("operator")).list_events(next).await.reply();
    let [accepted] = <[Event; 1]>::try_from(second.events).expect("one event a page");
    assert_eq!((accepted.previous_state.as_str(), accepted.state.as_str()), ("INVITED", "ACTIVE"));
    assert_eq!(accepted.principal, reseller.name);
    assert!(second.next_page_token.is_empty(), "two events, two pages");

    // A token pages only the caller and filters it was made for.
    let elsewhere = ListEventsRequest { page_token: first.next_page_token.clone(), ..Default::default() };
    let status = expect_code(app.events_as(Some("operator")).list_events(elsewhere).await, Code::InvalidArgument);
    assert_eq!(violated_field(&status), "page_token");
    let stolen = ListEventsRequest { page_token: first.next_page_token, ..of_link };
    expect_code(app.events_as(Some(&provider.name)).list_events(stolen).await, Code::InvalidArgument);

    let by_type = ListEventsRequest { event_type: "reseller_link.accepted".into(), ..Default::default() };
    let accepted_only = list_all(&app, &provider.name, by_type).await;
    assert_eq!(seen(&accepted_only), expected(&[("reseller_link.accepted", &link.name)]));
    let partners_only = ListEventsRequest { resource_type: "partner".into(), ..Default::default() };
    assert_eq!(list_all(&app, "operator", partners_only).await.len(), 2);

    for (request, field) in [
        (ListEventsRequest { resource_type: "invoice".into(), ..Default::default() }, "resource_type"),
        (ListEventsRequest { event_type: "invoice.paid".into(), ..Default::default() }, "event_type"),
        (ListEventsRequest { resource: "invoices/1".into(), ..Default::default() }, "resource"),
        (ListEventsRequest { page_size: -1, ..Default::default() }, "page_size"),
    ] {
        let status = expect_code(app.events_as(Some("operator")).list_events(request).await, Code::InvalidArgument);
        assert_eq!(violated_field(&status), field);
    }
}

/// The next event of a watch, within a few seconds.
async fn next_event(stream: &mut tonic::Streaming<Event>) -> Event {
    let next = tokio::time::timeout(Duration::from_secs(10), stream.message()).await;
    next.expect("an event within 10 s").expect("the watch goes on").expect("an event")
}

#[tokio::test]
async fn a_watcher_receives_each_new_event_once_and_resumes_from_its_cursor() {
    let app = spawn_app().await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;

    // From now: the enrolments before the call are not sent.
    let now = WatchEventsRequest { resource_type: "reseller_link".into(), ..Default::default() };
    let mut watch = app.events_as(Some(&reseller.name)).watch_events(now).await.reply();
    let link = app.invite(&provider, &reseller).await;
    let invited = next_event(&mut watch).await;
    assert_eq!((invited.event_type.as_str(), invited.resource.as_str()), ("reseller_link.invited", link.name.as_str()));
    drop(watch);

    // Gone while the link is accepted and another invitation is made; back from the cursor, it
    // gets exactly those, in order.
    let accept = pc_api::relationship::v1::AcceptResellerLinkRequest { name: link.name.clone(), etag: String::new() };
    app.relationships_as(Some(&reseller.name)).accept_reseller_link(accept).await.reply();
    let other = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let second = app.invite(&other, &reseller).await;
    let resume = WatchEventsRequest { start: Some(Start::AfterCursor(invited.cursor.clone())), ..Default::default() };
    let mut watch = app.events_as(Some(&reseller.name)).watch_events(resume).await.reply();
    let accepted = next_event(&mut watch).await;
    assert_eq!(
        (accepted.event_type.as_str(), accepted.resource.as_str()),
        ("reseller_link.accepted", link.name.as_str())
    );
    let enrolled = next_event(&mut watch).await;
    assert_eq!((enrolled.event_type.as_str(), enrolled.resource.as_str()), ("partner.created", other.name.as_str()));
    let invited_again = next_event(&mut watch).await;
    assert_eq!(invited_again.resource, second.name);
    let quiet = tokio::time::timeout(Duration::from_millis(300), watch.message()).await;
    assert!(quiet.is_err(), "nothing more was written, so nothing more is sent: {quiet:?}");

    // From the beginning, as an operator: everything, the first event first.
    let all = WatchEventsRequest { start: Some(Start::FromBeginning(true)), ..Default::default() };
    let mut watch = app.events_as(Some("operator")).watch_events(all).await.reply();
    assert_eq!(next_event(&mut watch).await.resource, provider.name);

    let bad = WatchEventsRequest { start: Some(Start::AfterCursor("not-a-cursor".into())), ..Default::default() };
    let status = expect_code(app.events_as(Some("operator")).watch_events(bad).await, Code::InvalidArgument);
    assert_eq!(violated_field(&status), "after_cursor");
}

/// Dates the events of `resources` `age` earlier, as if they had been written that long ago.
async fn age_events(app: &TestApp, resources: &[&str], age: chrono::Duration) {
    use pc_store::audit;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let past = pc_store::db::now() - age;
    audit::Entity::update_many()
        .col_expr(audit::Column::CreateTime, Expr::value(past))
        .filter(audit::Column::Resource.is_in(resources.iter().map(|name| name.to_string())))
        .exec(app.db.primary())
        .await
        .expect("age events");
}

#[tokio::test]
async fn events_past_their_retention_are_deleted_and_a_cursor_before_them_is_out_of_range() {
    let app = spawn_app().await;
    let first = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let second = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let kept = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    settle(&app, &kept.name, "partner.created").await;
    let all = list_all(&app, "operator", ListEventsRequest::default()).await;
    let page = ListEventsRequest { page_size: 1, ..Default::default() };
    let old_token = app.events_as(Some("operator")).list_events(page.clone()).await.reply().next_page_token;

    // Older than the retention (30 days by default): the sweep deletes them, oldest first.
    age_events(&app, &[&first.name, &second.name], chrono::Duration::days(31)).await;
    assert_eq!(pc_store::audit::forget_old_events(&app.db).await.expect("sweep"), 2);
    assert_eq!(pc_store::audit::forget_old_events(&app.db).await.expect("sweep again"), 0, "each deleted once");

    let held = list_all(&app, "operator", ListEventsRequest::default()).await;
    assert_eq!(seen(&held), expected(&[("partner.created", &kept.name)]));
    let from_start = WatchEventsRequest { start: Some(Start::FromBeginning(true)), ..Default::default() };
    let mut watch = app.events_as(Some("operator")).watch_events(from_start).await.reply();
    assert_eq!(next_event(&mut watch).await.resource, kept.name, "the beginning is the oldest event kept");

    // After the last deleted event: nothing was missed. After an earlier one: OUT_OF_RANGE.
    let after_deleted =
        WatchEventsRequest { start: Some(Start::AfterCursor(all[1].cursor.clone())), ..Default::default() };
    let mut watch = app.events_as(Some("operator")).watch_events(after_deleted).await.reply();
    assert_eq!(next_event(&mut watch).await.resource, kept.name);
    let too_old = WatchEventsRequest { start: Some(Start::AfterCursor(all[0].cursor.clone())), ..Default::default() };
    let status = expect_code(app.events_as(Some("operator")).watch_events(too_old).await, Code::OutOfRange);
    assert_eq!(pc_tests::reason(&status), "CURSOR_EXPIRED");
    let old_page = ListEventsRequest { page_token: old_token, ..page };
    let status = expect_code(app.events_as(Some("operator")).list_events(old_page).await, Code::OutOfRange);
    assert_eq!(pc_tests::reason(&status), "CURSOR_EXPIRED");
}

/// Every replica sweeps old events in the background (EVENT_RETENTION_HOURS, every
/// IDEMPOTENCY_SWEEP_INTERVAL_SECS), and together they delete each once.
#[tokio::test]
async fn replicas_delete_old_events_in_the_background() {
    use pc_store::audit;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let mut app = spawn_app().await;
    if app.skipped_without_postgres("replicas share one PostgreSQL database (README, Scaling)") {
        return;
    }
    let settings = [("EVENT_RETENTION_HOURS", "1"), ("IDEMPOTENCY_SWEEP_INTERVAL_SECS", "1")];
    app.spread_over_processes(3, &settings).await;
    let mut old = Vec::new();
    for _ in 0..20 {
        old.push(app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await.name);
    }
    let kept = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    age_events(&app, &old.iter().map(String::as_str).collect::<Vec<_>>(), chrono::Duration::hours(2)).await;
    let count = |names: Vec<String>| {
        let db = app.db.primary().clone();
        async move { audit::Entity::find().filter(audit::Column::Resource.is_in(names)).count(&db).await.expect("count") }
    };
    let start = std::time::Instant::now();
    while count(old.clone()).await > 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "the old events were not swept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(vec![kept.name.clone()]).await, 1, "a recent event is kept");
}

#[tokio::test]
async fn each_event_carries_the_resource_as_the_change_left_it() {
    use pc_api::channel::v1::GetSupportAssignmentRequest;
    use pc_api::event::v1::event::ResourceAfter;
    use pc_api::relationship::v1::AcceptResellerLinkRequest;
    let app = spawn_app().await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let invited = app.invite(&provider, &reseller).await;
    let accept = AcceptResellerLinkRequest { name: invited.name.clone(), etag: String::new() };
    let accepted = app.relationships_as(Some(&reseller.name)).accept_reseller_link(accept).await.reply();
    let customer = app.customer_by("operator", Cloud::Global).await;
    let bought = app.bought_elsewhere(&customer, 3).await;
    let supporter = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let related = app.relate(&supporter, &customer, None).await;
    let assigned = app.hire(&supporter, &bought, &customer).await;
    let resize = UpdateSubscriptionRequest {
        subscription: Some(Subscription { name: bought.name.clone(), quantity: 7, ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["quantity".into()] }),
    };
    let resized = app.channel().update_subscription(resize).await.reply();
    let cancel = CancelSubscriptionRequest { name: bought.name.clone(), etag: String::new() };
    let cancelled = app.channel().cancel_subscription(cancel).await.reply();
    // Ended by the cancellation (rule 8): a change the caller did not ask for carries it too.
    let get = GetSupportAssignmentRequest { name: assigned.name.clone() };
    let ended = app.channel().get_support_assignment(get).await.reply();
    settle(&app, &ended.name, "support_assignment.ended").await;

    let after = |resource: &str| {
        let events =
            list_all(&app, "operator", ListEventsRequest { resource: resource.to_owned(), ..Default::default() });
        async move { events.await.into_iter().map(|event| event.resource_after).collect::<Vec<_>>() }
    };
    assert_eq!(after(&provider.name).await, [Some(ResourceAfter::Partner(provider.clone()))]);
    assert_eq!(after(&customer.name).await, [Some(ResourceAfter::Customer(customer.clone()))]);
    assert_eq!(
        after(&invited.name).await,
        [Some(ResourceAfter::ResellerLink(invited)), Some(ResourceAfter::ResellerLink(accepted))]
    );
    assert_eq!(
        after(&bought.name).await,
        [bought, resized, cancelled].map(|subscription| Some(ResourceAfter::Subscription(subscription)))
    );
    let relationship = after(&related.name).await;
    assert_eq!(relationship.last(), Some(&Some(ResourceAfter::CustomerRelationship(related))));
    let assignment = after(&assigned.name).await;
    assert_eq!(assignment.len(), 3, "requested, accepted, ended");
    assert_eq!(
        assignment[1..],
        [Some(ResourceAfter::SupportAssignment(assigned)), Some(ResourceAfter::SupportAssignment(ended))]
    );
}
