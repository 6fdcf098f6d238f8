//! Schema migrations, applied in order by [`Migrator`]; the `partner-center migrate` command and
//! the dev server run them. Each migration runs in one transaction on both backends, so a failed
//! migration leaves the schema as it was.
//!
//! Uniqueness rules live in the schema itself, so no race between two requests can break them:
//! tenant and primary domain per cloud, and partial unique indexes for "one live link per pair".

use sea_orm_migration::prelude::*;

mod m20261126_000001_create_directory;
mod m20261126_000002_create_relationships;
mod m20261126_000003_create_channel;
mod m20261126_000004_create_idempotency_keys;
mod m20261127_000005_create_tenants;
mod m20261127_000006_index_idempotency_key_age;
mod m20261207_000007_version_audit_events;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_directory::Migration),
            Box::new(m20261126_000002_create_relationships::Migration),
            Box::new(m20261126_000003_create_channel::Migration),
            Box::new(m20261126_000004_create_idempotency_keys::Migration),
            Box::new(m20261127_000005_create_tenants::Migration),
            Box::new(m20261127_000006_index_idempotency_key_age::Migration),
            Box::new(m20261207_000007_version_audit_events::Migration),
        ]
    }
}

/// Columns every resource table has: id, revision (the etag) and timestamps.
fn resource_table(table: impl IntoIden + 'static) -> TableCreateStatement {
    Table::create()
        .table(table)
        .col(ColumnDef::new(Alias::new("id")).uuid().not_null().primary_key())
        .col(ColumnDef::new(Alias::new("revision")).big_integer().not_null())
        .col(ColumnDef::new(Alias::new("create_time")).timestamp_with_time_zone().not_null())
        .col(ColumnDef::new(Alias::new("update_time")).timestamp_with_time_zone().not_null())
        .to_owned()
}

fn index(name: &str, table: impl IntoIden + 'static, columns: &[&str]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(Alias::new(*column));
    }
    index.to_owned()
}

/// A reference to a row of another resource table.
fn reference(column: &str, table: &str, nullable: bool) -> (ColumnDef, ForeignKeyCreateStatement) {
    let mut def = ColumnDef::new(Alias::new(column));
    def.uuid();
    if !nullable {
        def.not_null();
    }
    let mut key = ForeignKey::create();
    key.from_col(Alias::new(column)).to(Alias::new(table), Alias::new("id")).on_delete(ForeignKeyAction::Restrict);
    (def, key.to_owned())
}
