//! The audit log: every state change appends one [`Change`] per changed resource, in the same
//! transaction as the change, through [`record`] (the writes of [`crate::write`] call it; nothing
//! else does). [`history`] reads a resource's changes back, oldest first; [`read_after`] reads
//! every resource's changes as a feed, from a [`Position`], without gaps.
//!
//! The feed is gapless because a reader only passes events that no transaction still running can
//! precede. Each event's position is the number of the transaction that wrote it, then its id.
//! On PostgreSQL the number is the writer's transaction id: ids are handed out in order, but
//! their transactions commit in any order, so a reader stops below the oldest transaction still
//! running (the horizon, `pg_snapshot_xmin` of its own statement's snapshot). Every transaction
//! below it has ended, so nothing can commit there later, whichever replica wrote it, since every
//! replica writes through the one primary. On SQLite one writer commits transactions one at a
//! time, so a counter (`audit_sequence`) taken inside the transaction is already in commit order.
//! Either way positions only grow along the feed, and a reader resuming from the last position it
//! saw gets every later event exactly once. A transaction left open holds the feed back (not the
//! writers) until it ends.
//!
//! Events older than the retention are deleted oldest first by [`forget_old_events`], which moves
//! the feed's floor (`audit_floor`) past them in the same transaction; [`read_after`] checks the
//! floor after it reads, so a reader behind it gets OUT_OF_RANGE rather than a gap.
//!
//! The stored form is versioned by the row's `schema` column. Schema 2 (written now) keeps the
//! typed change as one JSON object: `kind`, `state` (`from`, `to`), `fields` (name to `from`,
//! `to`), `parties` (role to name), `cause` and `delegation` (the admin relationship the principal
//! acted under, rule 13); the method, the resource and the principal have
//! columns of their own. Schema 1 rows (written before the typed change, each handler its own JSON
//! body) are read compatibly: their `state` (a name, or `from` and `to`), their `cause`, the
//! parties they happened to name, and every other key as a field. Since migration 10 a row also
//! keeps the resource as the change left it (`resource_after`, [`crate::write::snapshot`]).

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use pc_domain::{Change, Error, Parties, Position, ResourceKind, Role, change::Delta};
use sea_orm::entity::prelude::*;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Statement,
    sea_query::{Expr, Query},
};
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use uuid::Uuid;

/// The table `audit_events`: the append-only log of every state change.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Name of the changed resource, e.g. `partners/{id}`.
    pub resource: String,
    /// The method that changed it, e.g. `SuspendPartner`.
    pub action: String,
    /// The caller, e.g. `operator`.
    pub principal: String,
    /// The change as a JSON object, in the form `schema` says (`crate::audit`).
    pub change: String,
    /// The version of the stored form: 1 before the typed change, 2 since.
    pub schema: i32,
    pub create_time: DateTimeUtc,
    /// The number of the transaction that wrote it, the first part of its [`Position`].
    pub transaction_id: i64,
    /// The resource as the change left it: its row as [`crate::write::snapshot`] writes it, which
    /// [`crate::write::restore`] reads back; `None` in rows written before it was kept.
    pub resource_after: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// On PostgreSQL, the oldest transaction still running as the statement's snapshot sees it: the
/// feed's horizon (see the module's comment).
const PG_HORIZON: &str = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

/// The schema [`record`] writes.
pub const SCHEMA: i32 = 2;

/// Appends `change` to the audit log, in the caller's transaction, at the transaction's place in
/// the feed, with the resource as it left it (`resource_after`, [`crate::write::snapshot`]).
pub async fn record(db: &impl ConnectionTrait, change: &Change, resource_after: String) -> Result<(), Error> {
    let backend = db.get_database_backend();
    let transaction_id = match backend {
        DatabaseBackend::Postgres => Expr::cust("pg_current_xact_id()::text::bigint"),
        _ => {
            db.execute_unprepared("UPDATE audit_sequence SET last = last + 1").await?;
            Expr::cust("(SELECT last FROM audit_sequence)")
        }
    };
    let insert = Query::insert()
        .into_table(Entity)
        .columns([
            Column::Id,
            Column::Resource,
            Column::Action,
            Column::Principal,
            Column::Change,
            Column::Schema,
            Column::CreateTime,
            Column::TransactionId,
            Column::ResourceAfter,
        ])
        .values_panic([
            Uuid::now_v7().into(),
            change.resource.clone().into(),
            change.method.clone().into(),
            change.principal.clone().into(),
            encode(change).to_string().into(),
            SCHEMA.into(),
            crate::db::now().into(),
            transaction_id,
            resource_after.into(),
        ])
        .to_owned();
    db.execute(&insert).await?;
    Ok(())
}

