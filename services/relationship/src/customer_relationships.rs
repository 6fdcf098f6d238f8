//! Customer relationship handlers: RequestCustomerRelationship, AcceptCustomerRelationship,
//! DeclineCustomerRelationship, EndCustomerRelationship, GetCustomerRelationship and
//! ListCustomerRelationships.
//!
//! Direct-bill partners and indirect resellers ask; an indirect reseller names the indirect
//! provider, with an ACTIVE link to it, that will bill. The customer accepts or declines; either
//! side ends, which also ends the partner's support assignments for that customer. The partner,
//! its billing provider, the customer and operators see a relationship.

use pc_api::relationship::v1::{
    CustomerRelationship, ListCustomerRelationshipsRequest, ListCustomerRelationshipsResponse,
    RequestCustomerRelationshipRequest,
};
use pc_domain::rules::customer_relationships as rules;
use pc_domain::{CustomerId, CustomerRelationshipId, Error, Etag, PageKey, PartnerId, Principal};
use pc_domain::{ProgramRole, RelationshipState as State};
use pc_server::convert::{ProtoEnum, filter_enum, idempotency_key, list_page, optional_timestamp, timestamp};
use pc_store::{
    ConnectionTrait, Database, audit,
    customer_relationships::{self, RelationshipFilter},
    customers,
    entity::{customer, customer_relationship::Model, partner},
    idempotency,
    lifecycle::{self, Transition},
    locks::{Lock, lock_tenant},
    partners, reseller_links, subscriptions, support_assignments,
};

pub fn to_proto(row: Model) -> Result<CustomerRelationship, Error> {
    Ok(CustomerRelationship {
        name: CustomerRelationshipId(row.id).name(),
        partner: PartnerId(row.partner_id).name(),
        customer: CustomerId(row.customer_id).name(),
        indirect_provider: row.indirect_provider_id.map(|id| PartnerId(id).name()).unwrap_or_default(),
        state: row.state.to_proto(),
        accept_time: optional_timestamp(row.accept_time),
        end_time: optional_timestamp(row.end_time),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
        etag: Etag::render(row.revision),
    })
}

/// Whether the reseller's link with the provider that would bill is ACTIVE, with the link locked
/// FOR SHARE (order 5 of pc_store::locks: after the partners, before the relationship).
async fn lock_billing_link(
    db: &impl ConnectionTrait,
    reseller: PartnerId,
    provider: Option<&partner::Model>,
) -> Result<bool, Error> {
    match provider {
        Some(provider) => reseller_links::is_active(db, PartnerId(provider.id), reseller).await,
        None => Ok(false),
    }
}

/// Locks and reads what requesting and accepting a relationship decide on, in the order of
/// pc_store::locks: the customer's tenant (rule 1), the partner and the billing provider (if
/// `provider` is given), then their link. A customer's tenant and a partner's role never change,
/// so the caller reads them unlocked to know what to lock.
async fn lock_parties(
    db: &impl ConnectionTrait,
    partner_id: PartnerId,
    customer: customer::Model,
    provider: Option<PartnerId>,
) -> Result<rules::Parties, Error> {
    lock_tenant(db, customer.cloud, customer.tenant_id).await?;
    let parties: Vec<_> = std::iter::once(partner_id).chain(provider).collect();
    let mut parties = partners::get_locked(db, &parties, Lock::Share).await?.into_iter();
    let partner = parties.next().ok_or_else(|| Error::not_found(partner_id.name()))?;
    let provider = parties.next();
    let link_active = lock_billing_link(db, partner_id, provider.as_ref()).await?;
    let tenant_enrolled =
        partners::tenant_enrolled(db, customer.cloud, pc_domain::TenantId(customer.tenant_id)).await?;
    Ok(rules::Parties {
        partner: partner.facts(),
        customer: customer.facts(),
        provider: provider.map(|row| row.facts()),
        link_active,
        tenant_enrolled,
    })
}

pub async fn request_customer_relationship(
    db: &Database,
    caller: Principal,
    request: RequestCustomerRelationshipRequest,
) -> Result<CustomerRelationship, Error> {
    let key = idempotency_key(&caller, "RequestCustomerRelationship", &request)?;
    let partner_id = PartnerId::parse("partner", &request.partner)?;
    let customer_id = CustomerId::parse("customer", &request.customer)?;
    let provider_id = PartnerId::parse_optional("indirect_provider", &request.indirect_provider)?;
    caller.require_partner_or_operator(partner_id, "request relationships for this partner")?;

    let relationship = idempotency::create_once(db, key.as_ref(), async |txn| {
        // Lock order (pc_store::locks): the tenant, the partners, the billing link, then the new row.
        // A partner's role and cloud never change, so an unlocked read says whose lock is needed.
        let is_reseller = partners::get(txn, partner_id).await?.program_role == ProgramRole::IndirectReseller;
        let customer = customers::find(txn, customer_id).await?.ok_or_else(|| Error::not_found(customer_id.name()))?;
        let parties = lock_parties(txn, partner_id, customer, provider_id.filter(|_| is_reseller)).await?;
        rules::request(&parties, provider_id.is_some())?;
        let relationship = to_proto(customer_relationships::insert(txn, partner_id, customer_id, provider_id).await?)?;
        audit::append(
            txn,
            &relationship.name,
            "RequestCustomerRelationship",
            &caller,
            serde_json::json!({
                "partner": relationship.partner,
                "customer": relationship.customer,
                "indirect_provider": relationship.indirect_provider,
                "state": State::Pending.as_str(),
            }),
        )
        .await?;
        Ok(relationship)
    })
    .await?;
    tracing::info!(relationship = %relationship.name, "customer relationship requested");
    Ok(relationship)
}

