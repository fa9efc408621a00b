//! openpush only: N clients (devices), each with one application, made through the HTTP API
//! (`POST /client` with Basic auth, `POST /application` with the client key). Users were made
//! beforehand with `openpush user add`; clients are spread over them to stay under
//! `max_clients_per_user`. Saved as `key routing_token last_event_id` lines for reuse.
//! ntfy streams need only the users: [`logins`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::wire::{self, json_str, HttpConn};

pub struct Creds {
    pub keys: Vec<String>,
    pub tokens: Vec<String>,
    pub last_ids: Vec<u64>,
}

pub fn load(path: &str) -> Creds {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut c = Creds {
        keys: vec![],
        tokens: vec![],
        last_ids: vec![],
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 3 {
            c.keys.push(f[0].into());
            c.tokens.push(f[1].into());
            c.last_ids.push(f[2].parse().unwrap_or(0));
        }
    }
    c
}

pub fn save(path: &str, c: &Creds) {
    let mut out = String::new();
    for i in 0..c.keys.len() {
        out.push_str(&format!(
            "{} {} {}\n",
            c.keys[i],
            c.tokens[i],
            c.last_ids.get(i).copied().unwrap_or(0)
        ));
    }
    std::fs::write(path, out).expect("write creds file");
}

/// `PREFIX:COUNT:PASSWORD`: users PREFIX0 .. PREFIX{COUNT-1}, all with PASSWORD.
fn parse_users(users: &str) -> (String, usize, String) {
    let parts: Vec<&str> = users.splitn(3, ':').collect();
    (
        parts[0].to_owned(),
        parts[1].parse::<usize>().expect("user count"),
        parts[2].to_owned(),
    )
}

/// The `Authorization` values of the users `n` ntfy streams need (`per_user` topics each),
/// each logged in once (`GET /<topic>/auth`) so that the server's login cache answers the
/// streams' own logins instead of queueing them all for Argon2 at once.
pub fn logins(dest: SocketAddr, n: usize, users: &str, per_user: usize) -> Vec<String> {
    let (prefix, count, password) = parse_users(users);
    assert!(
        n <= count * per_user,
        "{count} users x {per_user} topics < {n}"
    );
    let mut c = HttpConn::new(wire::connect_from(500 * 1000, dest, false).expect("connect"));
    (0..n.div_ceil(per_user))
        .map(|u| {
            let auth = format!(
                "Basic {}",
                wire::base64(format!("{prefix}{u}:{password}").as_bytes())
            );
            let path = format!("/{}/auth", crate::subs::ntfy_topic(u * per_user));
            let r = c
                .request("GET", &path, &[("Authorization", &auth)], b"")
                .expect("GET /<topic>/auth");
            assert_eq!(
                r.status,
                200,
                "GET {path}: {}",
                String::from_utf8_lossy(&r.body)
            );
            auth
        })
        .collect()
}

/// Makes clients until there are `n`; `users` is `PREFIX:COUNT:PASSWORD`, clients per user
/// is `per_user`.
pub fn ensure(path: &str, dest: SocketAddr, n: usize, users: &str, per_user: usize) -> Creds {
    let mut creds = load(path);
    if creds.keys.len() >= n {
        return creds;
    }
    let (prefix, count, password) = parse_users(users);
    let have = creds.keys.len();
    assert!(
        n <= count * per_user,
        "{count} users x {per_user} clients < {n}"
    );
    // One login per user first, one at a time: the server counts logins in flight against its
    // login backoff (32 at once for one user are refused); the threads' logins hit its cache.
    logins(dest, n, users, per_user);
    let made: Arc<Mutex<Vec<(usize, String, String)>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(have));
    let t0 = std::time::Instant::now();
    let threads: Vec<_> = (0..32)
        .map(|w| {
            let (made, next, prefix, password) =
                (made.clone(), next.clone(), prefix.clone(), password.clone());
            std::thread::spawn(move || {
                let mut c = HttpConn::new(
                    wire::connect_from(500 * 1000 + w, dest, false).expect("connect"),
                );
                loop {
                    let i = next.fetch_add(1, Relaxed);
                    if i >= n {
                        break;
                    }
                    let user = format!("{prefix}{}", i / per_user);
                    let auth = format!(
                        "Basic {}",
                        wire::base64(format!("{user}:{password}").as_bytes())
                    );
                    let name = format!("{{\"name\":\"c{i}-{}\"}}", std::process::id());
                    let r = c
                        .request(
                            "POST",
                            "/client",
                            &[
                                ("Authorization", &auth),
                                ("Content-Type", "application/json"),
                            ],
                            name.as_bytes(),
                        )
                        .expect("POST /client");
                    assert_eq!(
                        r.status,
                        201,
                        "POST /client: {}",
                        String::from_utf8_lossy(&r.body)
                    );
                    let key = json_str(&r.body, "token").expect("client token");
                    let r = c
                        .request(
                            "POST",
                            "/application",
                            &[("X-Openpush-Key", &key)],
                            b"{\"registration_id\":\"a\"}",
                        )
                        .expect("POST /application");
                    assert_eq!(
                        r.status,
                        201,
                        "POST /application: {}",
                        String::from_utf8_lossy(&r.body)
                    );
                    let token = json_str(&r.body, "routing_token").expect("routing token");
                    made.lock().expect("lock").push((i, key, token));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("setup thread");
    }
    let mut made = std::mem::take(&mut *made.lock().expect("lock"));
    made.sort_by_key(|m| m.0);
    for (_, key, token) in made {
        creds.keys.push(key);
        creds.tokens.push(token);
        creds.last_ids.push(0);
    }
    eprintln!(
        "setup: {} clients made in {:.1} s",
        n - have,
        t0.elapsed().as_secs_f64()
    );
    save(path, &creds);
    creds
}
