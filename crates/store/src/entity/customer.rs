//! `customers`: organizations that buy online services.

use pc_domain::Cloud;
use pc_domain::{CustomerId, TenantId, facts};
use sea_orm::entity::prelude::*;

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
    /// What the rules of `pc_domain::rules` read of this row.
    pub fn facts(&self) -> facts::Customer {
        facts::Customer {
            id: CustomerId(self.id),
            cloud: self.cloud,
            tenant: TenantId(self.tenant_id),
            created_by: self.created_by.clone(),
        }
    }
}
