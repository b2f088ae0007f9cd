//! `cargo xtask bench` (root): what apitap costs the server it watches, in one table from one
//! run. Three scenarios on lo in a private namespace, nginx and wrk sharing the machine's cores
//! with the agent: the worst case (`return 200`), a realistic handler (nginx proxying to an
//! upstream that spins 50 µs per request), and the worst case with one request per connection
//! (nginx closes each after its response). Each is measured A/B/A/B (without, with, without,
//! with the agent), with `kernel.bpf_stats_enabled` on throughout. Then the ring bytes one
//! request costs (200 B and 1 MiB responses), and the agent's memory with 10,000 open flows.
//! Figures, never assertions.
//!
//! usage: bench [--rounds N] [--secs S] [--flows N] [--parts worst,realistic,close,floor,control,ring,memory,isolated]
//!        (APITAP_BIN: the agent binary; every part by default)
//!        bench --vs OTHER_BIN [--rounds N] [--secs S]
//!        (either form: [--connections N] sets wrk's connections, 16 by default)
//!        (either form: [--header 'Name: value']... adds headers to wrk's requests, e.g. the
//!        bearer token real API clients send)
//!        (two builds of the agent on the worst case, in ABBA order per round: see `versus`)
//!        bench upstream PORT WORK_US                 (internal: the upstream server)
//!        bench burn PERIOD_US SPIN_US SECS           (internal: the control's stand-in)

use agent_common::programs;
use anyhow::{Context, Result, bail};
use apitap::capture::loader::LoadOptions;
use apitap_e2e::agent::{Agent, apitap_bin};
use apitap_e2e::bench::{self, BpfStats, Wrk};
use apitap_e2e::bpf::{Classifier, options};
use apitap_e2e::floor::EmptyProgram;
use apitap_e2e::frames::{self, ACK, PSH, Tcp};
use apitap_e2e::metrics::Metrics;
use apitap_e2e::netns::Netns;
use apitap_e2e::nginx::{self, Nginx};
use apitap_e2e::{TempDir, repo_root, require_root, unique};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::time::Duration;

const PORT: u16 = 18080;
const UPSTREAM_PORT: u16 = 18081;
const LISTEN: &str = "127.0.0.1:9464";
/// wrk's connections unless `--connections` says otherwise.
const WRK_CONNECTIONS: u32 = 16;
const UPSTREAM_WORK_US: u64 = 50;
const BIG: usize = 1 << 20;

struct Args {
    rounds: u32,
    secs: u32,
    flows: u32,
    parts: Vec<String>,
    /// Another agent build to compare with APITAP_BIN (`--vs`).
    vs: Option<PathBuf>,
    /// Headers wrk adds to every request (`--header 'Name: value'`, repeatable).
    headers: Vec<String>,
    /// wrk's connections (`--connections`).
    connections: u32,
}

impl Args {
    fn wants(&self, part: &str) -> bool {
        self.parts.is_empty() || self.parts.iter().any(|p| p == part)
    }
}

const PARTS: [&str; 8] = [
    "worst",
    "realistic",
    "close",
    "floor",
    "control",
    "ring",
    "memory",
    "isolated",
];

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = if argv.first().map(String::as_str) == Some("upstream") {
        run_upstream(&argv[1..])
    } else if argv.first().map(String::as_str) == Some("burn") {
        run_burn(&argv[1..])
    } else {
        parse(&argv).and_then(|a| run(&a))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse(argv: &[String]) -> Result<Args> {
    let mut a = Args {
        rounds: 2,
        secs: 5,
        flows: 10_000,
        parts: Vec::new(),
        vs: None,
        headers: Vec::new(),
        connections: WRK_CONNECTIONS,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        if flag == "--parts" {
            for part in value.split(',') {
                if !PARTS.contains(&part) {
                    bail!("unknown part {part} (parts: {})", PARTS.join(","));
                }
                a.parts.push(part.to_string());
            }
            continue;
        }
        if flag == "--vs" {
            a.vs = Some(PathBuf::from(value));
            continue;
        }
        if flag == "--header" {
            a.headers.push(value.clone());
            continue;
        }
        let n: u32 = value.parse().with_context(|| format!("{flag} {value}"))?;
        match flag.as_str() {
            "--rounds" => a.rounds = n.max(1),
            "--secs" => a.secs = n.max(1),
            "--flows" => a.flows = n,
            "--connections" => a.connections = n.max(1),
            _ => bail!("unknown argument {flag}"),
        }
    }
    Ok(a)
}

fn run_upstream(argv: &[String]) -> Result<()> {
    let port: u16 = argv.first().context("port")?.parse()?;
    let work: u64 = argv.get(1).context("work µs")?.parse()?;
    bench::upstream(port, Duration::from_micros(work), 200)
}

fn run_burn(argv: &[String]) -> Result<()> {
    let arg = |i: usize, what: &str| -> Result<u64> {
        let v = argv.get(i).with_context(|| what.to_string())?;
        v.parse().with_context(|| format!("{what} {v}"))
    };
    let (period, spin, secs) = (arg(0, "period µs")?, arg(1, "spin µs")?, arg(2, "seconds")?);
    bench::burn(
        Duration::from_micros(period),
        Duration::from_micros(spin),
        Duration::from_secs(secs),
    );
    Ok(())
}

/// The namespace, nginx, the upstream and the agent's data dir.
struct Host {
    nginx: Nginx,
    upstream: Child,
    data: TempDir,
    ns: Netns,
    /// wrk's connections in every load.
    connections: u32,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.upstream.kill();
        let _ = self.upstream.wait();
    }
}

