//! The `customers` table and its queries, including rule 9's "which partner reads which customer"
//! as SQL (the rule itself is `pc_domain::customers::partner_sees`).

use pc_domain::{Cloud, CustomerId, Error, PageRequest, Principal, RelationshipState, TenantId};
use sea_orm::entity::prelude::*;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::Query,
};

use crate::{
    Database, customer_relationships,
    db::{keyset_page, now, unique_violation_as},
};

/// The table `customers`: organizations that buy online services.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub display_name: String,
    pub tenant_id: Uuid,
    pub primary_domain: String,
    pub country_code: String,
    pub cloud: Cloud,
    /// The principal that created the customer; partners that created one may read it.
    pub created_by: String,
    pub revision: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

crate::write::stored_resource!(pc_domain::CustomerId);

impl Model {
    /// What the rules read of this row.
    pub fn facts(&self) -> pc_domain::customers::Customer {
        pc_domain::customers::Customer {
            id: CustomerId(self.id),
            cloud: self.cloud,
            tenant: TenantId(self.tenant_id),
            created_by: self.created_by.clone(),
        }
    }
}

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
    let row = ActiveModel {
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

/// The customer's ACTIVE relationships: what rule 9 (`pc_domain::customers::partner_sees`)
/// decides on.
pub async fn active_relationships(
    db: &impl ConnectionTrait,
    customer: CustomerId,
) -> Result<Vec<pc_domain::customer_relationships::CustomerRelationship>, Error> {
    let active = customer_relationships::Entity::find()
        .filter(customer_relationships::Column::CustomerId.eq(customer.0))
        .filter(customer_relationships::Column::State.eq(RelationshipState::Active))
        .all(db)
        .await?;
    Ok(active.iter().map(customer_relationships::Model::facts).collect())
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
            // pc_domain::customers::partner_sees, as SQL.
            let active = || {
                Query::select()
                    .column(customer_relationships::Column::CustomerId)
                    .from(customer_relationships::Entity)
                    .and_where(customer_relationships::Column::State.eq(RelationshipState::Active))
                    .to_owned()
            };
            let held = active()
                .cond_where(
                    Condition::any()
                        .add(customer_relationships::Column::PartnerId.eq(partner.0))
                        .add(customer_relationships::Column::IndirectProviderId.eq(partner.0)),
                )
                .to_owned();
            let created_and_unclaimed =
                Condition::all().add(Column::CreatedBy.eq(partner.name())).add(Column::Id.not_in_subquery(active()));
            // And the customers it holds a role of (rule 13).
            let delegated =
                crate::admin_relationships::customers_reading(db, partner, pc_domain::ResourceKind::Customer).await?;
            let mut view = Condition::any().add(created_and_unclaimed).add(Column::Id.in_subquery(held));
            if !delegated.is_empty() {
                view = view.add(Column::Id.is_in(delegated));
            }
            query = query.filter(view);
        }
    }
    if let Some(cloud) = cloud {
        query = query.filter(Column::Cloud.eq(cloud));
    }
    Ok(keyset_page(query, Column::Id, page).all(db).await?)
}
