//! A real nginx with its own config, temp dirs and an access log of
//! `$request_length $bytes_sent $remote_port $request_method $status $request_uri`, stopped on
//! drop.

use anyhow::{Context, Result, bail};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::netns::Netns;
use crate::{TempDir, require_tool, run};

/// Bytes of the `/big` response body: several 64 KiB GSO segments on lo.
pub const BIG_BODY_BYTES: usize = 200_000;

pub struct Nginx {
    dir: TempDir,
    ns: Option<String>,
}

/// One access log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub request_length: u64,
    pub bytes_sent: u64,
    pub remote_port: u16,
    pub method: String,
    pub status: u16,
    pub uri: String,
}

/// The default locations of [`Nginx::start`].
const DEFAULT_LOCATIONS: &str = "\
    location = / { return 200 \"hello from nginx\\n\"; }\n\
    location /big { }\n\
    location /upload/ { dav_methods PUT; client_max_body_size 1m; }\n\
    location = /status/404 { return 404 \"missing\\n\"; }\n\
    location = /status/500 { return 500 \"broken\\n\"; }\n";

/// An API: users (ids), orders, items, and one route per status the analytics care about.
pub const API_LOCATIONS: &str = "\
    location ~ ^/api/users/[0-9]+/orders$ { return 200 '[{\"id\":1}]'; }\n\
    location ~ ^/api/users/[0-9]+$ { return 200 '{\"name\":\"u\"}'; }\n\
    location = /api/orders { return 201 '{\"id\":9}'; }\n\
    location ~ ^/api/items/ { return 204; }\n\
    location = /api/cached { return 304; }\n\
    location = /api/secure { return 401 'no'; }\n\
    location = /api/admin { return 403 'no'; }\n\
    location = /api/limited { return 429 'slow down'; }\n\
    location = /api/fail { return 500 'boom'; }\n\
    location = /api/down { return 503 'down'; }\n\
    location = /api/health { return 200 'ok'; }\n";

/// How [`Nginx::start_opts`] configures nginx.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// `location` blocks of the one server.
    pub locations: &'a str,
    /// Write the access log (the tests compare with it; benchmarks turn it off).
    pub access_log: bool,
    pub worker_connections: u32,
    /// Extra directives in the `http` block (e.g. an `upstream`).
    pub http_extra: &'a str,
    /// A cgroup (v2) directory nginx and its workers start in (a pod's container).
    pub cgroup: Option<&'a std::path::Path>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            locations: DEFAULT_LOCATIONS,
            access_log: true,
            worker_connections: 1024,
            http_extra: "",
            cgroup: None,
        }
    }
}

impl Nginx {
    /// Starts nginx listening on each of `listen` (e.g. "192.0.2.1:80", "[2001:db8::1]:80"),
    /// inside `ns` when given. Locations: `/` answers a short text, `/big` a 200 kB file,
    /// `/status/404` and `/status/500`
    /// those statuses, and PUT `/upload/NAME` stores a body (so nginx reads it and counts it in
    /// `$request_length`; a `return` location would discard it uncounted).
    pub fn start(ns: Option<&Netns>, listen: &[String]) -> Result<Nginx> {
        Nginx::start_with(ns, listen, DEFAULT_LOCATIONS)
    }

    /// Starts nginx with these `location` blocks (root is the temp dir's www/, which holds
    /// `big`, a 200 kB file).
    pub fn start_with(ns: Option<&Netns>, listen: &[String], locations: &str) -> Result<Nginx> {
        Nginx::start_opts(
            ns,
            listen,
            &Options {
                locations,
                ..Options::default()
            },
        )
    }

    /// Like [`Nginx::start_with`], with nginx started inside the cgroup (v2) directory
    /// `cgroup` when given (a pod's container, as the kubelet places it).
    pub fn start_in(
        ns: Option<&Netns>,
        cgroup: Option<&std::path::Path>,
        listen: &[String],
        locations: &str,
    ) -> Result<Nginx> {
        Nginx::start_opts(
            ns,
            listen,
            &Options {
                locations,
                cgroup,
                ..Options::default()
            },
        )
    }

