//! `audit_events`: the append-only log of every state change.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Name of the changed resource, e.g. `partners/{id}`.
    pub resource: String,
    /// The method that changed it, e.g. `SuspendPartner`.
    pub action: String,
    /// The caller, e.g. `operator`.
    pub principal: String,
    /// The change as a JSON object, in the form `schema` says (`crate::audit`).
    pub change: String,
    /// The version of the stored form: 1 before the typed change, 2 since.
    pub schema: i32,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
