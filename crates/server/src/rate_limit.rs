//! Per-principal rate limiting: one budget per caller, so a noisy tenant exhausts its own budget
//! and nobody else's. Off unless configured (`RATE_LIMIT_PER_SECOND`).
//!
//! Per process by default. With `RATE_LIMIT_REDIS_URL` every replica spends from one budget per
//! principal kept in Redis ([`SharedBudget`]: GCRA in one Lua script, so a check and its spend are
//! one atomic step however many replicas race, timed by Redis' clock). While Redis cannot be
//! reached each replica falls back to its own budget (a client spread over `n` replicas then gets
//! up to `n` times its limit), says so in the log and in `partner_center_rate_limit_shared`, and
//! asks Redis again a second later.

use std::{
    num::NonZeroU32,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use governor::{
    DefaultKeyedRateLimiter, Quota,
    clock::{Clock, DefaultClock},
};
use pc_domain::Principal;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::admission::millis;

/// Principals tracked before those whose budget has refilled are dropped.
const MAX_TRACKED: usize = 10_000;

/// One GCRA budget per principal: the same result as a token bucket of `burst` tokens refilled at
/// `per_second`, kept as one timestamp per principal (`governor`'s keyed limiter in this process;
/// a Redis key when shared).
pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<Principal>,
    clock: DefaultClock,
    shared: Option<SharedBudget>,
    per_second: u32,
    burst: u32,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("tracked", &self.limiter.len())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl RateLimiter {
    /// `None` when `per_second` is 0 (no limit). `burst` is how many calls may come at once.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let burst = burst.max(1);
        let quota = Quota::per_second(NonZeroU32::new(per_second)?).allow_burst(NonZeroU32::new(burst)?);
        Some(Self {
            limiter: governor::RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            shared: None,
            per_second,
            burst,
        })
    }

    /// The same limit, kept in the Redis at `url` for every replica that names it. Connects
    /// lazily: a Redis that is down at startup costs the fallback, not the start.
    pub fn shared_through(mut self, url: &str) -> Result<Self, String> {
        self.shared = Some(SharedBudget::new(url, self.per_second, self.burst)?);
        Ok(self)
    }

    /// Spends one call of `principal`'s budget, or says how long until it may call again.
    pub async fn check(&self, principal: Principal) -> Result<(), Duration> {
        if let Some(shared) = &self.shared
            && let Some(verdict) = shared.check(principal).await
        {
            return verdict;
        }
        if self.limiter.len() >= MAX_TRACKED {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&principal).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// GCRA over one key per principal: the key holds the principal's theoretical arrival time (TAT)
/// in microseconds of Redis' clock. A call is allowed when the TAT it would leave is within
/// `tolerance` (= `burst` intervals) of now, and then moves the TAT on by one `interval`;
/// otherwise the script answers how many microseconds until it would be allowed. The key expires
/// when the budget is full again.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + interval
local over = next_tat - now - tolerance
if over > 0 then return over end
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil((next_tat - now) / 1000))
return 0
";

/// How long a Redis that failed is left alone before it is asked again.
const REDIS_RETRY_AFTER: Duration = Duration::from_secs(1);
/// The longest a rate-limit check waits for Redis before using the process's own budget.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// The per-principal budgets every replica shares, in Redis.
pub struct SharedBudget {
    redis: ConnectionManager,
    script: redis::Script,
    interval_us: u64,
    tolerance_us: u64,
    /// Until when Redis is left alone after a failure (milliseconds after `epoch`); 0: it is asked.
    resting_until_ms: AtomicU64,
    epoch: Instant,
    /// Whether the last answer came from Redis, to log each change once.
    reachable: AtomicBool,
}

impl SharedBudget {
    fn new(url: &str, per_second: u32, burst: u32) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("RATE_LIMIT_REDIS_URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(0);
        let redis = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("RATE_LIMIT_REDIS_URL: {e}"))?;
        let interval_us = 1_000_000 / u64::from(per_second.max(1));
        crate::metrics::rate_limit_shared(true);
        Ok(Self {
            redis,
            script: redis::Script::new(GCRA),
            interval_us,
            tolerance_us: interval_us * u64::from(burst),
            resting_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            reachable: AtomicBool::new(true),
        })
    }

    /// Redis' verdict for one call of `principal`, or `None` when Redis cannot give one now.
    async fn check(&self, principal: Principal) -> Option<Result<(), Duration>> {
        let now_ms = millis(self.epoch.elapsed());
        if now_ms < self.resting_until_ms.load(Ordering::Relaxed) {
            return None;
        }
        let mut redis = self.redis.clone();
        let answer = self
            .script
            .key(format!("partner-center:rate:{principal}"))
            .arg(self.interval_us)
            .arg(self.tolerance_us)
            .invoke_async::<u64>(&mut redis)
            .await;
        match answer {
            Ok(wait_us) => {
                if !self.reachable.swap(true, Ordering::Relaxed) {
                    tracing::info!("Redis reachable again: rate limits are shared by every replica");
                    crate::metrics::rate_limit_shared(true);
                }
                Some(if wait_us == 0 { Ok(()) } else { Err(Duration::from_micros(wait_us)) })
            }
            Err(error) => {
                self.resting_until_ms.store(now_ms.saturating_add(millis(REDIS_RETRY_AFTER)), Ordering::Relaxed);
                if self.reachable.swap(false, Ordering::Relaxed) {
                    tracing::warn!(%error, "Redis unreachable: rate limits are per replica until it is back");
                    crate::metrics::rate_limit_shared(false);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pc_domain::PartnerId;

    use super::*;

    #[tokio::test]
    async fn a_principal_gets_its_burst_then_waits_while_others_are_untouched() {
        let limiter = RateLimiter::new(1, 3).expect("a limit");
        let noisy = Principal::Partner(PartnerId::generate());
        for _ in 0..3 {
            assert!(limiter.check(noisy).await.is_ok());
        }
        let wait = limiter.check(noisy).await.expect_err("over the limit");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(limiter.check(Principal::Operator).await.is_ok());
    }

    #[tokio::test]
    async fn an_unreachable_redis_falls_back_to_the_processs_own_budget() {
        // Nothing listens on port 1: every check falls back, and the limit still holds.
        let limiter = RateLimiter::new(1, 2).expect("a limit").shared_through("redis://127.0.0.1:1").expect("a URL");
        let noisy = Principal::Partner(PartnerId::generate());
        assert!(limiter.check(noisy).await.is_ok());
        assert!(limiter.check(noisy).await.is_ok());
        assert!(limiter.check(noisy).await.is_err());
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(RateLimiter::new(0, 10).is_none());
    }
}