fn locations() -> String {
    let body200 = "b".repeat(200);
    format!(
        "    location = / {{ return 200 \"hello from nginx\\n\"; }}\n\
         location = /r200 {{ return 200 \"{body200}\"; }}\n\
         location = /big1m {{ }}\n\
         location = /close {{ keepalive_timeout 0; return 200 \"hello from nginx\\n\"; }}\n\
         location = /proxy {{ proxy_pass http://work; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n"
    )
}

fn host(connections: u32) -> Result<Host> {
    let ns = Netns::new(&unique("at-bench-"))?;
    let exe = std::env::current_exe()?;
    let upstream = ns
        .cmd(
            exe.to_str().context("utf-8 path")?,
            &[
                "upstream",
                &UPSTREAM_PORT.to_string(),
                &UPSTREAM_WORK_US.to_string(),
            ],
        )
        .stdout(Stdio::null())
        .spawn()
        .context("upstream")?;
    let locations = locations();
    let http_extra =
        format!("  upstream work {{ server 127.0.0.1:{UPSTREAM_PORT}; keepalive 32; }}");
    let nginx = Nginx::start_opts(
        Some(&ns),
        &[format!("127.0.0.1:{PORT}")],
        &nginx::Options {
            locations: &locations,
            access_log: false,
            worker_connections: 16_384,
            http_extra: &http_extra,
            ..nginx::Options::default()
        },
    )?;
    std::fs::write(nginx.www().join("big1m"), vec![b'x'; BIG])?;
    Ok(Host {
        nginx,
        upstream,
        data: TempDir::new("bench-data")?,
        ns,
        connections,
    })
}

impl Host {
    fn agent(&self) -> Result<Agent> {
        self.agent_bin(&apitap_bin())
    }

    fn agent_bin(&self, bin: &Path) -> Result<Agent> {
        let data = self.data.path().join("data").display().to_string();
        Agent::start_bin(
            bin,
            Some(&self.ns),
            &[
                "-i",
                "lo",
                "-p",
                &PORT.to_string(),
                "--data-dir",
                &data,
                "--api-token",
                "bench-token-1",
            ],
            LISTEN,
        )
    }

    fn url(&self, path: &str) -> String {
        let _ = &self.nginx;
        format!("http://127.0.0.1:{PORT}{path}")
    }
}

fn api_requests(m: &Metrics) -> u64 {
    m.0.iter()
        .filter(|(k, _)| k.starts_with("api_requests_total"))
        .map(|(_, v)| *v as u64)
        .sum()
}

fn prog_totals(agent: &Agent) -> (u64, u64) {
    agent
        .prog_stats()
        .iter()
        .fold((0, 0), |(c, n), (_, cnt, ns)| (c + cnt, n + ns))
}

/// One A/B pair.
#[derive(Debug, Default, Clone)]
struct Pair {
    without: Wrk,
    with: Wrk,
    agent_cpu_ns: u64,
    /// The agent's CPU ns during the "with" run, per thread name.
    threads: BTreeMap<String, u64>,
    bpf_runs: u64,
    bpf_ns: u64,
    lost: u64,
    /// `apitap_ring_peak_bytes` after the "with" run: the fullest one ring was at a drain.
    ring_peak: u64,
    ring_capacity: u64,
    /// `apitap_rings` after the "with" run.
    rings: u64,
    transactions: u64,
    iwi_without: u64,
    iwi_with: u64,
    load: f64,
}

impl Pair {
    /// Throughput with ÷ without.
    fn ratio(&self) -> f64 {
        self.with.rps / self.without.rps
    }

    /// p99 with ÷ without.
    fn p99_ratio(&self) -> f64 {
        self.with.p99_us / self.without.p99_us
    }

    /// Kernel ns per classifier run.
    fn classifier_ns(&self) -> f64 {
        self.bpf_ns as f64 / self.bpf_runs.max(1) as f64
    }

