//! The live status (`GET /admin/api/status`) and what a new phone needs
//! (`GET /admin/api/setup`).
//!
//! The status is read from what the server keeps anyway: the hub's streams (each with who
//! opened it and its protocol, `crate::hub::Hub::census`), the `/metrics` counters, the
//! store's usage as of its last commit, the connection count, the certificate's end. Only
//! the owners of device streams and the message count are read from the store. Its size is
//! bounded by the users and the open streams (`max_connections`).

use std::collections::HashMap;
use std::rc::Rc;

use miniserde::Serialize;
use redb::ReadableTableMetadata;

use super::{administrator, json};
use crate::error::ApiError;
use crate::http::Request;
use crate::hub::{Census, Protocol, Reader};
use crate::route::Outcome;
use crate::state::ServerState;
use crate::store::accounts;
use crate::store::tables::{MESSAGES, TOPIC_QUEUES, Tables};

#[derive(Serialize)]
struct Status {
    version: &'static str,
    api_version: &'static str,
    /// Unix seconds now, by the server's clock.
    now: u64,
    uptime_secs: u64,
    connections: usize,
    max_connections: usize,
    streams: usize,
    doors: Vec<DoorStreams>,
    users: Vec<UserStreams>,
    /// ntfy subscriptions without a user (`anonymous_access = read-write`).
    anonymous_streams: usize,
    /// Autopush user agents connected (Firefox, Sunup): they have no user.
    user_agent_streams: usize,
    queued_messages: Option<u64>,
    store: StoreUse,
    /// When the certificate of `listen_tls` expires (Unix seconds); `null` without TLS.
    certificate_expires: Option<u64>,
    requests: u64,
    posts_accepted: u64,
    posts_refused: u64,
    streams_opened: u64,
    resident_bytes: Option<u64>,
}

#[derive(Serialize)]
struct DoorStreams {
    door: &'static str,
    streams: usize,
}

#[derive(Serialize)]
struct UserStreams {
    id: u64,
    name: String,
    streams: usize,
    doors: Vec<DoorStreams>,
}

/// The store's budget and what is used of it (`null` until first read).
#[derive(Serialize)]
struct StoreUse {
    used_bytes: Option<u64>,
    max_bytes: u64,
    anonymous_bytes: Option<u64>,
    max_anonymous_bytes: u64,
    user_agent_bytes: Option<u64>,
    max_user_agent_bytes: u64,
}

#[derive(Serialize)]
struct Setup {
    /// What phones enter as the server: `public_url`, else what this request reached.
    server_url: String,
    /// `public_url` is set (else the URL is only what this browser reached).
    public_url_set: bool,
    /// The doors this build has.
    ntfy: bool,
    nextpush: bool,
    /// Firefox's `dom.push.serverURL` and Sunup's server; `null` without autopush.
    autopush_url: Option<String>,
}

/// Counts by protocol, in [`Protocol::ALL`]'s order.
type ByDoor = [usize; 4];

fn doors(counts: &ByDoor) -> Vec<DoorStreams> {
    Protocol::ALL
        .iter()
        .zip(counts)
        .map(|(p, &streams)| DoorStreams {
            door: p.name(),
            streams,
        })
        .collect()
}

fn index(protocol: Protocol) -> usize {
    Protocol::ALL
        .iter()
        .position(|&p| p == protocol)
        .expect("ALL lists every protocol")
}

/// The open streams counted by door, and by user where they have one.
#[derive(Default)]
struct Tally {
    total: ByDoor,
    by_user: HashMap<u64, ByDoor>,
    anonymous: usize,
    user_agents: usize,
}

