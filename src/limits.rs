//! Rate limits and per-address caps: token buckets keyed by client address (IPv6 by its
//! /64, since one host owns a whole /64) or by routing token, and failed-login backoff.
//!
//! All maps are bounded: when one is full, entries that have refilled completely are
//! dropped first, and if that is not enough the map is cleared (a limiter that forgets is
//! better than memory that grows with an attacker's address space). Time is passed in, so
//! the rules are tested without sleeping.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::logger::{Tally, Unlogged};

/// Entries per limiter map; a few MB at most.
const MAX_KEYS: usize = 16_384;

/// The key of an address: IPv4 as is (mapped), IPv6 by its /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// Bytes, not a `u128`: a key sits in every connection's state, and a `u128` would force
/// 16-byte alignment on it.
pub struct AddrKey([u8; 16]);

impl AddrKey {
    /// The key of an address: IPv4 as is (also when written as IPv6), IPv6 by its /64.
    pub fn of(ip: IpAddr) -> AddrKey {
        match ip {
            IpAddr::V4(v4) => AddrKey(v4.to_ipv6_mapped().octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey(v4.to_ipv6_mapped().octets()),
                None => {
                    let mut prefix = v6.octets();
                    prefix[8..].fill(0);
                    AddrKey(prefix)
                }
            },
        }
    }

    /// The key's bytes.
    pub fn octets(self) -> [u8; 16] {
        self.0
    }
}

/// A token bucket's rate: `per_sec` tokens a second, at most `burst` saved.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// Tokens added per second.
    pub per_sec: f64,
    /// Tokens a bucket holds at most.
    pub burst: f64,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// How often refusals of one key are logged: a flood of them is one line a minute.
pub const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(60);

/// One token bucket per key.
pub struct RateLimiter<K> {
    rate: Cell<Rate>,
    buckets: RefCell<HashMap<K, Bucket>>,
    refusals: LogSampler<K>,
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    /// A limiter with one bucket per key, all at `rate`.
    pub fn new(rate: Rate) -> Self {
        RateLimiter {
            rate: Cell::new(rate),
            buckets: RefCell::default(),
            refusals: LogSampler::new(REFUSAL_LOG_PERIOD),
        }
    }

    /// Counts a refusal of `key` for the log: `Some` when a line is due, at most one per
    /// key and [`REFUSAL_LOG_PERIOD`], with the count of those unlogged since the last.
    pub fn refusal_to_log(&self, key: K, now: Instant) -> Option<Unlogged> {
        self.refusals.note(key, now)
    }

    /// Takes the rate of a reloaded configuration.
    pub fn set_rate(&self, rate: Rate) {
        self.rate.set(rate);
    }

    /// Takes one token; `Err(wait)` when none is left.
    pub fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        let rate = self.rate.get();
        if rate.per_sec <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.borrow_mut();
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(&key) {
            let full = rate.burst / rate.per_sec;
            buckets.retain(|_, b| now.duration_since(b.at).as_secs_f64() < full);
            if buckets.len() >= MAX_KEYS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_sec).min(rate.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / rate.per_sec,
            ))
        }
    }
}

impl Rate {
    /// `n` an hour, all of them at once if need be.
    pub fn per_hour(n: u32) -> Rate {
        Rate {
            per_sec: f64::from(n) / 3600.0,
            burst: f64::from(n),
        }
    }
}

impl<K: Hash + Eq + Copy> RateLimiter<K> {
    /// Returns a token [`RateLimiter::take`] took for something that did not happen.
    pub fn give_back(&self, key: K) {
        let burst = self.rate.get().burst;
        if let Some(bucket) = self.buckets.borrow_mut().get_mut(&key) {
            bucket.tokens = (bucket.tokens + 1.0).min(burst);
        }
    }
}

/// How long a login backoff record outlives its last attempt: far longer than any wait
/// (`login_max_delay_secs` is at most a day), so a pause does not give the free attempts
/// back; a guesser who waits out the longest delay gets one more try, not a fresh start.
const BACKOFF_RECORD_LIFE: Duration = Duration::from_secs(2 * 24 * 3600);

