//! Idempotency keys (AIP-155): one row per (caller, request_id), written in the same transaction
//! as the change it guards, holding the encoded response to replay.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Principal,
    RequestId,
    Method,
    RequestHash,
    Response,
    CreateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(ColumnDef::new(IdempotencyKeys::Principal).text().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::RequestId).uuid().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Method).text().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::RequestHash).blob().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Response).blob().null())
                    .col(ColumnDef::new(IdempotencyKeys::CreateTime).timestamp_with_time_zone().not_null())
                    .primary_key(Index::create().col(IdempotencyKeys::Principal).col(IdempotencyKeys::RequestId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
