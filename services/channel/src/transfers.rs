//! Transfer handlers: CreateTransfer, AcceptTransfer, DeclineTransfer, CancelTransfer,
//! GetTransfer and ListTransfers.
//!
//! Rule 11: the target partner asks the source, the partner of record, to hand over ACTIVE
//! subscriptions of a customer both work with; the source accepts or declines, the target may
//! cancel, and one that nobody answers expires (rule 15). Accepting moves every listed subscription
//! to the target in one transaction, billed as the target's own sale would be (rule 6), keeping
//! its name and history; the target's own support assignments on them end (nobody supports what it
//! sells, rule 7), other partners' stay with the customer that hired them. The source, the
//! target, the customer and operators see a transfer.

use pc_api::channel::v1::{
    CreateTransferRequest, GetTransferRequest, ListTransfersRequest, ListTransfersResponse, Transfer,
};
use pc_domain::subscriptions::Sale;
use pc_domain::transfers::{self as rules, MAX_SUBSCRIPTIONS};
use pc_domain::{
    CustomerId, Error, Etag, Origin, PageKey, PartnerId, Principal, ResourceKind, SubscriptionId, TransferId,
    TransferMove,
};
use pc_server::convert::{ProtoEnum, filter_enum, list_page, optional_timestamp, timestamp};
use pc_server::create::Create;
use pc_server::lifecycle;
use pc_store::{
    ConnectionTrait, Database, DatabaseTransaction, customer_relationships, customers,
    db::now,
    locks::Lock,
    partners, reseller_links, subscriptions, support_assignments,
    transfers::{self, Model, NewTransfer, TransferFilter},
    write,
};

use crate::subscriptions::parties_now;
use pc_server::visible::customer_for;

pub fn to_proto(row: Model) -> Result<Transfer, Error> {
    Ok(Transfer {
        name: TransferId(row.id).name(),
        customer: CustomerId(row.customer_id).name(),
        source_partner: PartnerId(row.source_partner_id).name(),
        target_partner: PartnerId(row.target_partner_id).name(),
        indirect_provider: row.indirect_provider_id.map(|id| PartnerId(id).name()).unwrap_or_default(),
        subscriptions: row.subscriptions().iter().map(SubscriptionId::name).collect(),
        state: row.state.to_proto(),
        accept_time: optional_timestamp(row.accept_time),
        end_time: optional_timestamp(row.end_time),
        expire_time: Some(timestamp(row.expire_time)),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
        etag: Etag::render(row.revision),
    })
}

/// Reads rule 11's grounds on the partners and the target's channel, locking in the order of
/// `pc_store::locks` the partners FOR SHARE (`shared`: the target and its billing provider, and
/// for an accept the source), the billing link and the target's ACTIVE relationship. `customer`
/// was read (rule 9) by the caller; a customer's cloud never changes.
async fn lock_grounds(
    db: &impl ConnectionTrait,
    source: PartnerId,
    target: PartnerId,
    customer: customers::Model,
    lock_source: bool,
) -> Result<rules::Grounds, Error> {
    let customer_id = CustomerId(customer.id);
    // A relationship's provider never changes: an unlocked read says whose lock is needed.
    let provider_id = customer_relationships::billing_provider_of(db, target, customer_id).await?;
    let shared: Vec<_> = std::iter::once(target).chain(provider_id).chain(lock_source.then_some(source)).collect();
    let mut shared = partners::get_locked(db, &shared, Lock::Share).await?.into_iter();
    let target_row = shared.next().ok_or_else(|| Error::not_found(target.name()))?;
    let provider = provider_id.and_then(|_| shared.next());
    let source = match shared.next() {
        Some(locked) => locked,
        None => partners::find(db, source).await?.ok_or_else(|| Error::not_found(source.name()))?,
    };
    let link_active = match provider_id {
        Some(provider_id) => reseller_links::lock_active(db, provider_id, target).await?,
        None => false,
    };
    let relationship = customer_relationships::lock_active(db, target, customer_id).await?;
    Ok(rules::Grounds {
        source: source.facts(),
        sale: Sale {
            partner: target_row.facts(),
            customer: customer.facts(),
            relationship: relationship.map(|row| row.facts()),
            provider: provider.map(|row| row.facts()),
            link_active,
        },
    })
}

