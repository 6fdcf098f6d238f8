//! `subscriptions`: online services customers hold, bought through the program or elsewhere.

use pc_domain::{CustomerId, PartnerId, SubscriptionId, facts};
use pc_domain::{ProductFamily, SalesChannel, SubscriptionState};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer_id: Uuid,
    pub offer_id: String,
    pub product_family: ProductFamily,
    pub quantity: i32,
    pub sales_channel: SalesChannel,
    pub partner_of_record_id: Option<Uuid>,
    pub billing_partner_id: Option<Uuid>,
    pub state: SubscriptionState,
    pub revision: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

crate::write::stored_resource!(pc_domain::SubscriptionId, state, locked Subscriptions);

impl Model {
    /// What the rules of `pc_domain::rules` read of this row.
    pub fn facts(&self) -> facts::Subscription {
        facts::Subscription {
            id: SubscriptionId(self.id),
            customer: CustomerId(self.customer_id),
            partner_of_record: self.partner_of_record_id.map(PartnerId),
            billing_partner: self.billing_partner_id.map(PartnerId),
            quantity: self.quantity,
            state: self.state,
        }
    }
}
