//! `idempotency_keys`: request ids already seen, per caller, with the response they produced.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub principal: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: Uuid,
    pub method: String,
    pub request_hash: Vec<u8>,
    /// The encoded response; empty only inside the transaction that claimed the key.
    pub response: Option<Vec<u8>>,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
