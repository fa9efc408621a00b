//! The front doors: one module each, every one translating its wire protocol into the
//! same queue (`crate::delivery`) and reading from it through a stream (`crate::stream`).
//!
//! The rule that keeps them apart: a door imports the door plumbing (`crate::route`), the
//! endpoints and their resolvers (`crate::delivery`), the runtime (`crate::state`,
//! `crate::hub`, `crate::stream`, `crate::auth` …) and the store, **never another door**.
//! What two doors share moves down a layer. Only `crate::router` names the doors, in the
//! order it asks them. A test (`crate::layout`) checks both, and that no module imports
//! form a circle.
//!
//! Each door but `status` (the server's own `/version`, `/health`, `/metrics`) is a Cargo
//! feature of its name, all on by default; a feature gates only the module here and its
//! row in the router's table. `admin` is the admin page (`/admin/`), a door of the
//! household's administrators rather than of devices.

#[cfg(feature = "admin")]
pub mod admin;
#[cfg(feature = "autopush")]
pub mod autopush;
#[cfg(feature = "matrix")]
pub mod matrix;
#[cfg(feature = "nextpush")]
pub mod nextpush;
#[cfg(feature = "ntfy")]
pub mod ntfy;
#[cfg(feature = "openpush")]
pub mod openpush;
pub mod status;
#[cfg(feature = "webpush")]
pub mod webpush;
