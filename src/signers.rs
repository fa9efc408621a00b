//! Who may spend a VAPID signature verification (`crate::vapid`), the one step of a push
//! whose cost a sender chooses: an ECDSA P-256 verification costs about as much as 40
//! health checks, and anyone who knows a `/wpush/v2/` endpoint and its app server's public
//! key (or makes an endpoint of their own) can send well-formed tokens with forged
//! signatures.
//!
//! Invariants:
//! - a verification for a *known signer* of the endpoint runs at once: a client address
//!   whose last signature for that endpoint verified, within [`KNOWN_SIGNER_LIFE`];
//! - a verification for the host itself (no client address) runs at once, as its requests
//!   pass the per-address limits;
//! - every other verification first takes a token of one bucket shared by all endpoints
//!   and strangers (`vapid_verifications_per_sec`, `vapid_verification_burst`); with none
//!   left it does not run and the push is refused (429), so strangers together cost at
//!   most that many verifications a second, from however many addresses;
//! - a signature that does not verify makes its address a stranger again, so a known
//!   signer's address gets at most one forged verification past the bucket per good one.
//!
//! Strangers therefore never keep a known signer waiting; a new signer (a first push, an
//! app server whose address changed, any signer after a restart: the list lives in memory
//! only) waits with the strangers while a flood lasts, and is told when to retry. The list
//! is bounded ([`MAX_SIGNERS`] entries); when it is full, signers past their life go first,
//! then the half seen least recently.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::limits::{AddrKey, Rate, RateLimiter};
use crate::logger::Unlogged;

/// How long an address stays a known signer of an endpoint after its last good signature:
/// longer than the quiet weeks of a site that rarely pushes.
pub const KNOWN_SIGNER_LIFE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Known signers kept, over all endpoints: a household has tens; 4096 entries are about
/// 250 kB at most.
pub const MAX_SIGNERS: usize = 4096;

/// An endpoint, by a digest prefix of its token, and a client address.
type SignerKey = ([u8; 16], AddrKey);

/// Why a verification may not run now.
pub struct Spent {
    /// When the bucket has a token again.
    pub wait: Duration,
    /// `Some` when this refusal is to be logged, with the count of those unlogged since.
    pub log: Option<Unlogged>,
}

/// Who may spend a VAPID verification now: known signers at once, everyone else from one
/// shared bucket.
pub struct Signers {
    budget: RateLimiter<()>,
    /// Known signers, with when their last good signature verified.
    known: RefCell<HashMap<SignerKey, Instant>>,
}

impl Signers {
    /// A budget of `rate` verifications for strangers.
    pub fn new(rate: Rate) -> Signers {
        Signers {
            budget: RateLimiter::new(rate),
            known: RefCell::default(),
        }
    }

    /// Takes the rate of a reloaded configuration.
    pub fn set_rate(&self, rate: Rate) {
        self.budget.set_rate(rate);
    }

    /// May a verification of a signature for `endpoint` from `addr` run now? Takes a token
    /// of the bucket unless `addr` is a known signer of `endpoint` or the host itself.
    pub fn admit(
        &self,
        endpoint: [u8; 16],
        addr: Option<AddrKey>,
        now: Instant,
    ) -> Result<(), Spent> {
        let Some(addr) = addr else {
            return Ok(());
        };
        let known = self.known.borrow().get(&(endpoint, addr)).copied();
        if known.is_some_and(|at| now.saturating_duration_since(at) < KNOWN_SIGNER_LIFE) {
            return Ok(());
        }
        self.budget.take((), now).map_err(|wait| Spent {
            wait,
            log: self.budget.refusal_to_log((), now),
        })
    }

    /// Records a verification's outcome: a good signature makes (or keeps) `addr` a known
    /// signer of `endpoint`, a bad one a stranger.
    pub fn verified(&self, endpoint: [u8; 16], addr: Option<AddrKey>, good: bool, now: Instant) {
        let Some(addr) = addr else {
            return;
        };
        let mut known = self.known.borrow_mut();
        if !good {
            known.remove(&(endpoint, addr));
            return;
        }
        if known.len() >= MAX_SIGNERS && !known.contains_key(&(endpoint, addr)) {
            make_room(&mut known, now);
        }
        known.insert((endpoint, addr), now);
    }
}

