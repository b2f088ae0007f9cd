//! The exit-code table of the `apitap` binary (see `apitap::exit`): 0 success, 1 a failure at
//! run time, 78 (EX_CONFIG) a configuration or usage error, so that systemd's
//! `RestartPreventExitStatus=78` stops a unit with a bad config instead of restarting it.
//! Every failure is one line on stderr, never a panic.

use std::io::Write;
use std::process::Command;

fn apitap(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_apitap"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run apitap");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn file(text: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text).expect("write");
    f
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// (what, arguments, exit code, start of the one stderr line)
fn table(bad_toml: &str, garbage: &str) -> Vec<(&'static str, Vec<String>, i32, String)> {
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        (
            "no subcommand",
            s(&[]),
            78,
            "apitap: a subcommand is required".into(),
        ),
        (
            "unknown flag",
            s(&["run", "--bogus"]),
            78,
            "apitap: unexpected argument '--bogus' found".into(),
        ),
        (
            "value clap refuses",
            s(&["run", "--attach-mode", "tc"]),
            78,
            "apitap: invalid value 'tc' for '--attach-mode".into(),
        ),
        (
            "invalid flag value",
            s(&["run", "--snap-len", "0"]),
            78,
            "apitap: invalid --snap-len".into(),
        ),
        (
            "invalid log level",
            s(&["run", "--log-level", "debg"]),
            78,
            "apitap: invalid --log-level".into(),
        ),
        (
            "missing config file",
            s(&["run", "-c", "/nonexistent/apitap.toml"]),
            78,
            "apitap: cannot read config file /nonexistent/apitap.toml".into(),
        ),
        (
            "unknown key in the config file",
            s(&["run", "-c", bad_toml]),
            78,
            format!("apitap: {bad_toml}:2: unknown field `snaplen`"),
        ),
        (
            "unknown interface",
            s(&[
                "run",
                "-i",
                "nosuch0",
                "-p",
                "80",
                "--listen",
                "127.0.0.1:0",
            ]),
            78,
            if is_root() {
                "apitap: unknown interface nosuch0".into()
            } else {
                "apitap: missing privileges".into()
            },
        ),
        (
            "replay of a missing file",
            s(&["replay", "/nonexistent/x.pcap"]),
            78,
            "apitap: cannot open /nonexistent/x.pcap".into(),
        ),
        (
            "replay of a file that is not a capture: a failure at run time",
            s(&["replay", garbage]),
            1,
            "apitap: ".into(),
        ),
        (
            "check with a bad flag",
            s(&["check", "--attach-mode", "bogus"]),
            78,
            "apitap: invalid value 'bogus'".into(),
        ),
    ]
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    for args in [&["--help"][..], &["--version"], &["run", "--help"]] {
        let (code, stdout, stderr) = apitap(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(!stdout.is_empty() && stderr.is_empty(), "{args:?}");
    }
    let (_, stdout, _) = apitap(&["run", "--help"]);
    assert!(stdout.contains("--log-level") && stdout.contains("--attach-mode"));
}

#[test]
fn every_refusal_has_its_exit_code_and_one_line() {
    let bad = file(b"listen = \"127.0.0.1:9464\"\nsnaplen = 3\n");
    let bad = bad.path().display().to_string();
    let garbage = file(b"this is not a pcap file at all, just text\n");
    let garbage = garbage.path().display().to_string();
    for (what, args, want_code, want_line) in table(&bad, &garbage) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, stderr) = apitap(&args);
        assert_eq!(code, want_code, "{what}: {args:?} -> {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{what}: one line: {stderr:?}"
        );
        assert!(
            stderr.starts_with(&want_line),
            "{what}: {stderr:?} should start with {want_line:?}"
        );
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }
}

#[test]
fn a_failure_at_run_time_exits_1_not_78() {
    // The listen address is taken: nothing in the configuration is wrong, the machine is busy.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().display().to_string();
    let (code, _, stderr) = apitap(&[
        "run",
        "-i",
        "lo",
        "-p",
        "80",
        "--listen",
        &addr,
        "--data-dir",
        &data,
    ]);
    if is_root() {
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!("apitap: cannot listen on {addr}")),
            "{stderr}"
        );
    } else {
        // Without privileges the run is refused first, as a configuration error.
        assert_eq!(code, 78, "{stderr}");
        assert!(stderr.contains("missing privileges"), "{stderr}");
    }
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr:?}");
}
