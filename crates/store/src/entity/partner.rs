//! `partners`: the program's enrolled partners.

use pc_domain::{Cloud, PartnerState, ProgramRole};
use pc_domain::{PartnerId, facts};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "partners")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub display_name: String,
    pub tenant_id: Uuid,
    pub country_code: String,
    pub cloud: Cloud,
    pub program_role: ProgramRole,
    pub state: PartnerState,
    pub revision: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

crate::write::stored_resource!(pc_domain::PartnerId, state, locked Partners);

impl Model {
    /// What the rules of `pc_domain::rules` read of this row.
    pub fn facts(&self) -> facts::Partner {
        facts::Partner { id: PartnerId(self.id), cloud: self.cloud, role: self.program_role, state: self.state }
    }
}