impl Model {
    /// Its place in the feed.
    pub fn position(&self) -> Position {
        Position { transaction_id: self.transaction_id, id: self.id }
    }
}

/// What a reader narrows the feed to, in SQL: one resource, or the resources of one collection
/// (`resellerLinks`), and a time range. Readers filter event types and visibility themselves.
#[derive(Debug, Clone, Default)]
pub struct FeedFilter {
    pub resource: Option<String>,
    pub collection: Option<&'static str>,
    pub since: Option<DateTimeUtc>,
    pub until: Option<DateTimeUtc>,
}

/// Up to `limit` events after `after` that `filter` keeps, in feed order, of those that no
/// transaction still running can precede (see the module's comment): read again from the last
/// one's position, a reader gets every later event exactly once.
pub async fn read_after(
    db: &impl ConnectionTrait,
    after: Position,
    filter: &FeedFilter,
    limit: u64,
) -> Result<Vec<Model>, Error> {
    let backend = db.get_database_backend();
    let mark = crate::db::parameter_mark(backend);
    let mut values: Vec<sea_orm::Value> = vec![after.transaction_id.into(), after.id.into()];
    let mut sql = format!(
        "SELECT * FROM audit_events WHERE (transaction_id > {mark}1 OR (transaction_id = {mark}1 AND id > {mark}2))"
    );
    if backend == DatabaseBackend::Postgres {
        sql.push_str(&format!(" AND transaction_id < {PG_HORIZON}"));
    }
    let mut condition = |clause: &str, value: sea_orm::Value| {
        values.push(value);
        sql.push_str(&format!(" AND {clause} {mark}{}", values.len()));
    };
    if let Some(resource) = &filter.resource {
        condition("resource =", resource.clone().into());
    }
    if let Some(collection) = filter.collection {
        condition("resource LIKE", format!("{collection}/%").into());
    }
    if let Some(since) = filter.since {
        condition("create_time >=", since.into());
    }
    if let Some(until) = filter.until {
        condition("create_time <", until.into());
    }
    values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    sql.push_str(&format!(" ORDER BY transaction_id, id LIMIT {mark}{}", values.len()));
    let events = Entity::find().from_raw_sql(Statement::from_sql_and_values(backend, sql, values)).all(db).await?;
    // Checked after the events are read: a sweep that deleted some of them before they were read
    // has moved the floor past `after` by now (it moves the floor and deletes in one transaction).
    ensure_held(db, after).await?;
    Ok(events)
}

/// OUT_OF_RANGE when the events after `after` are no longer all kept: a sweep has moved the floor
/// past it. [`Position::START`] ("from the oldest event kept") is always held.
pub async fn ensure_held(db: &impl ConnectionTrait, after: Position) -> Result<(), Error> {
    if after != Position::START && floor(db, "").await? > after {
        return Err(Error::OutOfRange {
            field: "after_cursor".into(),
            message: "the events after it are no longer kept; watch again from the beginning".into(),
        });
    }
    Ok(())
}

/// The position up to which events have been deleted ([`forget_old_events`]); `START` while none
/// has been. `lock` is appended to the read (` FOR UPDATE` in a sweep).
async fn floor(db: &impl ConnectionTrait, lock: &str) -> Result<Position, Error> {
    let sql = format!("SELECT transaction_id, id FROM audit_floor{lock}");
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
    let Some(row) = row else { return Err(Error::internal("audit_floor has no row")) };
    Ok(Position { transaction_id: row.try_get("", "transaction_id")?, id: row.try_get("", "id")? })
}

/// Events a sweep deletes in one transaction at most.
const SWEEP_BATCH: u64 = 1000;

