//! Who is asking: HTTP Basic for users, ntfy access tokens for users on the ntfy door,
//! `X-Openpush-Key` for clients.
//!
//! Argon2 runs on one hasher thread, never on the event loop, behind a bounded queue (a
//! login flood gets 503, not unbounded memory or threads). Successful logins are cached
//! for a few minutes under a keyed digest of name and password, so Basic auth on every
//! request costs one digest; a change to a user forgets that user's cached logins (a
//! change through the CLI forgets them all), and a login verified against a record read
//! before such a change is not cached. Unknown names cost the same Argon2 time as known
//! ones, and both failures look the same to the client.
//!
//! An access token (`crate::store::tokens`) costs one store read: no Argon2. Its last use
//! is recorded at most once a minute per token, in a deferred write that rides a later
//! commit ([`crate::store::Store::write_later`]), never a commit of its own per request.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64ct::Encoding as _;

use crate::config::Limits;
use crate::http::Request;
use crate::limits::{AddrKey, LogSampler, LoginBackoff, REFUSAL_LOG_PERIOD};
use crate::logger::Unlogged;
use crate::secret;
use crate::store::tables::Tables as _;
use crate::store::{self, ClientRecord, Store, UserRecord};
use crate::store::{accounts, tokens};

const CACHE_ENTRIES: usize = 256;
const CACHE_TTL: Duration = Duration::from_secs(300);
/// Forgettings remembered for logins in flight; a login that started before the oldest
/// of them is answered but not cached.
const FORGOTTEN_KEPT: usize = 64;
/// Argon2 jobs waiting; each may hold a few MiB while it runs, one at a time.
const HASHER_QUEUE: usize = 64;
/// Longest accepted password; Argon2 time does not depend on it, but memory for it does.
pub const MAX_PASSWORD_BYTES: usize = 1024;

type HashJob = Box<dyn FnOnce() + Send>;

/// Why a request is not let in, or a hashing job not run; `crate::error` gives each its
/// status.
#[derive(Debug)]
pub enum Refusal {
    /// No credentials, or wrong ones.
    Unauthorized,
    /// Too many failed logins from this address or for this name: wait this long.
    Backoff(Duration),
    /// The hasher's queue is full.
    Busy,
    /// The hasher thread is gone.
    HasherGone,
    /// The store failed.
    Store(store::Error),
}

impl From<store::Error> for Refusal {
    fn from(e: store::Error) -> Refusal {
        Refusal::Store(e)
    }
}

/// The hasher thread.
pub struct Hasher {
    jobs: mpsc::SyncSender<HashJob>,
}

impl Hasher {
    /// Starts the hasher thread.
    pub fn start() -> std::io::Result<Hasher> {
        let (jobs, inbox) = mpsc::sync_channel::<HashJob>(HASHER_QUEUE);
        std::thread::Builder::new()
            .name("hasher".into())
            .spawn(move || inbox.into_iter().for_each(|job| job()))?;
        Ok(Hasher { jobs })
    }

    /// Runs `f` on the hasher thread, unless its queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refusal> {
        let (reply, answer) = async_channel::bounded(1);
        self.jobs
            .try_send(Box::new(move || {
                let _ = reply.try_send(f());
            }))
            .map_err(|_| Refusal::Busy)?;
        answer.recv().await.map_err(|_| Refusal::HasherGone)
    }
}

/// The user a request authenticated as.
#[derive(Clone, Debug)]
pub struct User {
    /// The user's id.
    pub id: u64,
    /// Whether the user administers the others.
    pub admin: bool,
    /// [`login_stamp`] of the user record the login was checked against.
    pub login: u64,
    /// The number of the access token the request came with; `None` for a password.
    pub token: Option<u64>,
}

impl User {
    /// A user who logged in with its password.
    fn by_password(id: u64, admin: bool, login: u64) -> User {
        User {
            id,
            admin,
            login,
            token: None,
        }
    }
}

/// How far behind a token's recorded last use may be: one deferred write a minute at most.
const LAST_ACCESS_GRANULARITY_SECS: u64 = 60;
/// Tokens whose last use is being recorded, remembered at most (a map cleared when full).
const TOUCHED_KEPT: usize = 1024;

/// A digest of a user's name and password hash, which changes with either: a stream opened
/// with a login compares it with the user's record once attached, and ends if it changed.
pub fn login_stamp(record: &UserRecord) -> u64 {
    let material = [
        record.name.as_bytes(),
        b"\0",
        record.password_hash.as_bytes(),
    ]
    .concat();
    let digest = secret::digest(&material);
    u64::from_le_bytes(
        digest[..8]
            .try_into()
            .expect("a digest is longer than 8 bytes"),
    )
}

