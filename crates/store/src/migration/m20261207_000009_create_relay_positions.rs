//! `relay_positions`: where each event relay (`event-relay`, one row per NATS stream it feeds)
//! has published up to, and which relay process holds the lease to publish (`crate::relay`). The
//! position is the feed's (`transaction_id`, then `event_id`); the lease is a holder and the time
//! it lapses, in milliseconds since the epoch so both backends compare it as a number.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::create()
            .table(Alias::new("relay_positions"))
            .col(ColumnDef::new(Alias::new("relay")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("transaction_id")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("event_id")).uuid().not_null())
            .col(ColumnDef::new(Alias::new("holder")).string().not_null())
            .col(ColumnDef::new(Alias::new("lease_until_ms")).big_integer().not_null())
            .to_owned();
        manager.create_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alias::new("relay_positions")).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
