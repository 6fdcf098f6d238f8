//! The one lifecycle of reseller links, customer relationships and support assignments (and of
//! any later two-party workflow): [`run`] is AcceptX, DeclineX and EndX for every X. It owns the
//! order of the lock protocol, the etag check, rule 5, and the write with its audit event; a
//! resource supplies only what it locks and which rules it asks, as a [`Workflow`] in its
//! service's module. The API edge orchestrates: it reads and locks through `pc-store`, asks
//! `pc-domain`'s rules, and writes through `pc-store`; neither of those calls back up here.

use std::future::Future;

use pc_domain::rules::{self, TwoParty};
use pc_domain::{Error, Etag, Principal, SupportAssignmentId, names::ResourceId};
pub use pc_store::lifecycle::Transition;
use pc_store::lifecycle::{self as store, LifecycleRow};
use pc_store::{Database, DatabaseTransaction, retry::with_retries};

/// What one two-party resource supplies to [`run`]: its parties as the rules see them, what its
/// rules lock before the row, and the rules themselves (pure functions of `pc_domain::rules`,
/// called with what was read and locked).
pub trait Workflow {
    type Row: LifecycleRow;
    /// Who the row's parties are, as rules 5 and 9 decide on them (`pc_domain::rules::TwoParty`).
    type Parties: TwoParty + Send + Sync;
    /// What the rules of a transition need, read under the locks that come before the row in the
    /// lock protocol (`pc_store::locks`).
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
    let parties = match store::find::<W::Row>(&txn, id).await? {
        Some(row) => Some(W::parties(&txn, &row).await?),
        None => None,
    };
    let parties = rules::reveal(&caller, id, parties, |parties| parties.may_see(&caller))?;
    parties.may_transition(&caller, transition)?;
    let grounds = W::lock_grounds(&txn, &parties, transition).await?;
    let mut row = store::lock::<W::Row>(&txn, id).await?;
    Etag::check(etag, row.revision(), id)?;
    rules::transition_allowed(row.state(), transition, id)?;
    let ended = W::check(&txn, &row, transition, grounds).await?;
    store::transition(&txn, &mut row, transition, &caller)
        .await
        .map_err(|error| Etag::explain_conflict(W::explain_write_error(&parties, error), etag, id))?;
    pc_store::audit::ended_because(&txn, &ended, &caller, &id.to_string()).await?;
    txn.commit().await?;
    let method = store::method::<W::Row>(transition);
    tracing::info!(resource = %id, state = %row.state(), ended = ended.len(), %method, "state changed");
    Ok(row)
}

/// [`run`], retried on a transient conflict, its row shown through `to_proto`: what a
/// `lifecycle` line of [`crate::grpc_service!`] calls.
pub async fn run_retried<W: Workflow, T>(
    db: &Database,
    caller: Principal,
    transition: Transition,
    name: &str,
    etag: &str,
    to_proto: fn(W::Row) -> Result<T, Error>,
) -> Result<T, Error> {
    to_proto(with_retries(|| run::<W>(db, caller, transition, name, etag)).await?)
}
