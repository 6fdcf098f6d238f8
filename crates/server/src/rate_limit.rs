//! Per-principal rate limiting: one token bucket per caller, so a noisy tenant exhausts its own
//! budget and nobody else's. Off unless configured (`RATE_LIMIT_PER_SECOND`).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use pc_domain::Principal;

/// Buckets kept before idle, full ones are dropped.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<Principal, Bucket>>,
}

impl RateLimiter {
    /// `None` when `per_second` is 0 (no limit). `burst` is how many calls may come at once.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        (per_second > 0).then(|| Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one token for `principal`, or says how long until one is available.
    pub fn check(&self, principal: Principal) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, bucket| bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(principal).or_insert(Bucket { tokens: self.burst, updated: now });
        let refill = now.duration_since(bucket.updated).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use pc_domain::PartnerId;

    use super::*;

    #[test]
    fn a_principal_gets_its_burst_then_waits_while_others_are_untouched() {
        let limiter = RateLimiter::new(1, 3).expect("a limit");
        let noisy = Principal::Partner(PartnerId::generate());
        for _ in 0..3 {
            assert!(limiter.check(noisy).is_ok());
        }
        let wait = limiter.check(noisy).expect_err("over the limit");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(limiter.check(Principal::Operator).is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        assert!(RateLimiter::new(0, 10).is_none());
    }
}