/// The subscriptions `ids`, locked FOR UPDATE in ascending id, if each still qualifies for the
/// transfer (rule 11); the refusal names those that do not.
async fn lock_movable(
    txn: &DatabaseTransaction,
    customer: CustomerId,
    source: PartnerId,
    ids: &[SubscriptionId],
) -> Result<Vec<subscriptions::Model>, Error> {
    let found = subscriptions::lock_each(txn, ids, Lock::Update).await?;
    let facts: Vec<_> = found.iter().map(subscriptions::Model::facts).collect();
    rules::subscriptions_qualify(customer, source, ids, &facts)?;
    Ok(found)
}

pub async fn create_transfer(
    db: &Database,
    caller: Principal,
    request: CreateTransferRequest,
) -> Result<Transfer, Error> {
    let create = Create::new(caller, "CreateTransfer", &request)?;
    let input = request.transfer.ok_or_else(|| Error::invalid("transfer", "is required"))?;
    let customer_id = CustomerId::parse("transfer.customer", &input.customer)?;
    let source = PartnerId::parse("transfer.source_partner", &input.source_partner)?;
    let target = PartnerId::parse("transfer.target_partner", &input.target_partner)?;
    let named_provider = PartnerId::parse_optional("transfer.indirect_provider", &input.indirect_provider)?;
    let named = input.subscriptions.iter().map(|name| SubscriptionId::parse("transfer.subscriptions", name));
    let named = rules::named_subscriptions(named.collect::<Result<_, _>>()?)?;
    caller.require_partner_or_operator(target, "ask for a transfer to this partner")?;

    let insert = async |txn: &DatabaseTransaction| {
        // Lock order (pc_store::locks::LockOrder): the partners, the billing link, the target's
        // relationship, the subscriptions FOR UPDATE; then the new row.
        let customer = customer_for(txn, &caller, target, customer_id).await?;
        let grounds = lock_grounds(txn, source, target, customer, false).await?;
        rules::parties_qualify(&grounds, named_provider)?;
        let named = match named {
            Some(named) => named,
            None => all_sold_by(txn, source, customer_id).await?,
        };
        lock_movable(txn, customer_id, source, &named).await?;
        let time = now();
        rules::not_in_another_transfer(&named, &transfers::pending_subscriptions(txn, customer_id, time).await?)?;
        let new = NewTransfer {
            customer: customer_id,
            source,
            target,
            indirect_provider: named_provider,
            subscriptions: named,
            expire_time: db.deadline(ResourceKind::Transfer),
        };
        let row = transfers::insert(txn, new).await?;
        let parties = row.facts().parties();
        Ok((row, parties))
    };
    let transfer = create.run(db, insert, to_proto).await?;
    tracing::info!(transfer = %transfer.name, subscriptions = transfer.subscriptions.len(), "transfer requested");
    Ok(transfer)
}

/// "All the source's ACTIVE subscriptions of this customer", as the transfer will list them.
async fn all_sold_by(
    txn: &DatabaseTransaction,
    source: PartnerId,
    customer: CustomerId,
) -> Result<Vec<SubscriptionId>, Error> {
    let all = subscriptions::active_sold_by(txn, source, customer, MAX_SUBSCRIPTIONS as u64 + 1).await?;
    if all.len() > MAX_SUBSCRIPTIONS {
        return Err(Error::invalid(
            "transfer.subscriptions",
            format!("{source} sells {customer} more than {MAX_SUBSCRIPTIONS}; name them, in several transfers"),
        ));
    }
    if all.is_empty() {
        return Err(Error::rule(
            pc_domain::Reason::TransferNotAllowed,
            format!("{source} is partner of record of no ACTIVE subscription of {customer}"),
        ));
    }
    Ok(all)
}

/// AcceptTransfer, DeclineTransfer and CancelTransfer (and the expiry engine's move): the one
/// lifecycle ([`lifecycle::run`]) with the rules of a transfer.
pub struct Transfers;

impl lifecycle::Workflow for Transfers {
    type Row = Model;
    type Parties = rules::Transfer;
    /// An accept's partners, link and relationship ([`lock_grounds`]); nothing for the others.
    type Grounds = Option<rules::Grounds>;