    /// Agent user + sys µs per transaction.
    fn agent_us(&self) -> f64 {
        self.agent_cpu_ns as f64 / 1e3 / self.transactions.max(1) as f64
    }
}

fn measure(h: &Host, path: &str, a: &Args) -> Result<Vec<Pair>> {
    let url = h.url(path);
    bench::wrk(&h.ns, &url, h.connections, 1)?; // warm-up
    let mut pairs = Vec::new();
    for _ in 0..a.rounds {
        let mut p = Pair {
            load: bench::load_average(),
            ..Pair::default()
        };
        let i0 = bench::irq_work_interrupts();
        p.without = bench::wrk(&h.ns, &url, h.connections, a.secs)?;
        p.iwi_without = bench::irq_work_interrupts() - i0;

        let r = agent_run(h, &apitap_bin(), &url, a.secs, false)?;
        p.with = r.wrk;
        p.iwi_with = r.iwi;
        p.agent_cpu_ns = r.threads.values().sum();
        p.threads = r.threads;
        p.bpf_runs = r.bpf_runs;
        p.bpf_ns = r.bpf_ns;
        p.transactions = r.transactions;
        p.lost = r.lost;
        p.ring_peak = r.after.count("apitap_ring_peak_bytes");
        p.ring_capacity = r.after.count("apitap_ring_capacity_bytes");
        p.rings = r.after.count("apitap_rings");
        pairs.push(p);
    }
    Ok(pairs)
}

/// One wrk run with an agent started from `bin`.
struct AgentRun {
    wrk: Wrk,
    /// The agent's CPU ns per thread from just before wrk until it had recorded every request.
    threads: BTreeMap<String, u64>,
    /// The agent's classifiers over the same span (bpf_stats): runs and ns.
    bpf_runs: u64,
    bpf_ns: u64,
    /// The empty program's runs and ns on the agent's hook, when it was asked for and attached
    /// (TCX).
    empty: Option<(u64, u64)>,
    /// IRQ-work interrupts during wrk.
    iwi: u64,
    transactions: u64,
    lost: u64,
    /// The agent's metrics once every request was recorded.
    after: Metrics,
}

impl AgentRun {
    /// Kernel ns per classifier run.
    fn classifier_ns(&self) -> f64 {
        self.bpf_ns as f64 / self.bpf_runs.max(1) as f64
    }

    /// Kernel ns per run of the empty program, when it was attached.
    fn empty_ns(&self) -> Option<f64> {
        self.empty.map(|(runs, ns)| ns as f64 / runs.max(1) as f64)
    }

    /// Agent user + sys µs per transaction.
    fn agent_us(&self) -> f64 {
        self.threads.values().sum::<u64>() as f64 / 1e3 / self.transactions.max(1) as f64
    }
}

/// Starts the agent from `bin` (and with `empty` the empty program on its hook), lets it
/// settle, runs wrk on `url` for `secs`, waits until the agent has recorded every request,
/// and stops it.
fn agent_run(h: &Host, bin: &Path, url: &str, secs: u32, empty: bool) -> Result<AgentRun> {
    let mut agent = h.agent_bin(bin)?;
    bench::settle(Duration::from_millis(500));
    let empty = if empty {
        EmptyProgram::attach(&h.ns, "lo").ok()
    } else {
        None
    };
    let pid = agent.pid().context("agent pid")?;
    let before = agent.scrape()?;
    let (t0, (r0, n0)) = (bench::cpu_ns_by_thread(pid), prog_totals(&agent));
    let e0 = empty.as_ref().map(EmptyProgram::stats);
    let i0 = bench::irq_work_interrupts();
    let wrk = bench::wrk(&h.ns, url, h.connections, secs)?;
    let iwi = bench::irq_work_interrupts() - i0;
    let want = api_requests(&before) + wrk.requests;
    let after = agent.scrape_until(Duration::from_secs(5), |m| api_requests(m) >= want)?;
    let (r1, n1) = prog_totals(&agent);
    let e1 = empty.as_ref().map(EmptyProgram::stats);
    let threads = bench::cpu_ns_by_thread(pid)
        .into_iter()
        .map(|(name, ns)| {
            let spent = ns.saturating_sub(t0.get(&name).copied().unwrap_or(0));
            (name, spent)
        })
        .collect();
    drop(empty);
    agent.terminate()?;
    Ok(AgentRun {
        wrk,
        threads,
        bpf_runs: r1 - r0,
        bpf_ns: n1 - n0,
        empty: e0.zip(e1).map(|((c0, s0), (c1, s1))| (c1 - c0, s1 - s0)),
        iwi,
        transactions: api_requests(&after) - api_requests(&before),
        lost: after.count("apitap_events_lost_total") - before.count("apitap_events_lost_total"),
        after,
    })
}

