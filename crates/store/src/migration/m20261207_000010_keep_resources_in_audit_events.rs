//! Audit events keep the resource as the change left it (`resource_after`): its row's columns as
//! one JSON object (`crate::write::snapshot`), so the feed can show it as its Get would have then.
//! Rows written before have none.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = ColumnDef::new(Alias::new("resource_after")).text().null().to_owned();
        manager.alter_table(Table::alter().table(Alias::new("audit_events")).add_column(column).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::alter().table(Alias::new("audit_events")).drop_column(Alias::new("resource_after")).to_owned();
        manager.alter_table(table).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
