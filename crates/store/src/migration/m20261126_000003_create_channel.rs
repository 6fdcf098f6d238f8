//! Subscriptions and support assignments. At most one ACTIVE support assignment per subscription
//! (rule 7) and one live request per (subscription, partner) are partial unique indexes.

use sea_orm_migration::prelude::*;

use super::{index, reference, resource_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    OfferId,
    ProductFamily,
    Quantity,
    SalesChannel,
    State,
}

#[derive(DeriveIden)]
enum SupportAssignments {
    Table,
    State,
    AcceptTime,
    EndTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (customer, customer_key) = reference("customer_id", "customers", false);
        let (record, record_key) = reference("partner_of_record_id", "partners", true);
        let (billing, billing_key) = reference("billing_partner_id", "partners", true);
        manager
            .create_table(
                resource_table(Subscriptions::Table)
                    .col(customer)
                    .col(ColumnDef::new(Subscriptions::OfferId).text().not_null())
                    .col(ColumnDef::new(Subscriptions::ProductFamily).text().not_null())
                    .col(ColumnDef::new(Subscriptions::Quantity).integer().not_null())
                    .col(ColumnDef::new(Subscriptions::SalesChannel).text().not_null())
                    .col(record)
                    .col(billing)
                    .col(ColumnDef::new(Subscriptions::State).text().not_null())
                    .foreign_key(&mut customer_key.clone())
                    .foreign_key(&mut record_key.clone())
                    .foreign_key(&mut billing_key.clone())
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("subscriptions_customer_idx", &["customer_id", "id"][..]),
            ("subscriptions_partner_of_record_idx", &["partner_of_record_id", "id"][..]),
            ("subscriptions_billing_partner_idx", &["billing_partner_id", "id"][..]),
        ] {
            manager.create_index(index(name, Subscriptions::Table, columns)).await?;
        }

        let (subscription, subscription_key) = reference("subscription_id", "subscriptions", false);
        let (partner, partner_key) = reference("partner_id", "partners", false);
        manager
            .create_table(
                resource_table(SupportAssignments::Table)
                    .col(subscription)
                    .col(partner)
                    .col(ColumnDef::new(SupportAssignments::State).text().not_null())
                    .col(ColumnDef::new(SupportAssignments::AcceptTime).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(SupportAssignments::EndTime).timestamp_with_time_zone().null())
                    .foreign_key(&mut subscription_key.clone())
                    .foreign_key(&mut partner_key.clone())
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("support_assignments_subscription_idx", &["subscription_id", "id"][..]),
            ("support_assignments_partner_idx", &["partner_id", "id"][..]),
        ] {
            manager.create_index(index(name, SupportAssignments::Table, columns)).await?;
        }

        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX support_assignments_one_active_key ON support_assignments (subscription_id) \
             WHERE state = 'ACTIVE'",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX support_assignments_live_pair_key ON support_assignments (subscription_id, partner_id) \
             WHERE state IN ('REQUESTED', 'ACTIVE')",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [SupportAssignments::Table.into_iden(), Subscriptions::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
