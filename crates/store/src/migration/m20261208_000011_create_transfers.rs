//! Transfers (rule 11): the target asks the source to hand over subscriptions of a customer. The
//! subscriptions it moves are kept with it as their ids, space-separated (`subscription_ids`), so
//! the row is the resource the API and the change feed show; no two PENDING transfers share one,
//! which creating a transfer checks under the subscriptions' locks (`crate::locks`). Indexed for
//! that check (a customer's PENDING transfers), for each party's list, and for the expiry engine
//! (PENDING transfers by deadline).

use sea_orm_migration::prelude::*;

use super::{index, reference, resource_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Transfers {
    Table,
    SubscriptionIds,
    State,
    AcceptTime,
    EndTime,
    ExpireTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (customer, customer_key) = reference("customer_id", "customers", false);
        let (source, source_key) = reference("source_partner_id", "partners", false);
        let (target, target_key) = reference("target_partner_id", "partners", false);
        let (provider, provider_key) = reference("indirect_provider_id", "partners", true);
        manager
            .create_table(
                resource_table(Transfers::Table)
                    .col(customer)
                    .col(source)
                    .col(target)
                    .col(provider)
                    .col(ColumnDef::new(Transfers::SubscriptionIds).text().not_null())
                    .col(ColumnDef::new(Transfers::State).text().not_null())
                    .col(ColumnDef::new(Transfers::AcceptTime).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Transfers::EndTime).timestamp_with_time_zone().null())
                    .col(ColumnDef::new(Transfers::ExpireTime).timestamp_with_time_zone().not_null())
                    .foreign_key(&mut customer_key.clone())
                    .foreign_key(&mut source_key.clone())
                    .foreign_key(&mut target_key.clone())
                    .foreign_key(&mut provider_key.clone())
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("transfers_customer_state_idx", &["customer_id", "state"][..]),
            ("transfers_source_partner_idx", &["source_partner_id", "id"][..]),
            ("transfers_target_partner_idx", &["target_partner_id", "id"][..]),
        ] {
            manager.create_index(index(name, Transfers::Table, columns)).await?;
        }
        manager
            .get_connection()
            .execute_unprepared("CREATE INDEX transfers_pending_deadline_idx ON transfers (expire_time) WHERE state = 'PENDING'")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Transfers::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