/// One round of the control: the worst case without anything, with the agent, and with a
/// stand-in process that spends the agent's CPU the way its analysis thread does.
#[derive(Debug, Default, Clone)]
struct Control {
    without: Wrk,
    agent: Wrk,
    /// The stand-in spending the agent's user-space CPU share.
    stand_in: Wrk,
    /// The stand-in spending the agent's share plus the classifier's.
    stand_in_total: Wrk,
    /// The stand-in spending the agent's share in slices a quarter as long, four times as
    /// often: what the length of one drain does to p99.
    stand_in_short: Wrk,
    /// Shares of one core over the "with agent" run: the agent's threads, the classifier.
    agent_share: f64,
    classifier_share: f64,
    /// What the three stand-ins spent, measured (share of one core).
    stand_in_shares: (f64, f64, f64),
    /// The analysis thread's wake-up period, from its voluntary context switches.
    period_us: u64,
}

/// The worst case with the agent replaced by a stand-in: a SCHED_BATCH process (like the
/// analysis thread) that wakes as often as the analysis thread did and spins for the agent's
/// measured CPU share, then for that share plus the classifier's. What the stand-in costs
/// nginx is what that much CPU costs on these two cores, whoever spends it; what the agent
/// costs beyond it is its own (the classifier running inside nginx's and wrk's packet path,
/// cache and wake-up effects).
fn control(h: &Host, a: &Args) -> Result<Vec<Control>> {
    let url = h.url("/");
    bench::wrk(&h.ns, &url, h.connections, 1)?; // warm-up
    let wall_ns = f64::from(a.secs) * 1e9;
    let mut rounds = Vec::new();
    for _ in 0..a.rounds {
        let mut c = Control {
            without: bench::wrk(&h.ns, &url, h.connections, a.secs)?,
            ..Control::default()
        };
        let mut agent = h.agent()?;
        bench::settle(Duration::from_millis(500));
        let pid = agent.pid().context("agent pid")?;
        let (cpu0, (_, n0)) = (bench::cpu_ns(pid), prog_totals(&agent));
        let wakes0 = bench::voluntary_switches(pid, "apitap-analyze");
        c.agent = bench::wrk(&h.ns, &url, h.connections, a.secs)?;
        let wakes = bench::voluntary_switches(pid, "apitap-analyze") - wakes0;
        let (cpu1, (_, n1)) = (bench::cpu_ns(pid), prog_totals(&agent));
        agent.terminate()?;
        c.agent_share = (cpu1 - cpu0) as f64 / wall_ns;
        c.classifier_share = (n1 - n0) as f64 / wall_ns;
        // At least 100 µs: the stand-in spins and sleeps once per period.
        c.period_us = ((wall_ns / 1e3 / wakes.max(1) as f64) as u64).max(100);
        let stand_in = |share: f64, period_us: u64| -> Result<(Wrk, f64)> {
            let spin_us = (share * period_us as f64) as u64;
            let mut burner = std::process::Command::new(std::env::current_exe()?)
                .args([
                    "burn",
                    &period_us.to_string(),
                    &spin_us.to_string(),
                    &(a.secs + 2).to_string(),
                ])
                .spawn()
                .context("stand-in")?;
            bench::settle(Duration::from_millis(500));
            let t0 = bench::cpu_ns(burner.id());
            let w = bench::wrk(&h.ns, &url, h.connections, a.secs);
            let spent = bench::cpu_ns(burner.id()).saturating_sub(t0) as f64 / wall_ns;
            let _ = burner.kill();
            let _ = burner.wait();
            Ok((w?, spent))
        };
        let (w1, s1) = stand_in(c.agent_share, c.period_us)?;
        let (w2, s2) = stand_in(c.agent_share + c.classifier_share, c.period_us)?;
        let (w3, s3) = stand_in(c.agent_share, c.period_us / 4)?;
        (c.stand_in, c.stand_in_total, c.stand_in_short) = (w1, w2, w3);
        c.stand_in_shares = (s1, s2, s3);
        rounds.push(c);
    }
    Ok(rounds)
}

