//! Opening the database: PostgreSQL (`postgres://…`) or the embedded SQLite default
//! (`sqlite://path?mode=rwc`), with the backend quirks handled here and nowhere else.

use std::time::Duration;

use pc_domain::Error;
use sea_orm::{ConnectOptions, ConnectionTrait, DatabaseBackend, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

use crate::Migrator;

/// A connected, ready pool.
pub type Database = DatabaseConnection;

/// Connects to `url`. SQLite gets one connection: SQLite allows one writer at a time, and a pool
/// of several makes deferred transactions fail with SQLITE_BUSY instead of queueing; PostgreSQL
/// gets a pool of `max_connections`.
pub async fn connect(url: &str, max_connections: u32) -> Result<Database, Error> {
    let mut options = ConnectOptions::new(url.to_owned());
    // While the database is down, sqlx keeps retrying to connect until the acquire timeout runs
    // out: keep it short so calls fail fast with UNAVAILABLE instead of hanging.
    options.sqlx_logging(false).connect_timeout(Duration::from_secs(2)).acquire_timeout(Duration::from_secs(2));
    // No ping on every checkout: it doubled the round trips of a primary-key read (4.3k -> see
    // bench notes). A connection that died is discarded on its first error instead, and the health
    // monitor's own ping notices an outage.
    options.test_before_acquire(false);
    if url.starts_with("sqlite:") {
        options.max_connections(1).min_connections(1).map_sqlx_sqlite_opts(|opts| {
            opts.foreign_keys(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
        });
    } else {
        options.max_connections(max_connections.max(1)).min_connections(1);
    }
    Ok(sea_orm::Database::connect(options).await?)
}

/// Applies every pending migration.
pub async fn migrate(db: &Database) -> Result<(), Error> {
    Ok(Migrator::up(db, None).await?)
}

/// Whether the database answers a trivial query (for health reporting).
pub async fn ping(db: &Database) -> bool {
    db.ping().await.is_ok()
}

/// Serialises transactions that check-then-insert on one (cloud, tenant): rule 1 reads partners
/// and customers before inserting one, and two such transactions must not both pass the check.
/// PostgreSQL takes a transaction-scoped advisory lock; SQLite already runs one writer at a time.
pub async fn lock_tenant(db: &impl ConnectionTrait, cloud: &str, tenant: uuid::Uuid) -> Result<(), Error> {
    if db.get_database_backend() == DatabaseBackend::Postgres {
        let key = format!("tenant:{cloud}:{tenant}");
        db.execute_raw(sea_orm::Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [key.into()],
        ))
        .await?;
    }
    Ok(())
}

/// The current time at the precision both backends store (microseconds), so a resource returned
/// from a write equals the same resource read back later.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

/// Maps a unique-constraint violation on insert to ALREADY_EXISTS, anything else to itself.
pub(crate) fn unique_violation_as(error: sea_orm::DbErr, conflict: impl FnOnce() -> Error) -> Error {
    match error.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => conflict(),
        _ => Error::Database(error),
    }
}

/// Whether an error is a unique-constraint violation (a partial unique index losing a race).
pub fn is_unique_violation(error: &Error) -> bool {
    matches!(error, Error::Database(db) if matches!(db.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))))
}

/// Keyset pagination, the one way every list pages: rows after the page token's id, in id
/// (creation) order, one more than the page to tell whether another follows. Indexes end in `id`
/// so this stays an index range scan however deep the page.
pub(crate) fn keyset_page<E: sea_orm::EntityTrait>(
    query: sea_orm::Select<E>,
    id: impl sea_orm::ColumnTrait,
    page: pc_domain::PageRequest,
) -> sea_orm::Select<E> {
    use sea_orm::{QueryFilter, QueryOrder, QuerySelect};
    let query = match page.after {
        Some(after) => query.filter(id.gt(after)),
        None => query,
    };
    query.order_by_asc(id).limit(page.fetch_limit())
}
