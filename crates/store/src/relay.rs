//! Where an event relay has published the feed up to, and which relay may publish: one row of
//! `relay_positions` per relay (named after the NATS stream it feeds). A relay process publishes
//! only while it holds the row's lease, which it takes when the lease is free or lapsed ([`take`])
//! and renews with every position it stores ([`advance`]); both are one conditional UPDATE, so of
//! two relays started at once exactly one holds it, on either backend (PostgreSQL re-checks the
//! condition on the row it waited for; SQLite has one writer). A relay that lost the lease (it
//! stalled past it, and another took over) learns so at its next [`advance`], which then stores
//! nothing: the position only moves under the lease. What it published in between is published
//! again by the new holder under the same message ids, which JetStream's duplicate window drops.
//!
//! The lease is measured on the relays' clocks (milliseconds since the epoch), so they must agree
//! to well within the lease; the position is only ever stored after NATS acknowledged it.

use std::time::Duration;

use pc_domain::{Error, Position};
use sea_orm::{ConnectionTrait, Statement, Value};
use uuid::Uuid;

use crate::db::parameter_mark;

/// One relay process's claim on a relay's row.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The relay: the stream it feeds.
    pub relay: String,
    /// This process, as the row names its holder.
    pub holder: String,
    /// How long the lease lasts after each renewal.
    pub duration: Duration,
}

impl Lease {
    fn lapses_at(&self) -> i64 {
        epoch_ms() + i64::try_from(self.duration.as_millis()).unwrap_or(i64::MAX)
    }
}

fn epoch_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Takes (or renews) the lease when nobody else holds it, and returns the position published up
/// to ([`Position::START`] for a relay that never published); `None` while another holds it.
pub async fn take(db: &impl ConnectionTrait, lease: &Lease) -> Result<Option<Position>, Error> {
    let backend = db.get_database_backend();
    let mark = parameter_mark(backend);
    let first = format!(
        "INSERT INTO relay_positions (relay, transaction_id, event_id, holder, lease_until_ms) \
         VALUES ({mark}1, {mark}2, {mark}3, '', 0) ON CONFLICT (relay) DO NOTHING"
    );
    let start = Position::START;
    let values: [Value; 3] = [lease.relay.clone().into(), start.transaction_id.into(), start.id.into()];
    db.execute_raw(Statement::from_sql_and_values(backend, first, values)).await?;
    let claim = format!(
        "UPDATE relay_positions SET holder = {mark}1, lease_until_ms = {mark}2 \
         WHERE relay = {mark}3 AND (holder = {mark}1 OR lease_until_ms < {mark}4) \
         RETURNING transaction_id, event_id"
    );
    let values: [Value; 4] =
        [lease.holder.clone().into(), lease.lapses_at().into(), lease.relay.clone().into(), epoch_ms().into()];
    let row = db.query_one_raw(Statement::from_sql_and_values(backend, claim, values)).await?;
    row.map(|row| -> Result<Position, Error> {
        Ok(Position { transaction_id: row.try_get("", "transaction_id")?, id: row.try_get::<Uuid>("", "event_id")? })
    })
    .transpose()
}

/// Stores `to` as published and renews the lease, if this process still holds it; false (and
/// nothing stored) when another relay has taken it over.
pub async fn advance(db: &impl ConnectionTrait, lease: &Lease, to: Position) -> Result<bool, Error> {
    let backend = db.get_database_backend();
    let mark = parameter_mark(backend);
    let sql = format!(
        "UPDATE relay_positions SET transaction_id = {mark}1, event_id = {mark}2, lease_until_ms = {mark}3 \
         WHERE relay = {mark}4 AND holder = {mark}5"
    );
    let values: [Value; 5] = [
        to.transaction_id.into(),
        to.id.into(),
        lease.lapses_at().into(),
        lease.relay.clone().into(),
        lease.holder.clone().into(),
    ];
    let result = db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    Ok(result.rows_affected() == 1)
}

/// Gives the lease up at once (a relay shutting down), so a standby need not wait for it to lapse.
pub async fn release(db: &impl ConnectionTrait, lease: &Lease) -> Result<(), Error> {
    let backend = db.get_database_backend();
    let mark = parameter_mark(backend);
    let sql = format!("UPDATE relay_positions SET lease_until_ms = 0 WHERE relay = {mark}1 AND holder = {mark}2");
    let values: [Value; 2] = [lease.relay.clone().into(), lease.holder.clone().into()];
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    Ok(())
}
