//! Customer relationship handlers: RequestCustomerRelationship, AcceptCustomerRelationship,
//! DeclineCustomerRelationship, EndCustomerRelationship, GetCustomerRelationship and
//! ListCustomerRelationships.
//!
//! Direct-bill partners and indirect resellers ask; an indirect reseller names the indirect
//! provider, with an ACTIVE link to it, that will bill. The customer accepts or declines; either
//! side ends, which also ends the partner's support assignments for that customer. The partner,
//! its billing provider, the customer and operators see a relationship.

use pc_api::relationship::v1::{
    CustomerRelationship, GetCustomerRelationshipRequest, ListCustomerRelationshipsRequest,
    ListCustomerRelationshipsResponse, RequestCustomerRelationshipRequest,
};
use pc_domain::ProgramRole;
use pc_domain::customer_relationships as rules;
use pc_domain::{CustomerId, CustomerRelationshipId, Error, Etag, Origin, PageKey, PartnerId, Principal, ResourceKind};
use pc_server::convert::{ProtoEnum, filter_enum, list_page, optional_timestamp, timestamp};
use pc_server::create::Create;
use pc_server::expiry;
use pc_server::lifecycle::{self, Transition};

use crate::admin_relationships::terminate_with_relationship;
use pc_store::{
    ConnectionTrait, Database, DatabaseTransaction,
    customer_relationships::{self, Model, RelationshipFilter},
    customers,
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
        expire_time: optional_timestamp(row.expire_time),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
        etag: Etag::render(row.revision),
    })
}

