//! Subscription handlers: CreateSubscription, RegisterExternalSubscription, GetSubscription,
//! ListSubscriptions, UpdateSubscription and CancelSubscription.
//!
//! Bought through the program (multi-partner): the partner of record needs an ACTIVE
//! relationship with the customer; a direct-bill partner bills itself, an indirect reseller's
//! provider bills through an ACTIVE link. Bought elsewhere: an operator registers it with no
//! partner. A partner sees what it transacts, bills or actively supports (rule 9).

use pc_api::channel::v1::{
    CancelSubscriptionRequest, CreateSubscriptionRequest, GetSubscriptionRequest, ListSubscriptionsRequest,
    ListSubscriptionsResponse, RegisterExternalSubscriptionRequest, Subscription, UpdateSubscriptionRequest,
};
use pc_domain::subscriptions as rules;
use pc_domain::{AssignmentState, Parties, ProductFamily, Role, SalesChannel};
use pc_domain::{CustomerId, Error, Etag, OfferId, Origin, PageKey, PartnerId, Principal, Quantity, SubscriptionId};
use pc_domain::{ResourceKind, access::Permission};
use pc_server::convert::{ProtoEnum, filter_enum, list_page, required_enum, timestamp, update_paths};
use pc_server::{access, create::Create, lifecycle, visible::customer_for};
use pc_store::{
    Database, DatabaseTransaction, customer_relationships, customers,
    locks::{Lock, lock_tenant},
    partners, reseller_links,
    subscriptions::{self, Model, NewSubscription, SubscriptionFilter},
    support_assignments, write,
};

pub fn to_proto(row: Model) -> Result<Subscription, Error> {
    Ok(Subscription {
        name: SubscriptionId(row.id).name(),
        customer: CustomerId(row.customer_id).name(),
        offer_id: row.offer_id,
        product_family: row.product_family.to_proto(),
        quantity: row.quantity,
        sales_channel: row.sales_channel.to_proto(),
        partner_of_record: row.partner_of_record_id.map(|id| PartnerId(id).name()).unwrap_or_default(),
        billing_partner: row.billing_partner_id.map(|id| PartnerId(id).name()).unwrap_or_default(),
        state: row.state.to_proto(),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
        etag: Etag::render(row.revision),
    })
}

/// The fields every new subscription has, validated.
struct Offer {
    customer: CustomerId,
    offer_id: String,
    product_family: ProductFamily,
    quantity: i32,
}

impl Offer {
    /// The subscription this offer becomes, sold through `channel` by these partners.
    fn sold(self, channel: SalesChannel, record: Option<PartnerId>, billing: Option<PartnerId>) -> NewSubscription {
        NewSubscription {
            customer: self.customer,
            offer_id: self.offer_id,
            product_family: self.product_family,
            quantity: self.quantity,
            sales_channel: channel,
            partner_of_record: record,
            billing_partner: billing,
        }
    }
}

fn parse_offer(subscription: &Subscription) -> Result<Offer, Error> {
    Ok(Offer {
        customer: CustomerId::parse("subscription.customer", &subscription.customer)?,
        offer_id: OfferId::parse("subscription.offer_id", &subscription.offer_id)?.into_inner(),
        product_family: required_enum("subscription.product_family", subscription.product_family)?,
        quantity: Quantity::parse("subscription.quantity", subscription.quantity)?.get(),
    })
}

