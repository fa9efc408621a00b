//! Abuse limits as a client sees them: per-address request rates and connection caps,
//! trusted proxies' X-Forwarded-For, per-token post rates, and failed-login backoff.

use crate::support;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::*;

fn connect(server: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(server).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

#[test]
fn requests_beyond_the_rate_of_a_forwarded_address_get_429() {
    let s = Server::start_with(
        "rate-addr",
        "requests_per_sec_per_addr = 1\nrequest_burst_per_addr = 3",
    );
    let from = |ip: &str| s.request("GET", "/version", &[("X-Forwarded-For", ip)], "");
    for _ in 0..3 {
        assert_eq!(from("192.0.2.7").status, 200);
    }
    let limited = from("192.0.2.7");
    limited.assert_error(429);
    assert!(limited.header("retry-after").is_some());
    assert_eq!(
        from("192.0.2.8").status,
        200,
        "other addresses are not limited"
    );
    assert_eq!(
        from("2001:db8::1").status,
        200,
        "IPv6 is keyed on its /64, independent of IPv4"
    );
    for _ in 0..2 {
        from("2001:db8::2");
    }
    from("2001:db8::3").assert_error(429);
    assert_eq!(
        s.request("GET", "/version", &[], "").status,
        200,
        "the host itself (a trusted proxy without the header) is not limited"
    );
}

#[test]
fn posts_beyond_the_rate_of_one_token_get_429_without_storing() {
    let s = Server::start_with(
        "rate-token",
        "posts_per_sec_per_token = 0.5\npost_burst_per_token = 2",
    );
    let (key, token) = s.device("ann");
    let other = s.add_app(&key, "app2");
    let post =
        |t: &str, n: u32| s.post_message(&format!(r#"{{"token":"{t}","data":{{"n":{n}}}}}"#));
    assert_eq!(post(&token, 1).status, 200);
    assert_eq!(post(&token, 2).status, 200);
    let limited = post(&token, 3);
    limited.assert_error(429);
    assert!(limited.header("retry-after").is_some());
    assert_eq!(post(&other, 4).status, 200, "each token has its own budget");
    let mut sse = s.subscribe(&key, None);
    let mut seen = Vec::new();
    while let Some(e) = sse.next_within(Duration::from_millis(500)) {
        seen.push(e.data);
    }
    assert_eq!(seen.len(), 3, "the refused post was not stored: {seen:?}");
    assert!(!seen.iter().any(|d| d.contains(r#""n":3"#)));
}

#[test]
fn repeated_failed_logins_must_wait_and_success_clears_it() {
    let s = Server::start_with("login-backoff", "login_free_failures = 2");
    s.add_user("ann", "right");
    let login = |password: &str, ip: &str| {
        s.request(
            "GET",
            "/user",
            &[
                ("Authorization", &basic("ann", password)),
                ("X-Forwarded-For", ip),
            ],
            "",
        )
    };
    assert_eq!(login("wrong", "192.0.2.1").status, 401);
    assert_eq!(login("wrong", "192.0.2.1").status, 401);
    let throttled = login("right", "192.0.2.1");
    throttled.assert_error(429);
    assert!(throttled.header("retry-after").is_some());
    // Another address still gets in: the name allows twice the failures of an address.
    assert_eq!(login("right", "192.0.2.2").status, 200);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(login("right", "192.0.2.1").status, 200);
    assert_eq!(
        login("wrong", "192.0.2.1").status,
        401,
        "success cleared the record"
    );
}

#[test]
fn connections_beyond_the_cap_of_one_address_are_refused() {
    let s = Server::start_with(
        "conn-cap",
        "max_connections_per_addr = 2\ntrusted_proxies = 10.255.255.1",
    );
    // Loopback is not a trusted proxy here, so 127.0.0.1 is an ordinary client address.
    let held: Vec<TcpStream> = (0..2).map(|_| connect(s.addr)).collect();
    let mut third = connect(s.addr);
    let mut answer = Vec::new();
    let _ = third.read_to_end(&mut answer);
    let response = parse_response(&answer).expect("a 429 before the close");
    response.assert_error(429);
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.request("GET", "/version", &[], "").status, 200);
}

#[test]
fn sighup_reloads_limits_and_keeps_the_old_config_when_the_new_one_is_bad() {
    let s = Server::start_with("reload", "request_burst_per_addr = 100");
    let from = |ip: &str| s.request("GET", "/version", &[("X-Forwarded-For", ip)], "");
    for _ in 0..5 {
        assert_eq!(from("192.0.2.1").status, 200);
    }
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&s.config, format!("{text}\nno_such_option = 1\n")).unwrap();
    s.reload();
    s.wait_log("configuration not reloaded");
    assert_eq!(from("192.0.2.2").status, 200);

    std::fs::write(
        &s.config,
        text.replace(
            "request_burst_per_addr = 100",
            "request_burst_per_addr = 2\nrequests_per_sec_per_addr = 0.1",
        ),
    )
    .unwrap();
    s.reload();
    s.wait_log("configuration reloaded");
    assert_eq!(from("192.0.2.3").status, 200);
    assert_eq!(from("192.0.2.3").status, 200);
    from("192.0.2.3").assert_error(429);
}

#[test]
fn queue_full_by_bytes_refuses_new_posts_and_keeps_the_stored_ones() {
    let s = Server::start_with("queue-bytes", "max_queued_bytes_per_client = 8192");
    let (key, token) = s.device("ann");
    let pad = "x".repeat(3000);
    let post = |n: u32| {
        s.post_message(&format!(
            r#"{{"token":"{token}","data":{{"n":{n},"pad":"{pad}"}}}}"#
        ))
    };
    assert_eq!(post(1).status, 200);
    assert_eq!(post(2).status, 200);
    let full = post(3);
    full.assert_error(429);
    assert!(full.header("retry-after").is_some());
    let mut sse = s.subscribe(&key, None);
    let first = sse.next();
    assert!(first.data.contains(r#""n":1"#));
    let second = sse.next();
    assert!(second.data.contains(r#""n":2"#));
    drop(sse);
    // Confirming makes room again.
    let _ = s.subscribe(&key, second.id);
    assert_eq!(post(4).status, 200);
}

#[test]
fn metrics_are_for_local_callers_even_behind_a_local_proxy() {
    let s = Server::start("metrics-local");
    let local = s.request("GET", "/metrics", &[], "");
    assert_eq!(local.status, 200);
    assert!(local.text().contains("openpush_connections"));
    let forwarded = s.request("GET", "/metrics", &[("X-Forwarded-For", "192.0.2.9")], "");
    forwarded.assert_error(404);
    assert_eq!(
        s.request("GET", "/health", &[("X-Forwarded-For", "192.0.2.9")], "")
            .status,
        200
    );
}
