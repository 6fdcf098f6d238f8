//! Queries on `customer_relationships` and `reseller_links` that other services' rules need.

use pc_api::{relationship::v1::customer_relationship::State, types::v1::Cloud};
use pc_domain::{Error, TenantId};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Query};

use crate::{
    entity::{customer, customer_relationship},
    enums::DbEnum,
};

/// Whether the customer with `tenant` in `cloud` holds an ACTIVE relationship with any partner
/// (rule 1: such a tenant cannot enrol as a partner).
pub async fn tenant_has_active_relationship(
    db: &impl ConnectionTrait,
    cloud: Cloud,
    tenant: TenantId,
) -> Result<bool, Error> {
    let customers_of_tenant = Query::select()
        .column(customer::Column::Id)
        .from(customer::Entity)
        .and_where(customer::Column::Cloud.eq(cloud.to_db()))
        .and_where(customer::Column::TenantId.eq(tenant.0))
        .to_owned();
    let count = customer_relationship::Entity::find()
        .filter(customer_relationship::Column::State.eq(State::Active.to_db()))
        .filter(customer_relationship::Column::CustomerId.in_subquery(customers_of_tenant))
        .count(db)
        .await?;
    Ok(count > 0)
}