fn print_control(rounds: &[Control]) {
    println!();
    println!(
        "the control (worst case): the agent against a stand-in process spending its CPU share (SCHED_BATCH, waking at the analysis thread's rate)"
    );
    println!();
    println!(
        "| round | req/s without | agent: ratio, p99 | agent share, classifier share (of one core) | wakes every | stand-in at the agent's share: spent, ratio, p99 | stand-in at agent + classifier: spent, ratio, p99 | stand-in at the agent's share, waking 4× as often: spent, ratio, p99 |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (i, c) in rounds.iter().enumerate() {
        let r = |w: &Wrk| w.rps / c.without.rps;
        println!(
            "| {} | {:.0} (p99 {:.0} µs) | {:.3}, {:.0} µs | {:.3}, {:.3} | {} µs | {:.3}, {:.3}, {:.0} µs | {:.3}, {:.3}, {:.0} µs | {:.3}, {:.3}, {:.0} µs |",
            i + 1,
            c.without.rps,
            c.without.p99_us,
            r(&c.agent),
            c.agent.p99_us,
            c.agent_share,
            c.classifier_share,
            c.period_us,
            c.stand_in_shares.0,
            r(&c.stand_in),
            c.stand_in.p99_us,
            c.stand_in_shares.1,
            r(&c.stand_in_total),
            c.stand_in_total.p99_us,
            c.stand_in_shares.2,
            r(&c.stand_in_short),
            c.stand_in_short.p99_us,
        );
    }
}

/// The worst case once more, with an empty program on the agent's hook: (the agent's
/// classifier, the empty program) in ns per run. The empty one is what bpf_stats charges a
/// program that does nothing, the floor of any live figure on this machine.
fn floor(h: &Host, a: &Args) -> Result<(f64, f64)> {
    let agent = h.agent()?;
    bench::settle(Duration::from_millis(500));
    let empty = EmptyProgram::attach(&h.ns, "lo")?;
    let ((r0, n0), (e0, m0)) = (prog_totals(&agent), empty.stats());
    bench::wrk(&h.ns, &h.url("/"), h.connections, a.secs)?;
    let ((r1, n1), (e1, m1)) = (prog_totals(&agent), empty.stats());
    let per_run = |runs: u64, ns: u64| ns as f64 / runs.max(1) as f64;
    Ok((per_run(r1 - r0, n1 - n0), per_run(e1 - e0, m1 - m0)))
}

/// One run of the worst case with one build of the agent (`--vs`).
struct VersusRun {
    /// 0: APITAP_BIN, 1: the `--vs` build.
    build: usize,
    run: AgentRun,
}

/// Two builds of the agent on the worst case, `rounds` rounds of four runs in ABBA order
/// (A B B A, then B A A B, …), so that the machine's drift over a round, which on this VM
/// moved the classifier by 30–50 ns between two consecutive runs and flipped the sign of a
/// plain A/B, cancels in each round's sums.
fn versus(h: &Host, a: &Args, first: &Path, other: &Path) -> Result<Vec<VersusRun>> {
    bench::wrk(&h.ns, &h.url("/"), h.connections, 1)?; // warm-up
    let bins = [first, other];
    let mut runs = Vec::new();
    for round in 0..a.rounds {
        let order = if round % 2 == 0 {
            [0, 1, 1, 0]
        } else {
            [1, 0, 0, 1]
        };
        for build in order {
            runs.push(versus_run(h, a, build, bins[build])?);
        }
    }
    Ok(runs)
}

fn versus_run(h: &Host, a: &Args, build: usize, bin: &Path) -> Result<VersusRun> {
    let run = agent_run(h, bin, &h.url("/"), a.secs, true)?;
    Ok(VersusRun { build, run })
}

/// One figure of a [`VersusRun`].
type Figure<'f> = &'f dyn Fn(&VersusRun) -> f64;

fn print_versus(a: &Args, first: &Path, other: &Path, runs: &[VersusRun]) {
    let names = [first.display().to_string(), other.display().to_string()];
    println!();
    println!(
        "two builds on the worst case — {} round(s) of four runs in ABBA order, wrk -t1 -c{} -d{}s, bpf_stats on",
        a.rounds, a.connections, a.secs
    );
    println!("A = {}, B = {}", names[0], names[1]);
    println!();
    println!(
        "| run | build | req/s | p99 | classifier ns/packet | empty program ns | agent µs/request | lost |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (i, v) in runs.iter().enumerate() {
        let r = &v.run;
        println!(
            "| {} | {} | {:.0} | {:.0} µs | {:.0} | {} | {:.3} | {} |",
            i + 1,
            ["A", "B"][v.build],
            r.wrk.rps,
            r.wrk.p99_us,
            r.classifier_ns(),
            r.empty_ns().map_or("-".into(), |e| format!("{e:.0}")),
            r.agent_us(),
            r.lost
        );
    }
    // Per round, B's two runs minus A's two, halved: the drift over the round cancels.
    let diffs = |f: Figure| -> Vec<f64> {
        runs.chunks(4)
            .map(|round| {
                let sum = |b: usize| round.iter().filter(|r| r.build == b).map(f).sum::<f64>();
                (sum(1) - sum(0)) / 2.0
            })
            .collect()
    };
    let of = |b: usize, f: Figure| -> f64 { median(runs.iter().filter(|r| r.build == b).map(f)) };
    println!();
    println!("| figure | A median | B median | B − A per round (ABBA) |");
    println!("| --- | --- | --- | --- |");
    let rows: [(&str, Figure, usize); 3] = [
        ("classifier ns/packet", &|v| v.run.classifier_ns(), 0),
        ("agent µs/request", &|v| v.run.agent_us(), 3),
        ("req/s", &|v| v.run.wrk.rps, 0),
    ];
    for (name, f, digits) in rows {
        let d: Vec<String> = diffs(f).iter().map(|d| format!("{d:+.digits$}")).collect();
        println!(
            "| {name} | {:.digits$} | {:.digits$} | {} |",
            of(0, f),
            of(1, f),
            d.join(", ")
        );
    }
}

