//! Admin relationships (rule 12): roles a customer grants a partner for a bounded time. The roles
//! are kept with the row as their names, space-separated (`roles`), so the row is the resource the
//! API and the change feed show. `expire_time` is when the current state lapses (the approval
//! deadline, then the end of access), which the expiry engine reads, indexed over the two live
//! states. A display name is unique among the live ones of a partner and customer (a partial
//! unique index, as rule 4's pairs are), so a name can be asked for again once its relationship
//! ended. Indexed too for each party's list and for the live ones of a pair, which ending a
//! customer relationship terminates.

use sea_orm_migration::prelude::*;

use super::{index, reference, resource_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AdminRelationships {
    Table,
    DisplayName,
    Roles,
    DurationDays,
    AutoExtend,
    State,
    AcceptTime,
    EndTime,
    ExpireTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (partner, partner_key) = reference("partner_id", "partners", false);
        let (customer, customer_key) = reference("customer_id", "customers", false);
        manager
            .create_table(
                resource_table(AdminRelationships::Table)
                    .col(partner)
                    .col(customer)
                    .col(ColumnDef::new(AdminRelationships::DisplayName).text().not_null())
                    .col(ColumnDef::new(AdminRelationships::Roles).text().not_null())
                    .col(ColumnDef::new(AdminRelationships::DurationDays).integer().not_null())
                    .col(ColumnDef::new(AdminRelationships::AutoExtend).boolean().not_null())
                    .col(ColumnDef::new(AdminRelationships::State).text().not_null())
                    .col(ColumnDef::new(AdminRelationships::AcceptTime).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(AdminRelationships::EndTime).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(AdminRelationships::ExpireTime).timestamp_with_time_zone().not_null())
                    .foreign_key(&mut partner_key.clone())
                    .foreign_key(&mut customer_key.clone())
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("admin_relationships_partner_idx", &["partner_id", "id"][..]),
            ("admin_relationships_customer_idx", &["customer_id", "id"][..]),
        ] {
            manager.create_index(index(name, AdminRelationships::Table, columns)).await?;
        }
        let connection = manager.get_connection();
        for statement in [
            "CREATE UNIQUE INDEX admin_relationships_live_name_idx ON admin_relationships \
             (partner_id, customer_id, display_name) WHERE state IN ('APPROVAL_PENDING', 'ACTIVE')",
            "CREATE INDEX admin_relationships_deadline_idx ON admin_relationships (expire_time) \
             WHERE state IN ('APPROVAL_PENDING', 'ACTIVE')",
        ] {
            connection.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AdminRelationships::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