/// Deletes the events older than the database's retention, oldest first in feed order, and moves
/// the floor past them in the same transaction: a reader whose position is behind the floor gets
/// OUT_OF_RANGE, never a silent gap. Only events no running transaction can precede are deleted
/// (so the floor is a position no later event can fall behind), a batch per transaction. Every
/// replica may sweep at once: the floor's row lock orders them, and each event is deleted once.
pub async fn forget_old_events(db: &crate::Database) -> Result<u64, Error> {
    let cutoff = crate::db::now() - db.event_retention();
    let mut deleted = 0;
    loop {
        let txn = db.begin().await?;
        let backend = txn.get_database_backend();
        let mark = crate::db::parameter_mark(backend);
        // Locks the floor first, so two sweeps do not read the same batch.
        let lock = if backend == DatabaseBackend::Postgres { " FOR UPDATE" } else { "" };
        let floor = floor(&txn, lock).await?;
        let batch = read_after(&txn, floor, &FeedFilter::default(), SWEEP_BATCH).await?;
        let old: Vec<_> = batch.iter().take_while(|event| event.create_time < cutoff).collect();
        let Some(last) = old.last().map(|event| event.position()) else {
            txn.rollback().await?;
            return Ok(deleted);
        };
        let moved = format!("UPDATE audit_floor SET transaction_id = {mark}1, id = {mark}2");
        txn.execute_raw(Statement::from_sql_and_values(backend, moved, [last.transaction_id.into(), last.id.into()]))
            .await?;
        let sql = format!(
            "DELETE FROM audit_events WHERE transaction_id < {mark}1 OR (transaction_id = {mark}1 AND id <= {mark}2)"
        );
        let gone = txn
            .execute_raw(Statement::from_sql_and_values(backend, sql, [last.transaction_id.into(), last.id.into()]))
            .await?;
        txn.commit().await?;
        deleted += gone.rows_affected();
        if old.len() < batch.len() || (batch.len() as u64) < SWEEP_BATCH {
            return Ok(deleted);
        }
    }
}

/// The newest position a reader may pass now (the last event below the horizon), or
/// [`Position::START`] on an empty feed: what the feed's tail polls.
pub async fn newest(db: &impl ConnectionTrait) -> Result<Position, Error> {
    let backend = db.get_database_backend();
    let horizon = match backend {
        DatabaseBackend::Postgres => format!("WHERE transaction_id < {PG_HORIZON}"),
        _ => String::new(),
    };
    let sql = format!("SELECT * FROM audit_events {horizon} ORDER BY transaction_id DESC, id DESC LIMIT 1");
    let last = Entity::find().from_raw_sql(Statement::from_string(backend, sql)).one(db).await?;
    Ok(last.as_ref().map_or(Position::START, Model::position))
}

/// How often the tail looks for new events: a watcher hears of a commit this long after it at
/// most (plus the read). 5 ms instead moved the commit-to-WatchEvents delay's p99 at 1,000
/// writes/s no lower than run-to-run noise (46-106 ms against 51-77 ms, `pc-bench events`): the
/// tail of that delay is the writes' own (an event passes the horizon once every older write has
/// ended), not the poll's.
pub const TAIL_POLL: Duration = Duration::from_millis(20);

/// The feed's tail, one per process and database: while anyone watches, one task polls the
/// newest position ([`newest`], every [`TAIL_POLL`]) and tells every watcher when it moves, so a
/// hundred idle watchers cost one query per poll, not a hundred.
#[derive(Debug, Default)]
pub struct FeedTail {
    sender: Mutex<Weak<watch::Sender<Position>>>,
}

/// A watcher's subscription to the tail; the poll stops when the last one is dropped.
#[derive(Debug)]
pub struct FeedMoves {
    _keep_polling: Arc<watch::Sender<Position>>,
    pub moved: watch::Receiver<Position>,
}

impl FeedTail {
    /// Subscribes to the tail of the feed `db` reads, starting its poll if nobody watched.
    pub fn subscribe(&self, db: &DatabaseConnection) -> FeedMoves {
        let mut shared = self.sender.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let sender = shared.upgrade().unwrap_or_else(|| {
            let sender = Arc::new(watch::channel(Position::START).0);
            *shared = Arc::downgrade(&sender);
            tokio::spawn(poll_the_tail(db.clone(), Arc::downgrade(&sender)));
            sender
        });
        FeedMoves { moved: sender.subscribe(), _keep_polling: sender }
    }
}

async fn poll_the_tail(db: DatabaseConnection, sender: Weak<watch::Sender<Position>>) {
    let mut tick = tokio::time::interval(TAIL_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(sender) = sender.upgrade() else { return };
        match newest(&db).await {
            Ok(newest) => {
                sender.send_if_modified(|last| std::mem::replace(last, newest) != newest);
            }
            Err(error) => tracing::warn!(%error, "could not read the feed's newest position"),
        }
    }
}

