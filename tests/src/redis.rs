//! A real redis-server inside a namespace when given, with an append-only file fsynced on every
//! write in its own temp dir (so a restart keeps what was acknowledged, like a production
//! Redis); killed on drop. `stop` and `start_again` make an outage.

use anyhow::{Context, Result, bail};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::Netns;
use crate::{TempDir, require_tool};

pub struct Redis {
    pub port: u16,
    ns: Option<String>,
    child: Option<Child>,
    dir: TempDir,
}

impl Redis {
    pub fn start(ns: Option<&Netns>, port: u16) -> Result<Redis> {
        require_tool("redis-server", "redis-server");
        require_tool("redis-cli", "redis-tools");
        let mut r = Redis {
            port,
            ns: ns.map(|n| n.name.clone()),
            child: None,
            dir: TempDir::new("redis")?,
        };
        r.spawn()?;
        Ok(r)
    }

    fn command(&self, program: &str) -> Command {
        match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, program]);
                c
            }
            None => Command::new(program),
        }
    }

    fn spawn(&mut self) -> Result<()> {
        let port = self.port.to_string();
        let child = self
            .command("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start redis-server")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self
            .cli(&["PING"])
            .map(|o| o.trim() != "PONG")
            .unwrap_or(true)
        {
            if Instant::now() > deadline {
                bail!("redis-server did not answer PING on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Stops the server (SIGKILL: acknowledged writes are already on disk).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn start_again(&mut self) -> Result<()> {
        self.spawn()
    }

    /// `redis-cli -p PORT ARGS…` standard output.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let out = self
            .command("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .context("cannot run redis-cli")?;
        if !out.status.success() {
            bail!("redis-cli {args:?} failed");
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Sum of every field of every hash whose key matches `pattern` and passes `keep`.
    pub fn sum_hashes(&self, pattern: &str, keep: impl Fn(&str) -> bool) -> Result<u64> {
        let mut total = 0;
        for key in self.cli(&["--scan", "--pattern", pattern])?.lines() {
            if !keep(key) {
                continue;
            }
            let vals = self.cli(&["HVALS", key])?;
            total += vals
                .lines()
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum::<u64>();
        }
        Ok(total)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
