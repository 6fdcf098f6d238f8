//! The two-tier model and customer relationships. "One live link per pair" (rule 4) is a partial
//! unique index, so two racing invitations cannot both succeed.

use sea_orm_migration::prelude::*;

use super::{index, reference, resource_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ResellerLinks {
    Table,
    State,
    AcceptTime,
    EndTime,
}

#[derive(DeriveIden)]
enum CustomerRelationships {
    Table,
    State,
    AcceptTime,
    EndTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (provider, provider_key) = reference("provider_id", "partners", false);
        let (reseller, reseller_key) = reference("reseller_id", "partners", false);
        manager
            .create_table(
                resource_table(ResellerLinks::Table)
                    .col(provider)
                    .col(reseller)
                    .col(ColumnDef::new(ResellerLinks::State).text().not_null())
                    .col(ColumnDef::new(ResellerLinks::AcceptTime).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(ResellerLinks::EndTime).timestamp_with_time_zone().null())
                    .foreign_key(&mut provider_key.clone())
                    .foreign_key(&mut reseller_key.clone())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("reseller_links_provider_idx", ResellerLinks::Table, &["provider_id", "id"]))
            .await?;
        manager
            .create_index(index("reseller_links_reseller_idx", ResellerLinks::Table, &["reseller_id", "id"]))
            .await?;

        let (partner, partner_key) = reference("partner_id", "partners", false);
        let (customer, customer_key) = reference("customer_id", "customers", false);
        let (provider, provider_key) = reference("indirect_provider_id", "partners", true);
        manager
            .create_table(
                resource_table(CustomerRelationships::Table)
                    .col(partner)
                    .col(customer)
                    .col(provider)
                    .col(ColumnDef::new(CustomerRelationships::State).text().not_null())
                    .col(ColumnDef::new(CustomerRelationships::AcceptTime).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(CustomerRelationships::EndTime).timestamp_with_time_zone().null())
                    .foreign_key(&mut partner_key.clone())
                    .foreign_key(&mut customer_key.clone())
                    .foreign_key(&mut provider_key.clone())
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("customer_relationships_partner_idx", &["partner_id", "id"][..]),
            ("customer_relationships_customer_idx", &["customer_id", "id"][..]),
            ("customer_relationships_provider_idx", &["indirect_provider_id", "id"][..]),
        ] {
            manager.create_index(index(name, CustomerRelationships::Table, columns)).await?;
        }

        // Partial unique indexes: same syntax on PostgreSQL and SQLite.
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX reseller_links_live_pair_key ON reseller_links (provider_id, reseller_id) \
             WHERE state IN ('INVITED', 'ACTIVE')",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX customer_relationships_live_pair_key ON customer_relationships (partner_id, customer_id) \
             WHERE state IN ('PENDING', 'ACTIVE')",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [CustomerRelationships::Table.into_iden(), ResellerLinks::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
