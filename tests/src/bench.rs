//! Measurement helpers for `cargo xtask bench` (src/bin/bench.rs): load generators' figures,
//! per-process CPU and memory, the kernel's BPF run statistics and IRQ-work interrupts.
//! Figures only: nothing here asserts a speed.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::netns::Netns;

/// One wrk run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wrk {
    pub requests: u64,
    pub rps: f64,
    pub p99_us: f64,
}

/// Headers every wrk run of this process adds to its requests (`bench --header`).
static WRK_HEADERS: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every later [`wrk`] run send `headers` (`Name: value` each), as real API clients
/// send credentials and ids. Set once, before the first run.
pub fn set_wrk_headers(headers: &[String]) -> Result<()> {
    let mut args = String::new();
    for h in headers {
        if h.contains('\'') || !h.contains(':') {
            anyhow::bail!("a header is `Name: value` without single quotes: {h}");
        }
        args.push_str(&format!(" -H '{h}'"));
    }
    WRK_HEADERS
        .set(args)
        .map_err(|_| anyhow::anyhow!("wrk headers are set once"))
}

/// `wrk -t1 -cCONNS -dSECS --latency URL` inside `ns`.
pub fn wrk(ns: &Netns, url: &str, conns: u32, secs: u32) -> Result<Wrk> {
    let headers = WRK_HEADERS.get().map_or("", String::as_str);
    let out = ns.sh(&format!(
        "wrk -t1 -c{conns} -d{secs}s --latency{headers} {url} 2>&1"
    ))?;
    parse_wrk(&out).with_context(|| format!("unexpected wrk output:\n{out}"))
}

fn parse_wrk(out: &str) -> Option<Wrk> {
    let mut w = Wrk::default();
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            w.rps = v.trim().parse().ok()?;
        } else if let Some(v) = line.strip_prefix("99%") {
            w.p99_us = duration_us(v.trim())?;
        } else if line.contains(" requests in ") {
            w.requests = line.split_whitespace().next()?.parse().ok()?;
        }
    }
    (w.rps > 0.0 && w.requests > 0).then_some(w)
}

/// wrk's latency figures: `412.00us`, `1.23ms`, `2.00s`.
fn duration_us(v: &str) -> Option<f64> {
    let (num, mul) = if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    Some(num.parse::<f64>().ok()? * mul)
}

/// `ab -q -n N -c C -k URL` inside `ns`; returns the complete requests.
pub fn ab(ns: &Netns, url: &str, n: u32, c: u32) -> Result<u64> {
    let out = ns.sh(&format!("ab -q -n {n} -c {c} -k {url} 2>&1"))?;
    let done = out
        .lines()
        .find_map(|l| l.strip_prefix("Complete requests:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("unexpected ab output:\n{out}"))?;
    let failed: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Failed requests:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if failed > 0 {
        bail!("ab: {failed} failed requests:\n{out}");
    }
    Ok(done)
}

/// CPU time of every thread of `pid` (user + system), in nanoseconds, from schedstat.
pub fn cpu_ns(pid: u32) -> u64 {
    cpu_ns_by_thread(pid).values().sum()
}

/// `pid`'s threads: each one's `/proc` directory and name (`comm`).
fn threads(pid: u32) -> Vec<(std::path::PathBuf, String)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|t| {
            let name = std::fs::read_to_string(t.path().join("comm")).ok()?;
            Some((t.path(), name.trim().to_string()))
        })
        .collect()
}

/// CPU time (ns, from schedstat) of `pid`'s threads, summed per thread name (`comm`): the
/// analysis thread, the tokio workers, the request-log writer...
pub fn cpu_ns_by_thread(pid: u32) -> BTreeMap<String, u64> {
    let mut by_name = BTreeMap::new();
    for (dir, name) in threads(pid) {
        let ns = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(ns) = ns {
            *by_name.entry(name).or_default() += ns;
        }
    }
    by_name
}

/// Voluntary context switches of `pid`'s threads named `name` (a thread that sleeps between
/// drains switches once per drain).
pub fn voluntary_switches(pid: u32, name: &str) -> u64 {
    threads(pid)
        .into_iter()
        .filter(|(_, n)| n == name)
        .filter_map(|(dir, _)| {
            let status = std::fs::read_to_string(dir.join("status")).ok()?;
            status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// The control's stand-in for the agent: `SCHED_BATCH` like the analysis thread (if the call
/// fails it runs as a normal task), it wakes every `period` and spins `spin` of it, for `total`.
pub fn burn(period: Duration, spin: Duration, total: Duration) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain system call on the calling thread with a valid parameter.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    let end = std::time::Instant::now() + total;
    let mut next = std::time::Instant::now();
    while next < end {
        let start = std::time::Instant::now();
        while start.elapsed() < spin {
            std::hint::spin_loop();
        }
        next += period;
        if let Some(rest) = next.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(rest);
        }
    }
}

/// (VmRSS, Pss) of `pid` in KiB.
pub fn rss_pss_kib(pid: u32) -> (u64, u64) {
    let field = |path: String, key: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
            .unwrap_or(0)
    };
    (
        field(format!("/proc/{pid}/status"), "VmRSS:"),
        field(format!("/proc/{pid}/smaps_rollup"), "Pss:"),
    )
}