impl Tally {
    /// `owners`: the user of each device queue with a stream.
    fn of(census: &[Census], owners: &HashMap<u64, u64>) -> Tally {
        let mut tally = Tally::default();
        for stream in census {
            tally.total[index(stream.protocol)] += 1;
            let user = stream
                .reader
                .user()
                .or_else(|| owners.get(&stream.queue).copied());
            match (user, stream.protocol) {
                (Some(user), p) => tally.by_user.entry(user).or_default()[index(p)] += 1,
                (None, Protocol::Autopush) => tally.user_agents += 1,
                (None, _) => tally.anonymous += 1,
            }
        }
        tally
    }
}

/// `GET /admin/api/status`.
pub async fn status(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    administrator(state, req).await?;
    let census = state.hub.census();
    let devices: Vec<u64> = census
        .iter()
        .filter(|c| c.reader == Reader::KEY && c.queue < TOPIC_QUEUES)
        .map(|c| c.queue)
        .collect();
    let (users, owners, queued) = state
        .store
        .read(move |t| {
            let users = accounts::list_users(t)?;
            let clients = t.clients()?;
            let mut owners = HashMap::new();
            for device in devices {
                if let Some(client) = accounts::get_client(&clients, device)? {
                    owners.insert(device, client.user_id);
                }
            }
            let queued = t.open_table(MESSAGES)?.len()?;
            Ok((users, owners, queued))
        })
        .await?;
    let tally = Tally::of(&census, &owners);
    let users = users
        .into_iter()
        .map(|(id, user)| {
            let counts = tally.by_user.get(&id).copied().unwrap_or_default();
            UserStreams {
                id,
                name: user.name,
                streams: counts.iter().sum(),
                doors: doors(&counts),
            }
        })
        .collect();
    let report = Status {
        version: env!("CARGO_PKG_VERSION"),
        api_version: crate::API_VERSION,
        now: crate::clock::now_millis() / 1000,
        uptime_secs: state.started.elapsed().as_secs(),
        connections: state.connections(),
        max_connections: state.max_connections(),
        streams: census.len(),
        doors: doors(&tally.total),
        users,
        anonymous_streams: tally.anonymous,
        user_agent_streams: tally.user_agents,
        queued_messages: Some(queued),
        store: store_use(state),
        certificate_expires: state.certificate_expiry(),
        requests: state.counters.requests.get(),
        posts_accepted: state.counters.posts_accepted.get(),
        posts_refused: state.counters.posts_refused.get(),
        streams_opened: state.counters.streams_opened.get(),
        resident_bytes: crate::metrics::resident_bytes(),
    };
    json(200, miniserde::json::to_string(&report))
}

fn store_use(state: &ServerState) -> StoreUse {
    let budget = crate::delivery::store_budget(state);
    let usage = state.store.commit_stats().usage();
    StoreUse {
        used_bytes: usage.map(|u| u.0),
        max_bytes: budget.max_bytes,
        anonymous_bytes: usage.map(|u| u.1),
        max_anonymous_bytes: budget.max_anonymous_bytes,
        user_agent_bytes: usage.map(|u| u.2),
        max_user_agent_bytes: budget.max_uaid_bytes,
    }
}

/// `GET /admin/api/setup`: the URLs a phone or Firefox is set up with.
pub async fn setup(state: &Rc<ServerState>, req: &Request) -> Result<Outcome, ApiError> {
    administrator(state, req).await?;
    let config = state.config();
    let server_url = crate::delivery::endpoints::base_url(state, req);
    let autopush_url = config
        .autopush_path
        .as_deref()
        .filter(|_| cfg!(feature = "autopush"))
        .map(|path| {
            let ws = match server_url.strip_prefix("https://") {
                Some(host) => format!("wss://{host}"),
                None => format!("ws://{}", server_url.trim_start_matches("http://")),
            };
            format!("{}{path}", ws.trim_end_matches('/'))
        });
    let setup = Setup {
        server_url: server_url.trim_end_matches('/').to_owned(),
        public_url_set: config.public_url.is_some(),
        ntfy: cfg!(feature = "ntfy"),
        nextpush: cfg!(feature = "nextpush"),
        autopush_url,
    };
    json(200, miniserde::json::to_string(&setup))
}
