//! A terminal program under test in a private tmux server (its own socket, so nothing else
//! running on the machine is touched): send keys, read the screen. Killed on drop.

use anyhow::{Result, bail};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{require_tool, run, unique};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `command` (a shell line) in a detached `width` x `height` session.
    pub fn start(command: &str, width: u16, height: u16) -> Result<Tmux> {
        require_tool("tmux", "tmux");
        let t = Tmux {
            socket: unique("apitap-tmux-"),
        };
        run(t.cmd().args([
            "new-session",
            "-d",
            "-s",
            "test",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            command,
        ]))?;
        Ok(t)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// tmux key names (`q`, `Right`, `Enter` …).
    pub fn send_keys(&self, keys: &[&str]) -> Result<()> {
        run(self.cmd().args(["send-keys", "-t", "test"]).args(keys))?;
        Ok(())
    }

    /// The visible screen as text.
    pub fn screen(&self) -> Result<String> {
        let out = run(self.cmd().args(["capture-pane", "-p", "-t", "test"]))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Reads the screen until `done` holds; fails with the last screen after `timeout`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen()?;
            if done(&screen) {
                return Ok(screen);
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the session still exists (its program has not exited).
    pub fn alive(&self) -> bool {
        self.cmd()
            .args(["has-session", "-t", "test"])
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}
