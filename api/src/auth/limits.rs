//! Login attempt limits, per username and per client address, so that guessing passwords is
//! slow whether an attacker tries many passwords on one account or one password on many.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keys seen before old ones are forgotten (governor keeps state per key).
const MAX_KEYS: usize = 100_000;

pub struct LoginLimits {
    per_user: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl LoginLimits {
    /// `per_user` and `per_ip` attempts a minute, each usable in a burst.
    pub fn new(per_user: u32, per_ip: u32) -> Self {
        let q = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Self {
            per_user: RateLimiter::keyed(q(per_user)),
            per_ip: RateLimiter::keyed(q(per_ip)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one attempt; `Err` says how long to wait.
    pub fn check(&self, username: &str, ip: IpAddr) -> Result<(), Duration> {
        if self.per_user.len() > MAX_KEYS {
            self.per_user.retain_recent();
        }
        if self.per_ip.len() > MAX_KEYS {
            self.per_ip.retain_recent();
        }
        let now = self.clock.now();
        self.per_ip.check_key(&ip).map_err(|n| n.wait_time_from(now))?;
        self.per_user
            .check_key(&username.to_lowercase())
            .map_err(|n| n.wait_time_from(now))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_user_and_each_address() {
        let l = LoginLimits::new(3, 5);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check("ann", a).is_ok());
        }
        let wait = l.check("Ann", a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
        // Another user from the same address still may, until the address is spent.
        assert!(l.check("bob", a).is_ok());
        assert!(
            l.check("bob", a).is_err(),
            "the address has used its five attempts of the minute"
        );
        assert!(l.check("cid", b).is_ok());
    }
}
