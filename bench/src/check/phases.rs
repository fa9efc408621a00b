//! The servers through the run: the phases (watched, with their transitions and Redis
//! drops), the clean restart before the drain, and the stop at the end. Every fault is
//! recorded (time, kind, node) just before it is made, every start once the node listens.
//!
//! One server: a transition hits it, and it is started again at once after a kill -9 or a
//! SIGTERM, as the checker always did. A cluster: a transition hits the phase's node and
//! every other running node reloads (SIGHUP), so that all run the next phase's
//! configuration; a node killed with -9 stays down through the next phase (its clients fail
//! over to the others) and is started when that phase ends, before its transition. A node
//! that exits by itself is recorded as `Died` and started again at once.

use std::time::{Duration, Instant};

use super::checker::PhaseRec;
use super::cluster::Cluster;
use super::history::{Ctx, Fault};
use super::workload::{Phase, PhaseCfg, Transition};

/// Runs the phases' faults while the load runs; the phases as they began.
pub fn run(cluster: &mut Cluster, ctx: &Ctx, phases: &[Phase]) -> Vec<PhaseRec> {
    let mut records = Vec::new();
    let started = Instant::now();
    let mut phase_end = 0.0;
    for (i, phase) in phases.iter().enumerate() {
        records.push(PhaseRec {
            start: ctx.now(),
            cfg: phase.cfg,
        });
        let drop_at = phase.redis_drop.map(|t| phase_end + t);
        phase_end += phase.secs;
        watch(cluster, ctx, started, phase_end, drop_at);
        let (Some(then), Some(next)) = (phase.then, phases.get(i + 1)) else {
            break;
        };
        transition(cluster, ctx, then, phase.node, next.cfg);
    }
    records
}

fn secs(ctx: &Ctx) -> f64 {
    ctx.now() as f64 / 1000.0
}

/// Until `end` (seconds since `started`): nodes that exit by themselves are started again
/// (a Redis that exits is only reported: the checker does not start it again); at
/// `drop_at`, the Redis drop.
fn watch(cluster: &mut Cluster, ctx: &Ctx, started: Instant, end: f64, drop_at: Option<f64>) {
    let mut drop_at = drop_at;
    while started.elapsed().as_secs_f64() < end {
        for (i, node) in cluster.nodes.iter_mut().enumerate() {
            if let Some(status) = node.exited() {
                ctx.fault(Fault::Died, Some(i));
                println!(
                    "  {:.1} s: {} exited by itself ({status}); its log ends:\n{}",
                    secs(ctx),
                    node.name,
                    node.log_tail(20)
                );
                if let Err(e) = node.start() {
                    println!("  restart failed: {e}");
                    return;
                }
                ctx.fault(Fault::Start, Some(i));
            }
        }
        if let Some(status) = cluster.redis.as_mut().and_then(|r| r.exited()) {
            let text = format!("{:.1} s: redis-server exited ({status})", secs(ctx));
            println!("  {text}");
            ctx.note("redis", text);
        }
        if drop_at.is_some_and(|t| started.elapsed().as_secs_f64() >= t) {
            drop_at = None;
            redis_drop(cluster, ctx);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every connection of the nodes to Redis dropped at once.
fn redis_drop(cluster: &Cluster, ctx: &Ctx) {
    let Some(redis) = &cluster.redis else {
        return;
    };
    ctx.fault(Fault::RedisDrop, None);
    match redis.drop_clients() {
        Ok(0) => ctx.note(
            "redis",
            format!("{:.1} s: a drop found no clients", secs(ctx)),
        ),
        Ok(_) => {}
        Err(e) => ctx.note("redis", e),
    }
}

/// The end of a phase: every node onto `cfg` and `then` on node `node` (the others' reloads
/// come first, so that the last fault recorded is the transition's).
fn transition(cluster: &mut Cluster, ctx: &Ctx, then: Transition, node: usize, cfg: PhaseCfg) {
    if cluster.nodes.len() > 1 {
        cluster.write_config(cfg);
        let down = cluster.down();
        for &i in &down {
            start(cluster, ctx, i);
        }
        for i in 0..cluster.nodes.len() {
            if i != node && !down.contains(&i) && cluster.nodes[i].running() {
                ctx.fault(Fault::Hup, Some(i));
                cluster.nodes[i].hup();
            }
        }
    }
    match then {
        Transition::Kill9 => {
            ctx.fault(Fault::Kill9, Some(node));
            cluster.nodes[node].kill9();
            cluster.write_config(cfg);
            if cluster.nodes.len() == 1 {
                start(cluster, ctx, node);
            }
        }
        Transition::Term => {
            stop(cluster, ctx, node);
            cluster.write_config(cfg);
            start(cluster, ctx, node);
        }
        Transition::Hup => {
            cluster.write_config(cfg);
            ctx.fault(Fault::Hup, Some(node));
            cluster.nodes[node].hup();
        }
    }
}

/// SIGTERM to node `i` and the wait; a slow or failed stop is an anomaly.
fn stop(cluster: &mut Cluster, ctx: &Ctx, i: usize) {
    ctx.fault(Fault::Term, Some(i));
    let node = &mut cluster.nodes[i];
    match node.term() {
        Ok((took, status)) => {
            if took > Duration::from_secs(4) {
                ctx.note(
                    "server",
                    format!("{} took {took:?} to stop on SIGTERM ({status})", node.name),
                );
            }
        }
        Err(e) => ctx.note("server", e),
    }
}

/// Starts node `i`; one that does not start is recorded as `Died`.
fn start(cluster: &mut Cluster, ctx: &Ctx, i: usize) {
    let t = secs(ctx);
    match cluster.nodes[i].start() {
        Ok(()) => ctx.fault(Fault::Start, Some(i)),
        Err(e) => {
            println!("  {t:.1} s: {e}");
            ctx.fault(Fault::Died, Some(i));
        }
    }
}

/// The clean restart before the drain: every running node stopped (SIGTERM: what was
/// confirmed must stay confirmed), then every node started on the defaults.
pub fn restart_all(cluster: &mut Cluster, ctx: &Ctx) {
    for i in 0..cluster.nodes.len() {
        if cluster.nodes[i].running() {
            stop(cluster, ctx, i);
        }
    }
    cluster.write_config(PhaseCfg::DEFAULT);
    for i in 0..cluster.nodes.len() {
        start(cluster, ctx, i);
    }
}

/// The end of the run: every node stopped (one that exited by itself is recorded as
/// `Died`), then Redis.
pub fn stop_all(cluster: &mut Cluster, ctx: &Ctx) {
    for (i, node) in cluster.nodes.iter_mut().enumerate() {
        if node.exited().is_some() {
            ctx.fault(Fault::Died, Some(i));
        }
        if !node.running() {
            continue;
        }
        ctx.fault(Fault::Term, Some(i));
        match node.term() {
            Ok((_, status)) => println!("  {} stopped ({status})", node.name),
            Err(e) => println!("  {e}"),
        }
    }
    if let Some(redis) = &mut cluster.redis {
        match redis.stop() {
            Ok(status) => println!("  redis-server stopped ({status})"),
            Err(e) => println!("  {e}"),
        }
    }
}
