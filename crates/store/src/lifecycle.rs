//! The one lifecycle of reseller links, customer relationships and support assignments (and of
//! any later two-party workflow): [`run`] is AcceptX, DeclineX and EndX for every X, owning the
//! order of the lock protocol, the etag check, rule 5, the compare-and-swap and the audit events;
//! a resource supplies only its own rules, as a [`Workflow`]. One compare-and-swap UPDATE moves a
//! row, so an accept racing an end leaves exactly one winner; the loser sees ABORTED and, on
//! retry, the transition rule.

use std::future::Future;

use chrono::{DateTime, Utc};
pub use pc_domain::Transition;
use pc_domain::rules::{self, TwoParty};
use pc_domain::{Error, Etag, Lifecycle, Principal, SupportAssignmentId, names::ResourceId};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, EntityTrait, PrimaryKeyTrait,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use uuid::Uuid;

use crate::{
    Database,
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
    let method = format!("{}{}", method_verb(transition), R::RESOURCE);
    let (from, to) = (row.state().name(), R::State::after(transition).name());
    crate::audit::transition(db, &row.name(), &method, caller, from, to).await?;
    row.record(transition, done);
    Ok(())
}

/// What one two-party resource supplies to [`run`]: its parties as the rules see them, what its
/// rules lock before the row, and the rules themselves (pure functions of `pc_domain::rules`,
/// called with what was read and locked).
pub trait Workflow {
    type Row: LifecycleRow;
    /// Who the row's parties are, as rules 5 and 9 decide on them (`pc_domain::rules::TwoParty`).
    type Parties: TwoParty + Send + Sync;
    /// What the rules of a transition need, read under the locks that come before the row in the
    /// lock protocol ([`crate::locks`]).
    type Grounds: Send;

    /// Reads the parties of `row`, without a lock: they never change.
    fn parties(txn: &DatabaseTransaction, row: &Self::Row)
    -> impl Future<Output = Result<Self::Parties, Error>> + Send;

    /// Locks and reads, in the order of the lock protocol, what the rules of `transition` depend
    /// on.
    fn lock_grounds(
        txn: &DatabaseTransaction,
        parties: &Self::Parties,
        transition: Transition,
    ) -> impl Future<Output = Result<Self::Grounds, Error>> + Send;

    /// The resource's rules on the locked row, and the writes that come with the transition
    /// (rule 8: an ending ends what depended on the row). Returns the support assignments it ended,
    /// audited as ended because of the row.
    fn check(
        txn: &DatabaseTransaction,
        row: &Self::Row,
        transition: Transition,
        grounds: Self::Grounds,
    ) -> impl Future<Output = Result<Vec<SupportAssignmentId>, Error>> + Send;

    /// What a failed write means for this resource (a unique index that lost a race).
    fn explain_write_error(_parties: &Self::Parties, error: Error) -> Error {
        error
    }
}

/// AcceptX, DeclineX and EndX of every two-party resource X, in one transaction: read the row
/// without a lock to authorize (rule 9, then rule 5's "who") and to know what to lock; lock the
/// grounds, then the row FOR UPDATE (the lock protocol); check the etag, rule 5 and the
/// resource's rules on the locked row; write the transition and its audit event; commit.
pub async fn run<W: Workflow>(
    db: &Database,
    caller: Principal,
    transition: Transition,
    name: &str,
    etag: &str,
) -> Result<W::Row, Error> {
    let id = <<W::Row as LifecycleRow>::Id as ResourceId>::parse("name", name)?;
    let etag = Etag::parse_optional("etag", etag)?;

    let txn = db.begin().await?;
    let parties = match <W::Row as LifecycleRow>::Entity::find_by_id(id.uuid()).one(&txn).await? {
        Some(row) => Some(W::parties(&txn, &row).await?),
        None => None,
    };
    let parties = rules::reveal(&caller, id, parties, |parties| parties.may_see(&caller))?;
    parties.may_transition(&caller, transition)?;
    let grounds = W::lock_grounds(&txn, &parties, transition).await?;
    let mut row = locks::find_locked::<<W::Row as LifecycleRow>::Entity>(&txn, id.uuid(), Lock::Update)
        .await?
        .ok_or_else(|| Error::internal(format!("{id} disappeared")))?;
    Etag::check(etag, row.revision(), id)?;
    rules::transition_allowed(row.state(), transition, id)?;
    let ended = W::check(&txn, &row, transition, grounds).await?;
    self::transition(&txn, &mut row, transition, &caller)
        .await
        .map_err(|error| Etag::explain_conflict(W::explain_write_error(&parties, error), etag, id))?;
    crate::audit::ended_because(&txn, &ended, &caller, &id.to_string()).await?;
    txn.commit().await?;
    let method = format!("{}{}", method_verb(transition), <W::Row as LifecycleRow>::RESOURCE);
    tracing::info!(resource = %id, state = %row.state(), ended = ended.len(), %method, "state changed");
    Ok(row)
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
