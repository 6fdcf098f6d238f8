//! The lock protocol: which rows each method locks, and in which order, so that every rule that
//! reads one row and changes another holds when the methods run at the same moment (rule 10).
//!
//! Under READ COMMITTED a row a transaction only *reads* may change before it commits: a sale
//! that saw an ACTIVE relationship could commit after the relationship ended. So a method locks
//! every row whose state its rule depends on `FOR SHARE` before it checks it, and the row it
//! changes `FOR UPDATE` before it reads it for its checks. Shared locks let checks run side by
//! side; a change waits for them, and a check waits for a change. A `FOR SHARE` or `FOR UPDATE`
//! that waited reads the row as the winner committed it and applies its `WHERE` again, so a sale
//! that waited for an End finds no ACTIVE relationship. Only plain row locks are used, no
//! `SERIALIZABLE` and no advisory locks, so the protocol holds on any PostgreSQL-compatible
//! engine with row locks. On SQLite the one writer connection runs transactions one at a time
//! and the query builder leaves the lock clauses out.
//!
//! Deadlocks are avoided by one global order, [`LockOrder`]. A transaction takes its locks in this
//! order and never goes back to an earlier table (within a table, in ascending id); every table
//! that is locked declares its place ([`Ordered`]), and the generic lock helpers take only such
//! tables; a test holds the table below to the type. When it needs a row's
//! columns to know what to lock first (a relationship names its billing provider), it reads the
//! row without a lock, locks in order, and locks the row itself last, reading it again. Ids,
//! parties and tenants never change after insert, so only the state read under lock counts.
//!
//! | [`LockOrder`] | rows | locked by |
//! | --- | --- | --- |
//! | 1 `IdempotencyKeys` | `idempotency_keys` (the request's own key) | every Create, Invite, Request, Register with a `request_id` (insert) |
//! | 2 `Tenants` | `tenants` (cloud, tenant) | rule 1: CreatePartner, CreateCustomer, RegisterExternalSubscription, RequestCustomerRelationship, AcceptCustomerRelationship (upsert = FOR UPDATE) |
//! | 3 `Partners` | `partners` | SHARE: every method whose caller's partner or counterpart must be ACTIVE (Invite, Accept link, Request and Accept relationship, Create customer, Create and raise subscription, Request and Accept support, Create and Accept transfer, Request and Approve admin relationship); UPDATE: UpdatePartner, SuspendPartner, ReactivatePartner |
//! | 4 `Customers` | `customers` | nobody: a customer's cloud and tenant never change |
//! | 5 `ResellerLinks` | `reseller_links` | SHARE: the billing link of RequestCustomerRelationship, AcceptCustomerRelationship, a reseller's CreateSubscription and a reseller target's Create and AcceptTransfer; UPDATE: Accept, Decline, EndResellerLink, and the lapsed INVITED link of the pair InviteReseller expires; UPDATE SKIP LOCKED: the expiry engine |
//! | 6 `CustomerRelationships` | `customer_relationships` | SHARE: the ACTIVE relationship of CreateSubscription, RequestSupport, AcceptSupportAssignment, and the target's of Create and AcceptTransfer, the pair's of Request and ApproveAdminRelationship; UPDATE: Accept, Decline, EndCustomerRelationship, and the lapsed PENDING one of the pair RequestCustomerRelationship expires; UPDATE SKIP LOCKED: the expiry engine |
//! | 7 `Transfers` | `transfers` | UPDATE: Accept, Decline, CancelTransfer; UPDATE SKIP LOCKED: the expiry engine |
//! | 8 `Subscriptions` | `subscriptions` | SHARE: RequestSupport, AcceptSupportAssignment; UPDATE: UpdateSubscription, CancelSubscription, and in ascending id the subscriptions CreateTransfer names and AcceptTransfer moves |
//! | 9 `SupportAssignments` | `support_assignments` | UPDATE: Accept, Decline, EndSupportAssignment, and the assignments EndCustomerRelationship, CancelSubscription and AcceptTransfer end, and the lapsed REQUESTED one of the pair RequestSupport expires; UPDATE SKIP LOCKED: the expiry engine |
//! | 10 `AdminRelationships` | `admin_relationships` | SHARE: the one a call under a role acts by (rule 13: AcceptCustomerRelationship, DeclineCustomerRelationship, AcceptSupportAssignment, DeclineSupportAssignment, UpdateSubscription), after the rows it changes; UPDATE: Approve, Decline, TerminateAdminRelationship, the lapsed one of the name RequestAdminRelationship expires, and in ascending id the live ones of the pair EndCustomerRelationship terminates (after the assignments it ends); UPDATE SKIP LOCKED: the expiry engine |
//! | 11 `AuditEvents` | `audit_events` | inserted last by every change |
//!
//! The pairs this decides (each has a race test in `tests/e2e/races.rs`):
//! - CreateSubscription shares the relationship (and for a reseller the link) that
//!   EndCustomerRelationship (EndResellerLink) updates before it counts ACTIVE subscriptions;
//! - RequestSupport and AcceptSupportAssignment share the relationship and the subscription that
//!   EndCustomerRelationship and CancelSubscription update before they end live assignments;
//! - everything a partner starts (admin relationships asked for and approved among it) shares
//!   the partner row that SuspendPartner updates before it stamps the suspension, so nothing a suspended partner started is dated after its suspension;
//! - RequestCustomerRelationship and AcceptCustomerRelationship share the billing link that
//!   EndResellerLink updates;
//! - rule 1's checks update the tenant row, so CreatePartner and CreateCustomer, or CreatePartner
//!   and AcceptCustomerRelationship, for one tenant run one after the other.
//! - UpdateSubscription and CancelSubscription read the subscription's ACTIVE support partner, whom
//!   their change names as a party (rule 14), under the subscription's UPDATE lock, which
//!   AcceptSupportAssignment shares: an accept commits before the read or waits until after it.
//! - AcceptTransfer (rule 11) shares the partners, the target's relationship and a reseller
//!   target's link, so SuspendPartner, EndCustomerRelationship (the target's, which counts the
//!   subscriptions it transacts) and EndResellerLink come wholly before or after it; it updates the
//!   moving subscriptions, so CancelSubscription is before it (and the accept finds one CANCELLED)
//!   or after (and finds the target its partner of record), and an AcceptSupportAssignment sharing
//!   one commits before the accept reads the target's live assignments on it, which it ends. Two
//!   accepts of one transfer meet at its row.
//! - The expiry engine (`pc_server::expiry`) locks only the waiting rows of one table, FOR UPDATE
//!   SKIP LOCKED, and then writes them: it never waits, so it takes no place in the order, and a
//!   move that holds a row it skips finds the row past its deadline itself (rule 15). Engines of
//!   several replicas take disjoint rows. A new invitation or request of a pair locks the pair's
//!   lapsed row FOR UPDATE (after its other locks, as the row's place in the order allows) and
//!   expires it before it inserts; racing the engine, the row is expired once (a race test).
//! - RequestAdminRelationship and ApproveAdminRelationship (rule 12) share the partner and the
//!   pair's ACTIVE customer relationship, which SuspendPartner and EndCustomerRelationship update;
//!   EndCustomerRelationship then locks the pair's live admin relationships FOR UPDATE and
//!   terminates them, so an approval either commits first (and is terminated) or waits and finds
//!   no ACTIVE relationship. Approve, Decline and Terminate of one admin relationship meet at its
//!   row.
//! - A call under a role (rule 13) decides by the admin relationship read without a lock, then,
//!   after locking the rows it changes, locks that relationship FOR SHARE and checks it still
//!   grants (`pc_server::access::hold`): Terminate, the expiry engine and EndCustomerRelationship
//!   update it, so each comes wholly before the call (which is then refused) or after it, and
//!   nothing is changed under a role after it ended. Admin relationships come last in the order
//!   for this: every row such a call changes comes before them.
//! - CreateTransfer updates the subscriptions it names before it reads the subscriptions of the
//!   customer's other PENDING transfers, so two transfers of one subscription created at once run
//!   one after the other and the second finds the first (rule 11).
//!
//! Every move of a lifecycle keeps the order by construction: `pc_server::lifecycle::run` reads the
//! row unlocked, asks the resource's `Workflow::lock_grounds` for what comes before it (tenants to
//! subscriptions), then locks the row itself FOR UPDATE ([`crate::lifecycle::lock`]), and only
//! then checks; a row that comes after it in the order (the subscriptions a transfer moves) is
//! locked by its `Workflow::check`, after the row.
//!
//! Uniqueness (one live link, relationship, ACTIVE support partner) stays with the partial unique
//! indexes, and every state change is still a compare-and-swap on `revision`. A deadlock or
//! serialization failure that happens anyway is retried like a lost compare-and-swap
//! ([`crate::retry`]).