/// The position every event committed so far stands at or before, and every later one after:
/// where a reader that starts "now" starts.
pub async fn now(db: &impl ConnectionTrait) -> Result<Position, Error> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => format!("SELECT {PG_HORIZON} - 1 AS last"),
        _ => "SELECT last FROM audit_sequence".to_owned(),
    };
    let row = db.query_one_raw(Statement::from_string(backend, sql)).await?;
    let last: i64 = row.map(|row| row.try_get("", "last")).transpose()?.unwrap_or(0);
    Ok(Position { transaction_id: last, id: Uuid::max() })
}

/// The changes of one resource, oldest first, whatever schema each was written in.
pub async fn history(db: &impl ConnectionTrait, resource: &str) -> Result<Vec<Change>, Error> {
    let rows = Entity::find().filter(Column::Resource.eq(resource)).order_by_asc(Column::Id).all(db).await?;
    rows.iter().map(decode).collect()
}

/// `{"from": .., "to": ..}`, leaving out what is not set (a create has no `from`).
fn delta(delta: &Delta) -> Value {
    let mut pair = Map::with_capacity(2);
    if let Some(from) = &delta.from {
        pair.insert("from".into(), json!(from));
    }
    if let Some(to) = &delta.to {
        pair.insert("to".into(), json!(to));
    }
    Value::Object(pair)
}

/// The stored form of schema 2: only what the change has (no nulls), to keep the row small.
fn encode(change: &Change) -> Value {
    let mut body = Map::with_capacity(5);
    body.insert("kind".into(), json!(change.kind.as_str()));
    if let Some(state) = &change.state {
        body.insert("state".into(), delta(state));
    }
    if !change.fields.is_empty() {
        let fields = change.fields.iter().map(|(name, change)| (name.clone(), delta(change))).collect();
        body.insert("fields".into(), Value::Object(fields));
    }
    let parties = change.parties.iter().map(|(role, name)| (role.as_str().to_owned(), json!(name))).collect();
    body.insert("parties".into(), Value::Object(parties));
    if let Some(cause) = &change.cause {
        body.insert("cause".into(), json!(cause));
    }
    if let Some(delegation) = &change.delegation {
        body.insert("delegation".into(), json!(delegation));
    }
    Value::Object(body)
}

/// The change a stored row describes, in either schema.
pub fn decode(row: &Model) -> Result<Change, Error> {
    let body: Value = serde_json::from_str(&row.change)
        .map_err(|e| Error::internal(format!("audit event {} does not parse: {e}", row.id)))?;
    let object = body.as_object().cloned().unwrap_or_default();
    let kind = match object.get("kind").and_then(Value::as_str) {
        Some(kind) if row.schema >= 2 => ResourceKind::from_name(kind),
        _ => ResourceKind::of_name(&row.resource),
    }
    .ok_or_else(|| Error::internal(format!("audit event {} names no known kind of resource", row.id)))?;
    let mut change = Change {
        method: row.action.clone(),
        kind,
        resource: row.resource.clone(),
        state: object.get("state").and_then(read_delta),
        fields: Vec::new(),
        principal: row.principal.clone(),
        parties: Parties::default(),
        cause: object.get("cause").and_then(Value::as_str).map(str::to_owned),
        delegation: object.get("delegation").and_then(Value::as_str).map(str::to_owned),
    };
    if row.schema >= 2 {
        let fields = object.get("fields").and_then(Value::as_object).cloned().unwrap_or_default();
        change.fields = fields.iter().filter_map(|(name, value)| Some((name.clone(), read_delta(value)?))).collect();
        let parties = object.get("parties").and_then(Value::as_object).cloned().unwrap_or_default();
        for (role, name) in &parties {
            change.parties = change.parties.with(role_named(role)?, name.as_str());
        }
    } else {
        for (key, value) in object.iter().filter(|(key, _)| !matches!(key.as_str(), "state" | "cause")) {
            match Role::from_name(key).or((key == "indirect_provider").then_some(Role::Provider)) {
                Some(role) => {
                    change.parties = change.parties.with(role, value.as_str().filter(|name| !name.is_empty()))
                }
                None => change.fields.extend(read_delta(value).map(|delta| (key.clone(), delta))),
            }
        }
    }
    Ok(change)
}

fn role_named(name: &str) -> Result<Role, Error> {
    Role::from_name(name).ok_or_else(|| Error::internal(format!("an audit event names an unknown role {name}")))
}

