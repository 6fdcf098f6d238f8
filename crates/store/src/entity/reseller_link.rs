//! `reseller_links`: two-tier links between an indirect provider and an indirect reseller.

use pc_domain::LinkState;
use pc_domain::{PartnerId, ResellerLinkId, facts};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reseller_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub provider_id: Uuid,
    pub reseller_id: Uuid,
    pub state: LinkState,
    pub accept_time: Option<DateTimeUtc>,
    pub end_time: Option<DateTimeUtc>,
    pub revision: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

crate::write::stored_resource!(pc_domain::ResellerLinkId, lifecycle pc_domain::LinkState, "ResellerLink", locked ResellerLinks);

impl Model {
    /// What the rules of `pc_domain::rules` read of this row.
    pub fn facts(&self) -> facts::ResellerLink {
        facts::ResellerLink {
            id: ResellerLinkId(self.id),
            provider: PartnerId(self.provider_id),
            reseller: PartnerId(self.reseller_id),
            state: self.state,
        }
    }
}