/// Checks logins (HTTP Basic) against the store, behind a cache of recent good logins and
/// a backoff per address and per name after failures.
pub struct Authenticator {
    hasher: Hasher,
    failures_by_addr: LoginBackoff<AddrKey>,
    failures_by_name: LoginBackoff<[u8; 32]>,
    cache_key: [u8; 32],
    cache: RefCell<HashMap<[u8; 32], (User, Instant)>>,
    /// Bumped by each forgetting; a login whose user record was read under an older
    /// generation is answered but not cached if its user was forgotten since.
    generation: Cell<u64>,
    /// The latest forgettings: the generation each made, and whose (`None`: everyone's).
    forgotten: RefCell<VecDeque<(u64, Option<u64>)>>,
    /// Refusals of browsers' requests (`crate::csrf`) per address and kind, for the log.
    refusals: LogSampler<(Option<AddrKey>, &'static str)>,
    /// Token number → when its last use was handed to the store to record.
    touched: RefCell<HashMap<u64, Instant>>,
}

impl Authenticator {
    /// An authenticator on `hasher`, with the login limits of `limits`.
    pub fn new(hasher: Hasher, limits: &Limits) -> Self {
        Authenticator {
            hasher,
            failures_by_addr: LoginBackoff::new(limits.login_free_failures, limits.login_max_delay),
            // A name is shared by everyone who types it: locking it out would let anyone
            // lock its owner out, so it gets twice the free attempts of an address.
            failures_by_name: LoginBackoff::new(
                limits.login_free_failures.saturating_mul(2),
                limits.login_max_delay,
            ),
            cache_key: secret::random_bytes(),
            cache: RefCell::default(),
            generation: Cell::new(0),
            forgotten: RefCell::default(),
            refusals: LogSampler::new(REFUSAL_LOG_PERIOD),
            touched: RefCell::default(),
        }
    }

    /// Takes the login limits of a reloaded configuration.
    pub fn set_limits(&self, limits: &Limits) {
        self.failures_by_addr
            .set(limits.login_free_failures, limits.login_max_delay);
        self.failures_by_name.set(
            limits.login_free_failures.saturating_mul(2),
            limits.login_max_delay,
        );
    }

