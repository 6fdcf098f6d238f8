//! `customer_relationships`: a partner's reseller relationship with a customer.

use pc_domain::RelationshipState;
use pc_domain::{CustomerId, CustomerRelationshipId, PartnerId, facts};
use sea_orm::entity::prelude::*;

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
    pub revision: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

crate::write::stored_resource!(pc_domain::CustomerRelationshipId, lifecycle pc_domain::RelationshipState, "CustomerRelationship", locked CustomerRelationships);

impl Model {
    /// What the rules of `pc_domain::rules` read of this row.
    pub fn facts(&self) -> facts::CustomerRelationship {
        facts::CustomerRelationship {
            id: CustomerRelationshipId(self.id),
            partner: PartnerId(self.partner_id),
            customer: CustomerId(self.customer_id),
            indirect_provider: self.indirect_provider_id.map(PartnerId),
            state: self.state,
        }
    }
}
