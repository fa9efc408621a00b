//! The OpenPush v0.1 door: users, clients (devices), applications, `POST /message` and
//! the devices' `GET /subscribe` streams.
//!
//! Routes and guards: [`ROUTES`]. `User` is HTTP Basic (admins may act on other users),
//! `Client` the device's key in `X-Openpush-Key`.

pub mod application;
pub mod client;
pub mod message;
pub mod subscribe;
pub mod user;

use crate::route::Guard::{Capability, Client, User};
use crate::route::Route;
use crate::route::Segment::{Name, Secret, Word};

/// The OpenPush v0.1 routes, in the order they are tried.
/// The door: its routes, with errors in the OpenPush form.
pub const DOOR: crate::route::Door = crate::route::Door {
    routes: ROUTES,
    errors: crate::error::ErrorForm::OpenPush,
    headers: &[],
    task: None,
};

pub const ROUTES: &[Route] = &[
    Route::new(&["GET"], &[Word("user")], User, |s, r, _| {
        Box::pin(user::list(s, r))
    }),
    Route::new(&["POST"], &[Word("user")], User, |s, r, _| {
        Box::pin(user::create(s, r))
    }),
    Route::new(&["GET"], &[Word("user"), Name], User, |s, r, p| {
        Box::pin(user::get(s, r, p[1]))
    }),
    Route::new(&["POST", "PUT"], &[Word("user"), Name], User, |s, r, p| {
        Box::pin(user::update(s, r, p[1]))
    }),
    Route::new(&["DELETE"], &[Word("user"), Name], User, |s, r, p| {
        Box::pin(user::delete(s, r, p[1]))
    }),
    Route::new(&["GET"], &[Word("client")], User, |s, r, _| {
        Box::pin(client::list(s, r))
    }),
    Route::new(&["POST"], &[Word("client")], User, |s, r, _| {
        Box::pin(client::create(s, r))
    }),
    Route::new(&["DELETE"], &[Word("client")], Client, |s, r, _| {
        Box::pin(client::delete_self(s, r))
    }),
    // A client is named by id, name or key: the segment may hold a capability.
    Route::new(&["GET"], &[Word("client"), Secret], User, |s, r, p| {
        Box::pin(client::get(s, r, p[1]))
    }),
    Route::new(
        &["PUT", "POST"],
        &[Word("client"), Secret],
        User,
        |s, r, p| Box::pin(client::rename(s, r, p[1])),
    ),
    Route::new(&["DELETE"], &[Word("client"), Secret], User, |s, r, p| {
        Box::pin(client::delete(s, r, p[1]))
    }),
    Route::new(&["GET"], &[Word("application")], Client, |s, r, _| {
        Box::pin(application::list(s, r))
    }),
    Route::new(&["POST"], &[Word("application")], Client, |s, r, _| {
        Box::pin(application::register(s, r))
    }),
    Route::new(
        &["DELETE"],
        &[Word("application"), Secret],
        Client,
        |s, r, p| Box::pin(application::delete(s, r, p[1])),
    ),
    Route::new(&["GET"], &[Word("subscribe")], Client, |s, r, _| {
        Box::pin(subscribe::start(s, r))
    }),
    // The routing token in the body is the capability.
    Route::new(&["POST"], &[Word("message")], Capability, |s, r, _| {
        Box::pin(message::post(s, r))
    })
    .posts(),
];