use pc_domain::{Cloud, Error};
use sea_orm::{ConnectionTrait, EntityTrait, PrimaryKeyTrait, QuerySelect, Select, sea_query::LockType};
use uuid::Uuid;

/// The global lock order: a transaction locks rows of these tables in this order, never going
/// back to an earlier one (the table above says who locks what).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockOrder {
    IdempotencyKeys = 1,
    Tenants,
    Partners,
    Customers,
    ResellerLinks,
    CustomerRelationships,
    Transfers,
    Subscriptions,
    SupportAssignments,
    AdminRelationships,
    AuditEvents,
}

impl LockOrder {
    /// Every table, in lock order.
    pub const ALL: [Self; 11] = [
        Self::IdempotencyKeys,
        Self::Tenants,
        Self::Partners,
        Self::Customers,
        Self::ResellerLinks,
        Self::CustomerRelationships,
        Self::Transfers,
        Self::Subscriptions,
        Self::SupportAssignments,
        Self::AdminRelationships,
        Self::AuditEvents,
    ];
}

/// A table whose rows are locked, with its place in [`LockOrder`] (declared next to its entity
/// by `stored_resource!`).
pub trait Ordered: EntityTrait {
    const ORDER: LockOrder;
}

/// How a read locks the rows it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// `FOR SHARE`: a rule depends on the row's state; others may check it too, nobody may change it.
    Share,
    /// `FOR UPDATE`: this transaction changes the row.
    Update,
}

