//! The `/push/<token>` endpoints of OpenPush applications, under the Web Push rules of
//! every endpoint here (`crate::delivery::webpush`).
//!
//! Routes and guards: [`ROUTES`].

use crate::delivery::webpush;
use crate::error::ApiError;
use crate::route::Segment::{Secret, Word};
use crate::route::{Guard, Route};
use crate::state::ServerState;

/// `/push/<token>`: the endpoints of OpenPush applications. Missing TTL: `default_ttl_secs`.
/// The door: its routes, with errors in the OpenPush form.
pub const DOOR: crate::route::Door = crate::route::Door {
    routes: ROUTES,
    errors: crate::error::ErrorForm::OpenPush,
    headers: &[],
    task: None,
};

pub const ROUTES: &[Route] = &[
    // UnifiedPush discovery, for a token that exists.
    Route::new(&["GET"], &[Word("push"), Secret], Guard::None, |s, _, p| {
        Box::pin(async {
            app_exists(s, p[1].to_owned())
                .await
                .map(|()| webpush::discovery().into())
        })
    }),
    // The routing token is the capability.
    Route::new(
        &["POST", "PUT"],
        &[Word("push"), Secret],
        Guard::Capability,
        |s, r, p| {
            Box::pin(async {
                webpush::post_to_app(s, r, p[1].to_owned())
                    .await
                    .map(Into::into)
            })
        },
    )
    .posts(),
];

async fn app_exists(state: &ServerState, token: String) -> Result<(), ApiError> {
    state
        .store
        .read(move |t| crate::store::accounts::app_by_token(t, &token))
        .await?
        .map(drop)
        .ok_or(ApiError::NotFound("no such endpoint"))
}
