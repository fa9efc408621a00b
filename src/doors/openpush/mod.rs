//! The OpenPush v0.1 door: users, clients (devices), applications, `POST /message` and
//! the devices' `GET /subscribe` streams.

pub mod application;
pub mod client;
pub mod message;
pub mod subscribe;
pub mod user;

use std::rc::Rc;

use crate::error::ApiError;
use crate::http::Request;
use crate::route::Outcome;
use crate::state::ServerState;

/// The OpenPush v0.1 routes; `None` for a path that is not one.
/// Guards: `user` = HTTP Basic (admins for other users), `client` = `X-Openpush-Key`,
/// `token` = the routing token in the body.
pub async fn route(
    state: &Rc<ServerState>,
    req: &Request,
    path: &[&str],
) -> Option<Result<Outcome, ApiError>> {
    let method = req.method.as_str();
    Some(match (method, path) {
        // user
        ("GET", ["user"]) => user::list(state, req).await,
        ("POST", ["user"]) => user::create(state, req).await,
        ("GET", ["user", id]) => user::get(state, req, id).await,
        ("POST" | "PUT", ["user", id]) => user::update(state, req, id).await,
        ("DELETE", ["user", id]) => user::delete(state, req, id).await,
        ("GET", ["client"]) => client::list(state, req).await,
        ("POST", ["client"]) => client::create(state, req).await,
        // client
        ("DELETE", ["client"]) => client::delete_self(state, req).await,
        // user
        ("GET", ["client", id]) => client::get(state, req, id).await,
        ("PUT" | "POST", ["client", id]) => client::rename(state, req, id).await,
        ("DELETE", ["client", id]) => client::delete(state, req, id).await,
        // client
        ("GET", ["application"]) => application::list(state, req).await,
        ("POST", ["application"]) => application::register(state, req).await,
        ("DELETE", ["application", id]) => application::delete(state, req, id).await,
        ("GET", ["subscribe"]) => subscribe::start(state, req).await,
        // token
        ("POST", ["message"]) => crate::delivery::counted(state, message::post(state, req)).await,
        (_, path) => return allowed(path).map(|allow| Err(ApiError::MethodNotAllowed(allow))),
    })
}

fn allowed(path: &[&str]) -> Option<&'static str> {
    Some(match path {
        ["user"] => "GET, POST",
        ["user", _] => "GET, POST, PUT, DELETE",
        ["client"] => "GET, POST, DELETE",
        ["client", _] => "GET, PUT, POST, DELETE",
        ["application"] => "GET, POST",
        ["application", _] => "DELETE",
        ["message"] => "POST",
        ["subscribe"] => "GET",
        _ => return None,
    })
}
