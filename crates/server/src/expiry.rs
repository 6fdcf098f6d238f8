//! The one expiry engine (rule 15): every resource with a lifecycle waits for an answer until its
//! deadline, and the engine moves the waiting ones past it to EXPIRED, each through the write path
//! with its change (`Expire<Resource>`, made by the operator principal: no caller asked for it).
//! Each service registers its lifecycles (`grpc_service!` does, one [`Expiring`] per `lifecycle`
//! block), and every process runs the engine over what it serves ([`crate::serve`]), a while after
//! it starts and then every `EXPIRY_INTERVAL_SECS`.
//!
//! Several replicas run it over one database with no coordination: a batch is read FOR UPDATE
//! SKIP LOCKED (`pc_store::lifecycle::lock_due`), so two engines never take the same row and
//! neither waits for a row a request holds; each expiry is also the compare-and-swap of every
//! write, so a row a request moved meanwhile is left as the request left it. An engine that was
//! down catches up on its next pass: it takes batches until none is left. Requests never wait for
//! it either way, and do not need it: a waiting resource past its deadline is refused as EXPIRED
//! by [`crate::lifecycle::run`] before the engine gets to it.

use std::{future::Future, pin::Pin, time::Duration};

use chrono::{DateTime, Utc};
use pc_domain::{Error, Origin, Principal, ResourceKind};
use pc_store::{
    Database, DatabaseTransaction,
    lifecycle::{self as store, LifecycleRow},
    write::Row,
};

use crate::lifecycle::Workflow;

/// How many rows one transaction of the engine expires.
pub const BATCH: u64 = 100;

type Pass =
    for<'a> fn(&'a Database, DateTime<Utc>, u64) -> Pin<Box<dyn Future<Output = Result<usize, Error>> + Send + 'a>>;

/// One kind of resource the engine expires: a lifecycle's [`Workflow`], by its kind.
#[derive(Clone, Copy)]
pub struct Expiring {
    pub kind: ResourceKind,
    batch: Pass,
}

impl std::fmt::Debug for Expiring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expiring").field("kind", &self.kind).finish()
    }
}

impl Expiring {
    /// The resource `W` moves.
    pub fn of<W: Workflow + 'static>() -> Self {
        Self { kind: <W::Row as Row>::KIND, batch: |db, now, limit| Box::pin(expire_batch::<W>(db, now, limit)) }
    }
}

/// Expires, in one transaction, up to `limit` rows of `W` whose deadline is at or before `now`;
/// returns how many.
pub async fn expire_batch<W: Workflow>(db: &Database, now: DateTime<Utc>, limit: u64) -> Result<usize, Error> {
    let txn = db.begin().await?;
    let due = store::lock_due::<W::Row>(&txn, now, limit).await?;
    let count = due.len();
    for row in due {
        expire::<W>(&txn, row).await?;
    }
    txn.commit().await?;
    Ok(count)
}

/// Expires `pair`'s waiting row of `W` if it is past its deadline, in the caller's transaction: a
/// new invitation or request of a pair whose last one lapsed ends that one first, instead of
/// finding it live (rule 4) until the engine marks it. The row is locked FOR UPDATE; the caller
/// holds the locks that come before it in the lock order.
pub async fn expire_lapsed<W: Workflow>(txn: &DatabaseTransaction, pair: pc_store::Condition) -> Result<(), Error> {
    match store::lock_lapsed::<W::Row>(txn, pc_store::db::now(), pair).await? {
        Some(row) => expire::<W>(txn, row).await,
        None => Ok(()),
    }
}

/// Moves `row`, locked and past its deadline, to its expired state through the write path (or
/// makes the resource's other move at the deadline, [`Workflow::lapse`]), with the
/// `Expire<Resource>` change made by the operator principal.
async fn expire<W: Workflow>(txn: &DatabaseTransaction, row: W::Row) -> Result<(), Error> {
    let expire = W::lapse(&row);
    let origin = Origin::new(store::method::<W::Row>(expire), Principal::Operator);
    let parties = W::parties(txn, &row).await?;
    let to = pc_domain::rules::transition_allowed(row.state(), expire, row.name())?;
    let parties = pc_domain::rules::Participants::parties(&parties);
    let moved = store::record_move(txn, &row, expire, to, None, &origin, parties).await?;
    W::cascade(txn, &moved, expire, &origin).await?;
    Ok(())
}

/// One pass of the engine at `now` (the clock is the caller's, so tests move it): every kind, in
/// batches of `batch`, until none is due. Returns how many of each kind it expired.
pub async fn run_once(
    db: &Database,
    kinds: &[Expiring],
    now: DateTime<Utc>,
    batch: u64,
) -> Result<Vec<(ResourceKind, usize)>, Error> {
    let mut expired = Vec::with_capacity(kinds.len());
    for kind in kinds {
        let mut total = 0;
        loop {
            let count = (kind.batch)(db, now, batch).await?;
            total += count;
            if (count as u64) < batch {
                break;
            }
        }
        expired.push((kind.kind, total));
    }
    Ok(expired)
}

/// Runs the engine over `kinds` a while after startup and then every `interval` (replicas started
/// together spread their passes), logging and counting what each pass expired
/// (`partner_center_expired_total`). A failed pass is logged and
/// tried again at the next tick; nothing it expired is lost, since each batch commits on its own.
pub async fn run_every(db: Database, kinds: Vec<Expiring>, interval: Duration) {
    if kinds.is_empty() {
        return;
    }
    let first = interval.mul_f64(rand::random_range(0.1..1.0));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + first, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match run_once(&db, &kinds, pc_store::db::now(), BATCH).await {
            Ok(expired) => {
                for (kind, count) in expired.into_iter().filter(|(_, count)| *count > 0) {
                    tracing::info!(kind = %kind.type_name(), count, "expired past their deadline");
                    crate::metrics::expired(kind.type_name(), count as u64);
                }
            }
            Err(error) => tracing::warn!(%error, "could not expire what passed its deadline"),
        }
    }
}
