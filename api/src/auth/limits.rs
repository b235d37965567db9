//! Login attempt limits, per username and per client address, so that guessing passwords is
//! slow whether an attacker tries many passwords on one account or one password on many. Only
//! failed attempts count: a user who logs in successfully again and again is never limited.
//!
//! [`client_ip`]: the client's address is the peer's, or, when the peer is one of
//! `server.trusted_proxies`, the nearest untrusted address of `X-Forwarded-For`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use std::collections::HashMap;
use std::time::Instant;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

/// Keys seen before old ones are forgotten (governor keeps state per key).
const MAX_KEYS: usize = 100_000;

pub struct LoginLimits {
    per_user: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    /// Keys whose failures used up their quota, and until when they are refused. Locked for a
    /// lookup or an insert only.
    blocked_users: Mutex<HashMap<String, Instant>>,
    blocked_ips: Mutex<HashMap<IpAddr, Instant>>,
    /// `server.trusted_proxies`: peers whose `X-Forwarded-For` is believed.
    pub trusted: Vec<Cidr>,
}

fn blocked<K: std::hash::Hash + Eq>(m: &Mutex<HashMap<K, Instant>>, k: &K) -> Option<Duration> {
    let now = Instant::now();
    let mut m = m.lock();
    match m.get(k) {
        Some(until) if *until > now => Some(*until - now),
        Some(_) => {
            m.remove(k);
            None
        }
        None => None,
    }
}

fn block<K: std::hash::Hash + Eq>(m: &Mutex<HashMap<K, Instant>>, k: K, wait: Duration) {
    let now = Instant::now();
    let mut m = m.lock();
    if m.len() > MAX_KEYS {
        m.retain(|_, until| *until > now);
    }
    m.insert(k, now + wait);
}

impl LoginLimits {
    /// `per_user` and `per_ip` failed attempts a minute, each usable in a burst.
    pub fn new(per_user: u32, per_ip: u32) -> Self {
        let q = |n: u32| {
            let n = n.max(2);
            Quota::with_period(Duration::from_secs(60) / n)
                .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(n - 1).unwrap_or(NonZeroU32::MIN))
        };
        Self {
            per_user: RateLimiter::keyed(q(per_user)),
            per_ip: RateLimiter::keyed(q(per_ip)),
            clock: DefaultClock::default(),
            blocked_users: Mutex::default(),
            blocked_ips: Mutex::default(),
            trusted: Vec::new(),
        }
    }

    /// Whether an attempt may be made now; `Err` says how long to wait.
    pub fn check(&self, username: &str, ip: IpAddr) -> Result<(), Duration> {
        if let Some(wait) = blocked(&self.blocked_ips, &ip) {
            return Err(wait);
        }
        match blocked(&self.blocked_users, &username.to_lowercase()) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt; once a key's failures use up its quota, it is refused until
    /// the quota allows one more.
    pub fn failed(&self, username: &str, ip: IpAddr) {
        if self.per_user.len() > MAX_KEYS {
            self.per_user.retain_recent();
        }
        if self.per_ip.len() > MAX_KEYS {
            self.per_ip.retain_recent();
        }
        let now = self.clock.now();
        let user = username.to_lowercase();
        // The quotas' bursts are one less than the limit: the failure that finds the bucket
        // empty is the limit-th, and blocks the next attempt.
        if let Err(n) = self.per_ip.check_key(&ip) {
            block(&self.blocked_ips, ip, n.wait_time_from(now));
        }
        if let Err(n) = self.per_user.check_key(&user) {
            block(&self.blocked_users, user, n.wait_time_from(now));
        }
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|c| c.contains(*ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(xff) = forwarded_for else { return peer };
    let mut client = peer;
    for hop in xff.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

/// An address or a network (`10.0.0.0/8`, `::1`), for `server.trusted_proxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an address or a network like 10.0.0.0/8");
        let (ip, bits) = match s.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let net: IpAddr = ip.trim().parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(bad());
        }
        Ok(Self { net, bits })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(v: u128, bits: u8, width: u8) -> u128 {
            if bits == 0 {
                0
            } else {
                v >> (width - bits)
            }
        }
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                masked(u128::from(u32::from(n)), self.bits, 32)
                    == masked(u128::from(u32::from(i)), self.bits, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                masked(u128::from(n), self.bits, 128) == masked(u128::from(i), self.bits, 128)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_limited_per_user_and_per_address_and_successes_are_not() {
        let l = LoginLimits::new(3, 5);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        // successes (checks without failures) never count
        for _ in 0..100 {
            assert!(l.check("ann", a).is_ok());
        }
        for _ in 0..3 {
            assert!(l.check("ann", a).is_ok());
            l.failed("ann", a);
        }
        let wait = l.check("Ann", a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
        // Another user from the same address still may, until the address has failed five times.
        assert!(l.check("bob", a).is_ok());
        l.failed("bob", a);
        assert!(l.check("bob", a).is_ok());
        l.failed("bob", a);
        assert!(
            l.check("bob", a).is_err(),
            "the address has failed five times this minute"
        );
        assert!(l.check("cid", b).is_ok());
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_forwarded_address_behind_a_trusted_proxy() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let xff = Some("203.0.113.7, 198.51.100.2, 10.1.2.3");
        assert_eq!(client_ip(ip("10.0.0.1"), xff, &trusted), ip("198.51.100.2"));
        // an untrusted peer's header is ignored (anyone can send one)
        assert_eq!(client_ip(ip("192.0.2.9"), xff, &trusted), ip("192.0.2.9"));
        assert_eq!(client_ip(ip("::1"), Some("garbage"), &trusted), ip("::1"));
        assert_eq!(client_ip(ip("10.0.0.1"), None, &trusted), ip("10.0.0.1"));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!(!"10.0.0.0/8".parse::<Cidr>().unwrap().contains(ip("11.0.0.1")));
    }
}
