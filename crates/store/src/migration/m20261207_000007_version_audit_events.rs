//! Audit events carry the schema of their stored change (`crate::audit`): rows written before the
//! typed change are schema 1, and keep it through the column's default; new rows write 2.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let schema = ColumnDef::new(Alias::new("schema")).integer().not_null().default(1).to_owned();
        manager.alter_table(Table::alter().table(Alias::new("audit_events")).add_column(schema).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::alter().table(Alias::new("audit_events")).drop_column(Alias::new("schema")).to_owned();
        manager.alter_table(table).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