/// Resident KiB of `pid` by kind of mapping, largest first: `heap and anonymous` (the
/// allocator's arenas, thread stacks), `BPF maps` (the rings the agent mapped), `the binary`
/// (its code and read-only data, file-backed, shared with nothing else here), `libraries`, and
/// `other`.
pub fn resident_by_kind_kib(pid: u32) -> Vec<(String, u64)> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return Vec::new();
    };
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.display().to_string());
    let mut kinds: Vec<(String, u64)> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            // address perms offset dev inode [name]
            let name = words.nth(4).unwrap_or("");
            current = if name.is_empty() || name == "[heap]" || name.starts_with("[stack") {
                "heap and anonymous".into()
            } else if name.starts_with("anon_inode:bpf") {
                "BPF maps".into()
            } else if Some(name) == exe.as_deref() {
                "the binary".into()
            } else if name.contains(".so") {
                "libraries".into()
            } else {
                "other".into()
            };
        } else if first == "Rss:" {
            let kib: u64 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            match kinds.iter_mut().find(|(k, _)| *k == current) {
                Some((_, v)) => *v += kib,
                None => kinds.push((current.clone(), kib)),
            }
        }
    }
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    kinds
}

/// IRQ-work interrupts (`IWI`) summed over CPUs: what a BPF ring buffer's wake-up costs.
pub fn irq_work_interrupts() -> u64 {
    std::fs::read_to_string("/proc/interrupts")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.trim_start().starts_with("IWI:"))?;
            Some(
                line.split_whitespace()
                    .skip(1)
                    .map_while(|v| v.parse::<u64>().ok())
                    .sum(),
            )
        })
        .unwrap_or(0)
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Turns `kernel.bpf_stats_enabled` on for its lifetime and restores the old value.
pub struct BpfStats(String);

impl BpfStats {
    const PATH: &'static str = "/proc/sys/kernel/bpf_stats_enabled";

    pub fn enable() -> Result<BpfStats> {
        let old = std::fs::read_to_string(Self::PATH).context("bpf_stats_enabled")?;
        std::fs::write(Self::PATH, "1").context("enable kernel.bpf_stats_enabled")?;
        Ok(BpfStats(old.trim().to_string()))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, &self.0);
    }
}

/// Sleeps `d` (readability at call sites).
pub fn settle(d: Duration) {
    std::thread::sleep(d);
}

/// A plain HTTP/1.1 keep-alive server that spins `work` per request before answering 200 with
/// `body_len` bytes: the "realistic handler" behind nginx. Runs until the process ends.
pub fn upstream(port: u16, work: Duration, body_len: usize) -> Result<()> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("upstream cannot listen on {port}"))?;
    let response = {
        let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {body_len}\r\n\r\n").into_bytes();
        r.resize(r.len() + body_len, b'u');
        std::sync::Arc::new(r)
    };
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        let response = response.clone();
        std::thread::spawn(move || {
            let _ = s.set_nodelay(true);
            let mut buf = vec![0u8; 16 * 1024];
            let mut have = 0;
            loop {
                let n = match s.read(&mut buf[have..]) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                have += n;
                // Every request nginx sends here has no body: answer each complete head.
                while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                    let start = std::time::Instant::now();
                    while start.elapsed() < work {
                        std::hint::spin_loop();
                    }
                    if s.write_all(&response).is_err() {
                        return;
                    }
                    buf.copy_within(end + 4..have, 0);
                    have -= end + 4;
                }
                if have == buf.len() {
                    return;
                }
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let out = "Running 5s test @ http://127.0.0.1:18080/\n  1 threads and 16 connections\n\
                   Latency Distribution\n     50%   57.00us\n     99%    1.23ms\n\
                   1154398 requests in 5.00s, 184.96MB read\nRequests/sec: 230879.60\n";
        let w = parse_wrk(out).expect("parsed");
        assert_eq!(w.requests, 1_154_398);
        assert!((w.p99_us - 1230.0).abs() < 1e-6);
        assert!((w.rps - 230_879.6).abs() < 1e-6);
    }
}
