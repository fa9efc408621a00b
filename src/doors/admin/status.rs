//! The live status (`GET /admin/api/status`) and what a new phone needs
//! (`GET /admin/api/setup`).
//!
//! The status is read from what the server keeps anyway: the hub's streams (each with who
//! opened it and its protocol, `crate::hub::Hub::census`), the `/metrics` counters, the
//! store's usage as of its last commit, the connection count, the certificate's end. Only
//! the users, the owners of device streams and the message count are read from the store.
//! Its size is bounded by the users and the open streams (`max_connections`).

use std::rc::Rc;

use crate::store::kv::ReadableTableMetadata;

use super::{Json, Work, array};
use crate::http::Request;
use crate::hub::{Census, Protocol, Reader};
use crate::state::ServerState;
use crate::store::accounts;
use crate::store::tables::{MESSAGES, TOPIC_QUEUES, Tables};

/// Counts by protocol, in [`Protocol::ALL`]'s order.
type ByDoor = [u64; 4];

/// `[{"door","streams"}…]` of `counts`.
fn doors(counts: &ByDoor) -> String {
    let doors: Vec<String> = Protocol::ALL
        .iter()
        .zip(counts)
        .map(|(p, &streams)| {
            Json::new()
                .str("door", p.name())
                .num("streams", streams)
                .end()
        })
        .collect();
    array(&doors)
}

fn index(protocol: Protocol) -> usize {
    Protocol::ALL
        .iter()
        .position(|&p| p == protocol)
        .unwrap_or_default()
}

/// The open streams counted by door, and by user where they have one.
#[derive(Default)]
struct Tally {
    total: ByDoor,
    by_user: Vec<(u64, ByDoor)>,
    anonymous: u64,
    user_agents: u64,
}

impl Tally {
    /// `owner`: the user of a device queue (a client), if it still exists.
    fn of(census: &[Census], owner: impl Fn(u64) -> Option<u64>) -> Tally {
        let mut tally = Tally::default();
        for stream in census {
            let door = index(stream.protocol);
            tally.total[door] += 1;
            let user = match stream.reader {
                Reader::KEY if stream.queue < TOPIC_QUEUES => owner(stream.queue),
                reader => reader.user(),
            };
            match (user, stream.protocol) {
                (Some(user), _) => match tally.by_user.iter_mut().find(|(u, _)| *u == user) {
                    Some((_, counts)) => counts[door] += 1,
                    None => {
                        let mut counts = ByDoor::default();
                        counts[door] = 1;
                        tally.by_user.push((user, counts));
                    }
                },
                (None, Protocol::Autopush) => tally.user_agents += 1,
                (None, _) => tally.anonymous += 1,
            }
        }
        tally
    }
}

/// `GET /admin/api/status`: what the event loop knows is taken now; the users, the owners
/// of the devices that stream and the message count are read in the store.
pub fn status(state: &Rc<ServerState>) -> Work {
    let census = state.hub.census();
    let budget = crate::delivery::store_budget(state);
    let usage = state.store.commit_stats().usage();
    let counters = &state.counters;
    let mut head = Json::new();
    head.str("version", env!("CARGO_PKG_VERSION"))
        .str("api_version", crate::API_VERSION)
        .num("now", crate::clock::now_millis() / 1000)
        .num("uptime_secs", state.started.elapsed().as_secs())
        .num("connections", state.connections() as u64)
        .num("max_connections", state.max_connections() as u64)
        .num("streams", census.len() as u64)
        .opt("certificate_expires", state.certificate_expiry())
        .num("requests", counters.requests.get())
        .num("posts_accepted", counters.posts_accepted.get())
        .num("posts_refused", counters.posts_refused.get())
        .num("streams_opened", counters.streams_opened.get())
        .opt("resident_bytes", crate::metrics::resident_bytes())
        .raw(
            "store",
            &Json::new()
                .opt("used_bytes", usage.map(|u| u.0))
                .num("max_bytes", budget.max_bytes)
                .opt("anonymous_bytes", usage.map(|u| u.1))
                .num("max_anonymous_bytes", budget.max_anonymous_bytes)
                .opt("user_agent_bytes", usage.map(|u| u.2))
                .num("max_user_agent_bytes", budget.max_uaid_bytes)
                .end(),
        );
    Work::Read(Box::new(move |t| {
        let clients = t.clients()?;
        let mut owners = Vec::new();
        for c in census.iter().filter(|c| c.reader == Reader::KEY) {
            if c.queue < TOPIC_QUEUES
                && let Some(client) = accounts::get_client(&clients, c.queue)?
            {
                owners.push((c.queue, client.user_id));
            }
        }
        let owner = |queue| owners.iter().find(|(q, _)| *q == queue).map(|o| o.1);
        let tally = Tally::of(&census, owner);
        let users: Vec<String> = accounts::list_users(t)?
            .into_iter()
            .map(|(id, user)| {
                let counts = tally
                    .by_user
                    .iter()
                    .find(|(u, _)| *u == id)
                    .map_or_else(ByDoor::default, |c| c.1);
                Json::new()
                    .num("id", id)
                    .str("name", &user.name)
                    .num("streams", counts.iter().sum())
                    .raw("doors", &doors(&counts))
                    .end()
            })
            .collect();
        let json = head
            .raw("doors", &doors(&tally.total))
            .raw("users", &array(&users))
            .num("anonymous_streams", tally.anonymous)
            .num("user_agent_streams", tally.user_agents)
            .num("queued_messages", t.open_table(MESSAGES)?.len()?)
            .end();
        Ok(Ok(json))
    }))
}

/// `GET /admin/api/setup`: the URLs a phone or Firefox is set up with: `server_url`
/// (`public_url`, else what this request reached), `public_url_set`, the doors this build
/// has (`ntfy`, `nextpush`) and `autopush_url` (Firefox's `dom.push.serverURL` and Sunup's
/// server; `null` without autopush).
pub fn setup(state: &ServerState, req: &Request) -> String {
    let config = state.config();
    let base = crate::delivery::endpoints::base_url(state, req);
    let server_url = base.trim_end_matches('/');
    let autopush_url = config
        .autopush_path
        .as_deref()
        .filter(|_| cfg!(feature = "autopush"))
        .map(|path| {
            let ws = match server_url.strip_prefix("https://") {
                Some(host) => format!("wss://{host}"),
                None => format!("ws://{}", server_url.trim_start_matches("http://")),
            };
            crate::json::string(&format!("{ws}{path}"))
        });
    Json::new()
        .str("server_url", server_url)
        .bool("public_url_set", config.public_url.is_some())
        .bool("ntfy", cfg!(feature = "ntfy"))
        .bool("nextpush", cfg!(feature = "nextpush"))
        .raw("autopush_url", autopush_url.as_deref().unwrap_or("null"))
        .end()
}
