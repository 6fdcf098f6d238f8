//! Lists read from a PostgreSQL streaming replica (`DATABASE_REPLICA_URL`), never more than a
//! bounded time behind the primary (`REPLICA_MAX_LAG_MS`).
//!
//! Only Lists go there ([`crate::Database::list_reader`]): transactions, and so every check of a
//! rule, run on the primary, and so does every Get (a caller that has just written reads its own
//! write). A List may miss what was committed within the last `max_lag`, never more: a task
//! measures the replica every [`MEASURE_EVERY`], and Lists use the replica only while it is known
//! to be within the bound; otherwise, and whenever the replica cannot be reached, they read the
//! primary. A replica that is down costs no errors, only its share of the load; nor does one that
//! hangs (a stopped process, a partition that drops packets): a List waits for it at most
//! `read_timeout`, then reads the primary, and the replica is left until measured again. The
//! measurement itself gives up after the same time, so a hung replica reads as unmeasured, not as
//! a measurement still under way.
//!
//! How: the primary's WAL write position is sampled with the time of each sample. Once the
//! replica has replayed up to a sample's position, everything committed before that sample's
//! time is visible there, so the replica may serve Lists until that time plus `max_lag`: the
//! measurement sets a deadline, not a flag, and a measurement that stalls (a primary too busy to
//! answer) cannot leave a stale replica in use. Unlike `now() - pg_last_xact_replay_timestamp()`,
//! this needs no writes on the primary to be right, and a replica whose WAL receiver has stopped
//! reads as falling behind, not as caught up.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use pc_domain::Error;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// How often the replica is measured: the longest a replica that has caught up waits to be used.
pub const MEASURE_EVERY: Duration = Duration::from_millis(100);

/// Where the replica is and how stale its Lists may be.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    pub url: String,
    pub max_lag: Duration,
    /// The longest a List waits for the replica before it reads the primary instead.
    pub read_timeout: Duration,
    pub max_connections: u32,
    /// As the primary's pool ([`crate::PoolOptions::statement_timeout`]).
    pub statement_timeout: Option<Duration>,
}

/// The replica's pool, and until when Lists may read there.
#[derive(Debug)]
pub(crate) struct Replica {
    pub(crate) pool: DatabaseConnection,
    /// [`ReplicaOptions::read_timeout`].
    pub(crate) read_timeout: Duration,
    /// What `fresh_until` counts from.
    epoch: Instant,
    /// Nanoseconds after `epoch` until which the replica is within the bound (0: not now).
    fresh_until: AtomicU64,
}

impl Replica {
    /// Opens the replica's pool without connecting (a replica down at startup is not an error)
    /// and starts measuring it against `primary`; until the first measurement, Lists read the
    /// primary. The measuring task ends with the last handle on the replica.
    pub(crate) async fn open(options: &ReplicaOptions, primary: DatabaseConnection) -> Result<Arc<Self>, Error> {
        let pool =
            crate::db::open_lazily(&options.url, options.max_connections.max(1), options.statement_timeout).await?;
        let replica = Arc::new(Self {
            pool,
            read_timeout: options.read_timeout,
            epoch: Instant::now(),
            fresh_until: AtomicU64::new(0),
        });
        tokio::spawn(follow(Arc::downgrade(&replica), primary, options.max_lag));
        Ok(replica)
    }

    /// Whether the replica is within the bound now, as far as the last measurement proves.
    pub(crate) fn is_fresh(&self) -> bool {
        nanos(self.epoch.elapsed()) < self.fresh_until.load(Ordering::Relaxed)
    }

    /// Stops sending Lists here until the next measurement finds the replica again.
    pub(crate) fn set_unreachable(&self, why: &'static str) {
        if self.fresh_until.swap(0, Ordering::Relaxed) > nanos(self.epoch.elapsed()) {
            tracing::warn!("the read replica {why}: Lists read the primary");
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
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
        // The newest moment up to which the replica has everything. A replica that does not
        // answer within a List's budget has nothing to prove.
        let replayed = tokio::time::timeout(replica.read_timeout, position(&replica.pool, REPLAYED)).await;
        let caught_up_to = match replayed.ok().flatten() {
            Some(replayed) => written.iter().rev().find(|(_, position)| *position <= replayed).map(|(at, _)| *at),
            None => None,
        };
        let fresh_until = caught_up_to.map_or(0, |at| nanos(at.duration_since(replica.epoch) + max_lag));
        replica.fresh_until.store(fresh_until, Ordering::Relaxed);
        let (staleness, fresh) = (caught_up_to.map(|at| at.elapsed()), replica.is_fresh());
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
