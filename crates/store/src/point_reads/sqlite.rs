//! SQLite point reads, inline through rusqlite on read-only connections to the database file.
//!
//! sqlx drives each SQLite connection from a thread of its own: a query is a message to that
//! thread and every row a message back, and those two thread wake-ups cost more than the read (a
//! quarter of the server's CPU went to sqlx's worker threads, and a tenth more to the kernel
//! switching to them). One row from a WAL database never waits for the writer and touches a few
//! cached pages, a short computation like any other on a runtime thread, so it runs right there.
//!
//! SQLite stores no Rust types: a `uuid` column holds the 16-byte blob sqlx binds, a timestamp
//! the RFC 3339 text sqlx writes, and `integer` is both `i32` and `i64`.

use std::{path::PathBuf, sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ColumnType, DbBackend, DbErr, EntityTrait, IdenStatic, RuntimeErr, TryIntoModel,
    Value,
};
use uuid::Uuid;

use super::{entity_column, lock, type_error};

/// Read-only connections to one SQLite file, each used by one thread at a time.
#[derive(Debug)]
pub(super) struct SqliteConnections {
    file: PathBuf,
    /// Idle connections. A read holds one only while it runs, without awaiting, so no more are
    /// ever open than runtime threads that read at once.
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl SqliteConnections {
    pub(super) fn new(file: PathBuf) -> Self {
        Self { file, idle: Mutex::default() }
    }

    pub(super) fn find_by_id<E>(&self, sql: &str, id: Uuid) -> Result<Option<E::Model>, DbErr>
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
        // SQLite keeps a boolean as the integer 0 or 1.
        (ColumnType::Boolean, Sql::Null) => Value::Bool(None),
        (ColumnType::Boolean, Sql::Integer(v)) => Value::Bool(Some(v != 0)),
        (ColumnType::BigInteger, Sql::Null) => Value::BigInt(None),
        (ColumnType::BigInteger, Sql::Integer(v)) => Value::BigInt(Some(v)),
        (ColumnType::Blob | ColumnType::Binary(_) | ColumnType::VarBinary(_), Sql::Null) => Value::Bytes(None),
        (ColumnType::Blob | ColumnType::Binary(_) | ColumnType::VarBinary(_), Sql::Blob(bytes)) => {
            Value::Bytes(Some(bytes.to_vec()))
        }
        _ => return Err(mismatch()),
    })
}

fn sqlite_connection_error(error: rusqlite::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::Internal(format!("SQLite reader: {error}")))
}

fn sqlite_query_error(error: rusqlite::Error) -> DbErr {
    DbErr::Query(RuntimeErr::Internal(format!("SQLite reader: {error}")))
}

/// The file behind `primary`'s main database, for the readers to open.
pub(crate) async fn sqlite_file(primary: &sea_orm::DatabaseConnection) -> Result<PathBuf, DbErr> {
    use sea_orm::ConnectionTrait;
    let statement =
        sea_orm::Statement::from_string(DbBackend::Sqlite, "SELECT file FROM pragma_database_list WHERE name = 'main'");
    let row = primary.query_one_raw(statement).await?.ok_or_else(|| DbErr::Custom("no main database".into()))?;
    Ok(PathBuf::from(row.try_get_by_index::<String>(0)?))
}
