//! The `apitap` agent as a library: everything `main.rs` runs, and what the integration tests
//! in `agent/tests/` and the benches in `agent/benches/` use.
//!
//! | module | what it does |
//! | --- | --- |
//! | [`cli`], [`config`] | flags, environment and the TOML file, validated once |
//! | [`exit`] | exit codes: 0, 1 at run time, 78 for configuration and usage errors |
//! | [`discovery`] | servers in every network namespace, attributed to process, container, pod, workload |
//! | [`kube`] | workload names from the Kubernetes API (pods of this node, owner references) |
//! | [`capture`] | load and attach the kernel programs, follow ports and interfaces, read the per-CPU rings |
//! | [`live`] | `apitap run`: the [`live::App`] that wires capture to the pipeline and the sinks |
//! | [`replay`] | `apitap replay`: the same pipeline over a pcap file |
//! | [`check`] | `apitap check`: what this kernel supports |
//! | [`api`], [`health`] | the HTTP endpoint: /metrics, /health, probes, /api/v1/* |
//! | [`page`] | the built-in live page at `/` |
//! | [`top`] | `apitap top`: a live terminal view of a running agent |
//! | [`store`], [`reqlog`], [`alert`] | usage store, request log, alerts and notifiers |
//! | [`tls`] | the one rustls (ring) client configuration of every outbound connection |
//! | [`netlink`] | the netlink transport of capture's TC requests and discovery's socket dumps |

pub mod alert;
pub mod api;
pub mod capture;
pub mod check;
pub mod cli;
pub mod config;
pub mod discovery;
pub mod exit;
pub mod health;
pub mod kube;
pub mod live;
pub mod netlink;
pub mod page;
pub mod replay;
pub mod reqlog;
pub mod store;
pub mod tls;
pub mod top;

/// The agent's own log on stderr, as text or JSON lines (`--log-format`), filtered by
/// `--log-level` (a level or tracing directives), else RUST_LOG, else `info`.
pub fn init_tracing(format: &str, level: Option<&str>) {
    let filter = match level {
        Some(l) => tracing_subscriber::EnvFilter::new(l),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
