//! X-Forwarded-For behind a trusted proxy: every header line counts, in order, and the
//! client is the right-most address that is not a trusted proxy.

use crate::support;

use support::*;

/// A request as a proxy that appends its own line (HAProxy `option forwardfor`) passes on
/// a client's: the client's own `X-Forwarded-For` first, the proxy's after it.
fn via_proxy(s: &Server, path: &str, forged: &str, real: &str) -> Response {
    let raw = format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Forwarded-For: {forged}\r\nX-Forwarded-For: {real}\r\n\r\n"
    );
    send_raw(s.addr, raw.as_bytes())
}

// Regression (issue 10): only the first line was read, so the client chose its address.
#[test]
fn the_rate_limit_follows_the_right_most_untrusted_address_across_lines() {
    let s = Server::start_with(
        "xff-lines-rate",
        "requests_per_sec_per_addr = 0.1\nrequest_burst_per_addr = 3",
    );
    for n in 0..3 {
        let forged = format!("198.51.100.{n}");
        assert_eq!(via_proxy(&s, "/version", &forged, "192.0.2.7").status, 200);
    }
    via_proxy(&s, "/version", "198.51.100.99", "192.0.2.7").assert_error(429);
    // A list in one line and the lines together read as one list.
    via_proxy(&s, "/version", "198.51.100.1, 127.0.0.1", "192.0.2.7").assert_error(429);
    // Trusted proxies on the right are skipped: the address before them is the client.
    via_proxy(&s, "/version", "198.51.100.3", "192.0.2.7, 127.0.0.1").assert_error(429);
    assert_eq!(
        via_proxy(&s, "/version", "192.0.2.7", "192.0.2.8").status,
        200,
        "another real address has its own budget"
    );
}

#[test]
fn a_forged_loopback_line_does_not_make_a_request_local() {
    let s = Server::start("xff-lines-metrics");
    via_proxy(&s, "/metrics", "127.0.0.1", "192.0.2.9").assert_error(404);
    via_proxy(&s, "/metrics", "::1", "192.0.2.9").assert_error(404);
    via_proxy(&s, "/metrics", "127.0.0.1", "[2001:db8::9]:4711").assert_error(404);
    // What is not an address is not skipped over to the forged entry on its left.
    via_proxy(&s, "/metrics", "127.0.0.1", "unknown").assert_error(404);
    // A local client behind the local proxy is still local.
    assert_eq!(
        via_proxy(&s, "/metrics", "192.0.2.9", "127.0.0.1").status,
        404,
        "the right-most untrusted address is 192.0.2.9"
    );
    let raw = "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n";
    assert_eq!(send_raw(s.addr, raw.as_bytes()).status, 200);
}
