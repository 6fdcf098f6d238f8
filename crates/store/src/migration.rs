//! Schema migrations, applied in order by [`Migrator`]; the `partner-center migrate` command and
//! the dev server run them. A migration is a file `migration/m<date>_<number>_<what>.rs`; the
//! build script lists the files in name order, so a new one needs no line here. Each migration runs in one transaction on both backends, so a failed
//! migration leaves the schema as it was.
//!
//! Uniqueness rules live in the schema itself, so no race between two requests can break them:
//! tenant and primary domain per cloud, and partial unique indexes for "one live link per pair".

use sea_orm_migration::prelude::*;

// The `mod` line of every file in `migration/` and `all()`, listing them oldest first (`build.rs`).
include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        all()
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
