//! What every door is made of: its route table ([`Route`]: methods, path, guard,
//! handler), what a handler returns ([`Outcome`]), the JSON body of a request ([`body`]),
//! and the check that ends a stream whose access went while it started
//! ([`recheck_after_attach`]).
//!
//! This is door plumbing, below every door: it names no door, and a door that needs
//! something of another door finds it here, in `crate::delivery` or in the store instead.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use crate::store::kv::ReadTransaction;

use crate::error::{ApiError, ErrorForm};
use crate::http::{Request, Response};
use crate::state::ServerState;
use crate::store::tables::Tables;
use crate::store::{self, Revocation, accounts};

/// What a handler makes of a request.
pub enum Outcome {
    /// An answer; the connection goes on with its next request.
    Respond(Response),
    /// A stream: its response head, what it follows, and who opened it.
    Stream(Vec<u8>, crate::stream::Subscription, crate::hub::Reader),
    /// The connection changes protocol (a WebSocket upgrade): the door's task takes it.
    Upgrade(Upgrade),
}

/// A door's task for an upgraded connection; it writes the response head itself.
pub type Upgrade = Box<
    dyn FnOnce(
        crate::transport::Conn,
        crate::state::ConnectionGuard,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
>;

impl From<Response> for Outcome {
    fn from(r: Response) -> Outcome {
        Outcome::Respond(r)
    }
}

/// A door as the router sees it: its route table, the wire form of the errors of its
/// routes (ntfy's clients read ntfy's error JSON; the OpenPush API has its own), and the
/// headers of every answer at its paths.
/// task it runs beside its requests, if any.
pub struct Door {
    /// The routes, in the order they are tried.
    pub routes: &'static [Route],
    /// How an error of one of these routes is rendered.
    pub errors: ErrorForm,
    /// Headers the router adds to every answer at one of these paths, errors included,
    /// unless the answer has a header of that name already (the admin page's
    /// `Content-Security-Policy`, `Cache-Control` …).
    pub headers: &'static [(&'static str, &'static str)],
    /// Runs on the event loop for as long as the server does, started once with the
    /// listeners (ntfy's delayed delivery).
    pub task: Option<Task>,
}

/// A door's task: started with the server state, it never ends on its own.
pub type Task = fn(Rc<ServerState>) -> Pin<Box<dyn Future<Output = ()>>>;

/// One route of a door: the methods and the path it answers, who may use it, and its
/// handler. A door's routes are one table (`ROUTES`), in the order they are tried; the
/// router asks the doors in turn, and the `Allow` of a 405 lists the methods of every route
/// of the first door whose path matches.
pub struct Route {
    /// The methods it answers.
    pub methods: &'static [&'static str],
    /// The path, segment by segment (percent-decoded, empty segments dropped).
    pub path: &'static [Segment],
    /// Instead of `path`, a route the request's path and headers claim (the autopush
    /// WebSocket, at a configured path): never listed in a 405's `Allow`, and unknown to
    /// the log's redaction (which cuts such a path).
    pub claims: Option<fn(&ServerState, &Request) -> bool>,
    /// Who may use it.
    pub guard: Guard,
    /// Part of a 405's `Allow` when the path matches with another method; an unlisted
    /// route's path is 404 for other methods.
    pub listed: bool,
    /// A post of a message: its outcome is counted (accepted, refused, failed) once, by
    /// the router, for every door alike.
    pub post: bool,
    /// Handles a request the route matched; `path` is the request's path segments.
    pub handler: Handler,
}

/// A handler: the server state, the request, and its decoded path segments.
pub type Handler = for<'a> fn(&'a Rc<ServerState>, &'a Request, &'a [&'a str]) -> Reply<'a>;

/// What a handler's future gives.
pub type Reply<'a> = Pin<Box<dyn Future<Output = Result<Outcome, ApiError>> + 'a>>;

/// One segment of a route's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// This word.
    Word(&'static str),
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A user's id or name: not a capability (the log shows it, unless it is shaped like
    /// a key).
    Name,
    /// A capability, or what may hold one: a token, a key, a device id (the log shows its
    /// first four characters only).
    Secret,
    /// An ntfy topic name (`crate::names::is_topic_name`): a capability too.
    Topic,
}

/// Who may use a route. The router checks [`Guard::Local`] itself; every other guard is
/// the handler's first step, and the table says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Anyone.
    None,
    /// Whoever holds the capability in the path or the body (a routing token, an endpoint
    /// token, an endpoint topic, a NextPush device id, an autopush uaid).
    Capability,
    /// An autopush endpoint's token, and for a `/wpush/v2/` endpoint VAPID signed by the
    /// key its channel is bound to (`crate::vapid`).
    Vapid,
    /// A user (HTTP Basic); admins for other users' resources.
    User,
    /// A user, on a request that changes something: also same-origin (`crate::csrf`).
    UserChanging,
    /// A client (device), by its key in `X-Openpush-Key`.
    Client,
    /// A user who may read (or write) the topic, or anyone as `anonymous_access` allows.
    Topic,
    /// The host itself, or a loopback client named by a trusted proxy, unless
    /// `metrics_public`.
    Local,
}

