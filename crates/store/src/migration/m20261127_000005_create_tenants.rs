//! `tenants`: one row per (cloud, tenant_id) that rule 1 has checked, locked by every transaction
//! that checks rule 1 for that tenant (see `crate::locks`). A partner or customer that does not
//! exist yet has no row to lock; this table gives the tenant one, so two transactions that each
//! check "no partner and no customer with this tenant" cannot both pass. It holds no data of its
//! own and is filled on first use.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Cloud,
    TenantId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(ColumnDef::new(Tenants::Cloud).text().not_null())
                    .col(ColumnDef::new(Tenants::TenantId).uuid().not_null())
                    .primary_key(Index::create().col(Tenants::Cloud).col(Tenants::TenantId))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Tenants::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
