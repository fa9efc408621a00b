//! The server's own routes, whatever doors a build has: its version, its health, and its
//! metrics.
//! Routes and guards: [`ROUTES`].

use std::rc::Rc;

use crate::store::kv::ReadableTableMetadata;

use crate::error::ApiError;
use crate::http::Response;
use crate::metrics;
use crate::route::Segment::Word;
use crate::route::{Guard, Outcome, Route};
use crate::state::ServerState;

/// The server's own routes.
/// The door: its routes, with errors in the OpenPush form.
pub const DOOR: crate::route::Door = crate::route::Door {
    routes: ROUTES,
    errors: crate::error::ErrorForm::OpenPush,
    headers: &[],
    task: None,
};

pub const ROUTES: &[Route] = &[
    Route::new(&["GET"], &[Word("version")], Guard::None, |_, _, _| {
        Box::pin(async { Ok(version().into()) })
    }),
    // 200 when the event loop and the store both answer.
    Route::new(&["GET"], &[Word("health")], Guard::None, |s, _, _| {
        Box::pin(health(s))
    }),
    Route::new(&["GET"], &[Word("metrics")], Guard::Local, |s, _, _| {
        Box::pin(metrics(s))
    }),
];

fn version() -> Response {
    Response::json(200, format!("{{\"version\":\"{}\"}}", crate::API_VERSION))
}

/// 200 when the event loop and the store both answer; 503 otherwise.
async fn health(state: &Rc<ServerState>) -> Result<Outcome, ApiError> {
    state.store.read(|_| Ok(())).await?;
    Ok(Response::json(200, "{\"status\":\"ok\"}").into())
}

/// The store's figures and the counters (the router keeps it to local callers).
async fn metrics(state: &Rc<ServerState>) -> Result<Outcome, ApiError> {
    let queued = state
        .store
        .read(|t| t.open_table(crate::store::tables::MESSAGES)?.len())
        .await
        .ok();
    let text = metrics::render(&metrics::Snapshot {
        counters: &state.counters,
        commits: state.store.commit_stats(),
        connections: state.connections(),
        streams: state.hub.len(),
        queued_messages: queued,
        upstream: state.upstream_totals(),
    });
    Ok(Response::new(200)
        .with_body("text/plain; version=0.0.4", text)
        .into())
}