/// `query` with its rows locked as `lock` says until the transaction ends.
pub fn locked<E: EntityTrait>(query: Select<E>, lock: Lock) -> Select<E> {
    query.lock(match lock {
        Lock::Share => LockType::Share,
        Lock::Update => LockType::Update,
    })
}

/// The row of `E` with primary key `id`, locked.
pub async fn find_locked<E>(db: &impl ConnectionTrait, id: Uuid, lock: Lock) -> Result<Option<E::Model>, Error>
where
    E: Ordered,
    <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
{
    Ok(locked(E::find_by_id(id), lock).one(db).await?)
}

/// Locks the (cloud, tenant) row that rule 1's checks of that tenant serialise on
/// (`LockOrder::Tenants`),
/// creating it on first use. One statement on every backend: an upsert that always takes the
/// row's write lock, waiting for a concurrent first insert to commit instead of failing.
pub async fn lock_tenant(db: &impl ConnectionTrait, cloud: Cloud, tenant: Uuid) -> Result<(), Error> {
    use sea_orm::sea_query::{Alias, OnConflict, Query};
    let (cloud_column, tenant_column) = (Alias::new("cloud"), Alias::new("tenant_id"));
    let upsert = Query::insert()
        .into_table(Alias::new("tenants"))
        .columns([cloud_column.clone(), tenant_column.clone()])
        .values([cloud.as_str().into(), tenant.into()])
        .map_err(|e| Error::internal(format!("tenant lock statement: {e}")))?
        .on_conflict(OnConflict::columns([cloud_column.clone(), tenant_column]).update_column(cloud_column).to_owned())
        .to_owned();
    db.execute(&upsert).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The module's table is the protocol people read; it must say what the type says.
    #[test]
    fn the_documented_order_is_the_types() {
        let source = include_str!("locks.rs");
        let documented: Vec<String> = source
            .lines()
            .filter_map(|line| line.strip_prefix("//! | "))
            .filter_map(|row| row.split(" | ").next())
            .filter(|cell| cell.starts_with(|c: char| c.is_ascii_digit()))
            .map(str::to_owned)
            .collect();
        let typed: Vec<String> = LockOrder::ALL.iter().map(|order| format!("{} `{order:?}`", *order as u8)).collect();
        assert_eq!(documented, typed);
    }
}
