//! `openpush-bench check`: a black-box delivery checker in the spirit of Jepsen's queue
//! checkers. It runs the real `openpush` binary (on one port of 127.0.0.1, in a directory
//! of its own), drives every front door with concurrent senders and subscribers that
//! reconnect at random and drop connections with unread bytes, injects faults (`kill -9`,
//! clean restarts, reloads, commit windows and confirmation delays at their edges, full
//! queues) in phases drawn from a seed, drains every subscriber at the end, and checks the
//! whole history (`checker`). The last line is `N passed, M failed`; the exit status is 1
//! on any failure. The same seed replays the same schedule (phases, faults, what each
//! sender posts and each subscriber does; not the timing).
//!
//! `--nodes N` (N ≥ 2) runs a cluster instead: N nodes on one Redis that the checker
//! starts (`--redis-server`); every connection goes to a node chosen at random, so posts on
//! one node must reach streams on another; faults hit one node at a time, and Redis drops
//! every node's connections now and then. The verdicts are the same. `--nodes 1` (the
//! default) is the one-server run, with the same schedule and config as ever.
//!
//! Modules: `workload` (tags, bodies, the schedule), `history` (what happened), `net`
//! (sockets, framing), `post` (senders), `session` (subscribers), one per door
//! (`openpush`, `ntfy`, `autopush`, `nextpush`; Web Push and the Matrix gateway go into
//! each), `server` (one process), `redis` (a cluster's store), `cluster` (the nodes and
//! the choice of one per connection), `phases` (the faults through the run) and `checker`.

mod autopush;
mod checker;
mod cluster;
mod history;
mod json;
mod net;
mod nextpush;
mod ntfy;
mod openpush;
mod phases;
mod post;
mod redis;
mod server;
mod session;
mod workload;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use checker::Topology;
use cluster::Cluster;
use history::{Ctx, Fault, FaultAt, Post};
use workload::{Door, Phase, Transition, DOORS};

const PASSWORD: &str = "ck-password-1";

/// What a sender posts next.
type Plan = Box<dyn FnMut(&mut crate::soak::Rng, workload::Tag) -> post::PostReq + Send>;

/// A setup that failed: whatever runs is ended first.
fn fail_setup(cluster: Option<&mut Cluster>, seed: u64, what: &str) -> ! {
    if let Some(c) = cluster {
        c.abort();
    }
    println!("FAIL setup: {what} [seed {seed}]");
    println!("0 passed, 1 failed");
    std::process::exit(1);
}