    /// Starts nginx with `opts`.
    pub fn start_opts(ns: Option<&Netns>, listen: &[String], opts: &Options<'_>) -> Result<Nginx> {
        require_tool("nginx", "nginx");
        let locations = opts.locations;
        let dir = TempDir::new("nginx")?;
        let d = dir.path().display().to_string();
        std::fs::create_dir_all(dir.path().join("www/upload"))?;
        std::fs::write(dir.path().join("www/big"), vec![b'x'; BIG_BODY_BYTES])?;
        let listens: String = listen
            .iter()
            .map(|l| format!("    listen {l};\n"))
            .collect();
        let conns = opts.worker_connections;
        let nofile = conns * 2 + 100;
        let access_log = if opts.access_log {
            format!("access_log {d}/access.log apitap")
        } else {
            "access_log off".to_string()
        };
        let http_extra = opts.http_extra;
        let conf = format!(
            "daemon on;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             worker_rlimit_nofile {nofile};\n\
             events {{ worker_connections {conns}; }}\n\
             http {{\n  log_format apitap '$request_length $bytes_sent $remote_port $request_method $status $request_uri';\n\
               {access_log};\n{http_extra}\n\
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
               keepalive_requests 100000;\n\
               server {{\n{listens}    root {d}/www;\n\
{locations}               }}\n}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let conf_arg = conf_path.display().to_string();
        let args = ["-c", conf_arg.as_str(), "-p", d.as_str()];
        match (ns, opts.cgroup) {
            // Joins the cgroup first (on the host: `ip netns exec` mounts a fresh /sys without
            // the cgroup hierarchies), so nginx and its workers start inside it.
            (Some(ns), Some(cg)) => {
                let line = format!(
                    "echo $$ > '{}/cgroup.procs' && exec ip netns exec '{}' nginx -c '{conf_arg}' -p '{d}'",
                    cg.display(),
                    ns.name
                );
                run(Command::new("sh").args(["-c", &line]))?
            }
            (Some(ns), None) => run(&mut ns.cmd("nginx", &args))?,
            (None, _) => run(Command::new("nginx").args(args))?,
        };
        let ngx = Nginx {
            dir,
            ns: ns.map(|n| n.name.clone()),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while ngx.pid().is_none() {
            if Instant::now() > deadline {
                bail!("nginx did not start: {}", ngx.error_log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(ngx)
    }

    /// The document root (www/ in the temp dir): files written there are served.
    pub fn www(&self) -> std::path::PathBuf {
        self.dir.path().join("www")
    }

    /// The master process id.
    pub fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.path().join("nginx.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The namespace nginx runs in, if any.
    pub fn netns(&self) -> Option<&str> {
        self.ns.as_deref()
    }

    /// Every access log line so far.
    pub fn access(&self) -> Result<Vec<Access>> {
        let path = self.dir.path().join("access.log");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() != 6 {
                    bail!("unexpected access log line {l:?}");
                }
                Ok(Access {
                    request_length: f[0].parse()?,
                    bytes_sent: f[1].parse()?,
                    remote_port: f[2].parse()?,
                    method: f[3].to_string(),
                    status: f[4].parse()?,
                    uri: f[5].to_string(),
                })
            })
            .collect()
    }

    /// (requests, sum of $request_length, sum of $bytes_sent).
    pub fn totals(&self) -> Result<(usize, u64, u64)> {
        let a = self.access()?;
        Ok((
            a.len(),
            a.iter().map(|x| x.request_length).sum(),
            a.iter().map(|x| x.bytes_sent).sum(),
        ))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            // SAFETY: signalling a pid we started; SIGTERM is nginx's fast shutdown.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            // SAFETY: signal 0 only probes for existence.
            while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