/// Ring bytes per request for `path`, over `n` sequential keep-alive requests.
fn ring_bytes_per_request(h: &Host, agent: &Agent, path: &str, n: u32) -> Result<(f64, u64)> {
    let before = agent.scrape()?;
    let done = bench::ab(&h.ns, &h.url(path), n, 1)?;
    let want = api_requests(&before) + done;
    let after = agent.scrape_until(Duration::from_secs(10), |m| api_requests(m) >= want)?;
    let bytes = after.count("apitap_ring_bytes_total") - before.count("apitap_ring_bytes_total");
    let lost = after.count("apitap_events_lost_total") - before.count("apitap_events_lost_total");
    Ok((bytes as f64 / done as f64, lost))
}

/// The agent's memory, idle and with the flows open (KiB), and the engine's own account.
struct Memory {
    idle_rss: u64,
    idle_pss: u64,
    rss: u64,
    pss: u64,
    tracked: u64,
    flow_table_bytes: u64,
    /// Resident KiB by kind of mapping with the flows open.
    by_kind: Vec<(String, u64)>,
}

/// The agent's memory with `flows` keep-alive connections held open.
fn memory_with_flows(h: &Host, flows: u32) -> Result<Memory> {
    let agent = h.agent()?;
    let pid = agent.pid().context("agent pid")?;
    bench::settle(Duration::from_millis(500));
    let (idle_rss, idle_pss) = bench::rss_pss_kib(pid);
    let script = repo_root().join("bench/flows.py");
    let mut client =
        h.ns.cmd(
            "sh",
            &[
                "-c",
                &format!(
                    "ulimit -n {}; exec python3 {} 127.0.0.1 {PORT} {flows} 20",
                    flows + 1024,
                    script.display()
                ),
            ],
        )
        .stdout(Stdio::piped())
        .spawn()?;
    agent.scrape_until(Duration::from_secs(20), |m| {
        m.get("apitap_flows_tracked").unwrap_or(0.0) >= f64::from(flows)
    })?;
    // Steady state with the flows open: the agent gives freed heap back every 10 s (the
    // flow table's growth leaves its old buffers free), so measure after one such period.
    bench::settle(Duration::from_secs(11));
    let (rss, pss) = bench::rss_pss_kib(pid);
    let by_kind = bench::resident_by_kind_kib(pid);
    let m = agent.scrape()?;
    let tracked = m.count("apitap_flows_tracked");
    let flow_table_bytes = m.count("apitap_flow_table_bytes");
    let _ = client.wait();
    Ok(Memory {
        idle_rss,
        idle_pss,
        rss,
        pss,
        tracked,
        flow_table_bytes,
        by_kind,
    })
}

/// Mean kernel ns per run of `tc_ingress` on synthetic frames (BPF_PROG_TEST_RUN, hot
/// caches, one CPU): the classifier's own cost, apart from the machine's load. The lowest of
/// 20 batches of 2,000 runs each.
fn classifier_in_isolation() -> Result<Vec<(&'static str, u32)>> {
    let c = Classifier::load_with(
        LoadOptions {
            ring_bytes: 64 << 20,
            ..options(agent_common::DEFAULT_SNAP_LEN)
        },
        &[PORT],
    )?;
    let lo = [127, 0, 0, 1];
    let req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nUser-Agent: wrk\r\n\r\n";
    let resp = vec![b'r'; 170];
    let body = vec![b'b'; 1400];
    let tcp = |sport, dport, seq, payload| Tcp {
        sport,
        dport,
        seq,
        ack: 1,
        flags: ACK | PSH,
        payload,
    };
    // The continuation frame is run once first so that its flow direction has burst state.
    let cont = frames::ipv4_tcp(lo, lo, &tcp(PORT, 40001, 1, &body), None);
    c.run(programs::TC_INGRESS, &cont)?;
    let cont = frames::ipv4_tcp(lo, lo, &tcp(PORT, 40001, 1401, &body), None);
    let cases: Vec<(&'static str, Vec<u8>)> = vec![
        (
            "request head, 62 B (copied: small)",
            frames::ipv4_tcp(lo, lo, &tcp(40000, PORT, 1, req), None),
        ),
        (
            "response, 170 B (copied: small)",
            frames::ipv4_tcp(lo, lo, &tcp(PORT, 40000, 1, &resp), None),
        ),
        (
            "1,400 B out of sequence (copied, burst state looked up)",
            frames::ipv4_tcp(lo, lo, &tcp(PORT, 40002, 1, &body), None),
        ),
        ("1,400 B continuation (length-only record)", cont),
        (
            "segment of an unwatched port",
            frames::ipv4_tcp(lo, lo, &tcp(40000, 443, 1, req), None),
        ),
        ("UDP", frames::ipv4_udp(lo, lo, 53, 5353, b"x")),
    ];
    let mut out = Vec::new();
    for (name, frame) in cases {
        let mut best = u32::MAX;
        for _ in 0..20 {
            best = best.min(c.time(programs::TC_INGRESS, &frame, 2000)?);
        }
        out.push((name, best));
    }
    Ok(out)
}

