//! The `customer_relationships` table and its queries.

use pc_domain::{
    Cloud, CustomerId, CustomerRelationshipId, Error, PageRequest, PartnerId, Principal, RelationshipState,
    RelationshipState as State, ResourceKind, TenantId,
};
use sea_orm::entity::prelude::*;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, sea_query::Query,
};

use crate::{
    Database, customers,
    db::{keyset_page, now, unique_violation_as},
    locks::{Lock, find_locked as find_locked_row, locked},
};

/// The table `customer_relationships`: a partner's reseller relationship with a customer.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customer_relationships")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub partner_id: Uuid,
    pub customer_id: Uuid,
    pub indirect_provider_id: Option<Uuid>,
    pub state: RelationshipState,
    pub accept_time: Option<DateTimeUtc>,
    pub end_time: Option<DateTimeUtc>,
    /// When the waiting state expires (rule 15); unset for rows asked for before expiry existed.
    pub expire_time: Option<DateTimeUtc>,
    pub revision: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

crate::write::stored_resource!(pc_domain::CustomerRelationshipId, lifecycle pc_domain::RelationshipState, "CustomerRelationship", locked CustomerRelationships);

impl Model {
    /// What the rules read of this row.
    pub fn facts(&self) -> pc_domain::customer_relationships::CustomerRelationship {
        pc_domain::customer_relationships::CustomerRelationship {
            id: CustomerRelationshipId(self.id),
            partner: PartnerId(self.partner_id),
            customer: CustomerId(self.customer_id),
            indirect_provider: self.indirect_provider_id.map(PartnerId),
            state: self.state,
        }
    }
}

/// The relationship rows of one partner and customer (rule 4: one of them live at a time).
pub fn of_pair(partner: PartnerId, customer: CustomerId) -> sea_orm::Condition {
    sea_orm::Condition::all().add(Column::PartnerId.eq(partner.0)).add(Column::CustomerId.eq(customer.0))
}

/// Inserts a PENDING relationship; a live (PENDING or ACTIVE) one of the pair is ALREADY_EXISTS.
pub async fn insert(
    db: &impl ConnectionTrait,
    partner: PartnerId,
    customer: CustomerId,
    indirect_provider: Option<PartnerId>,
    expire_time: DateTimeUtc,
) -> Result<Model, Error> {
    let time = now();
    let row = ActiveModel {
        id: Set(CustomerRelationshipId::generate().0),
        partner_id: Set(partner.0),
        customer_id: Set(customer.0),
        indirect_provider_id: Set(indirect_provider.map(|p| p.0)),
        state: Set(State::Pending),
        accept_time: Set(None),
        end_time: Set(None),
        expire_time: Set(Some(expire_time)),
        revision: Set(1),
        create_time: Set(time),
        update_time: Set(time),
    };
    row.insert(db).await.map_err(|e| {
        unique_violation_as(e, || {
            Error::already_exists(
                "LIVE_RELATIONSHIP_EXISTS",
                format!("{partner} and {customer} already have a PENDING or ACTIVE relationship"),
            )
        })
    })
}

pub async fn find(db: &impl ConnectionTrait, id: CustomerRelationshipId) -> Result<Option<Model>, Error> {
    Ok(Entity::find_by_id(id.0).one(db).await?)
}

/// The relationship as last committed, if any: a read outside any transaction (a Get).
pub async fn read(db: &Database, id: CustomerRelationshipId) -> Result<Option<Model>, Error> {
    Ok(db.find_by_id::<Entity>(id.0).await?)
}

/// The relationship `id`, locked as `lock` (see [`crate::locks`]).
pub async fn find_locked(
    db: &impl ConnectionTrait,
    id: CustomerRelationshipId,
    lock: Lock,
) -> Result<Option<Model>, Error> {
    find_locked_row::<Entity>(db, id.0, lock).await
}

/// The ACTIVE relationship between `partner` and `customer`, if any, locked FOR SHARE
/// (`LockOrder::CustomerRelationships`): the caller's rule depends on it staying ACTIVE until the
/// caller commits.
pub async fn lock_active(
    db: &impl ConnectionTrait,
    partner: PartnerId,
    customer: CustomerId,
) -> Result<Option<Model>, Error> {
    let query = Entity::find()
        .filter(Column::PartnerId.eq(partner.0))
        .filter(Column::CustomerId.eq(customer.0))
        .filter(Column::State.eq(State::Active));
    Ok(locked(query, Lock::Share).one(db).await?)
}

/// The billing provider the live (PENDING or ACTIVE) relationship of `partner` and `customer`
/// names, read without a lock: a relationship's provider never changes, and a sale must lock the
/// provider before the relationship (see [`crate::locks`]).
pub async fn billing_provider_of(
    db: &impl ConnectionTrait,
    partner: PartnerId,
    customer: CustomerId,
) -> Result<Option<PartnerId>, Error> {
    let live = Entity::find()
        .filter(Column::PartnerId.eq(partner.0))
        .filter(Column::CustomerId.eq(customer.0))
        .filter(Column::State.is_in([State::Pending, State::Active]))
        .one(db)
        .await?;
    Ok(live.and_then(|row| row.indirect_provider_id).map(PartnerId))
}

/// Whether the customer with `tenant` in `cloud` holds an ACTIVE relationship with any partner
/// (rule 1: such a tenant cannot enrol as a partner).
pub async fn tenant_has_active_relationship(
    db: &impl ConnectionTrait,
    cloud: Cloud,
    tenant: TenantId,
) -> Result<bool, Error> {
    let customers_of_tenant = Query::select()
        .column(customers::Column::Id)
        .from(customers::Entity)
        .and_where(customers::Column::Cloud.eq(cloud))
        .and_where(customers::Column::TenantId.eq(tenant.0))
        .to_owned();
    let count = Entity::find()
        .filter(Column::State.eq(State::Active))
        .filter(Column::CustomerId.in_subquery(customers_of_tenant))
        .count(db)
        .await?;
    Ok(count > 0)
}

/// ListCustomerRelationships filters.
#[derive(Debug, Clone, Copy)]
pub struct RelationshipFilter {
    /// Who lists: its view (rule 9, `pc_domain::customer_relationships::may_see`, as SQL)
    /// bounds the list; the other fields narrow it.
    pub viewer: Principal,
    pub partner: Option<PartnerId>,
    pub customer: Option<CustomerId>,
    pub state: Option<State>,
}

/// One page of relationships in id (creation) order, plus one extra row.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: RelationshipFilter,
    page: PageRequest,
) -> Result<Vec<Model>, Error> {
    let mut query = Entity::find();
    match filter.viewer {
        Principal::Operator => {}
        Principal::Partner(party) => {
            // Its own, and those of the customers a role of it reads them of (rule 13).
            let delegated =
                crate::admin_relationships::customers_reading(db, party, ResourceKind::CustomerRelationship).await?;
            let mut view =
                Condition::any().add(Column::PartnerId.eq(party.0)).add(Column::IndirectProviderId.eq(party.0));
            if !delegated.is_empty() {
                view = view.add(Column::CustomerId.is_in(delegated));
            }
            query = query.filter(view);
        }
        Principal::Customer(customer) => query = query.filter(Column::CustomerId.eq(customer.0)),
    }
    if let Some(partner) = filter.partner {
        query = query.filter(Column::PartnerId.eq(partner.0));
    }
    if let Some(customer) = filter.customer {
        query = query.filter(Column::CustomerId.eq(customer.0));
    }
    if let Some(state) = filter.state {
        query = query.filter(Column::State.eq(state));
    }
    Ok(keyset_page(query, Column::Id, page).all(db).await?)
}
