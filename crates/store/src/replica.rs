//! Lists read from a PostgreSQL streaming replica (`DATABASE_REPLICA_URL`), never more than a
//! bounded time behind the primary (`REPLICA_MAX_LAG_MS`).
//!
//! Only Lists go there ([`crate::Database::list_reader`]): transactions, and so every check of a
//! rule, run on the primary, and so does every Get (a caller that has just written reads its own
//! write). A List may miss what was committed within the last `max_lag`, never more: a task
//! measures the replica's staleness every [`MEASURE_EVERY`] and Lists use the replica only while
//! it is known to be within the bound; otherwise, and whenever the replica cannot be reached,
//! they read the primary. A replica that is down costs no errors, only its share of the load.
//!
//! How staleness is measured: the primary's WAL write position is sampled with the time of each
//! sample; the replica is as stale as the age of the newest sample its replay position has
//! reached (everything committed before that moment is visible there). Unlike
//! `now() - pg_last_xact_replay_timestamp()`, this needs no writes on the primary to be right,
//! and a replica whose WAL receiver has stopped reads as falling behind, not as caught up.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use pc_domain::Error;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// How often the replica's staleness is measured; Lists use it only while staleness plus this
/// stays within the bound, so the bound holds between two measurements too.
pub const MEASURE_EVERY: Duration = Duration::from_millis(100);

/// Where the replica is and how stale its Lists may be.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    pub url: String,
    pub max_lag: Duration,
    pub max_connections: u32,
    /// As the primary's pool ([`crate::PoolOptions::statement_timeout`]).
    pub statement_timeout: Option<Duration>,
}

/// The replica's pool, and whether Lists may read there now.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) pool: DatabaseConnection,
    fresh: AtomicBool,
}

impl Replica {
    /// Opens the replica's pool without connecting (a replica down at startup is not an error)
    /// and starts measuring it against `primary`; until the first measurement, Lists read the
    /// primary. The measuring task ends with the last handle on the replica.
    pub(crate) async fn open(options: &ReplicaOptions, primary: DatabaseConnection) -> Result<Arc<Self>, Error> {
        let pool =
            crate::db::open_lazily(&options.url, options.max_connections.max(1), options.statement_timeout).await?;
        let replica = Arc::new(Self { pool, fresh: AtomicBool::new(false) });
        tokio::spawn(follow(Arc::downgrade(&replica), primary, options.max_lag));
        Ok(replica)
    }

    /// Whether the last measurement found the replica within the bound.
    pub(crate) fn is_fresh(&self) -> bool {
        self.fresh.load(Ordering::Relaxed)
    }

    /// Stops sending Lists here until the next measurement finds the replica again.
    pub(crate) fn set_unreachable(&self) {
        if self.fresh.swap(false, Ordering::Relaxed) {
            tracing::warn!("the read replica cannot be reached: Lists read the primary");
        }
    }
}

/// The primary's WAL write position, as a byte offset.
const WRITTEN: &str = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint AS position";
/// The replica's replay position; NULL on a server that is not a standby.
const REPLAYED: &str =
    "SELECT CASE WHEN pg_is_in_recovery() THEN (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint END AS position";

async fn position(db: &DatabaseConnection, sql: &str) -> Option<i64> {
    let row = db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)).await.ok()??;
    row.try_get::<Option<i64>>("", "position").ok()?
}

/// Measures the replica every [`MEASURE_EVERY`] and says whether Lists may read there.
async fn follow(replica: Weak<Replica>, primary: DatabaseConnection, max_lag: Duration) {
    // The primary's positions over the last `max_lag`, oldest first: an older one could only
    // prove the replica staler than allowed.
    let mut written: VecDeque<(Instant, i64)> = VecDeque::new();
    let mut interval = tokio::time::interval(MEASURE_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_fresh = false;
    loop {
        interval.tick().await;
        let Some(replica) = replica.upgrade() else { return };
        let now = Instant::now();
        if let Some(position) = position(&primary, WRITTEN).await {
            written.push_back((now, position));
        }
        while written.front().is_some_and(|(at, _)| now.duration_since(*at) > max_lag) {
            written.pop_front();
        }
        let staleness = match position(&replica.pool, REPLAYED).await {
            Some(replayed) => {
                written.iter().rev().find(|(_, position)| *position <= replayed).map(|(at, _)| now.duration_since(*at))
            }
            None => None,
        };
        let fresh = staleness.is_some_and(|staleness| staleness + MEASURE_EVERY <= max_lag);
        replica.fresh.store(fresh, Ordering::Relaxed);
        if let Some(staleness) = staleness {
            metrics::gauge!("partner_center_replica_staleness_seconds").set(staleness.as_secs_f64());
        }
        metrics::gauge!("partner_center_replica_in_use").set(if fresh { 1.0 } else { 0.0 });
        if fresh != was_fresh {
            match staleness {
                _ if fresh => tracing::info!("the read replica is within REPLICA_MAX_LAG_MS: Lists read it"),
                Some(staleness) => {
                    tracing::warn!(?staleness, "the read replica is behind REPLICA_MAX_LAG_MS: Lists read the primary");
                }
                None => tracing::warn!(
                    "the read replica cannot be measured (down, or not a standby): Lists read the primary"
                ),
            }
            was_fresh = fresh;
        }
    }
}
