//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: commands on fd 3, answers on fd 4, each a JSON text ending in
//! NUL), so it works inside a network namespace with no port to reach. Killed on drop.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::netns::Netns;
use crate::{TempDir, require_tool};

/// Flags that work on these machines (no GPU, no sandbox as root, no network beyond the test).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-pipe",
];

/// How long one protocol command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Chromium {
    child: Child,
    commands: File,
    answers: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
    _profile: TempDir,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        bail!("pipe2: {}", std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just opened and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl Chromium {
    /// Starts chromium (inside `ns` when given) with a fresh profile and one blank page of
    /// `width` x `height` CSS pixels, attached.
    pub fn start(ns: Option<&Netns>, width: u32, height: u32) -> Result<Chromium> {
        require_tool("chromium", "chromium");
        let profile = TempDir::new("chromium")?;
        let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={width},{height}"));
        args.push("about:blank".into());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = match ns {
            Some(ns) => ns.cmd("chromium", &argv),
            None => {
                let mut c = std::process::Command::new("chromium");
                c.args(&argv);
                c
            }
        };
        let (to_chrome_r, to_chrome_w) = pipe()?;
        let (from_chrome_r, from_chrome_w) = pipe()?;
        let (r3, w4) = (to_chrome_r.as_raw_fd(), from_chrome_w.as_raw_fd());
        let log = File::create(profile.path().join("stderr.log"))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        // SAFETY: only async-signal-safe calls (fcntl, dup2, close) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Through fds >= 10 first: a pipe end that already is fd 3 or 4 would make dup2
                // a no-op that keeps O_CLOEXEC (chromium would start without its pipe), and
                // one at the other's target would be overwritten before it is moved.
                let (r, w) = (
                    libc::fcntl(r3, libc::F_DUPFD, 10),
                    libc::fcntl(w4, libc::F_DUPFD, 10),
                );
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(r);
                libc::close(w);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {cmd:?}"))?;
        drop(to_chrome_r);
        drop(from_chrome_w);
        let (tx, answers) = mpsc::channel();
        let reader = File::from(from_chrome_r);
        std::thread::spawn(move || {
            let mut r = BufReader::new(reader);
            let mut buf = Vec::new();
            while let Ok(n) = r.read_until(0, &mut buf) {
                if n == 0 {
                    return;
                }
                buf.pop_if(|b| *b == 0);
                if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                    && tx.send(v).is_err()
                {
                    return;
                }
                buf.clear();
            }
        });
        let mut c = Chromium {
            child,
            commands: File::from(to_chrome_w),
            answers,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = match c.browser("Target.createTarget", json!({"url": "about:blank"})) {
            Ok(t) => t,
            Err(e) => {
                let log = std::fs::read_to_string(c._profile.path().join("stderr.log"))
                    .unwrap_or_default();
                let status = c.child.try_wait().ok().flatten();
                return Err(e.context(format!(
                    "chromium did not answer on its DevTools pipe (exit: {status:?}; stderr: {})",
                    log.trim()
                )));
            }
        };
        let target_id = target["targetId"]
            .as_str()
            .context("no targetId")?
            .to_string();
        let attached = c.browser(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        c.session = attached["sessionId"]
            .as_str()
            .context("no sessionId")?
            .to_string();
        c.call("Page.enable", json!({}))?;
        c.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        Ok(c)
    }

    fn send(&mut self, session: Option<String>, method: &str, params: Value) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg)?;
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .with_context(|| format!("{method}: chromium's pipe is closed"))?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self
                .answers
                .recv_timeout(left)
                .with_context(|| format!("{method}: no answer from chromium"))?;
            if v["id"].as_u64() != Some(id) {
                continue; // an event, or an answer to an earlier command
            }
            if let Some(err) = v.get("error") {
                bail!("{method}: {err}");
            }
            return Ok(v["result"].clone());
        }
    }

    /// A command to the browser itself.
    fn browser(&mut self, method: &str, params: Value) -> Result<Value> {
        self.send(None, method, params)
    }

    /// A command to the attached page.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let session = self.session.clone();
        self.send(Some(session), method, params)
    }

    pub fn navigate(&mut self, url: &str) -> Result<()> {
        let r = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(e) = r.get("errorText").and_then(Value::as_str) {
            bail!("navigating to {url}: {e}");
        }
        Ok(())
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    pub fn eval(&mut self, expression: &str) -> Result<Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            bail!("{expression}: {e}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// Evaluates `expression` until it is truthy; fails with `what` after `timeout`.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration, what: &str) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            // An exception (the page still loading) counts as not yet.
            let (v, error) = match self.eval(expression) {
                Ok(v) => (v, None),
                Err(e) => (Value::Null, Some(e)),
            };
            let truthy = !(v.is_null()
                || v == json!(false)
                || v == json!(0)
                || v == json!("")
                || v.as_array().is_some_and(Vec::is_empty));
            if truthy {
                return Ok(v);
            }
            if Instant::now() > deadline {
                let last = error.map_or(format!("last value {v}"), |e| format!("{e:#}"));
                bail!("timed out after {timeout:?} waiting for {what} ({expression}): {last}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Types `text` into the focused element as a person would (input events), then Enter.
    pub fn type_and_enter(&mut self, text: &str) -> Result<()> {
        self.call("Input.insertText", json!({"text": text}))?;
        for kind in ["keyDown", "keyUp"] {
            let mut p = json!({"type": kind, "key": "Enter", "code": "Enter",
                               "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13});
            if kind == "keyDown" {
                p["text"] = json!("\r");
            }
            self.call("Input.dispatchKeyEvent", p)?;
        }
        Ok(())
    }

    /// A PNG of the whole page, written to `path`.
    pub fn screenshot(&mut self, path: &Path) -> Result<()> {
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        )?;
        let data = r["data"].as_str().context("no screenshot data")?;
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD.decode(data)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("cannot write {}", path.display()))
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.browser("Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
