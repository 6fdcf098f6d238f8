//! Admin relationship handlers: RequestAdminRelationship, ApproveAdminRelationship,
//! DeclineAdminRelationship, TerminateAdminRelationship, GetAdminRelationship and
//! ListAdminRelationships.
//!
//! Rule 12: a partner with an ACTIVE relationship with a customer asks it for admin roles for a
//! bounded time (not in the US government cloud); the customer approves or declines; either side
//! terminates; access ends by itself at its end time, or extends by 180 days when it auto-extends
//! (the expiry engine's moves), and ending the customer relationship terminates it
//! (`customer_relationships`' cascade). The partner, the customer and operators see one.

use pc_api::relationship::v1::{
    AdminRelationship, GetAdminRelationshipRequest, ListAdminRelationshipsRequest, ListAdminRelationshipsResponse,
    RequestAdminRelationshipRequest,
};
use pc_domain::admin_relationships::{self as rules, AdminMove};
use pc_domain::{
    AdminRelationshipId, AdminRole, CustomerId, Error, Etag, Origin, PageKey, PartnerId, Principal, ResourceKind,
};
use pc_server::convert::{ProtoEnum, days, filter_enum, list_page, optional_timestamp, timestamp};
use pc_server::create::Create;
use pc_server::{expiry, lifecycle, visible::customer_for};
use pc_store::{
    ConnectionTrait, Database, DatabaseTransaction,
    admin_relationships::{self, AdminRelationshipFilter, Model},
    customer_relationships, customers,
    locks::Lock,
    partners,
};

pub fn to_proto(row: Model) -> Result<AdminRelationship, Error> {
    Ok(AdminRelationship {
        name: AdminRelationshipId(row.id).name(),
        partner: PartnerId(row.partner_id).name(),
        customer: CustomerId(row.customer_id).name(),
        roles: row.roles().into_iter().map(ProtoEnum::to_proto).collect(),
        duration: Some(days(row.duration_days)),
        auto_extend: row.auto_extend,
        state: row.state.to_proto(),
        approve_time: optional_timestamp(row.accept_time),
        end_time: optional_timestamp(row.end_time),
        expire_time: Some(timestamp(row.expire_time)),
        create_time: Some(timestamp(row.create_time)),
        update_time: Some(timestamp(row.update_time)),
        etag: Etag::render(row.revision),
        display_name: row.display_name,
    })
}

/// Locks and reads what requesting and approving decide on, in the order of `pc_store::locks`:
/// the partner FOR SHARE (rule 3), then the pair's ACTIVE customer relationship FOR SHARE, which
/// EndCustomerRelationship updates before it terminates the pair's admin relationships.
async fn lock_grounds(
    db: &impl ConnectionTrait,
    partner: PartnerId,
    customer: customers::Model,
) -> Result<rules::Grounds, Error> {
    let partner_row = partners::get_one_locked(db, partner, Lock::Share).await?;
    let relationship = customer_relationships::lock_active(db, partner, CustomerId(customer.id)).await?;
    Ok(rules::Grounds {
        partner: partner_row.facts(),
        customer: customer.facts(),
        relationship_active: relationship.is_some(),
    })
}

pub async fn request_admin_relationship(
    db: &Database,
    caller: Principal,
    request: RequestAdminRelationshipRequest,
) -> Result<AdminRelationship, Error> {
    let create = Create::new(caller, "RequestAdminRelationship", &request)?;
    let input = request.admin_relationship.ok_or_else(|| Error::invalid("admin_relationship", "is required"))?;
    let partner = PartnerId::parse("admin_relationship.partner", &input.partner)?;
    let customer_id = CustomerId::parse("admin_relationship.customer", &input.customer)?;
    let roles: Vec<Option<AdminRole>> = input.roles.iter().map(|role| AdminRole::from_proto(*role)).collect();
    let duration = input.duration.map(|d| (d.seconds, d.nanos));
    let ask = rules::ask(&input.display_name, &roles, duration, input.auto_extend)?;
    caller.require_partner_or_operator(partner, "ask for admin roles for this partner")?;

    let insert = async |txn: &DatabaseTransaction| {
        // Rule 9 first: a partner asks only a customer it may read. Then the lock order
        // (pc_store::locks::LockOrder): the partner, the pair's relationship, then the new row.
        let customer = customer_for(txn, &caller, partner, customer_id).await?;
        let grounds = lock_grounds(txn, partner, customer).await?;
        rules::grantable(&grounds)?;
        // A lapsed request of the same name expires now rather than holding the name (rule 15).
        let named = admin_relationships::named(partner, customer_id, ask.display_name.as_str());
        expiry::expire_lapsed::<AdminRelationships>(txn, named).await?;
        let deadline = db.deadline(ResourceKind::AdminRelationship);
        let row = admin_relationships::insert(txn, partner, customer_id, ask, deadline).await?;
        let parties = row.facts().parties();
        Ok((row, parties))
    };
    let relationship = create.run(db, insert, to_proto).await?;
    tracing::info!(admin_relationship = %relationship.name, "admin relationship requested");
    Ok(relationship)
}

