//! iPhones through ntfy's upstream server (`upstream_base_url`): for each message published
//! to an ntfy topic, a poll request `POST <upstream>/<hex SHA-256 of "<public_url>/<topic>">`
//! with `X-Poll-ID: <message id>` and no body, as ntfy's own server sends it. The upstream
//! (ntfy.sh) wakes the iPhones subscribed to that hash through Apple; the ntfy app then
//! fetches the message from this server (`/<topic>/json?poll=1&id=<id>`).
//!
//! Invariants:
//! - only the hash and the message id leave the house: never the message, the topic's
//!   name or a user's credentials (the access token is upstream's own);
//! - the event loop never waits on the upstream: [`Forwarder::forward`] puts the request in
//!   a bounded queue (`upstream_queue`) or drops it, with a metric and a log line at most
//!   every 10 s; one thread (`worker`) sends them, with timeouts and bounded
//!   retries. A poll request is a wake-up: the message itself is stored whatever becomes
//!   of it, and the phone gets it at its next poll;
//! - the upstream's certificate must chain to a certificate of `upstream_ca_file`.
//!
//! A reload that changes the settings starts a new thread and tells the old one to stop at
//! its next request; a reload whose CA file does not load keeps the running forwarder.

mod client;
mod worker;

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustls::crypto::ring::kx_group::{SECP256R1, X25519};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use crate::config::{Config, Upstream};
use crate::metrics::UpstreamTotals;
use worker::{Job, Worker};

/// Drops are logged at most this often, with how many there were.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

/// What became of the poll requests: counted by the forwarder thread (sent, failed,
/// retried) and the event loop (dropped), behind a mutex: 32-bit MIPS has no 64-bit
/// atomics, and it is taken once per request.
#[derive(Default)]
pub struct UpstreamStats(Mutex<UpstreamTotals>);

impl UpstreamStats {
    /// Changes the totals.
    pub fn update(&self, change: impl FnOnce(&mut UpstreamTotals)) {
        change(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// The totals now.
    pub fn totals(&self) -> UpstreamTotals {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The event loop's handle on the forwarder.
#[derive(Default)]
pub struct Forwarder {
    running: RefCell<Option<Running>>,
    stats: Arc<UpstreamStats>,
    /// When a drop was last logged, and the drops since that were not.
    drops: Cell<(Option<Instant>, u64)>,
}

/// A forwarder thread and what it was started with.
struct Running {
    jobs: SyncSender<Job>,
    stop: Arc<AtomicBool>,
    settings: Upstream,
    /// `public_url`: the start of every topic URL that is hashed.
    public_url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Forwarder {
    /// The forwarder of `config`: idle without `upstream_base_url`; an error names the CA
    /// file that did not load or the thread that did not start.
    pub fn start(config: &Config) -> Result<Forwarder, String> {
        let forwarder = Forwarder::default();
        *forwarder.running.borrow_mut() = forwarder.run(config)?;
        Ok(forwarder)
    }

    /// Takes a reloaded configuration: a new thread if the settings changed; on an error
    /// the running one stays, with a log line.
    pub fn configure(&self, config: &Config) {
        let unchanged = self
            .running
            .borrow()
            .as_ref()
            .map_or(config.upstream.base_url.is_none(), |r| {
                r.settings == config.upstream && config.public_url.as_ref() == Some(&r.public_url)
            });
        if unchanged {
            return;
        }
        match self.run(config) {
            Ok(running) => *self.running.borrow_mut() = running,
            Err(e) => log::error!("upstream forwarder not changed, the old one stays: {e}"),
        }
    }

    /// Queues the poll request of message `poll_id` on `topic`, or drops it when the queue
    /// is full. Does nothing without `upstream_base_url`.
    pub fn forward(&self, topic: &str, poll_id: &str) {
        let running = self.running.borrow();
        let Some(running) = running.as_ref() else {
            return;
        };
        let job = Job {
            topic_hash: topic_hash(&running.public_url, topic),
            poll_id: poll_id.to_owned(),
        };
        match running.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.dropped(running.settings.queue),
            Err(TrySendError::Disconnected(_)) => {
                self.stats.update(|t| t.dropped += 1);
                log::error!("the upstream forwarder thread is gone: poll request dropped");
            }
        }
    }

    /// The poll requests so far; `None` while no upstream is configured.
    pub fn totals(&self) -> Option<UpstreamTotals> {
        self.running.borrow().as_ref().map(|_| self.stats.totals())
    }

    fn dropped(&self, queue: usize) {
        self.stats.update(|t| t.dropped += 1);
        let (logged, unlogged) = self.drops.get();
        let now = Instant::now();
        if logged.is_some_and(|at| now.duration_since(at) < DROP_LOG_EVERY) {
            self.drops.set((logged, unlogged + 1));
            return;
        }
        self.drops.set((Some(now), 0));
        log::warn!(
            "upstream queue full ({queue} poll requests waiting): {} poll request(s) dropped; \
             the messages stay stored for the phones' next poll",
            unlogged + 1
        );
    }

    /// A thread for `config`'s settings, or `None` without `upstream_base_url`.
    fn run(&self, config: &Config) -> Result<Option<Running>, String> {
        let settings = config.upstream.clone();
        let (Some(base_url), Some(public_url)) = (&settings.base_url, &config.public_url) else {
            return Ok(None);
        };
        let target = client::Target::parse(base_url)?;
        let tls = client_config(&settings.ca_file)?;
        let (jobs, inbox) = sync_channel(settings.queue);
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            base_url: base_url.clone(),
            client: client::Client::new(target, tls, settings.timeout),
            authorization: settings
                .access_token
                .as_ref()
                .map(|t| format!("Authorization: Bearer {}\r\n", t.0))
                .unwrap_or_default(),
            retries: settings.retries,
            stop: stop.clone(),
            stats: self.stats.clone(),
        };
        std::thread::Builder::new()
            .name("upstream".into())
            .spawn(move || worker.run(inbox))
            .map_err(|e| format!("cannot start the upstream forwarder thread: {e}"))?;
        log::info!("poll requests for iPhones go to {base_url}");
        Ok(Some(Running {
            jobs,
            stop,
            public_url: public_url.clone(),
            settings,
        }))
    }
}

/// The hex SHA-256 of `<public_url>/<topic>`: the topic the ntfy iOS app subscribes to
/// upstream for a topic of this server.
pub fn topic_hash(public_url: &str, topic: &str) -> String {
    let url = format!("{public_url}/{topic}");
    let digest = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// TLS 1.2 and 1.3 with ring's ciphers, trusting the certificates of `ca_file` (PEM, read
/// one certificate at a time: a system bundle is 200 KiB, of which the trust anchors keep
/// a fraction).
fn client_config(ca_file: &Path) -> Result<Arc<ClientConfig>, String> {
    let certificates = CertificateDer::pem_file_iter(ca_file).map_err(|e| {
        format!(
            "upstream_ca_file {}: {e} (OpenWrt: apk add ca-bundle)",
            ca_file.display()
        )
    })?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certificates.filter_map(Result::ok));
    if added == 0 {
        return Err(format!(
            "upstream_ca_file {}: no PEM certificate in it",
            ca_file.display()
        ));
    }
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![X25519, SECP256R1];
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topic_hash_is_ntfys() {
        // docs/config.md of ntfy: https://ntfy.example.com/mytopic.
        assert_eq!(
            topic_hash("https://ntfy.example.com", "mytopic"),
            "6de73be8dfb7d69e32fb2c00c23fe7adbd8b5504406e3068c273aa24cef4055b"
        );
    }
}