    async fn parties(_: &DatabaseTransaction, transfer: &Model) -> Result<rules::Transfer, Error> {
        Ok(transfer.facts())
    }

    async fn lock_grounds(
        txn: &DatabaseTransaction,
        transfer: &rules::Transfer,
        transition: TransferMove,
    ) -> Result<Self::Grounds, Error> {
        if transition != TransferMove::Accept {
            return Ok(None);
        }
        let customer = customers::find(txn, transfer.customer)
            .await?
            .ok_or_else(|| Error::internal(format!("{} is missing", transfer.customer)))?;
        Ok(Some(lock_grounds(txn, transfer.source, transfer.target, customer, true).await?))
    }

    /// For an accept: rule 3 on both partners, the target's channel, and each subscription locked
    /// FOR UPDATE (after the transfer's row).
    async fn check(
        txn: &DatabaseTransaction,
        row: &Model,
        transition: TransferMove,
        grounds: Self::Grounds,
    ) -> Result<(), Error> {
        let transfer = row.facts();
        match (transition, grounds) {
            (TransferMove::Accept, Some(grounds)) => {
                rules::accept(&grounds, &transfer)?;
                lock_movable(txn, transfer.customer, transfer.source, &transfer.subscriptions).await?;
                Ok(())
            }
            (TransferMove::Accept, None) => Err(Error::internal("an accept locked no grounds")),
            _ => Ok(()),
        }
    }

    /// An accept moves each subscription to the target (`TransferSubscription`, caused by the
    /// transfer), after ending the target's live support assignments on it.
    async fn cascade(
        txn: &DatabaseTransaction,
        row: &Model,
        transition: TransferMove,
        origin: &Origin,
    ) -> Result<usize, Error> {
        if transition != TransferMove::Accept {
            return Ok(0);
        }
        let transfer = row.facts();
        let (channel, billing) = transfer.terms();
        let cause = transfer.id.name();
        let moving = origin.caused("TransferSubscription", &cause);
        let move_to_target = |row: &mut subscriptions::Model| {
            row.partner_of_record_id = Some(transfer.target.0);
            row.billing_partner_id = Some(billing.0);
            row.sales_channel = channel;
        };
        // Locked by `check`: read again, unchanged, to write.
        let mut changed = 0;
        for subscription in subscriptions::lock_each(txn, &transfer.subscriptions, Lock::Update).await? {
            let customer = CustomerId(subscription.customer_id);
            let (targets, others): (Vec<_>, Vec<_>) =
                support_assignments::live_on(txn, SubscriptionId(subscription.id))
                    .await?
                    .into_iter()
                    .partition(|assignment| assignment.partner_id == transfer.target.0);
            changed += lifecycle::end_each(txn, targets, origin, &cause, |a| a.facts().parties(customer)).await?;
            let mut after = subscription.clone();
            move_to_target(&mut after);
            let parties = rules::moved_parties(parties_now(&after, &others), &subscription.facts());
            write::update(txn, &subscription, None, &moving, parties, |next, _| move_to_target(next)).await?;
            changed += 1;
        }
        Ok(changed)
    }
}

pub async fn get_transfer(db: &Database, caller: Principal, request: GetTransferRequest) -> Result<Transfer, Error> {
    let id = TransferId::parse("name", &request.name)?;
    let transfer = transfers::read(db, id).await?;
    // Its parties see it (rule 9); anyone else learns nothing, not even whether it exists.
    to_proto(
        pc_server::access::to_read(db.reader(), &caller, ResourceKind::Transfer, id, transfer, Model::facts).await?.0,
    )
}

pub async fn list_transfers(
    db: &Database,
    pages: &PageKey,
    caller: Principal,
    request: ListTransfersRequest,
) -> Result<ListTransfersResponse, Error> {
    let filter = TransferFilter {
        viewer: caller,
        customer: CustomerId::parse_optional("customer", &request.customer)?,
        partner: PartnerId::parse_optional("partner", &request.partner)?,
        state: filter_enum("state", request.state)?,
    };
    let fetch = |conn, page| async move { transfers::list(&conn, filter, page).await };
    list_page(db, &request, pages, &filter, fetch, to_proto).await
}
