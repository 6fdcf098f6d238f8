//! Queries on `subscriptions`.

use pc_api::channel::v1::subscription::State;
use pc_domain::{CustomerId, Error, PartnerId};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::{
    entity::subscription::{Column, Entity},
    enums::DbEnum,
};

pub const TABLE: &str = "subscriptions";

/// Whether an ACTIVE subscription is billed by `provider` through `reseller` (rule 8 for links).
pub async fn active_through_link(
    db: &impl ConnectionTrait,
    provider: PartnerId,
    reseller: PartnerId,
) -> Result<bool, Error> {
    let count = Entity::find()
        .filter(Column::BillingPartnerId.eq(provider.0))
        .filter(Column::PartnerOfRecordId.eq(reseller.0))
        .filter(Column::State.eq(State::Active.to_db()))
        .count(db)
        .await?;
    Ok(count > 0)
}

/// Whether `partner` is partner of record or billing partner of an ACTIVE subscription of
/// `customer` (rule 8 for customer relationships).
pub async fn active_transacted_by(
    db: &impl ConnectionTrait,
    partner: PartnerId,
    customer: CustomerId,
) -> Result<bool, Error> {
    let count = Entity::find()
        .filter(Column::CustomerId.eq(customer.0))
        .filter(Column::State.eq(State::Active.to_db()))
        .filter(
            Condition::any().add(Column::PartnerOfRecordId.eq(partner.0)).add(Column::BillingPartnerId.eq(partner.0)),
        )
        .count(db)
        .await?;
    Ok(count > 0)
}