    /// The hasher thread, for hashing a new password.
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// Counts a refused request for the log: `Some` when a line is due (once a minute per
    /// address and kind), with the count of those unlogged since the last.
    pub fn refusals_to_log(
        &self,
        key: (Option<AddrKey>, &'static str),
        now: Instant,
    ) -> Option<Unlogged> {
        self.refusals.note(key, now)
    }

    /// Forgets every cached login: after changes to users whose ids are not at hand.
    pub fn forget(&self) {
        self.cache.borrow_mut().clear();
        self.forgotten(None);
    }

    /// Forgets the cached logins of one user: after it was renamed, given a new password
    /// or deleted. Other users' logins stay cached, so one user's changes cannot push
    /// everyone's logins back onto Argon2.
    pub fn forget_user(&self, id: u64) {
        self.cache.borrow_mut().retain(|_, (user, _)| user.id != id);
        self.forgotten(Some(id));
    }

    fn forgotten(&self, user: Option<u64>) {
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        let mut forgotten = self.forgotten.borrow_mut();
        if forgotten.len() >= FORGOTTEN_KEPT {
            forgotten.pop_front();
        }
        forgotten.push_back((generation, user));
    }

    /// Whether a login of `user` whose record was read at generation `read_at` may be
    /// cached: not if that user (or everyone) was forgotten since, nor if that cannot be
    /// told any more.
    fn may_cache(&self, user: u64, read_at: u64) -> bool {
        if self.generation.get() == read_at {
            return true;
        }
        let forgotten = self.forgotten.borrow();
        forgotten
            .front()
            .is_some_and(|&(oldest, _)| oldest <= read_at + 1)
            && !forgotten
                .iter()
                .any(|&(generation, who)| generation > read_at && who.is_none_or(|id| id == user))
    }

    /// The user of the request's `Authorization: Basic` header.
    pub async fn user(&self, store: &Store, req: &Request) -> Result<User, Refusal> {
        let value = req.header("authorization").ok_or(Refusal::Unauthorized)?;
        self.login(store, req, value).await
    }

    /// The user of an `Authorization` value (HTTP Basic), under the login backoff.
    pub async fn login(
        &self,
        store: &Store,
        req: &Request,
        authorization: &str,
    ) -> Result<User, Refusal> {
        let (name, password) = basic_credentials(authorization).ok_or(Refusal::Unauthorized)?;
        let cache_key = self.cache_entry_key(&name, &password);
        if let Some((user, at)) = self.cache.borrow().get(&cache_key)
            && at.elapsed() < CACHE_TTL
        {
            return Ok(user.clone());
        }
        let addr = req.client_addr.map(AddrKey::of);
        let name_key = secret::digest(&[&self.cache_key[..], name.as_bytes()].concat());
        let now = Instant::now();
        let wait = addr
            .map_or(Ok(()), |a| self.failures_by_addr.check(a, now))
            .and(self.failures_by_name.check(name_key, now));
        if let Err(wait) = wait {
            return Err(Refusal::Backoff(wait));
        }
        // Counted now, before the password is checked: attempts sent in parallel see each
        // other here, not only once their Argon2 runs are over. Success clears the count.
        if let Some(a) = addr {
            self.failures_by_addr.attempt(a, now);
        }
        self.failures_by_name.attempt(name_key, now);
        let generation = self.generation.get();
        let lookup = name.clone();
        let found = store
            .read(move |t| accounts::find_user_by_name(t, &lookup))
            .await?;
        let user = match found {
            Some((id, record)) => {
                let (admin, login) = (record.admin, login_stamp(&record));
                let ok = self
                    .hasher
                    .run(move || secret::verify_password(&password, &record.password_hash))
                    .await?;
                ok.then_some(User::by_password(id, admin, login))
            }
            None => {
                self.hasher
                    .run(move || secret::verify_dummy(&password))
                    .await?;
                None
            }
        };
        let Some(user) = user else {
            log::info!(
                "failed login from {}",
                req.client_addr
                    .map_or("this host".into(), |a| a.to_string())
            );
            return Err(Refusal::Unauthorized);
        };
        if let Some(a) = addr {
            self.failures_by_addr.succeeded(a);
        }
        self.failures_by_name.succeeded(name_key);
        if !self.may_cache(user.id, generation) {
            return Ok(user);
        }
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= CACHE_ENTRIES {
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(cache_key, (user.clone(), Instant::now()));
        Ok(user)
    }

    /// The user of an ntfy access token, if it is one of this server's and not expired;
    /// its last use is recorded later (at most once a minute).
    pub async fn token(&self, store: &Store, req: &Request, token: &str) -> Result<User, Refusal> {
        if !secret::is_access_token_shaped(token) {
            return Err(Refusal::Unauthorized);
        }
        let token = token.to_owned();
        let found = store
            .read(move |t| {
                let Some((key, record)) = tokens::by_token(t, &token)? else {
                    return Ok(None);
                };
                let user = accounts::get_user(&t.users()?, record.user_id)?;
                Ok(user.map(|user| (key, record, user)))
            })
            .await?;
        let now = crate::clock::now_millis() / 1000;
        let Some((key, record, user)) = found.filter(|(_, r, _)| r.expires == 0 || r.expires > now)
        else {
            // Nothing slows token guesses but the request rate: one line a minute per address.
            let key = (req.client_addr.map(AddrKey::of), "access token");
            if let Some(unlogged) = self.refusals.note(key, Instant::now()) {
                log::info!(
                    "unknown or expired access token from {}{unlogged}",
                    req.client_addr
                        .map_or("this host".into(), |a| a.to_string())
                );
            }
            return Err(Refusal::Unauthorized);
        };
        if now.saturating_sub(record.last_access) >= LAST_ACCESS_GRANULARITY_SECS {
            self.record_use(store, req, key, record.id, now);
        }
        Ok(User {
            id: record.user_id,
            admin: user.admin,
            login: login_stamp(&user),
            token: Some(record.id),
        })
    }

    /// Has the store record a token's use, unless that was asked for within the minute.
    fn record_use(&self, store: &Store, req: &Request, key: [u8; 16], id: u64, now: u64) {
        let mut touched = self.touched.borrow_mut();
        let granularity = std::time::Duration::from_secs(LAST_ACCESS_GRANULARITY_SECS);
        if touched
            .get(&id)
            .is_some_and(|at| at.elapsed() < granularity)
        {
            return;
        }
        if touched.len() >= TOUCHED_KEPT {
            touched.clear();
        }
        touched.insert(id, Instant::now());
        let origin = req.client_addr.map_or(String::new(), |a| a.to_string());
        let recorded = store.write_later(move |t, _| tokens::touch(t, &key, now, &origin));
        if let Err(e) = recorded {
            log::debug!("a token's last use is not recorded: {e}");
        }
    }

    fn cache_entry_key(&self, name: &str, password: &str) -> [u8; 32] {
        let mut material = Vec::with_capacity(32 + name.len() + password.len() + 1);
        material.extend_from_slice(&self.cache_key);
        material.extend_from_slice(name.as_bytes());
        material.push(0);
        material.extend_from_slice(password.as_bytes());
        secret::digest(&material)
    }
}

/// The client that owns the request's `X-Openpush-Key`.
pub async fn client(store: &Store, req: &Request) -> Result<(u64, ClientRecord), Refusal> {
    let key = req
        .header("x-openpush-key")
        .filter(|k| !k.is_empty() && k.len() <= 128)
        .ok_or(Refusal::Unauthorized)?
        .to_owned();
    store
        .read(move |t| accounts::client_by_key(t, &key))
        .await?
        .ok_or(Refusal::Unauthorized)
}

/// The token of HTTP Basic credentials with an empty user name (ntfy's way of sending an
/// access token as a password).
pub fn basic_token(value: &str) -> Option<String> {
    match basic_credentials(value)? {
        (name, password) if name.is_empty() => Some(password),
        _ => None,
    }
}

fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || encoded.len() > 2 * MAX_PASSWORD_BYTES {
        return None;
    }
    let decoded = base64ct::Base64::decode_vec(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_owned(), password.to_owned()))
}
