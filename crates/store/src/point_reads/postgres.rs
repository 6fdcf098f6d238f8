//! PostgreSQL point reads on a few pipelined connections of their own, beside sqlx's pool.
//!
//! Through the pool, each read checked out one of 32 connections, waited a round trip with it
//! and handed it back (sqlx spawns a task to do so): per read, a send and a receive on a socket
//! of its own, an epoll wake-up and a PostgreSQL backend woken for one query. tokio-postgres
//! sends every query queued on a connection in one write and reads their answers in one read,
//! so many concurrent reads share each system call and each backend wake-up. A connection is
//! opened on first use and again after it breaks; a read that finds its connection dropped is
//! repeated once on a new one, and fails with UNAVAILABLE only if the database cannot be reached.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::errors::is_connection_lost_sqlstate;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ColumnType, DbBackend, DbErr, EntityTrait, IdenStatic, PrimaryKeyTrait, QueryTrait,
    RuntimeErr, TryIntoModel, Value,
};
use tokio_postgres::{Client, NoTls, Row, Statement};
use uuid::Uuid;

use super::{entity_column, lock, type_error};

/// `application_name` of the point-read connections, unless the URL names one.
pub const APPLICATION_NAME: &str = "partner-center point reads";

/// Pipelined connections, each opened on first use; reads take them in turn.
#[derive(Debug)]
pub(super) struct PostgresReaders {
    config: tokio_postgres::Config,
    slots: Box<[Slot]>,
    next: AtomicUsize,
}

#[derive(Debug, Default)]
struct Slot {
    live: Mutex<Option<Arc<Reader>>>,
    /// Held while (re)connecting, so reads that find the slot empty wait for one connection
    /// instead of each opening their own.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Reader {
    client: Client,
    /// Prepared once per connection and table (the SQL is built only then): a read is then one
    /// Bind/Execute round trip.
    statements: Mutex<HashMap<&'static str, Statement>>,
}

impl PostgresReaders {
    /// `None` without connections, or when tokio-postgres does not read `url` (a parameter only
    /// sqlx knows).
    pub(super) fn new(url: &str, connections: usize) -> Option<Self> {
        if connections == 0 {
            return None;
        }
        let mut config = match url.parse::<tokio_postgres::Config>() {
            Ok(config) => config,
            Err(error) => {
                tracing::warn!(%error, "point reads go through the pool: the URL is not one tokio-postgres reads");
                return None;
            }
        };
        if config.get_connect_timeout().is_none() {
            // As the pool's: fail fast with UNAVAILABLE while the database is down.
            config.connect_timeout(Duration::from_secs(2));
        }
        if config.get_application_name().is_none() {
            // So an operator (and the reconnection test) can tell them in pg_stat_activity.
            config.application_name(APPLICATION_NAME);
        }
        let slots = (0..connections).map(|_| Slot::default()).collect();
        Some(Self { config, slots, next: AtomicUsize::new(0) })
    }

    pub(super) async fn find_by_id<E>(&self, id: Uuid) -> Result<Option<E::Model>, DbErr>
    where
        E: EntityTrait,
        <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
        E::ActiveModel: TryIntoModel<E::Model>,
    {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let reader = self.reader(slot).await?;
        let row = match reader.query_opt::<E>(id).await {
            // The database dropped the connection (a restart, a failover, an idle timeout): a read
            // is safe to repeat, once, on a new connection.
            Err(DbErr::Conn(_)) => {
                slot.evict(&reader);
                self.reader(slot).await?.query_opt::<E>(id).await
            }
            row => row,
        };
        let Some(row) = row? else { return Ok(None) };
        let mut model = <E::ActiveModel as ActiveModelTrait>::default();
        for (index, column) in row.columns().iter().enumerate() {
            let column = entity_column::<E>(column.name())?;
            let get = |error: tokio_postgres::Error| type_error(format!("column {}: {error}", column.as_str()));
            let value = match column.def().get_column_type() {
                ColumnType::Uuid => Value::Uuid(row.try_get(index).map_err(get)?),
                ColumnType::TimestampWithTimeZone => Value::ChronoDateTimeUtc(row.try_get(index).map_err(get)?),
                ColumnType::String(_) | ColumnType::Text => Value::String(row.try_get(index).map_err(get)?),
                ColumnType::Integer => Value::Int(row.try_get(index).map_err(get)?),
                ColumnType::BigInteger => Value::BigInt(row.try_get(index).map_err(get)?),
                ColumnType::Boolean => Value::Bool(row.try_get(index).map_err(get)?),
                ColumnType::Blob | ColumnType::Binary(_) | ColumnType::VarBinary(_) => {
                    Value::Bytes(row.try_get(index).map_err(get)?)
                }
                other => return Err(type_error(format!("column {}: no decoding for {other:?}", column.as_str()))),
            };
            model.try_set(column, value)?;
        }
        model.try_into_model().map(Some)
    }

    async fn reader(&self, slot: &Slot) -> Result<Arc<Reader>, DbErr> {
        if let Some(reader) = slot.live() {
            return Ok(reader);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(reader) = slot.live() {
            return Ok(reader);
        }
        let (client, connection) = self.config.connect(NoTls).await.map_err(postgres_error)?;
        let open = metrics::gauge!("partner_center_point_read_connections");
        open.increment(1.0);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "point-read connection to PostgreSQL closed");
            }
            open.decrement(1.0);
        });
        let reader = Arc::new(Reader { client, statements: Mutex::default() });
        *lock(&slot.live) = Some(Arc::clone(&reader));
        Ok(reader)
    }
}

impl Slot {
    fn live(&self) -> Option<Arc<Reader>> {
        lock(&self.live).as_ref().filter(|reader| !reader.client.is_closed()).cloned()
    }

    /// Forgets `reader` if the slot still holds it, so the next read connects anew.
    fn evict(&self, reader: &Arc<Reader>) {
        let mut live = lock(&self.live);
        if live.as_ref().is_some_and(|current| Arc::ptr_eq(current, reader)) {
            *live = None;
        }
    }
}

impl Reader {
    async fn query_opt<E>(&self, id: Uuid) -> Result<Option<Row>, DbErr>
    where
        E: EntityTrait,
        <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
    {
        let statement = self.statement::<E>(id).await?;
        self.client.query_opt(&statement, &[&id]).await.map_err(postgres_error)
    }

    /// `E`'s SELECT by primary key as SeaORM writes it, prepared on this connection.
    async fn statement<E>(&self, id: Uuid) -> Result<Statement, DbErr>
    where
        E: EntityTrait,
        <E::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
    {
        let table = E::default().table_name();
        if let Some(statement) = lock(&self.statements).get(table) {
            return Ok(statement.clone());
        }
        // Two first reads of a table may both prepare it; the second copy is simply dropped.
        let sql = E::find_by_id(id).build(DbBackend::Postgres).sql;
        let statement = self.client.prepare(&sql).await.map_err(postgres_error)?;
        lock(&self.statements).insert(table, statement.clone());
        Ok(statement)
    }
}

/// A server's refusal is a failed query, unless it says it is going away; everything else
/// (lost or refused connection, connect timeout) means the database could not be reached:
/// UNAVAILABLE, as SeaORM reports sqlx's I/O errors.
fn postgres_error(error: tokio_postgres::Error) -> DbErr {
    let connection_lost = error.as_db_error().is_none_or(|db| is_connection_lost_sqlstate(db.code().code()));
    let message = RuntimeErr::Internal(format!("PostgreSQL reader: {error}"));
    if connection_lost { DbErr::Conn(message) } else { DbErr::Query(message) }
}
