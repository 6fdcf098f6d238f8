//! Opening the database: PostgreSQL (`postgres://…`) or the embedded SQLite default
//! (`sqlite://path?mode=rwc`), with the backend quirks handled here and nowhere else.

use std::{sync::Arc, time::Duration};

use pc_domain::{Error, ResourceKind};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PrimaryKeyTrait, Statement,
    TryIntoModel,
};
use sea_orm_migration::MigratorTrait;
use uuid::Uuid;

use crate::{
    Migrator,
    point_reads::{self, PointReads},
    replica::{Replica, ReplicaOptions},
};

/// The service's database: the pool every transaction runs on, and the pool plain reads use.
///
/// On PostgreSQL they are one pool. SQLite allows one writer at a time, and a pool of several
/// writers makes deferred transactions fail with SQLITE_BUSY instead of queueing, so the primary
/// pool holds one connection; reads get read-only connections of their own, which WAL lets run
/// beside the writer, each seeing every transaction committed before it started. Without them
/// every GetPartner queued behind every write (and every other read) on that one connection.
/// Reads by primary key run on drivers of their own (see [`Database::find_by_id`]). With a
/// PostgreSQL streaming replica configured, Lists may read there ([`Database::list`]).
#[derive(Debug, Clone)]
pub struct Database {
    primary: DatabaseConnection,
    reader: DatabaseConnection,
    point_reads: Arc<PointReads>,
    /// A pool of one connection that only the health check uses: a pool busy with calls must not
    /// read as a database that is down.
    health: DatabaseConnection,
    idempotency_window: Duration,
    /// How long the change feed keeps an event ([`crate::audit::forget_old_events`]).
    event_retention: Duration,
    /// How long each kind of waiting resource waits for its answer (rule 15).
    expiry: ExpiryWindows,
    /// A streaming replica Lists read while it is fresh enough ([`crate::replica`]).
    replica: Option<Arc<Replica>>,
    /// The change feed's tail, shared by every watcher of this database ([`Self::feed_moves`]).
    feed: Arc<crate::audit::FeedTail>,
}

/// How long the change feed keeps events unless configured (`EVENT_RETENTION_HOURS`).
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long an invitation, request or transfer waits for its answer unless configured (rule 15).
pub const DEFAULT_EXPIRY_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(30);

/// How long an admin relationship waits for the customer's approval unless configured (rule 12).
pub const DEFAULT_ADMIN_APPROVAL_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(90);

/// How long each kind of waiting resource waits for its answer before it expires (rule 15):
/// an INVITED reseller link, a PENDING customer relationship, a REQUESTED support assignment, a
/// PENDING transfer, an APPROVAL_PENDING admin relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryWindows {
    pub reseller_link: chrono::TimeDelta,
    pub customer_relationship: chrono::TimeDelta,
    pub support_assignment: chrono::TimeDelta,
    pub transfer: chrono::TimeDelta,
    pub admin_relationship: chrono::TimeDelta,
}

impl Default for ExpiryWindows {
    fn default() -> Self {
        let window = DEFAULT_EXPIRY_WINDOW;
        Self {
            reseller_link: window,
            customer_relationship: window,
            support_assignment: window,
            transfer: window,
            admin_relationship: DEFAULT_ADMIN_APPROVAL_WINDOW,
        }
    }
}

impl ExpiryWindows {
    /// The window of `kind`; kinds that never wait have none, and get the default.
    pub fn window(&self, kind: ResourceKind) -> chrono::TimeDelta {
        match kind {
            ResourceKind::ResellerLink => self.reseller_link,
            ResourceKind::CustomerRelationship => self.customer_relationship,
            ResourceKind::SupportAssignment => self.support_assignment,
            ResourceKind::Transfer => self.transfer,
            ResourceKind::AdminRelationship => self.admin_relationship,
            ResourceKind::Partner | ResourceKind::Customer | ResourceKind::Subscription => DEFAULT_EXPIRY_WINDOW,
        }
    }
}

/// How long idempotency keys are kept unless configured (`IDEMPOTENCY_KEY_TTL_HOURS`).
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

