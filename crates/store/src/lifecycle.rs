//! The store's half of the lifecycles (reseller links, customer relationships, support
//! assignments, and any later resource that declares one): reading and locking a row generically
//! ([`find`], [`lock`]) and the write a move ends with ([`record_move`]: the compare-and-swap of
//! [`crate::write::update`] with the new state and the time the move stamps). Which moves exist and
//! from which states is the resource's `pc_domain::Lifecycle` table; the order of a move and the
//! rules it asks are `pc_server::lifecycle::run`. One compare-and-swap UPDATE moves a row, so an
//! accept racing an end leaves exactly one winner; the loser sees ABORTED and, on retry, rule 5.

use chrono::{DateTime, Utc};
use pc_domain::{Error, Etag, Lifecycle, Move, Origin, Parties, ResourceId, Stamp};
use sea_orm::{ConnectionTrait, EntityTrait, PrimaryKeyTrait};
use uuid::Uuid;

use crate::{
    locks::{self, Lock},
    write::{self, Row},
};

/// The moves of `R`'s lifecycle.
pub type MoveOf<R> = <<R as LifecycleRow>::State as Lifecycle>::Transition;

/// A stored row that follows a lifecycle.
pub trait LifecycleRow: Row + sea_orm::FromQueryResult {
    type State: Lifecycle;
    /// The SeaORM entity whose rows these are, keyed by a UUID.
    type Table: locks::Ordered + EntityTrait<Model = Self, PrimaryKey = Self::Key>;
    type Key: PrimaryKeyTrait<ValueType = Uuid>;
    /// The typed id in its resource name.
    type Id: ResourceId;
    /// The resource's name in method names (`ResellerLink` in `AcceptResellerLink`).
    const RESOURCE: &'static str;

    fn state(&self) -> Self::State;
    /// When its waiting state expires (rule 15), if it has a deadline.
    fn expire_time(&self) -> Option<DateTime<Utc>>;
    /// Puts the row in `state`, stamping `time` where `stamp` says.
    fn enter(&mut self, state: Self::State, stamp: Stamp, time: DateTime<Utc>);
}

/// The method a move of `R` is (`AcceptCustomerRelationship`), as the audit log names it.
pub fn method<R: LifecycleRow>(transition: MoveOf<R>) -> String {
    format!("{}{}", transition.method_verb(), R::RESOURCE)
}

/// Writes the move of `row` by `transition` to `to` (the state the resource's table gives) with
/// [`write::update`], in the caller's transaction. The caller has locked `row` and checked the
/// etag, rule 5 and the resource's rules on it.
pub async fn record_move<R: LifecycleRow>(
    db: &impl ConnectionTrait,
    row: &R,
    transition: MoveOf<R>,
    to: R::State,
    etag: Option<Etag>,
    origin: &Origin,
    parties: Parties,
) -> Result<R, Error> {
    write::update(db, row, etag, origin, parties, |next, time| next.enter(to, transition.stamps(), time)).await
}

/// The row `id` as last committed, without a lock (its parties never change).
pub async fn find<R: LifecycleRow>(db: &impl ConnectionTrait, id: R::Id) -> Result<Option<R>, Error> {
    Ok(R::Table::find_by_id(id.uuid()).one(db).await?)
}

/// A row's deadline column, required or not.
pub trait Deadline {
    fn deadline(&self) -> Option<DateTime<Utc>>;
}

impl Deadline for DateTime<Utc> {
    fn deadline(&self) -> Option<DateTime<Utc>> {
        Some(*self)
    }
}

impl Deadline for Option<DateTime<Utc>> {
    fn deadline(&self) -> Option<DateTime<Utc>> {
        *self
    }
}

/// The rows of `R` in a waiting state whose deadline is at or before `now` (rule 15).
fn lapsed<R: LifecycleRow>(now: DateTime<Utc>) -> sea_orm::Select<R::Table> {
    use sea_orm::{
        QueryFilter,
        sea_query::{Alias, Expr, ExprTrait},
    };
    let waiting: Vec<&'static str> = R::State::waiting().map(Lifecycle::name).collect();
    R::Table::find()
        .filter(Expr::col(Alias::new("state")).is_in(waiting))
        .filter(Expr::col(Alias::new("expire_time")).lte(now))
}

/// Up to `limit` rows of `R` past their deadline at `now`, oldest deadline first, locked FOR
/// UPDATE SKIP LOCKED: the expiry engine's batch (rule 15). A row a request holds is skipped, not
/// waited for (the request finds it past its deadline itself), and engines of several replicas
/// take disjoint batches. On SQLite, whose one writer runs transactions one at a time, the same
/// query without the lock clause.
pub async fn lock_due<R: LifecycleRow>(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<R>, Error> {
    use sea_orm::{
        QueryOrder, QuerySelect,
        sea_query::{Alias, Expr, LockBehavior, LockType, Order},
    };
    let query = lapsed::<R>(now)
        .order_by(Expr::col(Alias::new("expire_time")), Order::Asc)
        .limit(limit)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    Ok(query.all(db).await?)
}

/// The row of `R` that `pair` selects (a pair's one live row, rule 4) if it is waiting past its
/// deadline at `now`, locked FOR UPDATE: what asking the pair again expires first, so that a
/// lapsed invitation or request does not hold the pair until the engine gets to it.
pub async fn lock_lapsed<R: LifecycleRow>(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    pair: sea_orm::Condition,
) -> Result<Option<R>, Error> {
    use sea_orm::{QueryFilter, QuerySelect, sea_query::LockType};
    Ok(lapsed::<R>(now).filter(pair).lock(LockType::Update).one(db).await?)
}

/// The row `id`, locked FOR UPDATE: the last lock a move takes (see [`crate::locks`]).
pub async fn lock<R: LifecycleRow>(db: &impl ConnectionTrait, id: R::Id) -> Result<R, Error> {
    locks::find_locked::<R::Table>(db, id.uuid(), Lock::Update)
        .await?
        .ok_or_else(|| Error::internal(format!("{id} disappeared")))
}
