//! The one lifecycle of reseller links, customer relationships and support assignments (and of
//! any later resource with moves of its own, declared by its `pc_domain::Lifecycle` table): [`run`]
//! makes every move of every such resource. It owns the order of the lock protocol, the etag check,
//! rule 5, the write with its change, and the cascade; a resource supplies only what it locks,
//! which rules it asks and what its moves end besides itself, as a [`Workflow`] in its service's
//! module. The API edge orchestrates: it reads and locks through `pc-store`, asks `pc-domain`'s
//! rules, and writes through `pc-store`; neither of those calls back up here.

use std::future::Future;

use pc_domain::access::Permission;
use pc_domain::rules::{self, Participants};
use pc_domain::{Error, Etag, Move, Origin, Principal, ResourceId};
pub use pc_store::lifecycle::MoveOf;
use pc_store::lifecycle::{self as store, LifecycleRow};
use pc_store::{Database, DatabaseTransaction, retry::with_retries, write::Row};

pub use pc_domain::Transition;

/// What one resource with a lifecycle supplies to [`run`]: its parties as the rules see them, what
/// its rules lock before the row, the rules themselves (pure functions of `pc_domain::rules`,
/// called with what was read and locked), and what a move ends besides the row.
pub trait Workflow {
    type Row: LifecycleRow;
    /// Who the row's parties are, as rules 5 and 9 decide on them and its changes record them.
    type Parties: Participants<Transition = MoveOf<Self::Row>> + Send + Sync;
    /// What the rules of a move need, read under the locks that come before the row in the lock
    /// protocol (`pc_store::locks::LockOrder`).
    type Grounds: Send;

    /// Reads the parties of `row`, without a lock: they never change.
    fn parties(txn: &DatabaseTransaction, row: &Self::Row)
    -> impl Future<Output = Result<Self::Parties, Error>> + Send;

    /// Locks and reads, in the order of the lock protocol, what the rules of `transition` depend
    /// on.
    fn lock_grounds(
        txn: &DatabaseTransaction,
        parties: &Self::Parties,
        transition: MoveOf<Self::Row>,
    ) -> impl Future<Output = Result<Self::Grounds, Error>> + Send;

    /// Decides: the resource's rules on the locked row. It may read (counts under the row's lock)
    /// but writes nothing; what a move changes besides the row is [`Workflow::cascade`].
    fn check(
        txn: &DatabaseTransaction,
        row: &Self::Row,
        transition: MoveOf<Self::Row>,
        grounds: Self::Grounds,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// What the move changes besides the row, after the row is written (rule 8: an ending ends
    /// what depended on the row), each through the write path with `origin` as its cause.
    fn cascade(
        _txn: &DatabaseTransaction,
        _row: &Self::Row,
        _transition: MoveOf<Self::Row>,
        _origin: &Origin,
    ) -> impl Future<Output = Result<usize, Error>> + Send {
        async { Ok(0) }
    }

    /// The move the expiry engine makes on a row past its deadline: `EXPIRE`, unless the resource
    /// does something else then (an auto-extending admin relationship extends).
    fn lapse(_row: &Self::Row) -> MoveOf<Self::Row> {
        <MoveOf<Self::Row> as pc_domain::Move>::EXPIRE
    }

    /// What a failed write means for this resource (a unique index that lost a race).
    fn explain_write_error(_parties: &Self::Parties, error: Error) -> Error {
        error
    }
}

/// Every move of a resource, in one transaction: read the row without a lock to authorize (rule 9,
/// then rule 5's "who", or a role of rule 13: `crate::access`) and to know what to lock; lock the
/// grounds, then the row FOR UPDATE (the lock protocol); check the etag, the deadline (rule 15),
/// rule 5 and the resource's rules on the locked row; hold the role it acts under, if any; write
/// the move and its change (naming that role's admin relationship); run the cascade; commit.
pub async fn run<W: Workflow>(
    db: &Database,
    caller: Principal,
    transition: MoveOf<W::Row>,
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
    // Rules 9 and 5 on its parties, or a role the caller holds of its customer (rule 13).
    let kind = <W::Row as Row>::KIND;
    let (parties, path) = crate::access::to_move(&txn, &caller, kind, id, parties, transition).await?;
    let grounds = W::lock_grounds(&txn, &parties, transition).await?;
    let row = store::lock::<W::Row>(&txn, id).await?;
    Etag::check(etag, row.revision(), id)?;
    rules::before_deadline(row.state(), transition, row.expire_time(), pc_store::db::now(), id)?;
    let to = rules::transition_allowed(row.state(), transition, id)?;
    W::check(&txn, &row, transition, grounds).await?;
    // A move under a role holds the role until it commits (after the rows it changes).
    crate::access::hold(&txn, Permission::new(kind, transition.verb()), &path).await?;
    let origin = Origin::new(store::method::<W::Row>(transition), caller).under(path.delegation());
    let moved = store::record_move(&txn, &row, transition, to, etag, &origin, parties.parties())
        .await
        .map_err(|error| W::explain_write_error(&parties, error))?;
    let ended = W::cascade(&txn, &moved, transition, &origin).await?;
    txn.commit().await?;
    tracing::info!(resource = %id, state = %to, ended, method = %origin.method, "state changed");
    Ok(moved)
}

/// [`run`], retried on a transient conflict, its row shown through `to_proto`: what a
/// `lifecycle` line of [`crate::grpc_service!`] calls.
pub async fn run_retried<W: Workflow, T>(
    db: &Database,
    caller: Principal,
    transition: MoveOf<W::Row>,
    name: &str,
    etag: &str,
    to_proto: fn(W::Row) -> Result<T, Error>,
) -> Result<T, Error> {
    to_proto(with_retries(|| run::<W>(db, caller, transition, name, etag)).await?)
}

/// Ends each of `rows` because `cause` changed (rule 8's cascade: they depended on it), through
/// the write path, each change recording `parties_of` its row and `cause`; returns how many it
/// ended. `rows` were read without a lock: one that changed since is a retryable conflict.
pub async fn end_each<R>(
    txn: &DatabaseTransaction,
    rows: Vec<R>,
    origin: &Origin,
    cause: &str,
    parties_of: impl Fn(&R) -> pc_domain::Parties,
) -> Result<usize, Error>
where
    R: LifecycleRow,
    R::State: pc_domain::Lifecycle<Transition = Transition>,
{
    move_each(txn, rows, Transition::End, origin, cause, parties_of).await
}

/// Makes `ending` on each of `rows` because `cause` changed: [`end_each`] for a resource with
/// moves of its own (an admin relationship its customer relationship's end terminates).
pub async fn move_each<R: LifecycleRow>(
    txn: &DatabaseTransaction,
    rows: Vec<R>,
    ending: MoveOf<R>,
    origin: &Origin,
    cause: &str,
    parties_of: impl Fn(&R) -> pc_domain::Parties,
) -> Result<usize, Error> {
    let count = rows.len();
    let end = origin.caused(store::method::<R>(ending), cause);
    for row in rows {
        let to = rules::transition_allowed(row.state(), ending, row.name())?;
        store::record_move(txn, &row, ending, to, None, &end, parties_of(&row)).await?;
    }
    Ok(count)
}