impl Database {
    /// The primary's pool for reads outside a transaction: the queries a Get runs after its
    /// [`Self::find_by_id`], and Lists when there is no fresh replica ([`Self::list`]); each sees
    /// every write committed before it starts. Never write through it (on SQLite it is
    /// read-only).
    pub fn reader(&self) -> &DatabaseConnection {
        &self.reader
    }

    /// Runs a List's `read` on the read replica while it is within `REPLICA_MAX_LAG_MS` of the
    /// primary, else (no replica, a stale one, or one that cannot be reached) on [`Self::reader`].
    /// A List the replica fails to answer, or does not answer within `REPLICA_READ_TIMEOUT_MS`, is
    /// run on the primary: it still succeeds.
    /// (`read` gets its own handle on the pool: a closure over a borrowed one would make the
    /// calls' futures not `Send`.)
    pub async fn list<T, Read, Reading>(&self, read: Read) -> Result<T, Error>
    where
        Read: Fn(DatabaseConnection) -> Reading,
        Reading: Future<Output = Result<T, Error>>,
    {
        if let Some(replica) = self.replica.as_ref().filter(|replica| replica.is_fresh()) {
            match tokio::time::timeout(replica.read_timeout, read(replica.pool.clone())).await {
                // A replica that does not answer in time (stopped, partitioned) is left until
                // measured again; the primary answers this List.
                Err(_elapsed) => replica.set_unreachable("did not answer within REPLICA_READ_TIMEOUT_MS"),
                // The replica failed where the primary may not: unreachable, or a query cancelled
                // by a conflict with recovery (40001 on a hot standby). The primary answers.
                Ok(Err(ref error)) if let Some(failure) = crate::errors::database_error(error) => {
                    if crate::errors::is_connectivity(failure) {
                        replica.set_unreachable("cannot be reached");
                    }
                }
                Ok(answered) => return answered,
            }
        }
        read(self.reader.clone()).await
    }

    /// The same database, with Lists read from the streaming replica `options` names (PostgreSQL
    /// only; see [`crate::replica`]).
    pub async fn with_replica(mut self, options: &ReplicaOptions) -> Result<Self, Error> {
        if self.primary.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Err(Error::internal("DATABASE_REPLICA_URL needs a PostgreSQL DATABASE_URL"));
        }
        self.replica = Some(Replica::open(options, self.primary.clone()).await?);
        Ok(self)
    }

    /// Tells a watcher of the change feed when new events can be read ([`crate::audit::FeedTail`]).
    pub fn feed_moves(&self) -> crate::audit::FeedMoves {
        self.feed.subscribe(&self.reader)
    }

    /// The pool that runs transactions and anything that writes.
    pub fn primary(&self) -> &DatabaseConnection {
        &self.primary
    }

    /// The row of `E` whose primary key is `id`, read outside a transaction like [`Self::reader`]:
    /// every Get. It runs on a driver of its own (see [`crate::point_reads`]).
    pub async fn find_by_id<E>(&self, id: Uuid) -> Result<Option<E::Model>, sea_orm::DbErr>
    where
        E: EntityTrait,
        <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
        E::ActiveModel: TryIntoModel<E::Model>,
    {
        self.point_reads.find_by_id::<E>(&self.reader, id).await
    }

    /// How long a request_id is remembered ([`crate::idempotency`]).
    pub fn idempotency_window(&self) -> Duration {
        self.idempotency_window
    }

    pub fn event_retention(&self) -> Duration {
        self.event_retention
    }

    /// The same database, keeping events for `retention`.
    #[must_use]
    pub fn with_event_retention(mut self, retention: Duration) -> Self {
        self.event_retention = retention;
        self
    }

    /// The same database, with waiting resources expiring after `windows`.
    #[must_use]
    pub fn with_expiry(mut self, windows: ExpiryWindows) -> Self {
        self.expiry = windows;
        self
    }

    /// When a waiting resource of `kind` asked for now expires (rule 15).
    pub fn deadline(&self, kind: ResourceKind) -> chrono::DateTime<chrono::Utc> {
        now() + self.expiry.window(kind)
    }

    /// The same database, remembering request_ids for `window`.
    #[must_use]
    pub fn with_idempotency_window(mut self, window: Duration) -> Self {
        self.idempotency_window = window;
        self
    }

    /// Starts a transaction on the primary pool. Whatever it reads to check a rule it locks as
    /// the lock protocol in [`crate::locks`] says, in that protocol's order.
    ///
    /// On PostgreSQL, a call whose client set a deadline ([`crate::deadline`]) gets it as the
    /// transaction's `statement_timeout`, so the database gives up when the caller has.
    pub async fn begin(&self) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
        use sea_orm::{ConnectionTrait, TransactionTrait};
        // Most of this is the wait for a free pooled connection: the pool's queue, as a histogram.
        let started = std::time::Instant::now();
        let txn = self.primary.begin().await;
        metrics::histogram!("partner_center_db_acquire_seconds").record(started.elapsed().as_secs_f64());
        let txn = txn?;
        if let Some(left) = crate::deadline::client_time_left()
            && txn.get_database_backend() == sea_orm::DbBackend::Postgres
        {
            // 0 would mean "no limit": a deadline already reached gets the shortest one instead.
            let millis = left.as_millis().max(1);
            txn.execute_unprepared(&format!("SET LOCAL statement_timeout = {millis}")).await?;
        }
        Ok(txn)
    }

    /// How many connections each pool holds and how many of them are idle.
    pub fn pool_stats(&self) -> [PoolStats; 2] {
        [PoolStats::of("primary", &self.primary), PoolStats::of("reader", &self.reader)]
    }
}