/// Drops the signers past their life, and if that is not enough, the half seen least
/// recently.
fn make_room(known: &mut HashMap<SignerKey, Instant>, now: Instant) {
    known.retain(|_, at| now.saturating_duration_since(*at) < KNOWN_SIGNER_LIFE);
    if known.len() < MAX_SIGNERS {
        return;
    }
    let mut times: Vec<Instant> = known.values().copied().collect();
    let half = times.len() / 2;
    let (_, median, _) = times.select_nth_unstable(half);
    let median = *median;
    known.retain(|_, at| *at > median);
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        per_sec: 1.0,
        burst: 2.0,
    };

    fn addr(n: u32) -> Option<AddrKey> {
        Some(AddrKey::of(std::net::Ipv4Addr::from(n).into()))
    }

    #[test]
    fn strangers_share_one_bucket_and_known_signers_pass() {
        let signers = Signers::new(RATE);
        let t0 = Instant::now();
        let (a, b) = ([1; 16], [2; 16]);
        assert!(signers.admit(a, addr(1), t0).is_ok());
        signers.verified(a, addr(1), true, t0);
        assert!(signers.admit(b, addr(2), t0).is_ok());
        signers.verified(b, addr(2), false, t0);
        let spent = signers
            .admit(a, addr(3), t0)
            .expect_err("the bucket is empty");
        assert_eq!(spent.wait, Duration::from_secs(1));
        assert!(spent.log.is_some(), "the first refusal is logged");
        assert!(signers.admit(a, addr(3), t0).err().unwrap().log.is_none());
        for _ in 0..10 {
            assert!(signers.admit(a, addr(1), t0).is_ok(), "a known signer");
        }
        assert!(signers.admit(b, addr(1), t0).is_err(), "known for a only");
        assert!(signers.admit(b, None, t0).is_ok(), "the host itself");
        assert!(
            signers
                .admit(b, addr(3), t0 + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[test]
    fn a_bad_signature_or_the_end_of_its_life_makes_a_signer_a_stranger() {
        let signers = Signers::new(Rate {
            per_sec: 0.001,
            burst: 1.0,
        });
        let t0 = Instant::now();
        let e = [1; 16];
        assert!(signers.admit(e, addr(1), t0).is_ok());
        signers.verified(e, addr(1), true, t0);
        assert!(signers.admit(e, addr(1), t0).is_ok());
        signers.verified(e, addr(1), false, t0);
        assert!(signers.admit(e, addr(1), t0).is_err());

        signers.verified(e, addr(2), true, t0);
        let later = t0 + KNOWN_SIGNER_LIFE;
        assert!(
            signers.admit(e, addr(3), later).is_ok(),
            "the bucket refilled"
        );
        assert!(
            signers.admit(e, addr(2), later).is_err(),
            "a stranger again"
        );
    }

    #[test]
    fn a_full_list_keeps_the_signers_seen_last() {
        let signers = Signers::new(RATE);
        let t0 = Instant::now();
        for n in 0..MAX_SIGNERS as u32 {
            signers.verified([0; 16], addr(n), true, t0 + Duration::from_millis(n.into()));
        }
        let later = t0 + Duration::from_secs(3600);
        signers.verified([1; 16], addr(0), true, later);
        let known = signers.known.borrow();
        assert!(known.len() <= MAX_SIGNERS / 2 + 1, "{}", known.len());
        assert!(known.contains_key(&([1; 16], AddrKey::of([0, 0, 0, 0].into()))));
        let newest = AddrKey::of(std::net::Ipv4Addr::from(MAX_SIGNERS as u32 - 1).into());
        assert!(known.contains_key(&([0; 16], newest)));
        assert!(!known.contains_key(&([0; 16], AddrKey::of([0, 0, 0, 1].into()))));
    }
}
