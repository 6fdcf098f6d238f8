//! Reads by primary key outside a transaction, the query behind every Get: SeaORM writes the
//! statement (once per table) and the model is built through its ActiveModel, but the statement
//! runs on the driver directly.
//!
//! A primary-key read is the cheapest query the database answers, so the layers around it
//! showed: building the SELECT afresh on every call and SeaORM's boxed futures around sqlx's
//! (PostgreSQL); on SQLite, sqlx drives each connection from a thread of its own, a query is a
//! message to that thread and every row a message back, and those two thread wake-ups cost more
//! than the read (a quarter of the server's CPU went to sqlx's worker threads, and a tenth more
//! to the kernel switching to them; see the README's Performance section). So on SQLite the read
//! runs inline through rusqlite: one row from a WAL database never waits for the writer and
//! touches a few cached pages, a short computation like any other on a runtime thread. Lists,
//! whose cost grows with the page, and every transaction stay on sqlx.
//!
//! SQLite stores no Rust types: a `uuid` column holds the 16-byte blob sqlx binds, a timestamp
//! the RFC 3339 text sqlx writes, and `integer` is both `i32` and `i64`. Every column is decoded
//! by the type its entity declares, as SeaORM would.

use std::{
    collections::HashMap,
    path::PathBuf,
    str::FromStr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ColumnType, ConnAcquireErr, DbBackend, DbErr, EntityTrait, IdenStatic,
    PrimaryKeyTrait, QueryTrait, RuntimeErr, TryIntoModel, Value, sqlx,
};
use uuid::Uuid;

/// Runs [`crate::Database::find_by_id`] on one backend.
#[derive(Debug)]
pub(crate) struct PointReads {
    driver: Driver,
    /// The SELECT by primary key, per table, as SeaORM writes it for the driver's backend.
    statements: Mutex<HashMap<&'static str, Arc<str>>>,
}

#[derive(Debug)]
enum Driver {
    Postgres,
    Sqlite(SqliteConnections),
    /// An in-memory SQLite database exists only on SeaORM's one connection: read through it.
    SeaOrm,
}

impl PointReads {
    pub(crate) fn postgres() -> Self {
        Self { driver: Driver::Postgres, statements: Mutex::default() }
    }

    pub(crate) fn sqlite(file: PathBuf) -> Self {
        let connections = SqliteConnections { file, idle: Mutex::default() };
        Self { driver: Driver::Sqlite(connections), statements: Mutex::default() }
    }

    pub(crate) fn through_sea_orm() -> Self {
        Self { driver: Driver::SeaOrm, statements: Mutex::default() }
    }

    /// The row of `E` whose primary key is `id`; `pool` is the reader (sqlx's pool).
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
            Driver::Postgres => {
                let sql = self.statement::<E>(DbBackend::Postgres, id);
                postgres_find_by_id::<E>(pool.get_postgres_connection_pool(), sql, id).await
            }
            Driver::Sqlite(connections) => connections.find_by_id::<E>(&self.statement::<E>(DbBackend::Sqlite, id), id),
            Driver::SeaOrm => E::find_by_id(id).one(pool).await,
        }
    }

    fn statement<E>(&self, backend: DbBackend, id: Uuid) -> Arc<str>
    where
        E: EntityTrait,
        <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
    {
        let mut statements = lock(&self.statements);
        let sql =
            statements.entry(E::default().table_name()).or_insert_with(|| E::find_by_id(id).build(backend).sql.into());
        Arc::clone(sql)
    }
}

async fn postgres_find_by_id<E>(pool: &sqlx::PgPool, sql: Arc<str>, id: Uuid) -> Result<Option<E::Model>, DbErr>
where
    E: EntityTrait,
    E::ActiveModel: TryIntoModel<E::Model>,
{
    use sqlx::{Column, Row};
    // The statement is SeaORM's, with the id bound as a parameter: no text from the caller.
    let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id);
    let Some(row) = query.fetch_optional(pool).await.map_err(sqlx_error)? else {
        return Ok(None);
    };
    let mut model = <E::ActiveModel as ActiveModelTrait>::default();
    for (index, column) in row.columns().iter().enumerate() {
        let column = entity_column::<E>(column.name())?;
        let get = sqlx_error;
        let value = match column.def().get_column_type() {
            ColumnType::Uuid => Value::Uuid(row.try_get(index).map_err(get)?),
            ColumnType::TimestampWithTimeZone => Value::ChronoDateTimeUtc(row.try_get(index).map_err(get)?),
            ColumnType::String(_) | ColumnType::Text => Value::String(row.try_get(index).map_err(get)?),
            ColumnType::Integer => Value::Int(row.try_get(index).map_err(get)?),
            ColumnType::BigInteger => Value::BigInt(row.try_get(index).map_err(get)?),
            ColumnType::Blob | ColumnType::Binary(_) | ColumnType::VarBinary(_) => {
                Value::Bytes(row.try_get(index).map_err(get)?)
            }
            other => return Err(type_error(format!("column {}: no decoding for {other:?}", column.as_str()))),
        };
        model.try_set(column, value)?;
    }
    model.try_into_model().map(Some)
}