pub fn main(get: &dyn Fn(&str, &str) -> String) {
    let bin = PathBuf::from(get("bin", ""));
    let dir = PathBuf::from(get("dir", ""));
    if bin.as_os_str().is_empty() || dir.as_os_str().is_empty() {
        eprintln!(
            "check needs --bin PATH (the openpush binary) and --dir DIR (an empty work directory)"
        );
        std::process::exit(2);
    }
    let secs: f64 = get("secs", "60").parse().expect("--secs");
    let seed: u64 = match get("seed", "").as_str() {
        "" => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64 % 1_000_000_000)
            .unwrap_or(1),
        s => s.parse().expect("--seed"),
    };
    let doors: Vec<Door> = match get("doors", "all").as_str() {
        "all" => DOORS.to_vec(),
        list => list
            .split(',')
            .map(|n| {
                *DOORS
                    .iter()
                    .find(|d| d.name() == n.trim())
                    .unwrap_or_else(|| panic!("--doors: unknown door {n}"))
            })
            .collect(),
    };
    let nodes: usize = get("nodes", "1").parse().expect("--nodes");
    if nodes == 0 || nodes > 64 {
        eprintln!("--nodes: 1 to 64");
        std::process::exit(2);
    }
    let redis_bin = PathBuf::from(get("redis-server", "redis-server"));
    let doors_list = doors.iter().map(|d| d.name()).collect::<Vec<_>>().join(",");
    if nodes == 1 {
        println!(
            "check: seed {seed}, {secs:.0} s of load, doors {doors_list} (replay: scripts/check-delivery.sh {secs:.0} {seed})"
        );
    } else {
        println!(
            "check: seed {seed}, {secs:.0} s of load, {nodes} nodes on one Redis, doors {doors_list} (replay: CHECK_NODES={nodes} scripts/check-delivery.sh {secs:.0} {seed})"
        );
    }
    let phases = workload::schedule(seed, secs, nodes);
    print_schedule(&phases, nodes);

    std::fs::create_dir_all(&dir).expect("--dir");
    let mut cluster =
        Cluster::new(&bin, &dir, nodes, &redis_bin).unwrap_or_else(|e| fail_setup(None, seed, &e));
    cluster.write_config(phases[0].cfg);
    for user in ["ckop", "ckntfy", "cknp"] {
        if let Err(e) = cluster.add_user(user, PASSWORD) {
            fail_setup(Some(&mut cluster), seed, &e);
        }
    }
    for i in 0..nodes {
        if let Err(e) = cluster.nodes[i].start() {
            fail_setup(Some(&mut cluster), seed, &e);
        }
    }
    // Load, a clean restart, drains of up to 120 s each (in parallel) and margins.
    let hard = Instant::now() + Duration::from_secs_f64(secs + 420.0);
    let ctx = Arc::new(Ctx::new(cluster.addrs(), seed, hard));
    for i in 0..nodes {
        ctx.fault(Fault::Start, Some(i));
    }
    print_servers(&cluster, &bin, &dir);

    // ---- setup of every door
    let mut topo = Topology::default();
    let op = if doors.contains(&Door::OpenPush) {
        openpush::setup(&ctx, "ckop", PASSWORD)
            .unwrap_or_else(|e| fail_setup(Some(&mut cluster), seed, &e))
    } else {
        Vec::new()
    };
    topo.routes.insert(
        Door::OpenPush,
        op.iter()
            .map(|d| d.apps.iter().map(|a| a.reg.clone()).collect())
            .collect(),
    );
    topo.recipients.insert(
        Door::OpenPush,
        (0..op.len()).map(|i| vec![i as u16]).collect(),
    );
    if doors.contains(&Door::Ntfy) {
        ntfy::setup(&ctx, "ckntfy", PASSWORD)
            .unwrap_or_else(|e| fail_setup(Some(&mut cluster), seed, &e));
    }
    topo.routes.insert(
        Door::Ntfy,
        ntfy::TOPICS.iter().map(|t| vec![t.to_string()]).collect(),
    );
    topo.recipients.insert(
        Door::Ntfy,
        (0..ntfy::TOPICS.len()).map(ntfy::recipients).collect(),
    );
    let ap = if doors.contains(&Door::Autopush) {
        autopush::setup(&ctx).unwrap_or_else(|e| fail_setup(Some(&mut cluster), seed, &e))
    } else {
        Vec::new()
    };
    topo.routes.insert(
        Door::Autopush,
        ap.iter().map(|a| a.channels.clone()).collect(),
    );
    topo.recipients.insert(
        Door::Autopush,
        (0..ap.len()).map(|i| vec![i as u16]).collect(),
    );
    let np = if doors.contains(&Door::NextPush) {
        nextpush::setup(&ctx, "cknp", PASSWORD)
            .unwrap_or_else(|e| fail_setup(Some(&mut cluster), seed, &e))
    } else {
        Vec::new()
    };
    topo.routes.insert(
        Door::NextPush,
        np.iter().map(|d| d.tokens.clone()).collect(),
    );
    topo.recipients.insert(
        Door::NextPush,
        (0..np.len()).map(|i| vec![i as u16]).collect(),
    );
    let ntfy_auth = post::basic("ckntfy", PASSWORD);

    // ---- threads
    let mut senders: Vec<JoinHandle<Vec<Post>>> = Vec::new();
    let mut subscribers: Vec<JoinHandle<Vec<Post>>> = Vec::new();
    let spawn_sender = |senders: &mut Vec<JoinHandle<Vec<Post>>>,
                        door: Door,
                        n: u16,
                        plan: Plan,
                        think: (u64, u64)| {
        let ctx = ctx.clone();
        senders.push(std::thread::spawn(move || {
            post::sender(&ctx, door, n, plan, think)
        }));
    };
    let follow = |subscribers: &mut Vec<JoinHandle<Vec<Post>>>,
                  mut p: Box<dyn session::Proto + Send>| {
        let ctx = ctx.clone();
        let seed = seed ^ (0x5B5B * (p.door() as u64 + 1) + p.sub() as u64);
        subscribers.push(std::thread::spawn(move || {
            session::follow(&ctx, p.as_mut(), seed);
            Vec::new()
        }));
    };
    if !op.is_empty() {
        for n in 0..10u16 {
            let hot = n < 8;
            spawn_sender(
                &mut senders,
                Door::OpenPush,
                n,
                Box::new(openpush::plan(&op, &ctx.host, hot)),
                if hot { (0, 0) } else { (0, 20) },
            );
        }
        for (i, d) in op.iter().enumerate().take(openpush::TTL_DEVICE) {
            follow(
                &mut subscribers,
                Box::new(openpush::Sub {
                    sub: i as u16,
                    key: d.key.clone(),
                    max_seen: 0,
                    lei: 0.85,
                }),
            );
        }
        let ctx2 = ctx.clone();
        let mut sub = openpush::Sub {
            sub: openpush::TTL_DEVICE as u16,
            key: op[openpush::TTL_DEVICE].key.clone(),
            max_seen: 0,
            lei: 1.0,
        };
        let plan = openpush::ttl_plan(&op);
        subscribers.push(std::thread::spawn(move || {
            session::away_and_back(&ctx2, &mut sub, 90, true, plan)
        }));
    }
    if doors.contains(&Door::Ntfy) {
        for n in 0..6u16 {
            spawn_sender(
                &mut senders,
                Door::Ntfy,
                n,
                Box::new(ntfy::plan(&ctx.host, &ntfy_auth)),
                (0, 10),
            );
        }
        for i in 0..ntfy::SUBS.len() - 1 {
            follow(&mut subscribers, Box::new(ntfy::Sub::new(i, &ntfy_auth)));
        }
        let ctx2 = ctx.clone();
        let mut sub = ntfy::Sub::new(ntfy::SUBS.len() - 1, &ntfy_auth);
        subscribers.push(std::thread::spawn(move || {
            session::away_and_back(&ctx2, &mut sub, 90, true, ntfy::ttl_plan())
        }));
    }
    if !ap.is_empty() {
        for n in 0..3u16 {
            spawn_sender(
                &mut senders,
                Door::Autopush,
                n,
                Box::new(autopush::plan(&ap, &ctx.host)),
                (0, 10),
            );
        }
        for (i, a) in ap.iter().enumerate().take(autopush::TTL_AGENT) {
            follow(&mut subscribers, Box::new(autopush::Sub::new(i, a)));
        }
        let ctx2 = ctx.clone();
        let mut sub = autopush::Sub::new(autopush::TTL_AGENT, &ap[autopush::TTL_AGENT]);
        sub.ack_all = true;
        let plan = autopush::ttl_plan(&ap);
        subscribers.push(std::thread::spawn(move || {
            session::away_and_back(&ctx2, &mut sub, 90, true, plan)
        }));
    }
    let np_drops = match get("nextpush-drop", "silent").as_str() {
        "silent" => nextpush::Drop::Silent,
        "fin" => nextpush::Drop::Fin,
        "reset" => nextpush::Drop::Reset,
        other => panic!("--nextpush-drop: silent, fin or reset, not {other}"),
    };
    if !np.is_empty() {
        for n in 0..2u16 {
            spawn_sender(
                &mut senders,
                Door::NextPush,
                n,
                Box::new(nextpush::plan(&np, &ctx.host)),
                (0, 10),
            );
        }
        for (i, d) in np.iter().enumerate().take(nextpush::TTL_DEVICE) {
            follow(
                &mut subscribers,
                Box::new(nextpush::Sub {
                    sub: i as u16,
                    device: d.id.clone(),
                    ctx: ctx.clone(),
                    drops: np_drops,
                }),
            );
        }
        let ctx2 = ctx.clone();
        let mut sub = nextpush::Sub {
            sub: nextpush::TTL_DEVICE as u16,
            device: np[nextpush::TTL_DEVICE].id.clone(),
            ctx: ctx.clone(),
            drops: nextpush::Drop::Reset,
        };
        let plan = nextpush::ttl_plan(&np);
        subscribers.push(std::thread::spawn(move || {
            session::away_and_back(&ctx2, &mut sub, 90, true, plan)
        }));
    }

    // ---- the phases
    let records = phases::run(&mut cluster, &ctx, &phases);
    println!(
        "  {:.1} s: load ends; senders stop",
        ctx.now() as f64 / 1000.0
    );
    ctx.posting.store(false, Relaxed);
    let mut posts: Vec<Post> = Vec::new();
    for h in senders {
        posts.extend(h.join().expect("a sender thread"));
    }
    ctx.live.store(false, Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    // A clean restart on the defaults: what was confirmed must stay confirmed.
    phases::restart_all(&mut cluster, &ctx);
    println!(
        "  {:.1} s: clean restart done; drains start",
        ctx.now() as f64 / 1000.0
    );
    ctx.drain.store(true, Relaxed);
    for h in subscribers {
        posts.extend(h.join().expect("a subscriber thread"));
    }
    println!("  {:.1} s: drains done", ctx.now() as f64 / 1000.0);

    let hist = &ctx.hist;
    let deliveries = std::mem::take(&mut *hist.deliveries.lock().expect("lock"));
    // ntfy: for subscribers that miss messages, does the store still have them?
    let mut ntfy_stored: HashMap<u16, HashSet<u64>> = HashMap::new();
    if doors.contains(&Door::Ntfy) {
        for (sub, from) in checker::ntfy_missing(&posts, &deliveries, &topo) {
            match ntfy::stored(&ctx, sub as usize, &ntfy_auth, from) {
                Ok(ids) => {
                    ntfy_stored.insert(sub, ids);
                }
                Err(e) => ctx.anomaly(Door::Ntfy, format!("since=all poll: {e}")),
            }
        }
    }
    phases::stop_all(&mut cluster, &ctx);
    // NextPush streams dropped by their subscribers end once replaced or closed by the stop.
    let zombies = std::mem::take(&mut *hist.zombies.lock().expect("lock"));
    for z in zombies {
        let _ = z.join();
    }
    let faults = hist.faults.lock().expect("lock").clone();
    let n = |k: Fault| faults.iter().filter(|(_, f, _)| *f == k).count();
    let conns = hist.conns.lock().expect("lock").clone();
    println!(
        "  {} posts, {} deliveries, {} connections, {} kill -9, {} SIGTERM, {} SIGHUP{}",
        posts.len(),
        deliveries.len(),
        conns.len(),
        n(Fault::Kill9),
        n(Fault::Term),
        n(Fault::Hup),
        if nodes > 1 {
            format!(", {} Redis drops", n(Fault::RedisDrop))
        } else {
            String::new()
        }
    );
    let report = checker::check(&checker::Input {
        seed,
        secs,
        nodes,
        doors: &doors,
        posts: &posts,
        deliveries: &deliveries,
        conns: &conns,
        acks: &hist.acks.lock().expect("lock"),
        acks_sent: &hist.acks_sent.lock().expect("lock"),
        in_flight: &hist.in_flight.lock().expect("lock"),
        faults: &faults,
        anomalies: &hist.anomalies.lock().expect("lock"),
        refused_streams: &hist.refused_streams.lock().expect("lock"),
        phases: &records,
        topo: &topo,
        ntfy_stored: &ntfy_stored,
    });
    if report.failed > 0 {
        dump(
            &dir.join("history.tsv"),
            &posts,
            &deliveries,
            &conns,
            &hist.in_flight.lock().expect("lock"),
            &faults,
        );
        println!("  the history is in {}", dir.join("history.tsv").display());
    }
    print!("{}", report.text);
    println!("{} passed, {} failed", report.passed, report.failed);
    std::process::exit(if report.failed > 0 { 1 } else { 0 });
}

