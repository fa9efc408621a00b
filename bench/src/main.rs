//! openpush-bench: a load generator for openpush (its OpenPush SSE, ntfy NDJSON and
//! WebSocket, NextPush SSE and autopush WebSocket streams, `POST /message` and Web Push
//! posts) and its peers (nginx+nchan, Mosquitto, a tiny_http SSE server). One `run` =
//! connect N subscribers (plain or over TLS), measure the server's memory, post M messages,
//! measure delivery and the server's CPU and disk writes. `handshakes` = the server's CPU
//! time per new connection, over TLS or plain.
//! Prints one JSON line on stdout and a human-readable row on stderr.
//!
//! Only 127.0.0.0/8 is ever connected to; every loop is bounded by a count and a deadline.

mod check;
mod confirm;
mod post;
mod procstat;
mod setup;
mod soak;
mod subs;
mod tls;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use subs::Proto;

const USAGE: &str = "usage:
  openpush-bench run --target openpush|webpush|ntfy-json|ntfy-ws|nextpush|autopush|nchan|mosquitto|sse
      --addr 127.0.0.1:PORT[,127.0.0.1:PORT..] --pids PID[,PID..] [--aux-pids PID[,PID..]]
      [--cross 1|0] [--subs N] [--messages M] [--rate MSGS_PER_S|0] [--posters C] [--label TEXT]
      [--settle-secs S] [--max-secs S] [--pending K]
      [--tls-ca CA.pem [--sni localhost] [--kx x25519|p256|p384] [--sub-addr 127.0.0.1:PORT]]
      (subscribers over TLS, trusting CA.pem, to --sub-addr (default --addr); setup and
      posts still go to --addr, plain)
      (several --addr: the nodes of one cluster; setup goes to the first, subscriber i to
      node i % nodes, poster p to node p % nodes, and with --cross 1 (the default) each
      message to a subscriber on another node than its poster's; --pids: every node's,
      summed; --aux-pids: a store they share, whose CPU per message is reported apart)
      openpush, webpush: --creds FILE --users PREFIX:COUNT:PASSWORD [--per-user K]
      ntfy-json, ntfy-ws (idle only: --messages 0): --users PREFIX:COUNT:PASSWORD [--per-user K]
      [--topics T] (stream i reads topic i % T, as its owner: T topics shared by the N streams)
      nextpush (idle only; deviceIds are the clients' keys): as openpush
      autopush (idle only; a new uaid per stream): [--sub-path /]
      nchan/sse: [--sub-path /sub/] [--pub-path /pub/]
  openpush-bench soak --addr 127.0.0.1:PORT --pid PID --minutes M [--clients 2000] [--rate 200]
      [--posters 4] [--garbage-rate 20] [--garbage-threads 4] [--slowloris 32] [--creds FILE]
      [--users PREFIX:COUNT:PASSWORD] [--per-user 500] [--read-min-secs 2] [--read-max-secs 90]
      [--off-min-secs 0.2] [--off-max-secs 20] [--warmup-secs S] [--samples FILE.jsonl]
  openpush-bench confirm --addr 127.0.0.1:PORT --pids PID --creds FILE --users PREFIX:COUNT:PASSWORD
      [--messages 300] [--gap-ms 0] [--client 0] [--settle-secs 3] [--label TEXT]
      (disk bytes per message accepted and confirmed one at a time, at one poster)
  openpush-bench handshakes --addr 127.0.0.1:PORT --pids PID[,PID..] [--conns 2000]
      [--threads 2] [--path /v1/health]
      [--tls-ca CA.pem [--sni localhost] [--resume 0|1] [--kx x25519|p256|p384]]
      [--label TEXT] [--max-secs S]
      (one request per new connection, TLS or plain: the server's CPU time per connection)
  openpush-bench sample --pids PID[,PID..]      (one JSON line of the processes' readings)
  openpush-bench check --bin PATH/TO/openpush --dir EMPTY_DIR [--secs 60] [--seed N]
      [--doors openpush,ntfy,autopush,nextpush] [--nextpush-drop silent|fin|reset]
      [--nodes 1] [--redis-server redis-server]
      (black-box delivery checker: starts, kills and restarts the server itself; last line
      `N passed, M failed`, exit status 1 on any failure; scripts/check-delivery.sh;
      --nodes N >= 2: N nodes on one Redis that it starts from --redis-server)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let mut opts = HashMap::new();
    let mut it = args[1..].iter();
    while let Some(k) = it.next() {
        let Some(k) = k.strip_prefix("--") else {
            eprintln!("unexpected argument {k}\n{USAGE}");
            std::process::exit(2);
        };
        let v = it.next().unwrap_or_else(|| {
            eprintln!("--{k} needs a value");
            std::process::exit(2)
        });
        opts.insert(k.to_owned(), v.clone());
    }
    let get = |k: &str, d: &str| opts.get(k).cloned().unwrap_or_else(|| d.to_owned());
    let pids: Vec<u32> = get("pids", "")
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    match cmd.as_str() {
        "sample" => {
            let s = procstat::sample(&pids);
            println!(
                "{{\"rss_bytes\":{},\"rss_anon_bytes\":{},\"pss_bytes\":{},\"hwm_bytes\":{},\"threads\":{},\"cpu_secs\":{:.3},\"write_bytes\":{}}}",
                s.rss, s.rss_anon, s.pss, s.hwm, s.threads, s.cpu_secs, s.write_bytes
            );
        }
        "run" => run(&get, &pids),
        "handshakes" => tls::handshakes(&get, &pids),
        "soak" => soak::main(&get),
        "confirm" => confirm::main(&get, &pids),
        "check" => check::main(&get),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

/// `127.0.0.1:PORT[,127.0.0.1:PORT..]`, each on loopback.
fn addr_list(text: &str, what: &str) -> Vec<SocketAddr> {
    let list: Vec<SocketAddr> = text
        .split(',')
        .map(|a| a.trim().parse().expect(what))
        .collect();
    for a in &list {
        wire::check_loopback(a);
    }
    list
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx] as f64 / 1e6
}

fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "null".into()
    }
}

fn run(get: &dyn Fn(&str, &str) -> String, pids: &[u32]) {
    let nofile = procstat::raise_nofile();
    let target = get("target", "openpush");
    let proto = match target.as_str() {
        "openpush" => Proto::Openpush,
        "webpush" => Proto::WebPush,
        "ntfy-json" => Proto::NtfyJson,
        "ntfy-ws" => Proto::NtfyWs,
        "nextpush" => Proto::NextPush,
        "autopush" => Proto::Autopush,
        "nchan" | "sse" => Proto::Sse,
        "mosquitto" => Proto::Mqtt,
        t => panic!("unknown target {t}"),
    };
    // Several addresses: the nodes of one cluster, sharing one store. Setup goes to the first;
    // subscribers and posters are spread over them round robin.
    let addrs = get("addr", "127.0.0.1:8080");
    let dests = addr_list(&addrs, "--addr");
    let dest = dests[0];
    let sub_dests = addr_list(&get("sub-addr", &addrs), "--sub-addr");
    let cross = get("cross", "1") != "0";
    // Processes beside the servers (the Redis their nodes share): their CPU and memory are
    // reported apart, not in the servers' figures.
    let aux_pids: Vec<u32> = get("aux-pids", "")
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    let ca = get("tls-ca", "");
    let tls = (!ca.is_empty())
        .then(|| tls::Tls::new(&ca, &get("sni", "localhost"), false, &get("kx", "x25519")));
    let n: usize = get("subs", "1000").parse().expect("--subs");
    let m: usize = get("messages", "0").parse().expect("--messages");
    let rate: f64 = get("rate", "0").parse().expect("--rate");
    let posters: usize = get("posters", "16").parse().expect("--posters");
    let settle = Duration::from_secs_f64(get("settle-secs", "3").parse().expect("--settle-secs"));
    let max_secs: f64 = get("max-secs", "300").parse().expect("--max-secs");
    let deadline = Instant::now() + Duration::from_secs_f64(max_secs);
    let label = get("label", &target);
    assert!(n > 0, "--subs must be at least 1");
    let ntfy = matches!(proto, Proto::NtfyJson | Proto::NtfyWs);
    let idle_only = ntfy || matches!(proto, Proto::NextPush | Proto::Autopush);
    assert!(
        m == 0 || !idle_only,
        "{target} streams are held idle: --messages 0"
    );
    if n + posters + 64 > nofile as usize {
        eprintln!("warning: RLIMIT_NOFILE is {nofile}: {n} subscribers may not all connect");
    }

    let creds_path = get("creds", "");
    let openpush_clients = matches!(proto, Proto::Openpush | Proto::WebPush | Proto::NextPush);
    let per_user: usize = get("per-user", "500").parse().expect("--per-user");
    let topics: usize = get("topics", "0").parse().expect("--topics");
    assert!(topics == 0 || ntfy, "--topics is for ntfy streams");
    let creds = if openpush_clients {
        setup::ensure(
            &creds_path,
            dest,
            n,
            &get("users", "bench:1:bench"),
            per_user,
        )
    } else {
        setup::Creds {
            keys: vec![],
            tokens: vec![],
            last_ids: vec![],
        }
    };
    let auth = if ntfy {
        // Each node has its own login cache: one login per user on each.
        let streams = if topics > 0 { n.min(topics) } else { n };
        let mut auth = vec![];
        for d in &sub_dests {
            auth = setup::logins(*d, streams, &get("users", "bench:1:bench"), per_user);
        }
        auth
    } else {
        vec![]
    };

    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1);
    let shared = subs::Shared::new(run_id, m);
    let before = procstat::sample(pids);
    let aux_before = procstat::sample(&aux_pids);
    let before_by_pid = procstat::per_pid_json("before_by_pid", pids);
    let kernel_before = procstat::kernel();
    let sub_spec = subs::Spec {
        proto,
        dests: sub_dests,
        n,
        path: get(
            "sub-path",
            match proto {
                _ if target == "nchan" => "/sub/",
                Proto::Autopush => "/",
                _ => "/subscribe?i=",
            },
        ),
        keys: creds.keys.clone(),
        last_ids: creds.last_ids.clone(),
        auth,
        per_user,
        topics,
        max_pending: get("pending", "256").parse().expect("--pending"),
        tls,
    };
    let t_connect = Instant::now();
    let loop_thread = {
        let shared = shared.clone();
        std::thread::spawn(move || subs::run(sub_spec, shared))
    };
    while shared.ready.load(Relaxed) + shared.failed.load(Relaxed) < n && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let connect_secs = t_connect.elapsed().as_secs_f64();
    std::thread::sleep(settle);
    let idle = procstat::sample(pids);
    let aux_idle = procstat::sample(&aux_pids);
    let idle_by_pid = procstat::per_pid_json("idle_by_pid", pids);
    let kernel_idle = procstat::kernel();
    let (machine_idle, self_idle) = procstat::machine_and_self_cpu();
    let ready = shared.ready.load(Relaxed);
    let stale_at_connect = shared.stale.load(Relaxed);

    let mut outcome = post::Outcome::default();
    let mut drain_secs = 0.0;
    if m > 0 && ready > 0 {
        let post_spec = post::Spec {
            proto,
            dests: dests.clone(),
            cross,
            subscribers: n,
            messages: m,
            rate,
            posters,
            tokens: creds.tokens.clone(),
            path: get("pub-path", "/pub/"),
            deadline,
        };
        outcome = post::run(post_spec, shared.clone());
        // Wait for stragglers: at most 10 s past the last acknowledged post.
        let t = Instant::now();
        let want = outcome.ok as usize;
        while shared.delivered.load(Relaxed) < want && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        drain_secs = t.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(300));
    }
    let after = procstat::sample(pids);
    let aux_after = procstat::sample(&aux_pids);
    let (machine_after, self_after) = procstat::machine_and_self_cpu();
    shared.stop.store(true, Relaxed);
    let last_ids = loop_thread.join().expect("event loop");
    if openpush_clients {
        setup::save(
            &creds_path,
            &setup::Creds {
                keys: creds.keys,
                tokens: creds.tokens,
                last_ids,
            },
        );
    }

    let delivered = shared.delivered.load(Relaxed) as u64;
    let duplicated: u64 = shared
        .received
        .iter()
        .map(|r| r.load(Relaxed).saturating_sub(1) as u64)
        .sum();
    let lost = outcome.ok.saturating_sub(delivered);
    let mut lat = std::mem::take(&mut *shared.latencies_ns.lock().expect("lock"));
    lat.sort_unstable();
    let mut plat = outcome.post_latencies_ns;
    plat.sort_unstable();
    let idle_delta = idle.rss as f64 - before.rss as f64;
    let tls_on = !ca.is_empty();
    let per_conn = if ready > 0 {
        idle_delta / ready as f64
    } else {
        f64::NAN
    };
    let per_conn_pss = if ready > 0 {
        (idle.pss as f64 - before.pss as f64) / ready as f64
    } else {
        f64::NAN
    };
    let cpu = after.cpu_secs - idle.cpu_secs;
    let aux_cpu = aux_after.cpu_secs - aux_idle.cpu_secs;
    let per_msg = |x: f64| {
        if delivered > 0 {
            x / delivered as f64
        } else {
            f64::NAN
        }
    };
    let secs = outcome.elapsed.as_secs_f64();
    let posts_per_s = if secs > 0.0 {
        outcome.ok as f64 / secs
    } else {
        f64::NAN
    };
    // Members only runs on several nodes or with --aux-pids have: one server's line is as before.
    let mut aux = String::new();
    if dests.len() > 1 {
        aux.push_str(&format!(",\"nodes\":{},\"cross\":{cross}", dests.len()));
    }
    if !aux_pids.is_empty() {
        aux.push_str(&format!(
            ",\"aux_rss_before\":{},\"aux_rss_idle\":{},\"aux_rss_after\":{},\"aux_cpu_secs\":{},\"aux_cpu_us_per_msg\":{}",
            aux_before.rss,
            aux_idle.rss,
            aux_after.rss,
            num(aux_cpu),
            num(per_msg(aux_cpu) * 1e6),
        ));
    }
    println!(
        "{{\"label\":\"{label}\",\"target\":\"{target}\",\"tls\":{tls_on},\"subs\":{n},\"ready\":{ready},\"failed\":{},\"dropped\":{},\"connect_secs\":{},\
\"messages\":{m},\"rate\":{rate},\"posters\":{posters},\"posted_ok\":{},\"post_errors\":{},\"post_secs\":{},\"posts_per_s\":{},\
\"delivered\":{delivered},\"lost\":{lost},\"duplicated\":{duplicated},\"misrouted\":{},\"stale\":{},\"stale_at_connect\":{stale_at_connect},\"unknown\":{},\
\"lat_p50_ms\":{},\"lat_p99_ms\":{},\"lat_max_ms\":{},\"post_p50_ms\":{},\"post_p99_ms\":{},\"drain_secs\":{},\
\"rss_before\":{},\"rss_idle\":{},\"rss_after\":{},\"pss_before\":{},\"pss_idle\":{},\"rss_per_conn_bytes\":{},\"pss_per_conn_bytes\":{},\
\"threads_before\":{},\"threads_idle\":{},\"peak_rss\":{},\"cpu_secs\":{},\"cpu_us_per_msg\":{},\"write_bytes\":{},\"write_bytes_per_msg\":{},\"nofile\":{nofile},\
\"kernel_slab_before\":{},\"kernel_slab_idle\":{},\"tcp_inuse_before\":{},\"tcp_inuse_idle\":{},\"tcp_mem_pages_idle\":{},\
\"machine_cpu_secs\":{},\"bench_cpu_secs\":{},\"other_cpu_secs\":{},{before_by_pid},{idle_by_pid}{aux}}}",
        shared.failed.load(Relaxed),
        shared.dropped.load(Relaxed),
        num(connect_secs),
        outcome.ok,
        outcome.errors,
        num(secs),
        num(posts_per_s),
        shared.misrouted.load(Relaxed),
        shared.stale.load(Relaxed),
        shared.unknown.load(Relaxed),
        num(pct(&lat, 0.50)),
        num(pct(&lat, 0.99)),
        num(pct(&lat, 1.0)),
        num(pct(&plat, 0.50)),
        num(pct(&plat, 0.99)),
        num(drain_secs),
        before.rss,
        idle.rss,
        after.rss,
        before.pss,
        idle.pss,
        num(per_conn),
        num(per_conn_pss),
        before.threads,
        idle.threads,
        after.hwm,
        num(cpu),
        num(per_msg(cpu) * 1e6),
        after.write_bytes - idle.write_bytes,
        num(per_msg((after.write_bytes - idle.write_bytes) as f64)),
        kernel_before.slab,
        kernel_idle.slab,
        kernel_before.tcp_inuse,
        kernel_idle.tcp_inuse,
        kernel_idle.tcp_mem_pages,
        num(machine_after - machine_idle),
        num(self_after - self_idle),
        // Neither the server (nor its aux processes) nor the bench: other processes of the
        // machine (0 on a quiet one).
        num((machine_after - machine_idle) - (self_after - self_idle) - cpu - aux_cpu),
    );
    eprintln!(
        "{label:<28} subs {ready:>6}/{n:<6} rss {:>8.1} MB -> {:>8.1} MB ({:>7.0} B/conn) | msgs {delivered}/{} lost {lost} dup {duplicated} misrouted {} | \
lat p50 {:.2} p99 {:.2} max {:.2} ms | {:.0} posts/s | cpu {:.1} us/msg | disk {:.0} B/msg",
        before.rss as f64 / 1e6,
        idle.rss as f64 / 1e6,
        per_conn,
        outcome.ok,
        shared.misrouted.load(Relaxed),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        posts_per_s,
        per_msg(cpu) * 1e6,
        per_msg((after.write_bytes - idle.write_bytes) as f64),
    );
}