pub async fn create_subscription(
    db: &Database,
    caller: Principal,
    request: CreateSubscriptionRequest,
) -> Result<Subscription, Error> {
    let create = Create::new(caller, "CreateSubscription", &request)?;
    let input = request.subscription.ok_or_else(|| Error::invalid("subscription", "is required"))?;
    let offer = parse_offer(&input)?;
    let partner_id = PartnerId::parse("subscription.partner_of_record", &input.partner_of_record)?;
    caller.require_partner_or_operator(partner_id, "sell as this partner")?;

    let insert = async |txn: &DatabaseTransaction| {
        // Lock order (pc_store::locks::LockOrder): the partners, the billing link, the relationship,
        // then the new row. A relationship's provider never changes, so an unlocked read says whose lock is needed
        // besides the seller's (none for a direct-bill partner, whose relationships name no provider).
        let provider_id = customer_relationships::billing_provider_of(txn, partner_id, offer.customer).await?;
        let parties: Vec<_> = std::iter::once(partner_id).chain(provider_id).collect();
        let mut parties = partners::get_locked(txn, &parties, Lock::Share).await?.into_iter();
        let partner = parties.next().ok_or_else(|| Error::not_found(partner_id.name()))?;
        let provider = parties.next();
        let customer = customer_for(txn, &caller, partner_id, offer.customer).await?;
        let link_active = match provider_id {
            Some(provider_id) => reseller_links::lock_active(txn, provider_id, partner_id).await?,
            None => false,
        };
        let relationship = customer_relationships::lock_active(txn, partner_id, offer.customer).await?;
        // Rule 6: who bills follows from the partner's role and its relationship.
        let (sales_channel, billing_partner) = rules::sell(&rules::Sale {
            partner: partner.facts(),
            customer: customer.facts(),
            relationship: relationship.map(|row| row.facts()),
            provider: provider.map(|row| row.facts()),
            link_active,
        })?;
        let row =
            subscriptions::insert(txn, offer.sold(sales_channel, Some(partner_id), Some(billing_partner))).await?;
        let parties = row.facts().parties();
        Ok((row, parties))
    };
    let subscription = create.run(db, insert, to_proto).await?;
    tracing::info!(subscription = %subscription.name, "subscription created");
    Ok(subscription)
}

pub async fn register_external_subscription(
    db: &Database,
    caller: Principal,
    request: RegisterExternalSubscriptionRequest,
) -> Result<Subscription, Error> {
    let create = Create::new(caller, "RegisterExternalSubscription", &request)?;
    let input = request.subscription.ok_or_else(|| Error::invalid("subscription", "is required"))?;
    let offer = parse_offer(&input)?;
    let sales_channel: SalesChannel = required_enum("subscription.sales_channel", input.sales_channel)?;
    rules::register_external(sales_channel, !input.partner_of_record.is_empty())?;
    caller.require_operator("register subscriptions bought outside the program")?;

    let insert = async |txn: &DatabaseTransaction| {
        let customer =
            customers::find(txn, offer.customer).await?.ok_or_else(|| Error::not_found(offer.customer.name()))?;
        // Rule 1: a program partner is no customer, however the subscription was bought.
        lock_tenant(txn, customer.cloud, customer.tenant_id).await?;
        let enrolled = partners::tenant_enrolled(txn, customer.cloud, pc_domain::TenantId(customer.tenant_id)).await?;
        pc_domain::rules::tenant_not_a_partner(offer.customer, enrolled)?;
        let row = subscriptions::insert(txn, offer.sold(sales_channel, None, None)).await?;
        let parties = row.facts().parties();
        Ok((row, parties))
    };
    create.run(db, insert, to_proto).await
}

pub async fn get_subscription(
    db: &Database,
    caller: Principal,
    request: GetSubscriptionRequest,
) -> Result<Subscription, Error> {
    let id = SubscriptionId::parse("name", &request.name)?;
    // Its parties (rule 9) or a role that reads the customer's subscriptions (rule 13).
    let found = subscriptions::read(db, id).await?;
    to_proto(access::to_subscription(db.reader(), &caller, "get", id, found).await?.0)
}

pub async fn list_subscriptions(
    db: &Database,
    pages: &PageKey,
    caller: Principal,
    request: ListSubscriptionsRequest,
) -> Result<ListSubscriptionsResponse, Error> {
    let filter = SubscriptionFilter {
        viewer: caller,
        customer: CustomerId::parse_optional("customer", &request.customer)?,
        partner: PartnerId::parse_optional("partner", &request.partner)?,
        state: filter_enum("state", request.state)?,
    };
    let fetch = |conn, page| async move { subscriptions::list(&conn, filter, page).await };
    list_page(db, &request, pages, &filter, fetch, to_proto).await
}