/// The schedule as the header shows it: the first phases and the last one (failures name
/// theirs).
fn print_schedule(phases: &[Phase], nodes: usize) {
    let mut at = 0.0;
    for (i, p) in phases.iter().enumerate() {
        if i < 12 || i + 1 == phases.len() {
            let drop = p.redis_drop.map_or(String::new(), |t| {
                format!(", Redis drop at {:.1} s", at + t)
            });
            println!(
                "  phase {i}: {at:6.1}–{:6.1} s  {}{drop}{}",
                at + p.secs,
                p.cfg,
                p.then
                    .map_or(", then the final clean restart and the drain".into(), |t| {
                        format!(", then {}", t.text(p.node, nodes))
                    })
            );
        } else if i == 12 {
            let count = |t: Transition| phases[12..].iter().filter(|p| p.then == Some(t)).count();
            let drops = phases[12..]
                .iter()
                .filter(|p| p.redis_drop.is_some())
                .count();
            println!(
                "  phases 12–{}: {} more ({} kill -9, {} SIGTERM, {} SIGHUP{})",
                phases.len() - 2,
                phases.len() - 13,
                count(Transition::Kill9),
                count(Transition::Term),
                count(Transition::Hup),
                if nodes > 1 {
                    format!(", {drops} Redis drops")
                } else {
                    String::new()
                }
            );
        }
        at += p.secs;
    }
}

