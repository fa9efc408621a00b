//! What every door's handlers share: what a handler returns ([`Outcome`]), the JSON body
//! of a request ([`body`]), and the check that ends a stream whose access went while it
//! started ([`recheck_after_attach`]).
//!
//! This is door plumbing, below every door: it names no door, and a door that needs
//! something of another door finds it here, in `crate::delivery` or in the store instead.

use std::rc::Rc;

use redb::ReadTransaction;

use crate::error::ApiError;
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
        async_io::Async<std::net::TcpStream>,
        crate::state::ConnectionGuard,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>,
>;

impl From<Response> for Outcome {
    fn from(r: Response) -> Outcome {
        Outcome::Respond(r)
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