pub async fn update_subscription(
    db: &Database,
    caller: Principal,
    request: UpdateSubscriptionRequest,
) -> Result<Subscription, Error> {
    let input = request.subscription.ok_or_else(|| Error::invalid("subscription", "is required"))?;
    let id = SubscriptionId::parse("subscription.name", &input.name)?;
    let etag = Etag::parse_optional("subscription.etag", &input.etag)?;
    update_paths(request.update_mask.as_ref(), &["quantity"], |_| true)?;
    let quantity = Quantity::parse("subscription.quantity", input.quantity)?.get();

    let txn = db.begin().await?;
    // Parties never change: read without a lock to authorize (its partners, or a licence admin of
    // the customer for one bought elsewhere, rule 13) and to know what to lock.
    let (seen, path) =
        access::to_subscription(&txn, &caller, "update", id, subscriptions::find(&txn, id).await?).await?;
    let seen = seen.facts();
    // More licences are new business, which a SUSPENDED partner does not start (rule 3): lock
    // both partners FOR SHARE before the subscription, as the lock order says (pc_store::locks::LockOrder).
    let raising = quantity > seen.quantity;
    let parties: Vec<_> = if raising {
        let mut ids: Vec<_> = seen.transacting_parties().collect();
        ids.dedup();
        partners::get_locked(&txn, &ids, Lock::Share).await?.iter().map(|row| row.facts()).collect()
    } else {
        Vec::new()
    };
    let current = subscriptions::find_locked(&txn, id, Lock::Update)
        .await?
        .ok_or_else(|| Error::internal(format!("{id} disappeared")))?;
    Etag::check(etag, current.revision, id)?;
    if quantity > current.quantity && !raising {
        // It was lowered since the unlocked read, which locked no partners for a raise.
        return Err(Error::Conflict(format!("{id} changed concurrently; read it again and retry")));
    }
    rules::change_quantity(&current.facts(), quantity, &parties)?;
    // A change under a role holds the role until it commits (after the subscription, in the
    // lock order).
    access::hold(&txn, Permission::new(ResourceKind::Subscription, "update"), &path).await?;
    let origin = Origin::new("UpdateSubscription", caller).under(path.delegation());
    let live = support_assignments::live_on(&txn, id).await?;
    let parties = parties_now(&current, &live);
    let updated = write::update(&txn, &current, etag, &origin, parties, |row, _| row.quantity = quantity).await?;
    txn.commit().await?;
    to_proto(updated)
}

/// Who reads the subscription now (rule 9), as its change records them: its own parties and its
/// ACTIVE support partner, of its `live` assignments. Read under the subscription's lock, which an
/// accept shares, so no assignment becomes ACTIVE meanwhile (`pc_store::locks::LockOrder`).
pub(crate) fn parties_now(subscription: &Model, live: &[support_assignments::Model]) -> Parties {
    let supporter = live.iter().find(|assignment| assignment.state == AssignmentState::Active);
    subscription
        .facts()
        .parties()
        .with(Role::SupportPartner, supporter.map(|assignment| PartnerId(assignment.partner_id)))
}

pub async fn cancel_subscription(
    db: &Database,
    caller: Principal,
    request: CancelSubscriptionRequest,
) -> Result<Subscription, Error> {
    let id = SubscriptionId::parse("name", &request.name)?;
    let etag = Etag::parse_optional("etag", &request.etag)?;

    let txn = db.begin().await?;
    // Locked before its live assignments are read and ended: a support request that shares it
    // has committed by now, and a later one finds it CANCELLED (pc_store::locks).
    let locked = subscriptions::find_locked(&txn, id, Lock::Update).await?;
    let (current, _) = access::to_subscription(&txn, &caller, "cancel", id, locked).await?;
    Etag::check(etag, current.revision, id)?;
    let cancelled_state = rules::cancel(&current.facts())?;
    let origin = Origin::new("CancelSubscription", caller);
    let live = support_assignments::live_on(&txn, id).await?;
    let parties = parties_now(&current, &live);
    let cancelled = write::update(&txn, &current, etag, &origin, parties, |row, _| row.state = cancelled_state).await?;
    // A cancelled subscription needs no support: its live assignments end with it (rule 8).
    let customer = CustomerId(current.customer_id);
    lifecycle::end_each(&txn, live, &origin, &id.name(), |assignment| assignment.facts().parties(customer)).await?;
    txn.commit().await?;
    tracing::info!(subscription = %id, "subscription cancelled");
    to_proto(cancelled)
}