fn print_servers(cluster: &Cluster, bin: &Path, dir: &Path) {
    let Some(redis) = &cluster.redis else {
        println!(
            "  server {} at http://{} in {}",
            bin.display(),
            cluster.nodes[0].addr,
            dir.display()
        );
        return;
    };
    let urls: Vec<String> = cluster
        .nodes
        .iter()
        .enumerate()
        .map(|(i, s)| format!("node {i} http://{}", s.addr))
        .collect();
    println!(
        "  servers {}: {} on {} in {}",
        bin.display(),
        urls.join(", "),
        redis.url(),
        dir.display()
    );
}

/// The whole history as tab-separated lines, for a look at a failure: `P` posts, `D`
/// deliveries, `C` connections, `F` NextPush messages in flight at a drop, `X` faults.
/// Nodes are the last column of `P`, `C` and `X` (`-`: every node).
fn dump(
    path: &std::path::Path,
    posts: &[Post],
    deliveries: &[history::Delivery],
    conns: &[history::Conn],
    in_flight: &[history::InFlight],
    faults: &[FaultAt],
) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    for p in posts {
        let _ = writeln!(
            out,
            "P\t{}\t{:?}\t{}\t{}\t{}\t{}\t{}\t{:?}\t{}\t{}\t{}",
            p.tag,
            p.via,
            p.target,
            p.app,
            opt(p.ttl_secs),
            p.start,
            p.end,
            p.outcome,
            opt(p.id),
            p.tiny,
            p.node
        );
    }
    for d in deliveries {
        let _ = writeln!(
            out,
            "D\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            d.door.name(),
            d.sub,
            d.conn,
            d.at,
            opt(d.id),
            d.route,
            d.tag.map_or("-".into(), |t| t.to_string()),
            d.drain
        );
    }
    for c in conns {
        let _ = writeln!(
            out,
            "C\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            c.door.name(),
            c.sub,
            c.conn,
            c.sent,
            opt(c.ok),
            c.end,
            opt(c.since),
            c.drain,
            c.server_closed,
            c.node
        );
    }
    for f in in_flight {
        let _ = writeln!(
            out,
            "F\t{}\t{}\t{}\t{}",
            f.sub,
            f.conn,
            f.at,
            f.tag.map_or("-".into(), |t| t.to_string())
        );
    }
    for (t, f, node) in faults {
        let node = node.map_or("-".into(), |n| n.to_string());
        let _ = writeln!(out, "X\t{t}\t{f:?}\t{node}");
    }
    if let Err(e) = std::fs::write(path, out) {
        eprintln!("{}: {e}", path.display());
    }
}