/// A value as text: strings as they are, numbers and booleans printed, null as `None`.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// `{"from": .., "to": ..}` (either left out when not set), or a bare value (schema 1's "set
/// to"); `None` for null (schema 1's "left as it was"). A state name spelt as the proto spells it
/// (`STATE_ACTIVE`) reads as the domain's.
fn read_delta(value: &Value) -> Option<Delta> {
    let domain = |text: Option<String>| text.map(|t| t.strip_prefix("STATE_").map(str::to_owned).unwrap_or(t));
    match value {
        Value::Null => None,
        Value::Object(pair) if pair.contains_key("to") || pair.contains_key("from") => {
            Some(Delta { from: domain(pair.get("from").and_then(text)), to: domain(pair.get("to").and_then(text)) })
        }
        other => Some(Delta { from: None, to: domain(text(other)) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(schema: i32, resource: &str, action: &str, change: Value) -> Model {
        Model {
            id: Uuid::now_v7(),
            resource: resource.into(),
            action: action.into(),
            principal: "operator".into(),
            change: change.to_string(),
            schema,
            create_time: crate::db::now(),
            transaction_id: 0,
            resource_after: None,
        }
    }

    #[test]
    fn a_typed_change_reads_back_as_written() {
        let change = Change {
            method: "EndSupportAssignment".into(),
            kind: ResourceKind::SupportAssignment,
            resource: "supportAssignments/1".into(),
            state: Some(Delta { from: Some("ACTIVE".into()), to: Some("ENDED".into()) }),
            fields: vec![("quantity".into(), Delta { from: Some("1".into()), to: Some("2".into()) })],
            principal: "operator".into(),
            parties: Parties::default()
                .with(Role::Customer, Some("customers/c"))
                .with(Role::SupportPartner, Some("partners/p")),
            cause: Some("customerRelationships/r".into()),
            delegation: None,
        };
        let row = stored(SCHEMA, &change.resource, &change.method, encode(&change));
        assert_eq!(decode(&row).ok(), Some(change));
    }

    #[test]
    fn a_field_cleared_reads_back_as_cleared() {
        let change = Change {
            method: "UpdatePartner".into(),
            kind: ResourceKind::Partner,
            resource: "partners/p".into(),
            state: None,
            fields: vec![("country_code".into(), Delta { from: Some("US".into()), to: None })],
            principal: "operator".into(),
            parties: Parties::default().with(Role::Partner, Some("partners/p")),
            cause: None,
            delegation: None,
        };
        let row = stored(SCHEMA, &change.resource, &change.method, encode(&change));
        assert_eq!(decode(&row).ok(), Some(change));
    }

    #[test]
    fn schema_1_rows_read_compatibly() {
        let created = stored(
            1,
            "customerRelationships/r",
            "RequestCustomerRelationship",
            json!({ "partner": "partners/p", "customer": "customers/c", "indirect_provider": "", "state": "PENDING" }),
        );
        let created = decode(&created).expect("decodes");
        assert_eq!(created.kind, ResourceKind::CustomerRelationship);
        assert_eq!(created.state, Some(Delta { from: None, to: Some("PENDING".into()) }));
        assert_eq!(created.parties.get(Role::Partner), Some("partners/p"));
        assert_eq!(created.parties.get(Role::Provider), None);

        let partner = stored(1, "partners/p", "CreatePartner", json!({ "display_name": "A", "state": "STATE_ACTIVE" }));
        let partner = decode(&partner).expect("decodes");
        assert_eq!(partner.state.and_then(|state| state.to), Some("ACTIVE".into()));
        assert_eq!(partner.fields, [("display_name".to_owned(), Delta { from: None, to: Some("A".into()) })]);

        let ended = stored(
            1,
            "supportAssignments/a",
            "EndSupportAssignment",
            json!({ "state": { "to": "ENDED" }, "cause": "subscriptions/s" }),
        );
        let ended = decode(&ended).expect("decodes");
        assert_eq!(ended.cause.as_deref(), Some("subscriptions/s"));
        assert_eq!(ended.state, Some(Delta { from: None, to: Some("ENDED".into()) }));

        let renamed = stored(1, "partners/p", "UpdatePartner", json!({ "display_name": "B", "country_code": null }));
        assert_eq!(decode(&renamed).map(|change| change.fields.len()).ok(), Some(1));
    }
}