/// Login attempts that did not succeed: after `free` of them, each further attempt must
/// wait twice as long as the last (1 s, 2 s, 4 s … up to `max`).
///
/// An attempt counts when it starts ([`LoginBackoff::attempt`]), before its password is
/// checked, so attempts sent in parallel cannot all start before the first failure is
/// known; success clears the record. A record lives [`BACKOFF_RECORD_LIFE`] after its
/// last attempt. When the map is full, records past their life go first, then those
/// still within their free attempts (which cost a guesser nothing to make again), and
/// only then everything.
pub struct LoginBackoff<K> {
    free: Cell<u32>,
    max: Cell<Duration>,
    attempts: RefCell<HashMap<K, (u32, Instant)>>,
}

impl<K: Hash + Eq + Copy> LoginBackoff<K> {
    /// A backoff that lets `free` failures go by and then delays up to `max`.
    pub fn new(free: u32, max: Duration) -> Self {
        LoginBackoff {
            free: Cell::new(free),
            max: Cell::new(max),
            attempts: RefCell::default(),
        }
    }

    /// Takes the limits of a reloaded configuration.
    pub fn set(&self, free: u32, max: Duration) {
        self.free.set(free);
        self.max.set(max);
    }

    fn delay(&self, count: u32) -> Duration {
        let free = self.free.get();
        if count < free {
            return Duration::ZERO;
        }
        let exp = (count - free).min(20);
        Duration::from_secs(1u64 << exp).min(self.max.get())
    }

