//! The directory: partners and customers, and the audit log every change appends to.

use sea_orm_migration::prelude::*;

use super::{index, resource_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Partners {
    Table,
    DisplayName,
    TenantId,
    CountryCode,
    Cloud,
    ProgramRole,
    State,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    DisplayName,
    TenantId,
    PrimaryDomain,
    CountryCode,
    Cloud,
    CreatedBy,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    Resource,
    Action,
    Principal,
    Change,
    CreateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                resource_table(Partners::Table)
                    .col(ColumnDef::new(Partners::DisplayName).text().not_null())
                    .col(ColumnDef::new(Partners::TenantId).uuid().not_null())
                    .col(ColumnDef::new(Partners::CountryCode).text().not_null())
                    .col(ColumnDef::new(Partners::Cloud).text().not_null())
                    .col(ColumnDef::new(Partners::ProgramRole).text().not_null())
                    .col(ColumnDef::new(Partners::State).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("partners_cloud_tenant_key", Partners::Table, &["cloud", "tenant_id"]).unique().to_owned(),
            )
            .await?;

        manager
            .create_table(
                resource_table(Customers::Table)
                    .col(ColumnDef::new(Customers::DisplayName).text().not_null())
                    .col(ColumnDef::new(Customers::TenantId).uuid().not_null())
                    .col(ColumnDef::new(Customers::PrimaryDomain).text().not_null())
                    .col(ColumnDef::new(Customers::CountryCode).text().not_null())
                    .col(ColumnDef::new(Customers::Cloud).text().not_null())
                    .col(ColumnDef::new(Customers::CreatedBy).text().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("customers_cloud_tenant_key", Customers::Table, &["cloud", "tenant_id"]).unique().to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("customers_cloud_domain_key", Customers::Table, &["cloud", "primary_domain"]).unique().to_owned(),
            )
            .await?;
        manager.create_index(index("customers_created_by_idx", Customers::Table, &["created_by", "id"])).await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(ColumnDef::new(AuditEvents::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(AuditEvents::Resource).text().not_null())
                    .col(ColumnDef::new(AuditEvents::Action).text().not_null())
                    .col(ColumnDef::new(AuditEvents::Principal).text().not_null())
                    .col(ColumnDef::new(AuditEvents::Change).text().not_null())
                    .col(ColumnDef::new(AuditEvents::CreateTime).timestamp_with_time_zone().not_null())
                    .to_owned(),
            )
            .await?;
        manager.create_index(index("audit_events_resource_idx", AuditEvents::Table, &["resource", "id"])).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [AuditEvents::Table.into_iden(), Customers::Table.into_iden(), Partners::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
