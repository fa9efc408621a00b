//! The push client's tests: one test binary (`cargo test -p openpush-client --test it`), a
//! module for each part, sharing [`support`], which runs the real `openpush` server binary
//! and the real `openpush-client` binary against it over real sockets.
//!
//! The tests run in parallel in one process: each keeps to its own server, data directory
//! and port (`:0`), and none changes the test process itself.

mod support;

mod crypto;
mod end_to_end;
mod readme;
