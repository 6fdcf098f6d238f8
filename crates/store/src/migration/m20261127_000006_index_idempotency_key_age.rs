//! Idempotency keys are kept for a window and then deleted by age (`crate::idempotency::forget_older_than`):
//! an index on `create_time` keeps that delete a range scan.

use sea_orm_migration::prelude::*;

use super::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(index("idempotency_keys_create_time_idx", Alias::new("idempotency_keys"), &["create_time"]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop().name("idempotency_keys_create_time_idx").table(Alias::new("idempotency_keys")).to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
