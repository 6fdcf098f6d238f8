//! Reads by primary key outside a transaction, the query behind every Get: SeaORM writes the
//! statement (once per table) and the model is built through its ActiveModel, but the statement
//! runs on a driver of its own beside SeaORM's pools.
//!
//! A primary-key read is the cheapest query the database answers, so the layers around it
//! showed (see the README's Performance section). On SQLite, sqlx drives each connection from a
//! thread of its own, and the two thread wake-ups per query cost more than the read: it runs
//! inline through rusqlite instead ([`sqlite`]). On PostgreSQL, sqlx runs one query per pooled
//! connection at a time, so every read paid its own system calls and backend wake-up: reads are
//! pipelined on a few tokio-postgres connections instead ([`postgres`]). Lists, whose cost grows
//! with the page, and every transaction stay on SeaORM.
//!
//! Every column is decoded by the type its entity declares, as SeaORM would.

use std::{
    collections::HashMap,
    path::PathBuf,
    str::FromStr,
    sync::{Arc, Mutex, MutexGuard},
};

use sea_orm::{DbBackend, DbErr, EntityTrait, PrimaryKeyTrait, QueryTrait, TryIntoModel};
use uuid::Uuid;

mod postgres;
mod sqlite;

pub use postgres::APPLICATION_NAME as POINT_READS_APPLICATION_NAME;
pub(crate) use sqlite::sqlite_file;

/// Runs [`crate::Database::find_by_id`] on one backend.
#[derive(Debug)]
pub(crate) struct PointReads {
    driver: Driver,
    /// The SELECT by primary key, per table, as SeaORM writes it for SQLite. (PostgreSQL prepares
    /// it once per connection and keeps the prepared statement instead.)
    statements: Mutex<HashMap<&'static str, Arc<str>>>,
}

#[derive(Debug)]
enum Driver {
    Postgres(Box<postgres::PostgresReaders>),
    Sqlite(sqlite::SqliteConnections),
    /// Through SeaORM's reader: an in-memory SQLite database exists only on SeaORM's one
    /// connection; a PostgreSQL URL tokio-postgres does not read, or too few connections to spare.
    SeaOrm,
}

impl PointReads {
    /// Reads pipelined on `connections` connections of their own to `url`; `None` when there are
    /// none or tokio-postgres does not read the URL.
    pub(crate) fn postgres(url: &str, connections: usize) -> Option<Self> {
        let readers = postgres::PostgresReaders::new(url, connections)?;
        Some(Self { driver: Driver::Postgres(Box::new(readers)), statements: Mutex::default() })
    }

    pub(crate) fn sqlite(file: PathBuf) -> Self {
        Self { driver: Driver::Sqlite(sqlite::SqliteConnections::new(file)), statements: Mutex::default() }
    }

    pub(crate) fn through_sea_orm() -> Self {
        Self { driver: Driver::SeaOrm, statements: Mutex::default() }
    }

    /// The row of `E` whose primary key is `id`; `pool` is the reader, for [`Driver::SeaOrm`].
    pub(crate) async fn find_by_id<E>(
        &self,
        pool: &sea_orm::DatabaseConnection,
        id: Uuid,
    ) -> Result<Option<E::Model>, DbErr>
    where
        E: EntityTrait,
        <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
        E::ActiveModel: TryIntoModel<E::Model>,
    {
        match &self.driver {
            Driver::Postgres(readers) => readers.find_by_id::<E>(id).await,
            Driver::Sqlite(connections) => connections.find_by_id::<E>(&self.sqlite_statement::<E>(id), id),
            Driver::SeaOrm => E::find_by_id(id).one(pool).await,
        }
    }

    /// The SQL rusqlite's statement cache is keyed by, built once per table.
    fn sqlite_statement<E>(&self, id: Uuid) -> Arc<str>
    where
        E: EntityTrait,
        <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
    {
        let mut statements = lock(&self.statements);
        let sql = statements
            .entry(E::default().table_name())
            .or_insert_with(|| E::find_by_id(id).build(DbBackend::Sqlite).sql.into());
        Arc::clone(sql)
    }
}

pub(super) fn entity_column<E: EntityTrait>(name: &str) -> Result<E::Column, DbErr> {
    E::Column::from_str(name)
        .map_err(|_| type_error(format!("{name} is not a column of {}", E::default().table_name())))
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn type_error(message: String) -> DbErr {
    DbErr::Type(format!("point read: {message}"))
}