    /// `Err(wait)` while the key must wait before it may try again.
    pub fn check(&self, key: K, now: Instant) -> Result<(), Duration> {
        match self.attempts.borrow().get(&key) {
            Some(&(count, at)) if now.saturating_duration_since(at) < BACKOFF_RECORD_LIFE => {
                let until = at + self.delay(count);
                if now < until {
                    Err(until - now)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts an attempt that starts now; call it once [`LoginBackoff::check`] allowed it,
    /// with no `await` in between.
    pub fn attempt(&self, key: K, now: Instant) {
        let mut attempts = self.attempts.borrow_mut();
        if attempts.len() >= MAX_KEYS && !attempts.contains_key(&key) {
            let free = self.free.get();
            attempts.retain(|_, (_, at)| now.saturating_duration_since(*at) < BACKOFF_RECORD_LIFE);
            if attempts.len() >= MAX_KEYS {
                attempts.retain(|_, (count, _)| *count >= free);
            }
            if attempts.len() >= MAX_KEYS {
                attempts.clear();
            }
        }
        let entry = attempts.entry(key).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= BACKOFF_RECORD_LIFE {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
    }

    /// A success: the key's failures are forgotten.
    pub fn succeeded(&self, key: K) {
        self.attempts.borrow_mut().remove(&key);
    }
}

/// A [`Tally`] per key, for events that come in floods from many sources (requests refused
/// by a rate limit, say): per key, the first event is logged, then at most one line per
/// period, which says how many went unlogged since. Bounded like the limiters.
pub struct LogSampler<K> {
    period: Duration,
    tallies: RefCell<HashMap<K, Tally>>,
}

impl<K: Hash + Eq + Copy> LogSampler<K> {
    /// A sampler that logs one line per key and `period`.
    pub fn new(period: Duration) -> Self {
        LogSampler {
            period,
            tallies: RefCell::default(),
        }
    }

    /// Counts one event of `key`: `Some` when it is to be logged now, with what to append
    /// to its line.
    pub fn note(&self, key: K, now: Instant) -> Option<Unlogged> {
        let mut tallies = self.tallies.borrow_mut();
        if tallies.len() >= MAX_KEYS && !tallies.contains_key(&key) {
            // Forgetting a key loses at most its count of unlogged events.
            tallies.clear();
        }
        tallies
            .entry(key)
            .or_insert_with(|| Tally::new(self.period))
            .count(now)
    }
}

/// Open connections per address.
#[derive(Default)]
pub struct ConnectionCounts(RefCell<HashMap<AddrKey, u32>>);

impl ConnectionCounts {
    /// Counts a new connection unless the address already has `max`.
    pub fn open(&self, key: AddrKey, max: u32) -> bool {
        let mut counts = self.0.borrow_mut();
        let n = counts.entry(key).or_insert(0);
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    /// One of `key`'s connections has ended.
    pub fn close(&self, key: AddrKey) {
        let mut counts = self.0.borrow_mut();
        if let Some(n) = counts.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_share_their_64() {
        let a = AddrKey::of("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = AddrKey::of("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = AddrKey::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        let v4 = AddrKey::of("192.0.2.1".parse().unwrap());
        let mapped = AddrKey::of("::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(v4, mapped);
        assert_ne!(v4, AddrKey::of("192.0.2.2".parse().unwrap()));
    }

    #[test]
    fn bucket_allows_burst_then_refills() {
        let limiter = RateLimiter::new(Rate {
            per_sec: 2.0,
            burst: 3.0,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(1, t0).is_ok());
        }
        let wait = limiter.take(1, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert!(limiter.take(2, t0).is_ok(), "keys are independent");
        assert!(limiter.take(1, t0 + Duration::from_millis(500)).is_ok());
    }

    #[test]
    fn backoff_doubles_after_free_attempts_and_clears_on_success() {
        let backoff = LoginBackoff::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(backoff.check("x", t0).is_ok());
            backoff.attempt("x", t0);
        }
        assert_eq!(backoff.check("x", t0), Err(Duration::from_secs(1)));
        backoff.attempt("x", t0 + Duration::from_secs(1));
        assert_eq!(
            backoff.check("x", t0 + Duration::from_secs(1)),
            Err(Duration::from_secs(2))
        );
        backoff.succeeded("x");
        assert!(backoff.check("x", t0).is_ok());
    }

    #[test]
    fn an_idle_backoff_record_keeps_its_count_for_its_life() {
        let max = Duration::from_secs(60);
        let backoff = LoginBackoff::new(2, max);
        let t0 = Instant::now();
        for _ in 0..8 {
            backoff.attempt("x", t0);
        }
        // Long past the longest wait: one more try, at the longest wait again after it.
        let later = t0 + Duration::from_secs(3600);
        assert!(backoff.check("x", later).is_ok());
        backoff.attempt("x", later);
        assert_eq!(backoff.check("x", later), Err(max));
        // Past the record's life it starts over.
        let much_later = later + BACKOFF_RECORD_LIFE;
        assert!(backoff.check("x", much_later).is_ok());
        backoff.attempt("x", much_later);
        assert!(backoff.check("x", much_later).is_ok());
    }

    #[test]
    fn a_full_backoff_map_keeps_the_records_in_backoff() {
        let backoff = LoginBackoff::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            backoff.attempt(u32::MAX, t0);
        }
        for key in 0..MAX_KEYS as u32 {
            backoff.attempt(key, t0);
        }
        assert!(
            backoff.check(u32::MAX, t0).is_err(),
            "a flood of names did not evict it"
        );
    }

    #[test]
    fn log_sampler_keeps_a_tally_per_key() {
        let sampler = LogSampler::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let unlogged = |u: Option<Unlogged>| u.map(|u| u.0);
        assert_eq!(unlogged(sampler.note("a", t0)), Some(0));
        for i in 1..100 {
            assert_eq!(
                unlogged(sampler.note("a", t0 + Duration::from_millis(i))),
                None
            );
        }
        assert_eq!(
            unlogged(sampler.note("b", t0)),
            Some(0),
            "keys are independent"
        );
        assert_eq!(
            unlogged(sampler.note("a", t0 + Duration::from_secs(60))),
            Some(99)
        );
        assert_eq!(
            unlogged(sampler.note("a", t0 + Duration::from_secs(61))),
            None
        );
    }

    #[test]
    fn connection_counts_cap_and_release() {
        let counts = ConnectionCounts::default();
        let key = AddrKey::of("192.0.2.1".parse().unwrap());
        assert!(counts.open(key, 2));
        assert!(counts.open(key, 2));
        assert!(!counts.open(key, 2));
        counts.close(key);
        assert!(counts.open(key, 2));
    }
}