fn run(a: &Args) -> Result<()> {
    require_root();
    for tool in ["wrk", "ab", "nginx", "python3"] {
        apitap_e2e::require_tool(tool, tool);
    }
    let bin = apitap_bin();
    bench::set_wrk_headers(&a.headers)?;
    for h in &a.headers {
        eprintln!("wrk sends {h}");
    }
    let isolated = if a.wants("isolated") {
        classifier_in_isolation()?
    } else {
        Vec::new()
    };
    let stats = BpfStats::enable()?;
    let h = host(a.connections)?;
    eprintln!(
        "agent {}, load average {:.2}",
        bin.display(),
        bench::load_average()
    );
    if let Some(other) = &a.vs {
        let runs = versus(&h, a, &bin, other)?;
        drop(stats);
        print_versus(a, &bin, other, &runs);
        return Ok(());
    }

    let worst = if a.wants("worst") {
        measure(&h, "/", a)?
    } else {
        Vec::new()
    };
    let realistic = if a.wants("realistic") {
        measure(&h, "/proxy", a)?
    } else {
        Vec::new()
    };
    let close = if a.wants("close") {
        measure(&h, "/close", a)?
    } else {
        Vec::new()
    };

    // TCX links need Linux 6.6; without them the rest of the bench still runs, and the table
    // says why the floor is missing.
    let floor = if a.wants("floor") {
        Some(floor(&h, a).map_err(|e| format!("{e:#}")))
    } else {
        None
    };
    let control = if a.wants("control") {
        control(&h, a)?
    } else {
        Vec::new()
    };
    let ring = if a.wants("ring") {
        let agent = h.agent()?;
        let r200 = ring_bytes_per_request(&h, &agent, "/r200", 2000)?;
        let r1m = ring_bytes_per_request(&h, &agent, "/big1m", 64)?;
        Some((r200, r1m))
    } else {
        None
    };
    let mem = if a.flows > 0 && a.wants("memory") {
        Some(memory_with_flows(&h, a.flows)?)
    } else {
        None
    };
    drop(stats);

    println!();
    println!(
        "apitap live cost — {} round(s) of A/B per scenario, wrk -t1 -c{} -d{}s, bpf_stats on throughout",
        a.rounds, a.connections, a.secs
    );
    if !worst.is_empty() {
        print_scenario("worst case: nginx `return 200` on lo", &worst);
    }
    if !realistic.is_empty() {
        print_scenario(
            &format!("realistic: nginx proxying to an upstream spinning {UPSTREAM_WORK_US} µs"),
            &realistic,
        );
    }
    if !close.is_empty() {
        print_scenario(
            "one request per connection: the worst case with nginx closing every connection after its response (`keepalive_timeout 0`), so wrk opens a new one",
            &close,
        );
    }
    match floor {
        Some(Ok((classifier, empty))) => println!(
            "\nthe floor (worst case once more, an empty program on the agent's hook): classifier {classifier:.0} ns per run, empty program {empty:.0} ns per run"
        ),
        Some(Err(e)) => println!("\nthe floor: NOT MEASURED: {e}"),
        None => {}
    }
    if !control.is_empty() {
        print_control(&control);
    }
    println!();
    println!("| ring bytes and memory | figure |");
    println!("| --- | --- |");
    if let Some(((ring200, lost200), (ring1m, lost1m))) = ring {
        println!("| 200 B response (ab -k, 2000 requests) | {ring200:.0} B (lost {lost200}) |");
        println!(
            "| 1 MiB response (ab -k, 64 requests) | {:.1} KiB (lost {lost1m}) |",
            ring1m / 1024.0
        );
    }
    if let Some(m) = mem {
        println!(
            "| agent memory idle | RSS {:.1} MiB, PSS {:.1} MiB |",
            m.idle_rss as f64 / 1024.0,
            m.idle_pss as f64 / 1024.0
        );
        println!(
            "| agent memory with {} open flows ({} tracked) | RSS {:.1} MiB, PSS {:.1} MiB; the engine's flow table {:.1} MiB ({:.0} B per flow) |",
            a.flows,
            m.tracked,
            m.rss as f64 / 1024.0,
            m.pss as f64 / 1024.0,
            m.flow_table_bytes as f64 / (1 << 20) as f64,
            m.flow_table_bytes as f64 / m.tracked.max(1) as f64,
        );
        println!(
            "| resident with the flows open, by mapping | {} |",
            m.by_kind
                .iter()
                .map(|(k, v)| format!("{k} {:.1} MiB", *v as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !isolated.is_empty() {
        println!();
        println!(
            "| classifier in isolation (BPF_PROG_TEST_RUN, hot caches, best of 20 × 2,000 runs) | ns per run |"
        );
        println!("| --- | --- |");
        for (name, ns) in isolated {
            println!("| {name} | {ns} |");
        }
    }
    println!();
    println!("load average at the end: {:.2}", bench::load_average());
    Ok(())
}

fn range(v: impl Iterator<Item = f64>) -> String {
    let v: Vec<f64> = v.collect();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if (hi - lo).abs() < 0.005 * hi.abs().max(1e-9) {
        format!("{lo:.3}")
    } else {
        format!("{lo:.3}–{hi:.3}")
    }
}

fn print_scenario(name: &str, pairs: &[Pair]) {
    println!();
    println!("{name}");
    println!();
    println!(
        "| round | load | req/s without | req/s with | ratio | p99 without | p99 with | p99 ratio | classifier ns/packet | packets/request | agent µs/request | lost | IWI without/with |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (i, p) in pairs.iter().enumerate() {
        println!(
            "| {} | {:.2} | {:.0} | {:.0} | {:.3} | {:.0} µs | {:.0} µs | {:.2} | {:.0} | {:.2} | {:.3} | {} | {}/{} |",
            i + 1,
            p.load,
            p.without.rps,
            p.with.rps,
            p.ratio(),
            p.without.p99_us,
            p.with.p99_us,
            p.p99_ratio(),
            p.classifier_ns(),
            p.bpf_runs as f64 / p.transactions.max(1) as f64,
            p.agent_us(),
            p.lost,
            p.iwi_without,
            p.iwi_with,
        );
    }
    let each = |f: fn(&Pair) -> f64| pairs.iter().map(f);
    println!(
        "| all | | | | {} | | | {} | {} | | {} | {} | |",
        range(each(Pair::ratio)),
        range(each(Pair::p99_ratio)),
        range(each(Pair::classifier_ns)),
        range(each(Pair::agent_us)),
        pairs.iter().map(|p| p.lost).sum::<u64>(),
    );
    println!(
        "| median | | | | {:.3} | | | {:.2} | {:.0} | | {:.3} | | |",
        median(each(Pair::ratio)),
        median(each(Pair::p99_ratio)),
        median(each(Pair::classifier_ns)),
        median(each(Pair::agent_us)),
    );
    let more = |s: &str| format!(" {s} |");
    let names: std::collections::BTreeSet<&String> =
        pairs.iter().flat_map(|p| p.threads.keys()).collect();
    println!(
        "\nagent µs per request by thread:\n\n| round |{}\n| --- |{}",
        names.iter().map(|n| more(n)).collect::<String>(),
        names.iter().map(|_| more("---")).collect::<String>(),
    );
    for (i, p) in pairs.iter().enumerate() {
        let per_tx = |n: &String| {
            let ns = p.threads.get(n).copied().unwrap_or(0);
            more(&format!(
                "{:.3}",
                ns as f64 / 1e3 / p.transactions.max(1) as f64
            ))
        };
        println!(
            "| {} |{}",
            i + 1,
            names.iter().map(|n| per_tx(n)).collect::<String>()
        );
    }
    println!(
        "\nthe fullest one ring was when a drain began (apitap_ring_peak_bytes), per round: {} (one ring: {} KiB)",
        pairs
            .iter()
            .map(|p| format!("{} KiB", p.ring_peak / 1024))
            .collect::<Vec<_>>()
            .join(", "),
        pairs
            .first()
            .map_or(0, |p| p.ring_capacity / p.rings.max(1) / 1024),
    );
}

/// The median (the mean of the middle two for an even count); 0 for none.
fn median(v: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
