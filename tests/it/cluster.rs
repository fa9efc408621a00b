//! Several nodes on one Redis (`store = redis://…`, the `redis` feature): any node takes any
//! post and any stream, a post on one reaches a live stream on another at once, ids stay
//! ordered across nodes, a node killed with SIGKILL loses nothing acknowledged and its
//! devices resume elsewhere from their cursors, access taken away on one node ends the
//! streams on every node, and dropped Redis connections heal by themselves. Each test
//! starts its own `redis-server` (Debian's package) with `appendfsync always`.

use std::net::SocketAddr;
use std::time::Duration;

use openpush::store::kv::{self, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::support::push::{JsonStream, Obj, poll, send};
use crate::support::redis::Redis;
use crate::support::{
    Response, Server, TIMEOUT, api, basic, openpush_command, output_within, stderr,
};

fn publish(node: &Server, auth: &str, topic: &str, text: &str) -> Obj {
    publish_at(node.addr, auth, topic, text)
}

fn publish_at(addr: SocketAddr, auth: &str, topic: &str, text: &str) -> Obj {
    let r = as_user(
        addr,
        "POST",
        &format!("/{topic}"),
        auth,
        &[],
        text.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    Obj::parse(&r.text())
}

/// A request of `auth`'s user with more `headers`.
fn as_user(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut all = vec![("Authorization", auth)];
    all.extend_from_slice(headers);
    send(addr, method, path, &all, body)
}

fn live(node: &Server, auth: &str, topic: &str) -> JsonStream {
    let mut stream = JsonStream::open(
        node.addr,
        &format!("/{topic}/json"),
        &[("Authorization", auth)],
    );
    assert_eq!(stream.status, 200, "{}", stream.head);
    stream.opened();
    stream
}

/// Two nodes on a fresh Redis, with alice (an administrator) made through the first.
fn two_nodes(name: &str) -> (Redis, Vec<Server>, String) {
    let redis = Redis::start(name);
    let nodes = redis.nodes(name, 2, "");
    nodes[0].add_user("alice", "apw");
    (redis, nodes, basic("alice", "apw"))
}

#[test]
fn a_post_on_one_node_reaches_a_live_stream_on_the_other_at_once() {
    let (_redis, nodes, alice) = two_nodes("cluster-live");
    let mut on_b = live(&nodes[1], &alice, "family");
    let mut on_a = live(&nodes[0], &alice, "family");
    let sent: Vec<Obj> = (0..5)
        .map(|i| publish(&nodes[i % 2], &alice, "family", &format!("m{i}")))
        .collect();
    for stream in [&mut on_a, &mut on_b] {
        let got: Vec<String> = (0..5)
            .map(|_| stream.message().str("id").to_owned())
            .collect();
        let want: Vec<String> = sent.iter().map(|m| m.str("id").to_owned()).collect();
        assert_eq!(got, want, "every message, in the order they were taken");
    }
    let ids: Vec<u64> = sent.iter().map(Obj::id_number).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids rise across nodes: {ids:?}"
    );
}

#[test]
fn a_stream_of_several_topics_gets_every_message_of_both_nodes_in_id_order() {
    let (_redis, nodes, alice) = two_nodes("cluster-topics");
    let mut both = live(&nodes[1], &alice, "ta,tb");
    let sent: Vec<u64> = std::thread::scope(|scope| {
        let posters: Vec<_> = (0..2)
            .map(|n| {
                let (addr, alice) = (nodes[n].addr, &alice);
                scope.spawn(move || {
                    (0..20)
                        .map(|i| {
                            let topic = ["ta", "tb"][(i + n) % 2];
                            publish_at(addr, alice, topic, &format!("{n}-{i}")).id_number()
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        posters
            .into_iter()
            .flat_map(|p| p.join().unwrap())
            .collect()
    });
    let mut want = sent;
    want.sort_unstable();
    let got: Vec<u64> = (0..want.len())
        .map(|_| both.message().id_number())
        .collect();
    assert_eq!(got, want, "every message once, in id order");
}

#[test]
fn a_message_kept_for_nobody_reaches_the_live_streams_of_every_node_only() {
    let (_redis, nodes, alice) = two_nodes("cluster-ttl0");
    let mut on_b = live(&nodes[1], &alice, "now");
    let r = as_user(
        nodes[0].addr,
        "POST",
        "/now",
        &alice,
        &[("Cache", "no")],
        b"ring",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(on_b.message().str("message"), "ring");
    assert!(
        poll(nodes[1].addr, &alice, "now").is_empty(),
        "never stored"
    );
}

#[test]
fn the_store_budget_holds_for_posts_spread_over_the_nodes() {
    let budget = "max_store_bytes = 131072\nposts_per_sec_per_token = 0\n";
    let redis = Redis::start("cluster-budget");
    let nodes = redis.nodes("cluster-budget", 2, budget);
    nodes[0].add_user("alice", "apw");
    let alice = basic("alice", "apw");
    let body = "z".repeat(4000);
    let mut accepted = 0;
    let refused = loop {
        let node = &nodes[accepted % 2];
        let r = as_user(node.addr, "POST", "/full", &alice, &[], body.as_bytes());
        if r.status != 200 {
            break r;
        }
        accepted += 1;
        assert!(accepted < 100, "no refusal");
    };
    refused.assert_error(507);
    // 128 KiB hold 31 bodies of 4000 bytes with their overhead, and not one more, as on
    // one node (`budget`): each node took the other's counts before it wrote.
    assert!((29..=32).contains(&accepted), "{accepted}");
    assert_eq!(poll(nodes[1].addr, &alice, "full").len(), accepted);
    for node in &nodes {
        let r = as_user(node.addr, "POST", "/full", &alice, &[], body.as_bytes());
        r.assert_error(507);
    }
}

#[test]
fn a_delayed_message_of_a_node_that_died_is_sent_by_another() {
    let redis = Redis::start("cluster-delay");
    let mut nodes = redis.nodes("cluster-delay", 2, "min_delay_secs = 1\n");
    nodes[0].add_user("alice", "apw");
    let alice = basic("alice", "apw");
    let mut on_b = live(&nodes[1], &alice, "later");
    let r = as_user(
        nodes[0].addr,
        "POST",
        "/later",
        &alice,
        &[("Delay", "2s")],
        b"on time",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    nodes[0].kill9();
    // Due in 2 s; the other node looks at the store every 5 s (within the harness's 10 s).
    assert_eq!(on_b.message().str("message"), "on time");
}

#[test]
fn a_queue_limit_holds_for_posts_spread_over_the_nodes() {
    let limits = "max_queued_per_topic = 5\nposts_per_sec_per_token = 0\n";
    let redis = Redis::start("cluster-limit");
    let nodes = redis.nodes("cluster-limit", 2, limits);
    nodes[0].add_user("alice", "apw");
    let alice = basic("alice", "apw");
    // Each node learns the topic's size before the other's posts, then posts in turn.
    for node in &nodes {
        publish(node, &alice, "small", "first");
    }
    let mut answers = Vec::new();
    for i in 0..6 {
        let r = as_user(nodes[i % 2].addr, "POST", "/small", &alice, &[], b"more");
        answers.push(r.status);
    }
    assert_eq!(
        answers,
        [200, 200, 200, 429, 429, 429],
        "5 at most, whichever node"
    );
    assert_eq!(poll(nodes[0].addr, &alice, "small").len(), 5);
}

#[test]
fn a_node_killed_loses_nothing_it_acknowledged() {
    let (_redis, mut nodes, alice) = two_nodes("cluster-kill");
    let sent: Vec<String> = (0..20)
        .map(|i| {
            publish(&nodes[0], &alice, "kept", &format!("k{i}"))
                .str("id")
                .to_owned()
        })
        .collect();
    nodes[0].kill9();
    let on_b: Vec<String> = poll(nodes[1].addr, &alice, "kept")
        .iter()
        .map(|m| m.str("id").to_owned())
        .collect();
    assert_eq!(on_b, sent);
    nodes[0].restart();
    publish(&nodes[0], &alice, "kept", "after");
    assert_eq!(poll(nodes[1].addr, &alice, "kept").len(), 21);
}

#[test]
fn a_device_resumes_on_another_node_from_its_cursor() {
    let redis = Redis::start("cluster-resume");
    let nodes = redis.nodes("cluster-resume", 2, "");
    let (key, token) = nodes[0].device("ann");
    for n in 1..=3 {
        let r = nodes[0].post_message(&api::message(&token, &format!("{{\"n\":{n}}}")));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let mut first = nodes[1].subscribe(&key, None);
    let seen: Vec<u64> = (0..3).map(|_| first.next().id.expect("an id")).collect();
    drop(first);
    for n in 4..=5 {
        let r = nodes[1].post_message(&api::message(&token, &format!("{{\"n\":{n}}}")));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let mut again = nodes[0].subscribe(&key, Some(seen[2]));
    let rest: Vec<String> = (0..2).map(|_| again.next().data).collect();
    assert!(
        rest[0].contains(r#"{"n":4}"#) && rest[1].contains(r#"{"n":5}"#),
        "{rest:?}"
    );
    assert!(
        again.next_within(Duration::from_millis(300)).is_none(),
        "nothing twice"
    );
}

#[test]
fn a_user_deleted_through_one_node_loses_its_streams_on_every_node() {
    let (_redis, nodes, _alice) = two_nodes("cluster-revoke");
    nodes[0].add_user("bob", "bpw");
    let bob = basic("bob", "bpw");
    let mut on_b = live(&nodes[1], &bob, "bobs");
    nodes[0].cli_ok(&["user", "del", "bob"], "");
    assert!(
        on_b.closed_within(TIMEOUT),
        "bob's stream on the other node ended"
    );
    let r = as_user(nodes[1].addr, "GET", "/bobs/json?poll=1", &bob, &[], b"");
    assert_eq!(
        r.status,
        401,
        "its cached login is gone there too: {}",
        r.text()
    );
}

#[test]
fn a_password_changed_through_one_node_is_the_only_one_every_node_takes() {
    let (_redis, nodes, alice) = two_nodes("cluster-passwd");
    let poll_as =
        |auth: &str| as_user(nodes[1].addr, "GET", "/t/json?poll=1", auth, &[], b"").status;
    assert_eq!(poll_as(&alice), 200, "the other node caches alice's login");
    nodes[0].cli_ok(
        &["user", "passwd", "alice", "--password-stdin"],
        "a-new-password\n",
    );
    assert_eq!(poll_as(&alice), 401, "the old password");
    assert_eq!(poll_as(&basic("alice", "a-new-password")), 200);
}

#[test]
fn dropped_redis_connections_heal_and_lose_no_news() {
    let (redis, nodes, alice) = two_nodes("cluster-drop");
    let mut on_b = live(&nodes[1], &alice, "heal");
    publish(&nodes[0], &alice, "heal", "before");
    assert_eq!(on_b.message().str("message"), "before");
    for kind in ["pubsub", "normal"] {
        redis.call(&["CLIENT", "KILL", "TYPE", kind]);
    }
    let after = publish(&nodes[0], &alice, "heal", "after");
    assert_eq!(on_b.message().str("id"), after.str("id"));
    let r = as_user(nodes[1].addr, "POST", "/heal", &alice, &[], b"back");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(poll(nodes[0].addr, &alice, "heal").len(), 3);
}

#[test]
fn after_redis_lost_its_data_an_old_cursor_confirms_nothing() {
    let (redis, mut nodes, alice) = two_nodes("cluster-lost");
    let old = publish(&nodes[0], &alice, "t", "before the loss");
    assert!(
        old.id_number() >= 1 << 40,
        "ids start at a random base: {}",
        old.id_number()
    );
    assert_eq!(redis.call(&["FLUSHALL"]), "OK");
    nodes[1].restart();
    nodes[1].add_user("alice", "apw");
    let new = publish(&nodes[0], &alice, "t", "after the loss");
    let r = as_user(
        nodes[1].addr,
        "GET",
        &format!("/t/json?poll=1&since={}", old.str("id")),
        &alice,
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains(new.str("id")),
        "the new history's message is read, whatever the old cursor: {}",
        r.text()
    );
}

#[test]
fn a_redis_that_may_lose_writes_is_refused_unless_the_config_accepts_it() {
    let refusal = |redis: &Redis| {
        let dir = crate::support::temp_dir("cluster-refused");
        let config = dir.join("openpush.conf");
        let base = format!("db = {}\n{}", dir.join("db.redb").display(), redis.store());
        std::fs::write(&config, &base).unwrap();
        let child = openpush_command(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let out = output_within(child, TIMEOUT, "a refused start");
        assert!(!out.status.success());
        let text = stderr(&out);
        assert!(text.contains("redis_require_fsync = false"), "{text}");
        assert!(
            !text.contains("redis://"),
            "no URL (it may hold a password): {text}"
        );
        text
    };
    let everysec = Redis::start_with("cluster-everysec", "everysec");
    assert!(refusal(&everysec).contains("appendfsync is everysec"));
    let evicting = Redis::start("cluster-evicting");
    evicting.call(&["CONFIG", "SET", "maxmemory", "100mb"]);
    evicting.call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    assert!(refusal(&evicting).contains("maxmemory-policy is allkeys-lru"));
    let node = Server::start_with(
        "cluster-everysec-ok",
        &format!("{}redis_require_fsync = false\n", everysec.store()),
    );
    node.add_user("alice", "apw");
    publish(&node, &basic("alice", "apw"), "t", "taken");
}

/// Random writes, reads and ranges through `kv`, on redb and on Redis side by side: both
/// give the same answers, in and out of write transactions, after commits and aborts.
#[test]
fn the_redis_tables_answer_as_the_redb_ones() {
    const BYTES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("messages");
    const TRIPLES: TableDefinition<(u64, &str, &str), u64> = TableDefinition::new("collapse");
    let redis = Redis::start("cluster-kv");
    let url = format!("redis://{}/0", redis.addr);
    let backend = kv::redis::Backend::open(&url, "kvtest", true).unwrap();
    let stores = [
        kv::Database::Redb(
            redb::Builder::new()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .unwrap(),
        ),
        kv::Database::Redis(backend),
    ];
    for db in &stores {
        let txn = db.begin_write().unwrap();
        txn.open_table(BYTES).unwrap();
        txn.open_table(TRIPLES).unwrap();
        txn.commit().unwrap();
    }
    let names = ["", "a", "a\0", "a\0b", "ab", "b"];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for round in 0..40 {
        let ops: Vec<(u64, u64, u64, u64)> = (0..30)
            .map(|_| (next(6), next(3), next(40), next(6)))
            .collect();
        let commit = next(4) != 0;
        let answers: Vec<Vec<String>> = stores
            .iter()
            .map(|db| {
                let txn = db.begin_write().unwrap();
                let mut out = Vec::new();
                {
                    let mut bytes = txn.open_table(BYTES).unwrap();
                    let mut triples = txn.open_table(TRIPLES).unwrap();
                    for &(op, q, id, name) in &ops {
                        let name = names[name as usize];
                        match op {
                            0 | 1 => {
                                let old = bytes.insert((q, id), name.as_bytes()).unwrap();
                                out.push(format!("{:?}", old.map(|v| v.value().to_vec())));
                            }
                            2 => {
                                let old = bytes.remove((q, id)).unwrap();
                                out.push(format!("{:?}", old.map(|v| v.value().to_vec())));
                            }
                            3 => {
                                triples
                                    .insert((q, name, names[(id % 6) as usize]), id)
                                    .unwrap();
                            }
                            4 => {
                                let got: Vec<_> = bytes
                                    .range((q, id)..=(q, u64::MAX))
                                    .unwrap()
                                    .map(|e| {
                                        let (k, v) = e.unwrap();
                                        (k.value(), v.value().to_vec())
                                    })
                                    .collect();
                                let first = bytes.first().unwrap().map(|(k, _)| k.value());
                                out.push(format!("{got:?} {} {first:?}", bytes.len().unwrap()));
                            }
                            _ => {
                                let got: Vec<_> = triples
                                    .range((q, name, "")..(q + 1, "", ""))
                                    .unwrap()
                                    .rev()
                                    .map(|e| {
                                        let (k, v) = e.unwrap();
                                        let (a, b, c) = k.value();
                                        (a, b.to_owned(), c.to_owned(), v.value())
                                    })
                                    .collect();
                                out.push(format!("{got:?} {}", triples.len().unwrap()));
                            }
                        }
                    }
                }
                if commit {
                    txn.commit().unwrap()
                } else {
                    txn.abort().unwrap()
                }
                let read = db.begin_read().unwrap();
                let all: Vec<_> = read
                    .open_table(BYTES)
                    .unwrap()
                    .iter()
                    .unwrap()
                    .map(|e| {
                        let (k, v) = e.unwrap();
                        (k.value(), v.value().to_vec())
                    })
                    .collect();
                let first = read
                    .open_table(BYTES)
                    .unwrap()
                    .first()
                    .unwrap()
                    .map(|(k, _)| k.value());
                out.push(format!("committed {all:?} {first:?}"));
                out
            })
            .collect();
        assert_eq!(answers[0], answers[1], "round {round}");
    }
    // A range longer than one page of the Redis backend's reads.
    let ranges: Vec<Vec<(u64, u64)>> = stores
        .iter()
        .map(|db| {
            let txn = db.begin_write().unwrap();
            {
                let mut bytes = txn.open_table(BYTES).unwrap();
                for id in 0..5000 {
                    bytes.insert((9, id), b"x".as_slice()).unwrap();
                }
            }
            txn.commit().unwrap();
            let read = db.begin_read().unwrap();
            let table = read.open_table(BYTES).unwrap();
            table
                .range((9, 0)..(10, 0))
                .unwrap()
                .map(|e| e.unwrap().0.value())
                .collect()
        })
        .collect();
    assert_eq!(ranges[0].len(), 5000);
    assert_eq!(ranges[0], ranges[1]);
}
