//! Per-principal rate limiting: one token bucket per caller, so a noisy tenant exhausts its own
//! budget and nobody else's. Off unless configured (`RATE_LIMIT_PER_SECOND`).

use std::{num::NonZeroU32, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota,
    clock::{Clock, DefaultClock},
};
use pc_domain::Principal;

/// Principals tracked before those whose budget has refilled are dropped.
const MAX_TRACKED: usize = 10_000;

/// One GCRA budget per principal (`governor`'s keyed limiter: the same result as a token bucket
/// of `burst` tokens refilled at `per_second`, kept as one timestamp per principal).
pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<Principal>,
    clock: DefaultClock,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").field("tracked", &self.limiter.len()).finish()
    }
}

impl RateLimiter {
    /// `None` when `per_second` is 0 (no limit). `burst` is how many calls may come at once.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let quota = Quota::per_second(NonZeroU32::new(per_second)?).allow_burst(NonZeroU32::new(burst.max(1))?);
        Some(Self { limiter: governor::RateLimiter::keyed(quota), clock: DefaultClock::default() })
    }

    /// Spends one call of `principal`'s budget, or says how long until it may call again.
    pub fn check(&self, principal: Principal) -> Result<(), Duration> {
        if self.limiter.len() >= MAX_TRACKED {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&principal).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
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