/// `relationship`, if `caller` is its partner, its billing provider, its customer or an operator
/// (rule 9); anyone else learns nothing, not even whether it exists.
fn visible(caller: &Principal, id: CustomerRelationshipId, relationship: Option<Model>) -> Result<Model, Error> {
    pc_domain::rules::reveal(caller, id, relationship, |row| rules::may_see(caller, &row.facts()))
}

/// AcceptCustomerRelationship, DeclineCustomerRelationship and EndCustomerRelationship.
pub async fn transition(
    db: &Database,
    caller: Principal,
    transition: Transition,
    name: &str,
    etag: &str,
) -> Result<CustomerRelationship, Error> {
    let id = CustomerRelationshipId::parse("name", name)?;
    let etag = Etag::parse_optional("etag", etag)?;

    let txn = db.begin().await?;
    // Parties never change: read without a lock to authorize and to know what to lock.
    let seen = visible(&caller, id, customer_relationships::find(&txn, id).await?)?.facts();
    rules::may_transition(&caller, &seen, transition)?;
    let (partner_id, customer_id) = (seen.partner, seen.customer);
    // Lock order (pc_store::locks): an accept's tenant, partners and link, then the relationship.
    // Their verdict waits until the relationship's own state has been checked.
    let accepting = match transition {
        Transition::Accept => {
            let customer =
                customers::find(&txn, customer_id).await?.ok_or_else(|| Error::not_found(customer_id.name()))?;
            Some(lock_parties(&txn, partner_id, customer, seen.indirect_provider).await?)
        }
        Transition::Decline | Transition::End => None,
    };
    let mut relationship = customer_relationships::find_locked(&txn, id, Lock::Update)
        .await?
        .ok_or_else(|| Error::internal(format!("{id} disappeared")))?;
    Etag::check(etag, relationship.revision, id)?;
    pc_domain::rules::transition_allowed(relationship.state, transition, id)?;
    let mut ended_assignments = Vec::new();
    match (transition, accepting) {
        (Transition::Accept, Some(parties)) => rules::accept(&parties)?,
        // Counted after the relationship is locked: a sale that shares it has committed by now.
        (Transition::End, _) => {
            let transacts = subscriptions::active_transacted_by(&txn, partner_id, customer_id).await?;
            rules::end(&seen, transacts)?;
            ended_assignments = support_assignments::end_all_for(&txn, partner_id, customer_id).await?;
        }
        (Transition::Accept | Transition::Decline, _) => {}
    }
    lifecycle::transition(&txn, &mut relationship, transition, &caller)
        .await
        .map_err(|error| Etag::explain_conflict(error, etag, id))?;
    audit::ended_because(&txn, &ended_assignments, &caller, &id.name()).await?;
    txn.commit().await?;

    tracing::info!(relationship = %id, state = %relationship.state, ended_assignments = ended_assignments.len(), "customer relationship changed");
    to_proto(relationship)
}

pub async fn get_customer_relationship(
    db: &Database,
    caller: Principal,
    name: &str,
) -> Result<CustomerRelationship, Error> {
    let id = CustomerRelationshipId::parse("name", name)?;
    to_proto(visible(&caller, id, customer_relationships::read(db, id).await?)?)
}

pub async fn list_customer_relationships(
    db: &Database,
    pages: &PageKey,
    caller: Principal,
    request: ListCustomerRelationshipsRequest,
) -> Result<ListCustomerRelationshipsResponse, Error> {
    let filter = RelationshipFilter {
        viewer: caller,
        partner: PartnerId::parse_optional("partner", &request.partner)?,
        customer: CustomerId::parse_optional("customer", &request.customer)?,
        state: filter_enum("state", request.state)?,
    };
    let query = format!("{caller}|{filter:?}");
    let (customer_relationships, next_page_token) = list_page(
        &request,
        &query,
        pages,
        async |page| customer_relationships::list(db.reader(), filter, page).await,
        to_proto,
    )
    .await?;
    Ok(ListCustomerRelationshipsResponse { customer_relationships, next_page_token })
}