/// Read-only connections to one SQLite file, each used by one thread at a time.
#[derive(Debug)]
struct SqliteConnections {
    file: PathBuf,
    /// Idle connections. A read holds one only while it runs, without awaiting, so no more are
    /// ever open than runtime threads that read at once.
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl SqliteConnections {
    fn find_by_id<E>(&self, sql: &str, id: Uuid) -> Result<Option<E::Model>, DbErr>
    where
        E: EntityTrait,
        E::ActiveModel: TryIntoModel<E::Model>,
    {
        let connection = match lock(&self.idle).pop() {
            Some(connection) => connection,
            None => self.open()?,
        };
        let row = sqlite_find_by_id::<E>(&connection, sql, id);
        // A failed statement leaves the connection sound: SQLite reports errors per statement.
        lock(&self.idle).push(connection);
        row
    }

    fn open(&self) -> Result<rusqlite::Connection, DbErr> {
        use rusqlite::OpenFlags;
        // NO_MUTEX: a connection is only ever used by the one thread that took it.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = rusqlite::Connection::open_with_flags(&self.file, flags).map_err(sqlite_connection_error)?;
        // Waits only while the writer checkpoints or recovers the WAL, never for an ordinary write.
        connection.busy_timeout(Duration::from_secs(5)).map_err(sqlite_connection_error)?;
        Ok(connection)
    }
}

fn sqlite_find_by_id<E>(connection: &rusqlite::Connection, sql: &str, id: Uuid) -> Result<Option<E::Model>, DbErr>
where
    E: EntityTrait,
    E::ActiveModel: TryIntoModel<E::Model>,
{
    let mut statement = connection.prepare_cached(sql).map_err(sqlite_query_error)?;
    let columns = statement.column_names().into_iter().map(entity_column::<E>).collect::<Result<Vec<_>, _>>()?;
    // sqlx binds a Uuid as its 16 bytes; so does this, or nothing would match.
    let mut rows = statement.query([id.as_bytes().as_slice()]).map_err(sqlite_query_error)?;
    let Some(row) = rows.next().map_err(sqlite_query_error)? else { return Ok(None) };
    let mut model = <E::ActiveModel as ActiveModelTrait>::default();
    for (index, column) in columns.into_iter().enumerate() {
        let value = row.get_ref(index).map_err(sqlite_query_error)?;
        model.try_set(column, sqlite_value(value, column.def().get_column_type(), column.as_str())?)?;
    }
    model.try_into_model().map(Some)
}

/// A SQLite column as sqlx decodes it into the type its entity declares.
fn sqlite_value(value: rusqlite::types::ValueRef<'_>, column_type: &ColumnType, column: &str) -> Result<Value, DbErr> {
    use rusqlite::types::ValueRef as Sql;
    let mismatch = || type_error(format!("column {column}: {:?} is not a {column_type:?}", value.data_type()));
    let text = |bytes| std::str::from_utf8(bytes).map_err(|_| mismatch());
    Ok(match (column_type, value) {
        (ColumnType::Uuid, Sql::Null) => Value::Uuid(None),
        (ColumnType::Uuid, Sql::Blob(bytes)) => Value::Uuid(Some(Uuid::from_slice(bytes).map_err(|_| mismatch())?)),
        (ColumnType::TimestampWithTimeZone, Sql::Null) => Value::ChronoDateTimeUtc(None),
        (ColumnType::TimestampWithTimeZone, Sql::Text(bytes)) => {
            let time = DateTime::parse_from_rfc3339(text(bytes)?).map_err(|_| mismatch())?;
            Value::ChronoDateTimeUtc(Some(time.with_timezone(&Utc)))
        }
        (ColumnType::String(_) | ColumnType::Text, Sql::Null) => Value::String(None),
        (ColumnType::String(_) | ColumnType::Text, Sql::Text(bytes)) => Value::String(Some(text(bytes)?.to_owned())),
        (ColumnType::Integer, Sql::Null) => Value::Int(None),
        (ColumnType::Integer, Sql::Integer(v)) => Value::Int(Some(i32::try_from(v).map_err(|_| mismatch())?)),
        (ColumnType::BigInteger, Sql::Null) => Value::BigInt(None),
        (ColumnType::BigInteger, Sql::Integer(v)) => Value::BigInt(Some(v)),
        (ColumnType::Blob | ColumnType::Binary(_) | ColumnType::VarBinary(_), Sql::Null) => Value::Bytes(None),
        (ColumnType::Blob | ColumnType::Binary(_) | ColumnType::VarBinary(_), Sql::Blob(bytes)) => {
            Value::Bytes(Some(bytes.to_vec()))
        }
        _ => return Err(mismatch()),
    })
}

fn entity_column<E: EntityTrait>(name: &str) -> Result<E::Column, DbErr> {
    E::Column::from_str(name)
        .map_err(|_| type_error(format!("{name} is not a column of {}", E::default().table_name())))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// As SeaORM maps sqlx's errors, so callers tell an outage from a bad query the same way.
fn sqlx_error(error: sqlx::Error) -> DbErr {
    match error {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        error @ (sqlx::Error::Io(_) | sqlx::Error::Tls(_)) => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(error))),
        error => DbErr::Query(RuntimeErr::SqlxError(Arc::new(error))),
    }
}

fn sqlite_connection_error(error: rusqlite::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(format!("SQLite reader: {error}")))
}

fn sqlite_query_error(error: rusqlite::Error) -> DbErr {
    DbErr::Query(RuntimeErr::Internal(format!("SQLite reader: {error}")))
}

fn type_error(message: String) -> DbErr {
    DbErr::Type(format!("point read: {message}"))
}

/// The file behind `primary`'s main database, for the readers to open.
pub(crate) async fn sqlite_file(primary: &sea_orm::DatabaseConnection) -> Result<PathBuf, DbErr> {
    use sea_orm::ConnectionTrait;
    let statement =
        sea_orm::Statement::from_string(DbBackend::Sqlite, "SELECT file FROM pragma_database_list WHERE name = 'main'");
    let row = primary.query_one_raw(statement).await?.ok_or_else(|| DbErr::Custom("no main database".into()))?;
    Ok(PathBuf::from(row.try_get_by_index::<String>(0)?))
}