/// The connections of one pool (`primary`: transactions; `reader`: Lists and reads outside them).
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub pool: &'static str,
    pub size: u32,
    pub idle: usize,
}

impl PoolStats {
    fn of(pool: &'static str, connection: &DatabaseConnection) -> Self {
        let (size, idle) = match connection.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                let pool = connection.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = connection.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        Self { pool, size, idle }
    }
}

/// How to connect: how many connections, and the longest any statement may run.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// PostgreSQL: the most connections in all (plus the health check's one); SQLite: the most
    /// read-only connections beside the writer.
    pub max_connections: u32,
    /// PostgreSQL's `statement_timeout` on every pooled connection: the server's longest call,
    /// so no statement outlives the call that ran it. `None` leaves the server's setting.
    pub statement_timeout: Option<Duration>,
}

/// `max_connections` connections, statements unbounded (tools, migrations, tests).
impl From<u32> for PoolOptions {
    fn from(max_connections: u32) -> Self {
        Self { max_connections, statement_timeout: None }
    }
}

/// Connects to `url`. PostgreSQL: at most `max_connections` in all, one per CPU (up to half of
/// them) for pipelined point reads, the rest a pool. SQLite: one writer plus up to
/// `max_connections` read-only connections (see [`Database`]). Either way, one more connection
/// for the health check.
pub async fn connect(url: &str, options: impl Into<PoolOptions>) -> Result<Database, Error> {
    let PoolOptions { max_connections, statement_timeout } = options.into();
    let max_connections = max_connections.max(1);
    if !url.starts_with("sqlite:") {
        // Each pipelined connection keeps one backend busy, so one per CPU the service can keep busy.
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let pipelined = cpus.min(max_connections as usize / 2);
        let (point_reads, pipelined) = match PointReads::postgres(url, pipelined) {
            Some(point_reads) => (point_reads, pipelined),
            None => (PointReads::through_sea_orm(), 0),
        };
        let pool = open(url, max_connections - pipelined as u32, 1, Backend::Postgres { statement_timeout }).await?;
        let health = open(url, 1, 1, Backend::Postgres { statement_timeout: Some(HEALTH_STATEMENT_TIMEOUT) }).await?;
        let point_reads = Arc::new(point_reads);
        return Ok(Database {
            reader: pool.clone(),
            primary: pool,
            point_reads,
            health,
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
            event_retention: DEFAULT_EVENT_RETENTION,
            expiry: ExpiryWindows::default(),
            replica: None,
            feed: Arc::default(),
        });
    }
    let primary = open(url, 1, 1, Backend::Sqlite { read_only: false }).await?;
    // An in-memory database exists only on its own connection: readers would see another one.
    if url.contains(":memory:") || url.contains("mode=memory") {
        let point_reads = Arc::new(PointReads::through_sea_orm());
        return Ok(Database {
            reader: primary.clone(),
            health: primary.clone(),
            primary,
            point_reads,
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
            event_retention: DEFAULT_EVENT_RETENTION,
            expiry: ExpiryWindows::default(),
            replica: None,
            feed: Arc::default(),
        });
    }
    // No connection up front: readers open on first use, after the primary has created the file
    // and switched it to WAL.
    let reader = open(url, max_connections, 0, Backend::Sqlite { read_only: true }).await?;
    let health = open(url, 1, 0, Backend::Sqlite { read_only: true }).await?;
    let point_reads = Arc::new(PointReads::sqlite(point_reads::sqlite_file(&primary).await?));
    Ok(Database {
        primary,
        reader,
        point_reads,
        health,
        idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
        event_retention: DEFAULT_EVENT_RETENTION,
        expiry: ExpiryWindows::default(),
        replica: None,
        feed: Arc::default(),
    })
}

