//! Queries on `customers`, including rule 9's "which partner reads which customer" as SQL (the
//! rule itself is `pc_domain::rules::customers::partner_sees`).

use pc_domain::{Cloud, RelationshipState};
use pc_domain::{CustomerId, Error, PageRequest, Principal, TenantId, facts};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::Query,
};

use crate::{
    Database,
    db::{keyset_page, now, unique_violation_as},
    entity::{
        customer::{self, Column, Entity, Model},
        customer_relationship,
    },
};

/// A customer about to be created, already validated.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub display_name: String,
    pub tenant_id: TenantId,
    pub primary_domain: String,
    pub country_code: String,
    pub cloud: Cloud,
    /// The creating principal's name.
    pub created_by: String,
}

/// Inserts a customer; a tenant or primary domain already taken in that cloud is ALREADY_EXISTS.
pub async fn insert(db: &impl ConnectionTrait, new: NewCustomer) -> Result<Model, Error> {
    let time = now();
    let domain = new.primary_domain.clone();
    let tenant = new.tenant_id.0;
    let row = customer::ActiveModel {
        id: Set(CustomerId::generate().0),
        display_name: Set(new.display_name),
        tenant_id: Set(new.tenant_id.0),
        primary_domain: Set(new.primary_domain),
        country_code: Set(new.country_code),
        cloud: Set(new.cloud),
        created_by: Set(new.created_by),
        revision: Set(1),
        create_time: Set(time),
        update_time: Set(time),
    };
    row.insert(db).await.map_err(|e| {
        unique_violation_as(e, || {
            Error::already_exists(
                "CUSTOMER_ALREADY_EXISTS",
                format!("a customer with tenant {tenant} or primary domain {domain} already exists in this cloud"),
            )
        })
    })
}

pub async fn find(db: &impl ConnectionTrait, id: CustomerId) -> Result<Option<Model>, Error> {
    Ok(Entity::find_by_id(id.0).one(db).await?)
}

/// The customer as last committed, if any: a read outside any transaction (GetCustomer).
pub async fn read(db: &Database, id: CustomerId) -> Result<Option<Model>, Error> {
    Ok(db.find_by_id::<Entity>(id.0).await?)
}

/// The customer's ACTIVE relationships: what rule 9 (`pc_domain::rules::customers::partner_sees`)
/// decides on.
pub async fn active_relationships(
    db: &impl ConnectionTrait,
    customer: CustomerId,
) -> Result<Vec<facts::CustomerRelationship>, Error> {
    let active = customer_relationship::Entity::find()
        .filter(customer_relationship::Column::CustomerId.eq(customer.0))
        .filter(customer_relationship::Column::State.eq(RelationshipState::Active))
        .all(db)
        .await?;
    Ok(active.iter().map(customer_relationship::Model::facts).collect())
}

/// One page of the customers `viewer` may read, in id (creation) order, plus one extra row.
pub async fn list(
    db: &impl ConnectionTrait,
    viewer: Principal,
    cloud: Option<Cloud>,
    page: PageRequest,
) -> Result<Vec<Model>, Error> {
    let mut query = Entity::find();
    match viewer {
        Principal::Operator => {}
        Principal::Customer(id) => query = query.filter(Column::Id.eq(id.0)),
        Principal::Partner(partner) => {
            // pc_domain::rules::customers::partner_sees, as SQL.
            let active = || {
                Query::select()
                    .column(customer_relationship::Column::CustomerId)
                    .from(customer_relationship::Entity)
                    .and_where(customer_relationship::Column::State.eq(RelationshipState::Active))
                    .to_owned()
            };
            let held = active()
                .cond_where(
                    Condition::any()
                        .add(customer_relationship::Column::PartnerId.eq(partner.0))
                        .add(customer_relationship::Column::IndirectProviderId.eq(partner.0)),
                )
                .to_owned();
            let created_and_unclaimed =
                Condition::all().add(Column::CreatedBy.eq(partner.name())).add(Column::Id.not_in_subquery(active()));
            query = query.filter(Condition::any().add(created_and_unclaimed).add(Column::Id.in_subquery(held)));
        }
    }
    if let Some(cloud) = cloud {
        query = query.filter(Column::Cloud.eq(cloud));
    }
    Ok(keyset_page(query, Column::Id, page).all(db).await?)
}
