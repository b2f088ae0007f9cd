//! The host of the analytics tests: a private network namespace with nginx serving
//! [`API_LOCATIONS`] on `127.0.0.1:port` and a temp dir for the agent's data, plus agents
//! started against it (on lo, watching that port, with a fixed API token).

use crate::agent::Agent;
use crate::netns::Netns;
use crate::nginx::{API_LOCATIONS, Nginx};
use crate::{TempDir, unique};

/// The agent's endpoint inside the namespace.
pub const LISTEN: &str = "127.0.0.1:9464";

/// Dropped in field order: nginx, then the temp dir, then the namespace.
pub struct ApiHost {
    pub nginx: Nginx,
    pub dir: TempDir,
    pub ns: Netns,
    pub port: u16,
}

impl ApiHost {
    /// A fresh namespace named `prefix` + a unique suffix, with nginx on `port`.
    pub fn start(prefix: &str, port: u16) -> ApiHost {
        let ns = Netns::new(&unique(prefix)).expect("namespace");
        let nginx = Nginx::start_with(Some(&ns), &[format!("127.0.0.1:{port}")], API_LOCATIONS)
            .expect("nginx");
        ApiHost {
            nginx,
            dir: TempDir::new("apitap-data").expect("data dir"),
            ns,
            port,
        }
    }

    /// `apitap run -i lo -p PORT --data-dir DIR/data --api-token TOKEN EXTRA…` in the namespace.
    pub fn agent(&self, token: &str, extra: &[&str]) -> Agent {
        let port = self.port.to_string();
        let data = self.dir.path().join("data").display().to_string();
        let mut args = vec![
            "-i",
            "lo",
            "-p",
            &port,
            "--data-dir",
            &data,
            "--api-token",
            token,
        ];
        args.extend_from_slice(extra);
        Agent::start(Some(&self.ns), &args, LISTEN).expect("apitap run")
    }

    /// Writes `DIR/apitap.toml` with `text` after [`MACHINE_BLIND_HEALTH`] and returns its
    /// path, for `--config`.
    pub fn config(&self, text: &str) -> String {
        let path = self.dir.path().join("apitap.toml");
        std::fs::write(&path, format!("{MACHINE_BLIND_HEALTH}{text}")).expect("config");
        path.display().to_string()
    }
}

/// Health limits that only an empty disk or a full memory reaches. The disk and memory checks
/// look at the machine the tests run on, which the tests do not control: a shared CI disk with
/// less than the default 10 % free made `/health` 503 in a test about a service's error rate.
/// Tests that assert `/health` of a service or a store start their agent with these; the
/// limits themselves are tested in `agent/src/health/tests.rs`.
pub const MACHINE_BLIND_HEALTH: &str = "[health]\n\
    disk_free_warning_percent = 0\n\
    disk_free_critical_percent = 0\n\
    memory_used_warning_percent = 100\n\
    memory_used_critical_percent = 100\n";