impl Segment {
    fn matches(self, segment: &str) -> bool {
        match self {
            Segment::Word(word) => segment == word,
            Segment::OneOf(words) => words.contains(&segment),
            Segment::Name | Segment::Secret => true,
            Segment::Topic => crate::names::is_topic_name(segment),
        }
    }
}

impl Route {
    /// A route of `methods` at `path`, for `guard`.
    pub const fn new(
        methods: &'static [&'static str],
        path: &'static [Segment],
        guard: Guard,
        handler: Handler,
    ) -> Route {
        Route {
            methods,
            path,
            claims: None,
            guard,
            listed: true,
            post: false,
            handler,
        }
    }

    /// The route posts messages: the router counts its outcomes.
    pub const fn posts(mut self) -> Route {
        self.post = true;
        self
    }

    /// Another method at this path is 404, not 405 (for `/`, where a browser's `GET` should
    /// learn nothing from `Allow`).
    pub const fn unlisted(mut self) -> Route {
        self.listed = false;
        self
    }

    /// The route is where `claims` says, not at a fixed path; it is never listed.
    pub const fn claimed_by(mut self, claims: fn(&ServerState, &Request) -> bool) -> Route {
        self.claims = Some(claims);
        self.listed = false;
        self
    }

    /// Whether the route's path is `path` (for a claimed route: whether it claims the
    /// request).
    pub fn is_at(&self, state: &ServerState, req: &Request, path: &[&str]) -> bool {
        match self.claims {
            Some(claims) => claims(state, req),
            None => {
                self.path.len() == path.len()
                    && self.path.iter().zip(path).all(|(s, p)| s.matches(p))
            }
        }
    }
}

/// The request body as a miniserde type; what is wrong goes into the 400's detail.
pub fn body<T: miniserde::Deserialize>(req: &Request, expected: &str) -> Result<T, ApiError> {
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| ApiError::BadRequest("the request body is not UTF-8".into()))?;
    if let Err(e) = crate::json::compact(text.as_bytes()) {
        return Err(ApiError::BadRequest(format!(
            "the request body is not valid JSON: {e}"
        )));
    }
    miniserde::json::from_str(text)
        .map_err(|_| ApiError::BadRequest(format!("the request body must be {expected}")))
}

/// Ends a stream about to start if its access is taken away meanwhile: `lost` runs in a
/// store read once the stream is attached and names the access it no longer has (a queue
/// deleted, a topic it may no longer read, a login that changed).
///
/// A change that takes access away revokes the streams attached when it commits
/// ([`crate::store::Event::Revoked`]); a stream authorised before that commit but attached
/// after the revocation would stay open without the access. So once it is attached, its
/// access is checked again, on a snapshot taken after the attach: lost by then, it is
/// revoked here; lost later, the change revokes it. The task runs after the handler
/// returns, and the server attaches the stream before it yields (`crate::stream::start`).
pub fn recheck_after_attach<F>(state: &Rc<ServerState>, lost: F)
where
    F: FnOnce(&ReadTransaction) -> store::Result<Vec<Revocation>> + Send + 'static,
{
    let later = state.clone();
    let check = async move {
        if let Ok(revoked) = later.store.read(lost).await {
            for revocation in revoked {
                log::debug!("{revocation:?} while a stream started");
                later.hub.revoke_access(revocation);
            }
        }
    };
    state.executor.spawn(check).detach();
}

/// For [`recheck_after_attach`]: a device's queue, if its client is gone.
pub fn client_gone(t: &ReadTransaction, client_id: u64) -> store::Result<Vec<Revocation>> {
    let client = accounts::get_client(&t.clients()?, client_id)?;
    Ok(match client {
        Some(_) => Vec::new(),
        None => vec![Revocation::Queue(client_id)],
    })
}
