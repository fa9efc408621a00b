//! Readings of the server processes from /proc: memory, CPU time, disk writes, threads.
//! A server may be several processes (nginx master + workers): readings are summed.

use std::fs;

#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Sum of VmRSS, bytes.
    pub rss: u64,
    /// The part of `rss` that is anonymous memory (heap, stacks): what the process itself
    /// allocated, as opposed to pages of its binary (RssFile), which the kernel maps in
    /// 64 KiB fault-around blocks and may drop.
    pub rss_anon: u64,
    /// Sum of Pss (proportional set size, shared pages split between sharers), bytes.
    pub pss: u64,
    /// Sum of VmHWM (peak RSS of each process), bytes.
    pub hwm: u64,
    /// utime + stime, seconds.
    pub cpu_secs: f64,
    /// /proc/PID/io write_bytes: bytes this process caused to be written to storage.
    pub write_bytes: u64,
    pub threads: u64,
}

fn status_kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

pub fn sample(pids: &[u32]) -> Sample {
    let mut s = Sample::default();
    let tck = clk_tck();
    for pid in pids {
        if let Ok(st) = fs::read_to_string(format!("/proc/{pid}/status")) {
            s.rss += status_kb(&st, "VmRSS:") * 1024;
            s.rss_anon += status_kb(&st, "RssAnon:") * 1024;
            s.hwm += status_kb(&st, "VmHWM:") * 1024;
            s.threads += status_kb(&st, "Threads:");
        }
        if let Ok(sm) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            s.pss += status_kb(&sm, "Pss:") * 1024;
        }
        if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
            // Fields after the command name, which is in parentheses and may hold spaces.
            if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
                let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                s.cpu_secs += (ut + st) / tck;
            }
        }
        if let Ok(io) = fs::read_to_string(format!("/proc/{pid}/io")) {
            s.write_bytes += io
                .lines()
                .find(|l| l.starts_with("write_bytes:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
    }
    s
}

/// `"per_pid":[{"pid":P,"rss":B,"cpu_secs":S},..]` of each process in `pids` (nginx's
/// master and worker, and the openpush behind it): a JSON member for a run's line.
pub fn per_pid_json(name: &str, pids: &[u32]) -> String {
    let each: Vec<String> = pids
        .iter()
        .map(|&p| {
            let s = sample(&[p]);
            format!(
                "{{\"pid\":{p},\"rss\":{},\"rss_anon\":{},\"cpu_secs\":{:.3}}}",
                s.rss, s.rss_anon, s.cpu_secs
            )
        })
        .collect();
    format!("\"{name}\":[{}]", each.join(","))
}

/// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the limit now in force.
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 here, not on every target
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit get a valid pointer to a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur as u64
    }
}

/// Machine-wide kernel memory: `Slab:` of /proc/meminfo (bytes) and the TCP line of
/// /proc/net/sockstat (sockets in use, buffer pages). Both ends of a loopback connection
/// live on this machine, so a run's delta covers the server's sockets and the bench's.
#[derive(Clone, Copy, Debug, Default)]
pub struct Kernel {
    pub slab: u64,
    pub tcp_inuse: u64,
    pub tcp_mem_pages: u64,
}

pub fn kernel() -> Kernel {
    let mut k = Kernel::default();
    if let Ok(m) = fs::read_to_string("/proc/meminfo") {
        k.slab = status_kb(&m, "Slab:") * 1024;
    }
    if let Ok(s) = fs::read_to_string("/proc/net/sockstat") {
        if let Some(l) = s.lines().find(|l| l.starts_with("TCP:")) {
            let f: Vec<&str> = l.split_whitespace().collect();
            let field = |name: &str| {
                f.iter()
                    .position(|x| *x == name)
                    .and_then(|i| f.get(i + 1))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            k.tcp_inuse = field("inuse");
            k.tcp_mem_pages = field("mem");
        }
    }
    k
}

/// CPU time of the whole machine (all CPUs, busy: everything but idle and iowait) and of this
/// process (the load generator), seconds: what else ran beside the server during a run.
pub fn machine_and_self_cpu() -> (f64, f64) {
    let tck = clk_tck();
    let machine = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let l = s.lines().find(|l| l.starts_with("cpu "))?.to_owned();
            let f: Vec<f64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal (guest counted in user)
            let busy: f64 =
                f.iter().take(8).sum::<f64>() - f.get(3).unwrap_or(&0.0) - f.get(4).unwrap_or(&0.0);
            Some(busy / tck)
        })
        .unwrap_or(0.0);
    let me = fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ut: f64 = f.get(11)?.parse().ok()?;
            let st: f64 = f.get(12)?.parse().ok()?;
            Some((ut + st) / tck)
        })
        .unwrap_or(0.0);
    (machine, me)
}
