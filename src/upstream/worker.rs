//! The forwarder's thread: takes poll requests from its bounded queue one at a time and
//! sends each upstream, trying again after a failure that may pass.
//!
//! Invariants: it never touches the event loop's state (only the shared [`UpstreamStats`]);
//! it stops at the next request once `stop` is set (the settings changed or upstream was
//! turned off), so a request queued before never leaves under settings that no longer
//! hold; a request is tried at most `1 + retries` times, pausing 1 s, then twice as long
//! each time, and given up with one log line. Logs name the upstream server, the message
//! id and the outcome: never the topic, the hash or the access token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use super::UpstreamStats;
use super::client::Client;

/// The pause before the first retry; each next one is twice as long.
const FIRST_PAUSE: Duration = Duration::from_secs(1);

/// ntfy's form of User-Agent (`ntfy/<version>`), naming this server.
const USER_AGENT: &str = concat!("ntfy/", env!("CARGO_PKG_VERSION"), " (openpush)");

/// One poll request: what goes upstream, and nothing else.
pub struct Job {
    /// The hex SHA-256 of the topic's URL.
    pub topic_hash: String,
    /// The id the iPhone polls for (`X-Poll-ID`).
    pub poll_id: String,
}

/// What the thread needs, fixed for its life.
pub struct Worker {
    /// The upstream server as configured, for the logs.
    pub base_url: String,
    pub client: Client,
    /// `Authorization: Bearer …\r\n`, or empty.
    pub authorization: String,
    pub retries: u32,
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<UpstreamStats>,
}

impl Worker {
    /// Sends every request from `jobs` until the queue's sender is gone or `stop` is set.
    pub fn run(mut self, jobs: Receiver<Job>) {
        while let Ok(job) = jobs.recv() {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            self.deliver(&job);
        }
        log::debug!("upstream forwarder for {} stopped", self.base_url);
    }

    fn deliver(&mut self, job: &Job) {
        let headers = format!(
            "User-Agent: {USER_AGENT}\r\nX-Poll-ID: {}\r\n{}",
            job.poll_id, self.authorization
        );
        let path = format!("/{}", job.topic_hash);
        let mut pause = FIRST_PAUSE;
        let mut tries = 0;
        let why = loop {
            tries += 1;
            let why = match self.client.post(&path, &headers) {
                Ok(status) if (200..300).contains(&status) => {
                    self.stats.update(|t| t.sent += 1);
                    log::debug!("poll request for {} sent to {}", job.poll_id, self.base_url);
                    return;
                }
                Ok(429) => {
                    break format!(
                        "{} answered 429 (too many requests): send fewer messages, or set \
                     upstream_access_token to an account with higher limits there",
                        self.base_url
                    );
                }
                Ok(status) if status < 500 => {
                    break format!("{} refused it with {status}", self.base_url);
                }
                Ok(status) => format!("{} answered {status}", self.base_url),
                Err(e) if !e.transient() => break format!("{}: {e}", self.base_url),
                Err(e) => format!("{}: {e}", self.base_url),
            };
            if tries > self.retries || self.stop.load(Ordering::Relaxed) {
                break why;
            }
            log::debug!(
                "poll request for {} failed ({why}); again in {pause:?}",
                job.poll_id
            );
            std::thread::sleep(pause);
            if self.stop.load(Ordering::Relaxed) {
                break why;
            }
            pause *= 2;
            self.stats.update(|t| t.retried += 1);
        };
        self.stats.update(|t| t.failed += 1);
        log::warn!(
            "poll request for message {} not sent (tries: {tries}): {why}",
            job.poll_id
        );
    }
}
