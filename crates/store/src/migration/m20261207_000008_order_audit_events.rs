//! Audit events get a place in the feed that a reader can resume from without gaps
//! (`crate::audit::Position`): `transaction_id`, the number of the transaction that wrote the event,
//! ahead of its id. On PostgreSQL it is the writer's transaction id (`pg_current_xact_id()`); on
//! SQLite, whose one writer commits transactions one at a time, a counter in `audit_sequence`.
//! Rows written before have 0: they are all committed, so they come first, in id order.
//! `audit_floor` holds the position up to which old events have been deleted (retention): a reader
//! behind it has missed events.

use sea_orm_migration::prelude::*;

use super::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let column = ColumnDef::new(Alias::new("transaction_id")).big_integer().not_null().default(0).to_owned();
        manager.alter_table(Table::alter().table(Alias::new("audit_events")).add_column(column).to_owned()).await?;
        let position = index("audit_events_position_idx", Alias::new("audit_events"), &["transaction_id", "id"]);
        manager.create_index(position).await?;
        let floor = Table::create()
            .table(Alias::new("audit_floor"))
            .col(ColumnDef::new(Alias::new("transaction_id")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("id")).uuid().not_null())
            .to_owned();
        manager.create_table(floor).await?;
        let nothing_deleted = Query::insert()
            .into_table(Alias::new("audit_floor"))
            .columns([Alias::new("transaction_id"), Alias::new("id")])
            .values_panic([i64::MIN.into(), uuid::Uuid::nil().into()])
            .to_owned();
        manager.exec_stmt(nothing_deleted).await?;
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
            let sequence = Table::create()
                .table(Alias::new("audit_sequence"))
                .col(ColumnDef::new(Alias::new("last")).big_integer().not_null())
                .to_owned();
            manager.create_table(sequence).await?;
            let first =
                Query::insert().into_table(Alias::new("audit_sequence")).columns([Alias::new("last")]).values_panic([0.into()]).to_owned();
            manager.exec_stmt(first).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
            manager.drop_table(Table::drop().table(Alias::new("audit_sequence")).to_owned()).await?;
        }
        manager.drop_table(Table::drop().table(Alias::new("audit_floor")).to_owned()).await?;
        let index = Index::drop().name("audit_events_position_idx").table(Alias::new("audit_events")).to_owned();
        manager.drop_index(index).await?;
        let table = Table::alter().table(Alias::new("audit_events")).drop_column(Alias::new("transaction_id")).to_owned();
        manager.alter_table(table).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
