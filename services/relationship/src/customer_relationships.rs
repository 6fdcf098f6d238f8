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
use pc_domain::{CustomerId, CustomerRelationshipId, Error, Etag, PageKey, PartnerId, Principal, Reason};
use pc_domain::{Lifecycle, ProgramRole, RelationshipState as State};
use pc_server::convert::{ProtoEnum, filter_enum, idempotency_key, list_page, optional_timestamp, timestamp};
use pc_store::{
    ConnectionTrait, Database, audit,
    customer_relationships::{self, RelationshipFilter, RelationshipScope},
    customers,
    entity::{customer, customer_relationship::Model, partner},
    idempotency,
    lifecycle::{self, Transition},
    locks::{Lock, lock_tenant},
    partners, reseller_links, rules, subscriptions, support_assignments,
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

/// Rule 1, checked when a relationship is asked for and again when it becomes ACTIVE: the
/// customer's tenant must not be enrolled as a partner of its cloud. The caller holds the
/// tenant's lock ([`lock_tenant`]), taken first.
async fn customer_is_not_a_partner(db: &impl ConnectionTrait, customer: &customer::Model) -> Result<(), Error> {
    let cloud = customer.cloud;
    let tenant = pc_domain::TenantId(customer.tenant_id);
    if partners::tenant_enrolled(db, cloud, tenant).await? {
        return Err(Error::rule(
            Reason::PartnerAsCustomer,
            format!(
                "{}'s tenant is enrolled as a partner; a program partner cannot be a customer",
                CustomerId(customer.id)
            ),
        ));
    }
    Ok(())
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

/// Rules 3 and 6 for an indirect reseller: the billing provider is an ACTIVE indirect provider of
/// the reseller's cloud with an ACTIVE link to it. The caller holds both partners and the link
/// locked FOR SHARE ([`lock_billing_link`]).
fn billing_provider_ready(
    reseller: &partner::Model,
    provider: &partner::Model,
    link_active: bool,
) -> Result<(), Error> {
    let (reseller_id, provider_id) = (PartnerId(reseller.id), PartnerId(provider.id));
    rules::partner_role(provider, ProgramRole::IndirectProvider, "bill a reseller's customers")?;
    rules::same_cloud((&reseller_id.name(), reseller.cloud), (&provider_id.name(), provider.cloud))?;
    rules::partner_active(provider)?;
    if !link_active {
        return Err(Error::rule(
            Reason::NoActiveResellerLink,
            format!("{reseller_id} has no ACTIVE reseller link with {provider_id}"),
        ));
    }
    Ok(())
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
        lock_tenant(txn, customer.cloud, customer.tenant_id).await?;
        let parties: Vec<_> = std::iter::once(partner_id).chain(provider_id.filter(|_| is_reseller)).collect();
        let mut parties = partners::get_locked(txn, &parties, Lock::Share).await?.into_iter();
        let partner = parties.next().ok_or_else(|| Error::not_found(partner_id.name()))?;
        let provider = parties.next();
        let link_active = lock_billing_link(txn, partner_id, provider.as_ref()).await?;
        rules::partner_active(&partner)?;
        rules::same_cloud((&request.partner, partner.cloud), (&request.customer, customer.cloud))?;
        match partner.program_role {
            ProgramRole::DirectBillPartner if provider_id.is_some() => {
                return Err(Error::invalid(
                    "indirect_provider",
                    "must be empty for a direct-bill partner, which bills itself",
                ));
            }
            ProgramRole::DirectBillPartner => {}
            ProgramRole::IndirectReseller => {
                let provider = provider
                    .ok_or_else(|| Error::invalid("indirect_provider", "is required for an indirect reseller"))?;
                billing_provider_ready(&partner, &provider, link_active)?;
            }
            ProgramRole::IndirectProvider => {
                return Err(Error::rule(
                    Reason::RoleNotAllowed,
                    format!("{partner_id} is an indirect provider, which transacts only through resellers"),
                ));
            }
        }
        customer_is_not_a_partner(txn, &customer).await?;
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

/// The relationship, if `caller` is its partner, its billing provider, its customer or an
/// operator. Others learn nothing, not even whether it exists.
async fn load_visible(
    db: &impl ConnectionTrait,
    caller: &Principal,
    id: CustomerRelationshipId,
) -> Result<Model, Error> {
    visible(caller, id, customer_relationships::find(db, id).await?)
}

/// `relationship`, if `caller` is a party to it; anyone else is PERMISSION_DENIED whether or not
/// it exists.
fn visible(caller: &Principal, id: CustomerRelationshipId, relationship: Option<Model>) -> Result<Model, Error> {
    let visible = |row: &Model| match caller {
        Principal::Operator => true,
        Principal::Partner(me) => me.0 == row.partner_id || row.indirect_provider_id == Some(me.0),
        Principal::Customer(me) => me.0 == row.customer_id,
    };
    match relationship {
        Some(row) if visible(&row) => Ok(row),
        None if caller.is_operator() => Err(Error::not_found(id.name())),
        _ => Err(Error::denied(format!("{caller} is not a party to {id}"))),
    }
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
    let seen = load_visible(&txn, &caller, id).await?;
    let (partner_id, customer_id) = (PartnerId(seen.partner_id), CustomerId(seen.customer_id));
    let allowed = match (caller, transition) {
        (Principal::Operator, _) => true,
        // The customer answers; either side ends. A billing provider only watches.
        (Principal::Customer(me), _) => me == customer_id,
        (Principal::Partner(me), Transition::End) => me == partner_id,
        (Principal::Partner(_), _) => false,
    };
    if !allowed {
        return Err(Error::denied(format!("{caller} may not {} {id}", transition.verb())));
    }
    // Lock order (pc_store::locks): an accept's tenant and partners, then the relationship.
    let accepting = match transition {
        Transition::Accept => {
            let customer =
                customers::find(&txn, customer_id).await?.ok_or_else(|| Error::not_found(customer_id.name()))?;
            lock_tenant(&txn, customer.cloud, customer.tenant_id).await?;
            let parties: Vec<_> = std::iter::once(partner_id).chain(seen.indirect_provider_id.map(PartnerId)).collect();
            let parties = partners::get_locked(&txn, &parties, Lock::Share).await?;
            let link_active = lock_billing_link(&txn, partner_id, parties.get(1)).await?;
            Some((customer, parties, link_active))
        }
        Transition::Decline | Transition::End => None,
    };
    let mut relationship = customer_relationships::find_locked(&txn, id, Lock::Update)
        .await?
        .ok_or_else(|| Error::internal(format!("{id} disappeared")))?;
    Etag::check(etag, relationship.revision, id)?;
    if !relationship.state.allows(transition) {
        return Err(Error::rule(
            Reason::InvalidTransition,
            format!("cannot {} {id}: it is {}", transition.verb(), relationship.state),
        ));
    }
    let mut ended_assignments = Vec::new();
    match (transition, accepting) {
        (Transition::Accept, Some((customer, parties, link_active))) => {
            let (partner, provider) = match parties.as_slice() {
                [partner] => (partner, None),
                [partner, provider] => (partner, Some(provider)),
                _ => return Err(Error::internal(format!("{id}'s partners did not load"))),
            };
            rules::partner_active(partner)?;
            if let Some(provider) = provider {
                billing_provider_ready(partner, provider, link_active)?;
            }
            customer_is_not_a_partner(&txn, &customer).await?;
        }
        // Counted after the relationship is locked: a sale that shares it has committed by now.
        (Transition::End, _) => {
            if subscriptions::active_transacted_by(&txn, partner_id, customer_id).await? {
                return Err(Error::rule(
                    Reason::ActiveSubscriptions,
                    format!("{partner_id} still transacts ACTIVE subscriptions of {customer_id}; cancel them first"),
                ));
            }
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
        scope: match caller {
            Principal::Operator => RelationshipScope::All,
            Principal::Partner(me) => RelationshipScope::Partner(me),
            Principal::Customer(me) => RelationshipScope::Customer(me),
        },
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