/// ApproveAdminRelationship, DeclineAdminRelationship and TerminateAdminRelationship (and the
/// expiry engine's moves): the one lifecycle ([`lifecycle::run`]) with the rules of an admin
/// relationship.
pub struct AdminRelationships;

impl lifecycle::Workflow for AdminRelationships {
    type Row = Model;
    type Parties = rules::AdminRelationship;
    /// An approval's partner and customer relationship ([`lock_grounds`]); nothing for the others.
    type Grounds = Option<rules::Grounds>;

    async fn parties(_: &DatabaseTransaction, relationship: &Model) -> Result<rules::AdminRelationship, Error> {
        Ok(relationship.facts())
    }

    async fn lock_grounds(
        txn: &DatabaseTransaction,
        relationship: &rules::AdminRelationship,
        transition: AdminMove,
    ) -> Result<Self::Grounds, Error> {
        if transition != AdminMove::Approve {
            return Ok(None);
        }
        let customer = customers::find(txn, relationship.customer)
            .await?
            .ok_or_else(|| Error::internal(format!("{} is missing", relationship.customer)))?;
        Ok(Some(lock_grounds(txn, relationship.partner, customer).await?))
    }

    /// Rule 12 again on approval: the partner is still ACTIVE and still holds an ACTIVE
    /// relationship with the customer.
    async fn check(
        _txn: &DatabaseTransaction,
        _row: &Model,
        transition: AdminMove,
        grounds: Self::Grounds,
    ) -> Result<(), Error> {
        match (transition, grounds) {
            (AdminMove::Approve, Some(grounds)) => rules::grantable(&grounds),
            (AdminMove::Approve, None) => Err(Error::internal("an approval locked no grounds")),
            _ => Ok(()),
        }
    }

    /// At its deadline an ACTIVE one that auto-extends extends; anything else expires.
    fn lapse(row: &Model) -> AdminMove {
        if row.extends_at_end() { AdminMove::Extend } else { AdminMove::Expire }
    }
}

/// Terminates the live admin relationships of `partner` with `customer` because their customer
/// relationship `cause` ended (rule 12), locked FOR UPDATE last (`LockOrder`); returns how
/// many.
pub async fn terminate_with_relationship(
    txn: &DatabaseTransaction,
    partner: PartnerId,
    customer: CustomerId,
    origin: &Origin,
    cause: &str,
) -> Result<usize, Error> {
    let live = admin_relationships::lock_live_of_pair(txn, partner, customer).await?;
    lifecycle::move_each(txn, live, AdminMove::Terminate, origin, cause, |row| row.facts().parties()).await
}

pub async fn get_admin_relationship(
    db: &Database,
    caller: Principal,
    request: GetAdminRelationshipRequest,
) -> Result<AdminRelationship, Error> {
    let id = AdminRelationshipId::parse("name", &request.name)?;
    let relationship = admin_relationships::read(db, id).await?;
    // Its parties see it (rule 9); anyone else learns nothing, not even whether it exists.
    to_proto(
        pc_server::access::to_read(
            db.reader(),
            &caller,
            ResourceKind::AdminRelationship,
            id,
            relationship,
            Model::facts,
        )
        .await?
        .0,
    )
}

pub async fn list_admin_relationships(
    db: &Database,
    pages: &PageKey,
    caller: Principal,
    request: ListAdminRelationshipsRequest,
) -> Result<ListAdminRelationshipsResponse, Error> {
    let filter = AdminRelationshipFilter {
        viewer: caller,
        partner: PartnerId::parse_optional("partner", &request.partner)?,
        customer: CustomerId::parse_optional("customer", &request.customer)?,
        state: filter_enum("state", request.state)?,
    };
    let fetch = |conn, page| async move { admin_relationships::list(&conn, filter, page).await };
    list_page(db, &request, pages, &filter, fetch, to_proto).await
}
