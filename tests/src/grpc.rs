//! The real gRPC server and client of `tests/h2/grpc_app.py` (Python grpcio), run inside a
//! namespace; the server is stopped on drop.

use anyhow::{Context, Result, bail};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::netns::Netns;
use crate::{TempDir, repo_root};

fn app() -> String {
    repo_root()
        .join("tests/h2/grpc_app.py")
        .display()
        .to_string()
}

/// Fails loudly when Python's grpcio is missing.
pub fn require_grpcio() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import grpc"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 grpcio is not installed: pip install grpcio (cargo xtask prereqs)"
    );
}

pub struct GrpcServer {
    child: Option<Child>,
    dir: TempDir,
}

/// One finished call as the server logged it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub port: u16,
    pub path: String,
    pub code: String,
}

impl GrpcServer {
    /// Starts the server on `listen` ("192.0.2.1:50051") inside `ns`.
    pub fn start(ns: &Netns, listen: &str) -> Result<GrpcServer> {
        require_grpcio();
        let dir = TempDir::new("grpc")?;
        let log = dir.path().join("calls.log").display().to_string();
        let out = std::fs::File::create(dir.path().join("server.out"))?;
        let app = app();
        let child = ns
            .cmd(
                "python3",
                &[&app, "server", "--listen", listen, "--log", &log],
            )
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start grpc_app.py server")?;
        let srv = GrpcServer {
            child: Some(child),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !srv.output().contains("listening") {
            if Instant::now() > deadline {
                bail!("gRPC server did not start: {}", srv.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(srv)
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.out")).unwrap_or_default()
    }

    /// Every call the server finished so far.
    pub fn calls(&self) -> Vec<Call> {
        let text = std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                Call {
                    port: f[0].parse().unwrap_or(0),
                    path: f[1].to_string(),
                    code: f[2].to_string(),
                }
            })
            .collect()
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child (`ip netns exec` execs into python).
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the client plan `rounds` times on one channel to `target` from `ns`; returns its
/// results, one `<path> <CODE>` per call.
pub fn run_client(ns: &Netns, target: &str, rounds: u32, pause_ms: u32) -> Result<Vec<String>> {
    let dir = TempDir::new("grpc-client")?;
    let log = dir.path().join("results.log").display().to_string();
    let (r, p) = (rounds.to_string(), pause_ms.to_string());
    let app = app();
    let args = [
        app.as_str(),
        "client",
        "--target",
        target,
        "--log",
        &log,
        "--rounds",
        &r,
        "--pause-ms",
        &p,
    ];
    crate::run(&mut ns.cmd("timeout", &[&["120", "python3"][..], &args[..]].concat()))?;
    Ok(std::fs::read_to_string(&log)?
        .lines()
        .map(str::to_string)
        .collect())
}
