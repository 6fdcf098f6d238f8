//! `support_assignments`: partners hired to support subscriptions they did not sell.

use pc_domain::AssignmentState;
use pc_domain::{PartnerId, SubscriptionId, SupportAssignmentId, facts};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "support_assignments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub subscription_id: Uuid,
    pub partner_id: Uuid,
    pub state: AssignmentState,
    pub accept_time: Option<DateTimeUtc>,
    pub end_time: Option<DateTimeUtc>,
    pub revision: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

crate::write::stored_resource!(pc_domain::SupportAssignmentId, lifecycle pc_domain::AssignmentState, "SupportAssignment", locked SupportAssignments);

impl Model {
    /// What the rules of `pc_domain::rules` read of this row.
    pub fn facts(&self) -> facts::SupportAssignment {
        facts::SupportAssignment {
            id: SupportAssignmentId(self.id),
            subscription: SubscriptionId(self.subscription_id),
            partner: PartnerId(self.partner_id),
            state: self.state,
        }
    }
}
