//! Command line. Every flag also has an `APITAP_*` environment variable and a key in the TOML
//! config file; precedence is flag > environment > file > default (see `config`).

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "apitap",
    version,
    about = "HTTP API monitoring from the kernel, with eBPF"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Live capture (root, or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON).
    Run(RunArgs),
    /// Run the pipeline over a pcap/pcapng file; no privileges needed.
    Replay(ReplayArgs),
    /// Report what this kernel supports and what would attach; exit 1 if capture cannot work.
    Check(CheckArgs),
    /// Live terminal view of a running agent (q quits).
    Top(TopArgs),
}

#[derive(Debug, Args, Default, Clone)]
pub struct RunArgs {
    /// TOML config file.
    #[arg(short = 'c', long, env = "APITAP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Interfaces to attach to (default: every interface that is up, lo included, and new ones).
    #[arg(short = 'i', long = "interface", env = "APITAP_INTERFACES", value_delimiter = ',', num_args = 1..)]
    pub interfaces: Vec<String>,
    /// Server ports (default: discover listening TCP ports and follow changes).
    #[arg(short = 'p', long = "port", env = "APITAP_PORTS", value_delimiter = ',', num_args = 1..)]
    pub ports: Vec<u16>,
    /// Address of the metrics, health and API endpoint [default: 127.0.0.1:9464].
    #[arg(long, env = "APITAP_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Per-request JSON lines: a file path, or - for stdout [default: off].
    #[arg(long, env = "APITAP_LOG")]
    pub log: Option<String>,
    /// Redis URL of a shared usage store [default: the embedded store in --data-dir].
    #[arg(long, env = "APITAP_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Directory of the embedded store and generated token [default: /var/lib/apitap].
    #[arg(long, env = "APITAP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Bearer token required on /api/* [default: generated and stored in --data-dir].
    #[arg(long, env = "APITAP_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Payload bytes the kernel copies at the start of a message burst [default: 4096, max 8192].
    #[arg(long, env = "APITAP_SNAP_LEN")]
    pub snap_len: Option<u32>,
    /// Ring bytes in total, split into one ring per CPU (each rounded down to a power of two,
    /// at least 131072) [default: 8388608].
    #[arg(long, env = "APITAP_RING_BYTES")]
    pub ring_bytes: Option<u32>,
    /// Time responses with the departure time their sender's TCP stack set (Linux 5.18+),
    /// saving the classifier a clock read per response; false reads the clock for every
    /// record [default: true].
    #[arg(long, env = "APITAP_STACK_STAMPS", value_name = "true|false")]
    pub stack_stamps: Option<bool>,
    /// Agent log format: text or json [default: text].
    #[arg(long, env = "APITAP_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Agent log level: error, warn, info, debug, trace, or tracing directives such as
    /// "info,apitap::capture=debug" [default: RUST_LOG, else info].
    #[arg(long, env = "APITAP_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// How the classifiers attach: auto (TCX links where the kernel has them, else netlink
    /// filters), tcx, or netlink [default: auto].
    #[arg(long, env = "APITAP_ATTACH_MODE", value_enum)]
    pub attach_mode: Option<crate::capture::attach::AttachPolicy>,
    /// Webhook that receives alert notifications as JSON.
    #[arg(long, env = "APITAP_ALERT_WEBHOOK")]
    pub alert_webhook: Option<String>,
    /// Alertmanager base URL (alerts are POSTed to /api/v2/alerts).
    #[arg(long, env = "APITAP_ALERTMANAGER_URL")]
    pub alertmanager_url: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ReplayArgs {
    /// Capture file (pcap or pcapng).
    pub file: PathBuf,
    /// TOML config file (routes, client header, redaction keys ...).
    #[arg(short = 'c', long, env = "APITAP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Server ports, comma-separated or one per flag (default: inferred from handshakes and
    /// request lines). One value per flag, so `-p 80 file.pcap` keeps the file name.
    #[arg(short = 'p', long = "port", value_delimiter = ',')]
    pub ports: Vec<u16>,
    /// Write transactions here instead of stdout (- for stdout).
    #[arg(long)]
    pub log: Option<String>,
    /// Write the final Prometheus exposition to this file.
    #[arg(long)]
    pub metrics_out: Option<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct CheckArgs {
    /// Interfaces to test (default: every interface that is up).
    #[arg(short = 'i', long = "interface", value_delimiter = ',', num_args = 1..)]
    pub interfaces: Vec<String>,
    /// The attach mode to report on, as `apitap run --attach-mode` [default: auto].
    #[arg(long, env = "APITAP_ATTACH_MODE", value_enum, default_value_t)]
    pub attach_mode: crate::capture::attach::AttachPolicy,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(args: &[&str]) -> Result<ReplayArgs, clap::Error> {
        let argv = ["apitap", "replay"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Replay(r) => Ok(r),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[rstest::rstest]
    #[case::port_then_file(&["-p", "80", "f.pcap"], &[80])]
    #[case::file_then_port(&["f.pcap", "-p", "80"], &[80])]
    #[case::comma_separated(&["-p", "80,8080", "f.pcap"], &[80, 8080])]
    #[case::one_per_flag(&["-p", "80", "--port", "8080", "f.pcap"], &[80, 8080])]
    #[case::around_the_file(&["-p", "80", "f.pcap", "-p", "8080"], &[80, 8080])]
    #[case::equals(&["--port=80", "f.pcap", "--log", "-"], &[80])]
    #[case::attached(&["-p80", "f.pcap"], &[80])]
    fn replay_takes_ports_and_the_file_in_the_common_orders(
        #[case] args: &[&str],
        #[case] ports: &[u16],
    ) {
        let r = replay(args).expect("parses");
        assert_eq!(r.ports, ports);
        assert_eq!(r.file, PathBuf::from("f.pcap"));
    }

    #[test]
    fn a_second_bare_value_after_a_port_is_refused_not_taken_as_a_port() {
        let err = replay(&["-p", "80", "8080", "f.pcap"]).expect_err("two files");
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}

#[derive(Debug, Args, Clone)]
pub struct TopArgs {
    /// Base URL of the agent's endpoint (its --listen).
    #[arg(long, env = "APITAP_URL", default_value = "http://127.0.0.1:9464")]
    pub url: String,
    /// Bearer token of the agent's API [default: the file api-token in --data-dir].
    #[arg(long, env = "APITAP_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The agent's data directory, where it keeps its generated token.
    #[arg(long, env = "APITAP_DATA_DIR", default_value = "/var/lib/apitap")]
    pub data_dir: PathBuf,
    /// Seconds between refreshes (1 to 60).
    #[arg(long, default_value_t = 2)]
    pub interval: u64,
}
