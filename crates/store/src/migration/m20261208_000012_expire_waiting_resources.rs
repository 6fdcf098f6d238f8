//! Rule 15 for the two-party resources: an INVITED reseller link, a PENDING customer relationship
//! and a REQUESTED support assignment each get a deadline (`expire_time`, set when asked for from
//! the configured window), past which they are EXPIRED. Rows already waiting when this runs get
//! the default window counted from now, so a deployment does not expire years-old invitations the
//! moment it starts. Each table gets a partial index on the deadline of its waiting rows, which the
//! expiry engine reads (`crate::lifecycle::lock_due`).

use sea_orm_migration::prelude::*;

use crate::db::DEFAULT_EXPIRY_WINDOW;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each table with the state its deadline applies in.
const WAITING: [(&str, &str); 3] =
    [("reseller_links", "INVITED"), ("customer_relationships", "PENDING"), ("support_assignments", "REQUESTED")];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let deadline = chrono::Utc::now() + DEFAULT_EXPIRY_WINDOW;
        for (table, waiting) in WAITING {
            let column = Alias::new("expire_time");
            let add = Table::alter()
                .table(Alias::new(table))
                .add_column(ColumnDef::new(column.clone()).timestamp_with_time_zone().null())
                .to_owned();
            manager.alter_table(add).await?;
            let backfill = Query::update()
                .table(Alias::new(table))
                .value(column, deadline)
                .and_where(Expr::col(Alias::new("state")).eq(waiting))
                .to_owned();
            manager.exec_stmt(backfill).await?;
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "CREATE INDEX {table}_waiting_deadline_idx ON {table} (expire_time) WHERE state = '{waiting}'"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, _) in WAITING {
            let db = manager.get_connection();
            db.execute_unprepared(&format!("DROP INDEX {table}_waiting_deadline_idx")).await?;
            let drop = Table::alter().table(Alias::new(table)).drop_column(Alias::new("expire_time")).to_owned();
            manager.alter_table(drop).await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