/// The health check's `SELECT 1` never takes longer than this on a database that is up.
const HEALTH_STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// What kind of pool [`open`] opens.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Postgres { statement_timeout: Option<Duration> },
    Sqlite { read_only: bool },
}

/// Opens one pool.
async fn open(url: &str, max: u32, min: u32, backend: Backend) -> Result<DatabaseConnection, Error> {
    Ok(sea_orm::Database::connect(pool_options(url, max, min, backend)).await?)
}

/// Opens a PostgreSQL pool that connects on first use: a server that is down now is not an error
/// until a statement needs it (the read replica's).
pub(crate) async fn open_lazily(
    url: &str,
    max: u32,
    statement_timeout: Option<Duration>,
) -> Result<DatabaseConnection, Error> {
    let mut options = pool_options(url, max, 0, Backend::Postgres { statement_timeout });
    // Short: a List waiting for a replica that went away falls back to the primary instead.
    options.connect_lazy(true).connect_timeout(Duration::from_millis(500)).acquire_timeout(Duration::from_millis(500));
    Ok(sea_orm::Database::connect(options).await?)
}

/// How [`open`] opens a pool.
fn pool_options(url: &str, max: u32, min: u32, backend: Backend) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options.max_connections(max).min_connections(min).sqlx_logging(false);
    // While the database is down, sqlx keeps retrying to connect until the acquire timeout runs
    // out: keep it short so calls fail fast with UNAVAILABLE instead of hanging.
    options.connect_timeout(Duration::from_secs(2)).acquire_timeout(Duration::from_secs(2));
    // No ping on every checkout: it doubled the round trips of a primary-key read (4.3k -> 5.6k
    // GetPartner/s, see the README's Performance section). A connection that died is discarded on
    // its first error instead, and the health monitor's own ping notices an outage.
    options.test_before_acquire(false);
    match backend {
        Backend::Sqlite { read_only } => {
            options.map_sqlx_sqlite_opts(move |opts| {
                opts.foreign_keys(true)
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .read_only(read_only)
            });
        }
        Backend::Postgres { statement_timeout: Some(timeout) } => {
            // Sent in the startup packet: no round trip of its own.
            let millis = timeout.as_millis().max(1);
            options.map_sqlx_postgres_opts(move |opts| opts.options([("statement_timeout", millis)]));
        }
        Backend::Postgres { statement_timeout: None } => {}
    }
    options
}

/// The PostgreSQL advisory lock every process holds while it migrates (any constant, the same in
/// every version: "pc-migr" in ASCII).
const MIGRATION_LOCK: i64 = 0x0070_632d_6d69_6772;

