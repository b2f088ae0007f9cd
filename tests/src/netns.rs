//! Network namespaces joined by a veth pair, deleted on drop.

use anyhow::Result;
use std::process::Command;

use crate::run;

/// A network namespace with lo up; deleted (with its veth ends) on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Result<Self> {
        run(Command::new("ip").args(["netns", "add", name]))?;
        let ns = Netns {
            name: name.to_string(),
        };
        run(&mut ns.cmd("ip", &["link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    /// `ip netns exec <ns> <program> <args>`.
    pub fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]).args(args);
        c
    }

    /// Runs a shell command line inside the namespace.
    pub fn sh(&self, line: &str) -> Result<String> {
        let out = run(&mut self.cmd("sh", &["-c", line]))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Two namespaces, server and client, joined by a veth pair with IPv4 and IPv6 addresses:
/// server 192.0.2.1 / 2001:db8::1, client 192.0.2.2 / 2001:db8::2.
pub struct Pair {
    pub srv: Netns,
    pub cli: Netns,
    /// The veth end inside the server namespace.
    pub srv_if: String,
    pub cli_if: String,
}

pub const SRV_V4: &str = "192.0.2.1";
pub const CLI_V4: &str = "192.0.2.2";
pub const SRV_V6: &str = "2001:db8::1";
pub const CLI_V6: &str = "2001:db8::2";

impl Pair {
    pub fn new() -> Result<Self> {
        let tag = crate::unique("");
        let srv = Netns::new(&format!("at-srv-{tag}"))?;
        let cli = Netns::new(&format!("at-cli-{tag}"))?;
        let srv_if = format!("ats{tag}");
        let cli_if = format!("atc{tag}");
        run(Command::new("ip").args([
            "link", "add", &srv_if, "netns", &srv.name, "type", "veth", "peer", "name", &cli_if,
            "netns", &cli.name,
        ]))?;
        for (ns, ifname, v4, v6) in [
            (&srv, &srv_if, SRV_V4, SRV_V6),
            (&cli, &cli_if, CLI_V4, CLI_V6),
        ] {
            run(&mut ns.cmd("ip", &["addr", "add", &format!("{v4}/24"), "dev", ifname]))?;
            run(&mut ns.cmd(
                "ip",
                &[
                    "-6",
                    "addr",
                    "add",
                    &format!("{v6}/64"),
                    "dev",
                    ifname,
                    "nodad",
                ],
            ))?;
            run(&mut ns.cmd("ip", &["link", "set", ifname, "up"]))?;
        }
        Ok(Pair {
            srv,
            cli,
            srv_if,
            cli_if,
        })
    }
}