/// Whether the reseller's link with the provider that would bill is ACTIVE, with the link locked
/// FOR SHARE (`LockOrder::ResellerLinks`: after the partners, before the relationship).
async fn lock_billing_link(
    db: &impl ConnectionTrait,
    reseller: PartnerId,
    provider: Option<&partners::Model>,
) -> Result<bool, Error> {
    match provider {
        Some(provider) => reseller_links::lock_active(db, PartnerId(provider.id), reseller).await,
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
    customer: customers::Model,
    provider: Option<PartnerId>,
) -> Result<rules::Grounds, Error> {
    lock_tenant(db, customer.cloud, customer.tenant_id).await?;
    let parties: Vec<_> = std::iter::once(partner_id).chain(provider).collect();
    let mut parties = partners::get_locked(db, &parties, Lock::Share).await?.into_iter();
    let partner = parties.next().ok_or_else(|| Error::not_found(partner_id.name()))?;
    let provider = parties.next();
    let link_active = lock_billing_link(db, partner_id, provider.as_ref()).await?;
    let tenant_enrolled =
        partners::tenant_enrolled(db, customer.cloud, pc_domain::TenantId(customer.tenant_id)).await?;
    Ok(rules::Grounds {
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
    let create = Create::new(caller, "RequestCustomerRelationship", &request)?;
    let partner_id = PartnerId::parse("partner", &request.partner)?;
    let customer_id = CustomerId::parse("customer", &request.customer)?;
    let provider_id = PartnerId::parse_optional("indirect_provider", &request.indirect_provider)?;
    caller.require_partner_or_operator(partner_id, "request relationships for this partner")?;

    let insert = async |txn: &DatabaseTransaction| {
        // Lock order (pc_store::locks::LockOrder): the tenant, the partners, the billing link, then
        // the new row. A partner's role and cloud never change, so an unlocked read says whose lock
        // is needed.
        let is_reseller = partners::get(txn, partner_id).await?.program_role == ProgramRole::IndirectReseller;
        let customer = customers::find(txn, customer_id).await?.ok_or_else(|| Error::not_found(customer_id.name()))?;
        let parties = lock_parties(txn, partner_id, customer, provider_id.filter(|_| is_reseller)).await?;
        rules::request(&parties, provider_id.is_some())?;
        // A lapsed request of the pair expires now rather than holding the pair (rule 15).
        let pair = customer_relationships::of_pair(partner_id, customer_id);
        expiry::expire_lapsed::<CustomerRelationships>(txn, pair).await?;
        let row = customer_relationships::insert(
            txn,
            partner_id,
            customer_id,
            provider_id,
            db.deadline(ResourceKind::CustomerRelationship),
        )
        .await?;
        let parties = row.facts().parties();
        Ok((row, parties))
    };
    let relationship = create.run(db, insert, to_proto).await?;
    tracing::info!(relationship = %relationship.name, "customer relationship requested");
    Ok(relationship)
}

/// AcceptCustomerRelationship, DeclineCustomerRelationship and EndCustomerRelationship: the one
/// lifecycle ([`lifecycle::run`]) with the rules of a customer relationship.
pub struct CustomerRelationships;

impl lifecycle::Workflow for CustomerRelationships {
    type Row = Model;
    type Parties = rules::CustomerRelationship;
    /// An accept's tenant, partners and link ([`lock_parties`]); nothing for the others.
    type Grounds = Option<rules::Grounds>;

    async fn parties(_: &DatabaseTransaction, relationship: &Model) -> Result<rules::CustomerRelationship, Error> {
        Ok(relationship.facts())
    }

    async fn lock_grounds(
        txn: &DatabaseTransaction,
        relationship: &rules::CustomerRelationship,
        transition: Transition,
    ) -> Result<Self::Grounds, Error> {
        if transition != Transition::Accept {
            return Ok(None);
        }
        let customer_id = relationship.customer;
        let customer = customers::find(txn, customer_id).await?.ok_or_else(|| Error::not_found(customer_id.name()))?;
        Ok(Some(lock_parties(txn, relationship.partner, customer, relationship.indirect_provider).await?))
    }

    async fn check(
        txn: &DatabaseTransaction,
        relationship: &Model,
        transition: Transition,
        parties: Self::Grounds,
    ) -> Result<(), Error> {
        let relationship = relationship.facts();
        match (transition, parties) {
            (Transition::Accept, Some(parties)) => rules::accept(&parties),
            (Transition::Accept, None) => Err(Error::internal("an accept locked no parties")),
            // Counted after the relationship is locked: a sale that shares it has committed by now.
            (Transition::End, _) => {
                let (partner, customer) = (relationship.partner, relationship.customer);
                let transacts = subscriptions::active_transacted_by(txn, partner, customer).await?;
                rules::end(&relationship, transacts)
            }
            (Transition::Decline | Transition::Expire, _) => Ok(()),
        }
    }

    /// Rule 8: ending a relationship ends the partner's live support assignments for the customer;
    /// rule 12: it terminates the pair's live admin relationships (in the lock order: these last).
    async fn cascade(
        txn: &DatabaseTransaction,
        row: &Model,
        transition: Transition,
        origin: &Origin,
    ) -> Result<usize, Error> {
        if transition != Transition::End {
            return Ok(0);
        }
        let (partner, customer) = (PartnerId(row.partner_id), CustomerId(row.customer_id));
        let cause = CustomerRelationshipId(row.id).name();
        let live = support_assignments::live_for(txn, partner, customer).await?;
        let ended =
            lifecycle::end_each(txn, live, origin, &cause, |assignment| assignment.facts().parties(customer)).await?;
        let terminated = terminate_with_relationship(txn, partner, customer, origin, &cause).await?;
        Ok(ended + terminated)
    }
}

pub async fn get_customer_relationship(
    db: &Database,
    caller: Principal,
    request: GetCustomerRelationshipRequest,
) -> Result<CustomerRelationship, Error> {
    let id = CustomerRelationshipId::parse("name", &request.name)?;
    let relationship = customer_relationships::read(db, id).await?;
    // Its parties see it (rule 9), or a role that reads the customer's relationships (rule 13);
    // anyone else learns nothing, not even whether it exists.
    to_proto(
        pc_server::access::to_read(
            db.reader(),
            &caller,
            ResourceKind::CustomerRelationship,
            id,
            relationship,
            Model::facts,
        )
        .await?
        .0,
    )
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
    let fetch = |conn, page| async move { customer_relationships::list(&conn, filter, page).await };
    list_page(db, &request, pages, &filter, fetch, to_proto).await
}