/// Applies every pending migration. On PostgreSQL, under [`MIGRATION_LOCK`]: replicas started
/// together on an empty database (a Deployment's first rollout, a restart of all of them after an
/// upgrade) each migrate on start, and without it two of them create the same tables at once and
/// fail on the catalogue's unique index. With it the first migrates, the others wait, then find
/// nothing left to do. The lock is a session lock on a connection of its own, so migrations keep
/// their own transactions (and a future one may run outside a transaction).
pub async fn migrate(db: &Database) -> Result<(), Error> {
    if db.primary.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(Migrator::up(&db.primary, None).await?);
    }
    let options = (*db.primary.get_postgres_connection_pool().connect_options()).clone();
    let one = sea_orm::sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|error| Error::Database(Box::new(error)))?;
    let session = sea_orm::SqlxPostgresConnector::from_sqlx_postgres_pool(one);
    let statement = |sql: String| Statement::from_string(DbBackend::Postgres, sql);
    session.execute_raw(statement(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))).await?;
    let migrated = Migrator::up(&session, None).await;
    // Closing the session would release the lock too; unlocking says so.
    let unlocked = session.execute_raw(statement(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))).await;
    session.close().await.ok();
    migrated?;
    unlocked?;
    Ok(())
}

/// Whether the database answers a trivial query (for health reporting), on the health check's
/// own connection (a database busy with calls still answers it), within [`PING_TIMEOUT`]. A hung
/// host (connections open, nothing answering) sends no error, and neither PostgreSQL's
/// statement_timeout nor the pool's timeouts bound a query already sent: without a timeout here
/// health stayed SERVING for as long as the host hung. The abandoned connection is dropped, and the
/// next ping connects afresh.
pub async fn ping(db: &Database) -> bool {
    matches!(tokio::time::timeout(PING_TIMEOUT, db.health.ping()).await, Ok(Ok(())))
}

/// How long [`ping`] waits for the database's answer.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// How `backend` marks a numbered parameter in raw SQL: `$1` on PostgreSQL, `?1` on SQLite (both
/// number them, so a value used twice is bound once).
pub fn parameter_mark(backend: sea_orm::DatabaseBackend) -> char {
    if backend == sea_orm::DatabaseBackend::Postgres { '$' } else { '?' }
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
        _ => Error::from(error),
    }
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

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

    use super::*;

    async fn scalar(db: &impl ConnectionTrait, sql: &str) -> Result<i64, sea_orm::DbErr> {
        let row = db.query_one_raw(Statement::from_string(DatabaseBackend::Sqlite, sql)).await?;
        row.map_or(Ok(-1), |row| row.try_get_by_index::<i64>(0))
    }

    #[tokio::test]
    async fn sqlite_reads_run_beside_an_open_write_and_see_each_commit() {
        let path = std::env::temp_dir().join(format!("pc-store-{}.db", uuid::Uuid::now_v7()));
        let db = connect(&format!("sqlite://{}?mode=rwc", path.display()), 4).await.unwrap();
        db.primary().execute_unprepared("CREATE TABLE t (x INTEGER)").await.unwrap();

        let write = db.begin().await.unwrap();
        write.execute_unprepared("INSERT INTO t VALUES (1)").await.unwrap();
        // The writer holds SQLite's write lock; a read neither waits for it nor sees its row.
        let during = tokio::time::timeout(Duration::from_secs(1), scalar(db.reader(), "SELECT count(*) FROM t"));
        assert_eq!(during.await.ok().and_then(Result::ok), Some(0));
        write.commit().await.unwrap();
        assert_eq!(scalar(db.reader(), "SELECT count(*) FROM t").await.unwrap(), 1);

        assert!(db.reader().execute_unprepared("INSERT INTO t VALUES (2)").await.is_err(), "readers are read-only");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[tokio::test]
    async fn bundled_sqlite_does_not_recompile_statements_per_bound_value() {
        // Set in .cargo/config.toml; without it every `LIMIT ?` query is compiled on every call.
        let db = connect("sqlite::memory:", 1).await.unwrap();
        assert_eq!(scalar(db.reader(), "SELECT sqlite_compileoption_used('ENABLE_QPSG')").await.unwrap(), 1);
    }
}
