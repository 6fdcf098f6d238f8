//! The audit log's typed changes: every write records, with the change, the domain's spelling of
//! each state, the fields it changed, the acting principal, the cause of a cascaded change, and
//! the parties that may see it; rows written before the typed change still read.

use pc_api::channel::v1::{ProductFamily, Subscription, UpdateSubscriptionRequest};
use pc_api::partner::v1::ProgramRole;
use pc_api::relationship::v1::EndCustomerRelationshipRequest;
use pc_api::types::v1::Cloud;
use pc_domain::change::Delta;
use pc_domain::{Change, ResourceKind, Role};
use pc_store::ConnectionTrait;
use pc_tests::{Reply, audit_history, spawn_app};
use prost_types::FieldMask;
use sea_orm::sea_query::{Alias, Query, SimpleExpr};

fn state(change: &Change) -> (Option<&str>, Option<&str>) {
    let state = change.state.as_ref().expect("a change of a resource with a state carries it");
    (state.from.as_deref(), state.to.as_deref())
}

#[tokio::test]
async fn every_change_records_its_states_fields_principal_and_parties() {
    let app = spawn_app().await;
    let provider = app.enrol(ProgramRole::IndirectProvider, Cloud::Global).await;
    let reseller = app.enrol(ProgramRole::IndirectReseller, Cloud::Global).await;
    let supporter = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    let customer = app.customer_by(&supporter.name, Cloud::Global).await;
    let link = app.link(&provider, &reseller).await;
    let relationship = app.relate(&reseller, &customer, Some(&provider)).await;
    let supported = app.relate(&supporter, &customer, None).await;
    let sold = app.sell(&reseller, &customer, "office-365-e5", ProductFamily::Productivity).await;
    let assignment = app.hire(&supporter, &sold, &customer).await;
    let resize = UpdateSubscriptionRequest {
        subscription: Some(Subscription { name: sold.name.clone(), quantity: 12, ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["quantity".into()] }),
    };
    app.channel_as(Some(&provider.name)).update_subscription(resize).await.reply();
    let end = EndCustomerRelationshipRequest { name: supported.name.clone(), etag: String::new() };
    app.relationships_as(Some(&supporter.name)).end_customer_relationship(end).await.reply();

    let [enrolled] = <[Change; 1]>::try_from(audit_history(&app, &provider.name).await).expect("one change");
    assert_eq!(
        (enrolled.method.as_str(), enrolled.kind, enrolled.principal.as_str()),
        ("CreatePartner", ResourceKind::Partner, "operator")
    );
    assert_eq!(state(&enrolled), (None, Some("ACTIVE")), "the domain's spelling, never STATE_ACTIVE");
    assert!(enrolled.fields.iter().any(|(field, delta)| field == "program_role"
        && *delta == Delta { from: None, to: Some("INDIRECT_PROVIDER".into()) }));
    assert_eq!(enrolled.parties.get(Role::Partner), Some(provider.name.as_str()));

    let created = &audit_history(&app, &customer.name).await[0];
    assert_eq!(created.state, None, "a customer has no state");
    assert_eq!(created.parties.get(Role::Customer), Some(customer.name.as_str()));
    assert_eq!(created.parties.get(Role::Creator), Some(supporter.name.as_str()));

    let [invited, accepted] = <[Change; 2]>::try_from(audit_history(&app, &link.name).await).expect("two changes");
    assert_eq!(state(&invited), (None, Some("INVITED")));
    assert_eq!((accepted.method.as_str(), accepted.principal.as_str()), ("AcceptResellerLink", reseller.name.as_str()));
    assert_eq!(state(&accepted), (Some("INVITED"), Some("ACTIVE")));
    for change in [&invited, &accepted] {
        assert_eq!(change.parties.get(Role::Provider), Some(provider.name.as_str()));
        assert_eq!(change.parties.get(Role::Reseller), Some(reseller.name.as_str()));
    }

    let requested = &audit_history(&app, &relationship.name).await[0];
    assert_eq!(requested.kind, ResourceKind::CustomerRelationship);
    for (role, party) in
        [(Role::Customer, &customer.name), (Role::Partner, &reseller.name), (Role::Provider, &provider.name)]
    {
        assert_eq!(requested.parties.get(role), Some(party.as_str()), "{role:?}");
    }

    let [_, resized] = <[Change; 2]>::try_from(audit_history(&app, &sold.name).await).expect("two changes");
    assert_eq!(resized.state, None, "a resize leaves the state as it was");
    assert_eq!(resized.fields, [("quantity".to_owned(), Delta { from: Some("10".into()), to: Some("12".into()) })]);
    assert_eq!(resized.parties.get(Role::PartnerOfRecord), Some(reseller.name.as_str()));
    assert_eq!(resized.parties.get(Role::BillingPartner), Some(provider.name.as_str()));
    // Its ACTIVE support partner reads it (rule 9), so its changes name it too.
    assert_eq!(resized.parties.get(Role::SupportPartner), Some(supporter.name.as_str()));
    assert_eq!(resized.principal, provider.name);

    // The relationship's end ended the assignment in the same transaction, and says so.
    let methods: Vec<_> = audit_history(&app, &assignment.name).await;
    let ended = methods.last().expect("changes");
    assert_eq!(ended.method, "EndSupportAssignment");
    assert_eq!(state(ended), (Some("ACTIVE"), Some("ENDED")));
    assert_eq!(ended.cause.as_deref(), Some(supported.name.as_str()));
    assert_eq!(ended.principal, supporter.name);
    assert_eq!(ended.parties.get(Role::SupportPartner), Some(supporter.name.as_str()));
    assert_eq!(ended.parties.get(Role::Customer), Some(customer.name.as_str()));
}

