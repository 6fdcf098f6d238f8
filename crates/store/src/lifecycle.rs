//! The store's half of the one lifecycle of reseller links, customer relationships and support
//! assignments: reading and locking a row generically ([`find`], [`lock`]) and the write every
//! Accept, Decline and End ends with ([`transition`]: the compare-and-swap, the audit event).
//! The order of a transition and the rules it asks are `pc_server::lifecycle::run`. One
//! compare-and-swap UPDATE moves a row, so an accept racing an end leaves exactly one winner; the
//! loser sees ABORTED and, on retry, the transition rule.

use chrono::{DateTime, Utc};
pub use pc_domain::Transition;
use pc_domain::{Error, Lifecycle, Principal, names::ResourceId};
use sea_orm::{
    ConnectionTrait, EntityTrait, PrimaryKeyTrait,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use uuid::Uuid;

use crate::{
    db::now,
    locks::{self, Lock},
};

/// What the transition wrote: the new revision and the time it stamped.
#[derive(Debug, Clone, Copy)]
pub struct Transitioned {
    pub revision: i64,
    pub time: DateTime<Utc>,
}

/// A stored row that follows the lifecycle.
pub trait LifecycleRow: Sized + Send + Sync {
    type State: Lifecycle + Send;
    /// The SeaORM entity whose rows these are, keyed by a UUID.
    type Entity: EntityTrait<Model = Self, PrimaryKey = Self::Key>;
    type Key: PrimaryKeyTrait<ValueType = Uuid>;
    /// The typed id in its resource name.
    type Id: ResourceId;
    /// The table the row lives in.
    const TABLE: &'static str;
    /// The resource's name in method names (`ResellerLink` in `AcceptResellerLink`).
    const RESOURCE: &'static str;

    fn id(&self) -> Uuid;
    /// The resource name (`resellerLinks/{id}`).
    fn name(&self) -> String;
    fn revision(&self) -> i64;
    fn state(&self) -> Self::State;
    /// Brings the row up to date after [`apply`] wrote `done`.
    fn record(&mut self, transition: Transition, done: Transitioned);
}

/// Moves `row` from its revision to the state after `transition`, stamping `accept_time` or
/// `end_time`. Zero rows updated means a concurrent change won: `Error::Conflict`.
pub async fn apply<R: LifecycleRow>(
    db: &impl ConnectionTrait,
    row: &R,
    transition: Transition,
) -> Result<Transitioned, Error> {
    let (time, revision) = (now(), row.revision());
    let mut update = Query::update();
    update
        .table(Alias::new(R::TABLE))
        .value(Alias::new("state"), R::State::after(transition).name())
        .value(Alias::new("revision"), revision + 1)
        .value(Alias::new("update_time"), time);
    match transition {
        Transition::Accept => update.value(Alias::new("accept_time"), time),
        Transition::Decline | Transition::End => update.value(Alias::new("end_time"), time),
    };
    update
        .and_where(Expr::col(Alias::new("id")).eq(row.id()))
        .and_where(Expr::col(Alias::new("revision")).eq(revision));
    let result = db.execute(&update).await?;
    if result.rows_affected() == 0 {
        return Err(Error::Conflict(format!(
            "{} {} changed concurrently; read it again and retry",
            R::TABLE,
            row.id()
        )));
    }
    Ok(Transitioned { revision: revision + 1, time })
}

/// Moves `row` by `transition` with [`apply`], appends its audit event (the method, e.g.
/// `AcceptResellerLink`, and the states from and to), and brings `row` up to date: the write every
/// Accept, Decline and End ends with, in the caller's transaction. The caller has locked `row` and
/// checked rule 5 and its own rules on it.
pub async fn transition<R: LifecycleRow>(
    db: &impl ConnectionTrait,
    row: &mut R,
    transition: Transition,
    caller: &Principal,
) -> Result<(), Error> {
    let done = apply(db, row, transition).await?;
    let method = method::<R>(transition);
    let (from, to) = (row.state().name(), R::State::after(transition).name());
    crate::audit::transition(db, &row.name(), &method, caller, from, to).await?;
    row.record(transition, done);
    Ok(())
}

/// The row `id` as last committed, without a lock (its parties never change).
pub async fn find<R: LifecycleRow>(db: &impl ConnectionTrait, id: R::Id) -> Result<Option<R>, Error> {
    Ok(R::Entity::find_by_id(id.uuid()).one(db).await?)
}

/// The row `id`, locked FOR UPDATE: the last lock a transition takes (see [`crate::locks`]).
pub async fn lock<R: LifecycleRow>(db: &impl ConnectionTrait, id: R::Id) -> Result<R, Error> {
    locks::find_locked::<R::Entity>(db, id.uuid(), Lock::Update)
        .await?
        .ok_or_else(|| Error::internal(format!("{id} disappeared")))
}

/// The method a transition of `R` is (`AcceptCustomerRelationship`), as the audit log names it.
pub fn method<R: LifecycleRow>(transition: Transition) -> String {
    format!("{}{}", method_verb(transition), R::RESOURCE)
}

fn method_verb(transition: Transition) -> &'static str {
    match transition {
        Transition::Accept => "Accept",
        Transition::Decline => "Decline",
        Transition::End => "End",
    }
}

macro_rules! lifecycle_row {
    ($($module:ident => $state:ty, $table:literal, $resource:literal, $id:path);+ $(;)?) => {$(
        impl LifecycleRow for crate::entity::$module::Model {
            type State = $state;
            type Entity = crate::entity::$module::Entity;
            type Key = crate::entity::$module::PrimaryKey;
            type Id = $id;
            const TABLE: &'static str = $table;
            const RESOURCE: &'static str = $resource;

            fn id(&self) -> Uuid {
                self.id
            }

            fn name(&self) -> String {
                $id(self.id).name()
            }

            fn revision(&self) -> i64 {
                self.revision
            }

            fn state(&self) -> $state {
                self.state
            }

            fn record(&mut self, transition: Transition, done: Transitioned) {
                self.state = <$state>::after(transition);
                self.revision = done.revision;
                self.update_time = done.time;
                match transition {
                    Transition::Accept => self.accept_time = Some(done.time),
                    Transition::Decline | Transition::End => self.end_time = Some(done.time),
                }
            }
        }
    )+};
}

lifecycle_row!(
    reseller_link =>
        pc_domain::LinkState, "reseller_links", "ResellerLink", pc_domain::ResellerLinkId;
    customer_relationship =>
        pc_domain::RelationshipState, "customer_relationships", "CustomerRelationship", pc_domain::CustomerRelationshipId;
    support_assignment =>
        pc_domain::AssignmentState, "support_assignments", "SupportAssignment", pc_domain::SupportAssignmentId;
);
