//! The agent under test: `apitap run` as a child process (optionally inside a namespace),
//! SIGTERM on drop.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use crate::netns::Netns;
use crate::{TempDir, run};

/// The `apitap` binary: APITAP_BIN, else built now with cargo into this test's target dir.
pub fn apitap_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("APITAP_BIN") {
            return PathBuf::from(p);
        }
        // .../target/debug/deps/<test binary> -> .../target
        let exe = std::env::current_exe().expect("test binary path");
        let target = exe
            .ancestors()
            .nth(3)
            .expect("test binary inside a target dir")
            .to_path_buf();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(crate::repo_root())
            .args(["build", "--package", "apitap", "--target-dir"])
            .arg(&target)
            .status()
            .expect("cannot run cargo to build apitap");
        assert!(
            status.success(),
            "building apitap failed; set APITAP_BIN to a built binary"
        );
        target.join("debug").join("apitap")
    })
    .clone()
}

pub struct Agent {
    child: Option<Child>,
    ns: Option<String>,
    pub listen: String,
    dir: TempDir,
}

impl Agent {
    /// Starts `apitap run <args> --listen <listen>` (inside `ns` when given) and waits until
    /// /metrics answers; fails with the agent's stderr if it exits first.
    pub fn start(ns: Option<&Netns>, args: &[&str], listen: &str) -> Result<Agent> {
        Agent::start_bin(&apitap_bin(), ns, args, listen)
    }

    /// As [`Agent::start`] with the agent binary `bin` (the bench compares two builds).
    pub fn start_bin(
        bin: &std::path::Path,
        ns: Option<&Netns>,
        args: &[&str],
        listen: &str,
    ) -> Result<Agent> {
        let dir = TempDir::new("agent")?;
        let log = std::fs::File::create(dir.path().join("stderr.log"))?;
        let bin = bin.to_str().context("binary path is not UTF-8")?;
        // Its own data dir unless the test names one: never the host's /var/lib/apitap, and
        // two agents never share an embedded store.
        let data = dir.path().join("data").display().to_string();
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        if !args.contains(&"--data-dir") {
            all.extend_from_slice(&["--data-dir", &data]);
        }
        all.extend_from_slice(&["--listen", listen]);
        let mut cmd = match ns {
            Some(ns) => ns.cmd(bin, &all),
            None => {
                let mut c = Command::new(bin);
                c.args(&all);
                c
            }
        };
        cmd.env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {cmd:?}"))?;
        let mut agent = Agent {
            child: Some(child),
            ns: ns.map(|n| n.name.clone()),
            listen: listen.to_string(),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = agent
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("apitap exited early ({status}): {}", agent.stderr());
            }
            if agent.scrape().is_ok() {
                return Ok(agent);
            }
            if Instant::now() > deadline {
                bail!(
                    "apitap did not serve /metrics within 20 s: {}",
                    agent.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The agent's process id (`ip netns exec` execs into it, so this is apitap itself).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kernel run statistics `(run_cnt, run_time_ns)` of every BPF program the agent holds,
    /// from /proc/<pid>/fdinfo (needs `kernel.bpf_stats_enabled=1` to be non-zero).
    pub fn prog_stats(&self) -> Vec<(String, u64, u64)> {
        let Some(pid) = self.pid() else {
            return Vec::new();
        };
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in dir.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            let field = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.trim().to_string())
            };
            if let (Some(tag), Some(cnt), Some(ns)) =
                (field("prog_tag:"), field("run_cnt:"), field("run_time_ns:"))
            {
                out.push((tag, cnt.parse().unwrap_or(0), ns.parse().unwrap_or(0)));
            }
        }
        out
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    fn curl(&self, url: &str) -> Command {
        let args = ["-sf", "--max-time", "5", url];
        match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "curl"]).args(args);
                c
            }
            None => {
                let mut c = Command::new("curl");
                c.args(args);
                c
            }
        }
    }

    /// GET `path` on the agent's endpoint with an optional bearer token: (HTTP status, body).
    pub fn get(&self, path: &str, token: Option<&str>) -> Result<(u16, String)> {
        let url = format!("http://{}{path}", self.listen);
        let mut args = vec![
            "-s".to_string(),
            "--max-time".into(),
            "5".into(),
            "-w".into(),
            "\n%{http_code}".into(),
        ];
        if let Some(t) = token {
            args.push("-H".into());
            args.push(format!("Authorization: Bearer {t}"));
        }
        args.push(url);
        let mut c = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "curl"]);
                c
            }
            None => Command::new("curl"),
        };
        let out = c.args(&args).output().context("cannot run curl")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').context("curl printed no status")?;
        Ok((code.trim().parse()?, body.to_string()))
    }

    /// GET /metrics, parsed.
    pub fn scrape(&self) -> Result<Metrics> {
        let out = run(&mut self.curl(&format!("http://{}/metrics", self.listen)))?;
        Ok(Metrics::parse(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Scrapes until `done` holds (the reader drains on a timer) or `timeout` passes; returns
    /// the last scrape either way.
    pub fn scrape_until(
        &self,
        timeout: Duration,
        done: impl Fn(&Metrics) -> bool,
    ) -> Result<Metrics> {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.scrape()?;
            if done(&m) || Instant::now() > deadline {
                return Ok(m);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then waits up to 10 s (SIGKILL after that).
    pub fn terminate(&mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("agent already stopped");
        };
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "apitap did not exit within 10 s of SIGTERM: {}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Agent {
    /// SIGKILL, as the OOM killer would: the agent gets no chance to detach anything.
    pub fn sigkill(&mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("agent already stopped");
        };
        child.kill().context("SIGKILL")?;
        Ok(child.wait()?)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.terminate();
        }
    }
}