#[tokio::test]
async fn audit_rows_written_before_the_typed_change_still_read() {
    let app = spawn_app().await;
    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
    // A row as the handlers wrote them before: their own JSON, and no schema (the column's default).
    let columns = ["id", "resource", "action", "principal", "change", "create_time"].map(Alias::new);
    let body = r#"{"state":{"from":"STATE_ACTIVE","to":"SUSPENDED"}}"#;
    let values: [SimpleExpr; 6] = [
        uuid::Uuid::now_v7().into(),
        partner.name.clone().into(),
        "SuspendPartner".into(),
        "operator".into(),
        body.into(),
        pc_store::db::now().into(),
    ];
    let insert =
        Query::insert().into_table(Alias::new("audit_events")).columns(columns).values_panic(values).to_owned();
    app.db.primary().execute(&insert).await.expect("insert a schema 1 row");

    let history = audit_history(&app, &partner.name).await;
    let old = history.last().expect("the old row");
    assert_eq!(old.method, "SuspendPartner");
    assert_eq!(old.kind, ResourceKind::Partner);
    assert_eq!(state(old), (Some("ACTIVE"), Some("SUSPENDED")));
}

/// A watcher of the feed (WatchEvents, as an operator) that drops its stream at random points and
/// watches again after the last cursor it received, until it has passed `end` (set once the
/// writers are done): the position of every event it received, in the order received.
async fn watch_the_feed_until(
    app: &pc_tests::TestApp,
    end: &std::sync::Mutex<Option<pc_domain::Position>>,
    seed: u128,
) -> Vec<pc_domain::Position> {
    use pc_api::event::v1::{WatchEventsRequest, watch_events_request::Start};
    use pc_domain::Position;
    let mut random = seed;
    let mut next = move |bound: u128| {
        random = random.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (random >> 64) % bound
    };
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    let start = std::time::Instant::now();
    loop {
        let last = seen.last().copied().unwrap_or(Position::START);
        if end.lock().expect("the end").is_some_and(|end| last >= end) {
            return seen;
        }
        // A transaction still running anywhere on the server holds the feed back for a moment.
        assert!(start.elapsed() < std::time::Duration::from_secs(120), "the feed never reached the last write");
        let from = match cursor.clone() {
            Some(cursor) => Start::AfterCursor(cursor),
            None => Start::FromBeginning(true),
        };
        let request = WatchEventsRequest { start: Some(from), ..Default::default() };
        let mut stream = app.events_as(Some("operator")).watch_events(request).await.reply();
        // Gone after a few events, or after a quiet moment; back from the last cursor received.
        for _ in 0..1 + next(24) {
            let wait = std::time::Duration::from_millis(50 + next(100) as u64);
            let Ok(message) = tokio::time::timeout(wait, stream.message()).await else { break };
            let event = message.expect("the watch goes on").expect("an open watch");
            seen.push(Position::parse_cursor("cursor", &event.cursor).expect("a cursor"));
            cursor = Some(event.cursor);
        }
    }
}

/// The feed is gapless (rule 14, `pc_store::audit::read_after`): while writers commit
/// concurrently (on PostgreSQL through three server processes besides the test's own), watchers
/// that drop their stream at random points and watch again from their last cursor end with every
/// event exactly once, in feed order.
#[tokio::test]
async fn watchers_resuming_from_their_last_cursor_receive_every_change_exactly_once_under_concurrent_writers() {
    use pc_api::partner::v1::{ReactivatePartnerRequest, SuspendPartnerRequest};
    use pc_domain::Position;
    use pc_store::audit;
    use sea_orm::{EntityTrait, QueryOrder};
    let mut app = spawn_app().await;
    if app.on_postgres() {
        app.spread_over_processes(3, &[]).await;
    }
    let app = std::sync::Arc::new(app);
    let end = std::sync::Arc::new(std::sync::Mutex::new(None));
    let watchers: Vec<_> = (0..4u128)
        .map(|seed| {
            let (app, end) = (app.clone(), end.clone());
            tokio::spawn(async move { watch_the_feed_until(&app, &end, seed + 1).await })
        })
        .collect();
    let writers: Vec<_> = (0..12)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                for _ in 0..8 {
                    let partner = app.enrol(ProgramRole::DirectBillPartner, Cloud::Global).await;
                    let name = partner.name.clone();
                    let suspend = SuspendPartnerRequest { name: name.clone(), etag: String::new() };
                    app.partners().suspend_partner(suspend).await.reply();
                    app.partners()
                        .reactivate_partner(ReactivatePartnerRequest { name, etag: String::new() })
                        .await
                        .reply();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("a writer");
    }
    // Every write has committed: the table itself, in feed order, is what each watcher must end with.
    let committed = audit::Entity::find()
        .order_by_asc(audit::Column::TransactionId)
        .order_by_asc(audit::Column::Id)
        .all(app.db.primary())
        .await
        .expect("read the table");
    assert_eq!(committed.len(), 12 * 8 * 3, "every write recorded one change");
    let committed: Vec<Position> = committed.iter().map(audit::Model::position).collect();
    *end.lock().expect("the end") = committed.last().copied();
    for watcher in watchers {
        let seen = watcher.await.expect("a watcher");
        let unique: std::collections::HashSet<_> = seen.iter().collect();
        let missed = committed.iter().filter(|position| !unique.contains(position)).count();
        assert_eq!((missed, seen.len() - unique.len()), (0, 0), "events missed and received twice by a watcher");
        assert!(seen == committed, "a watcher received the events out of feed order");
    }
}
