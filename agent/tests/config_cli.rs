//! `apitap run` refuses a bad configuration with one line naming the file and line (or the flag),
//! a non-zero exit and no panic, before touching the kernel (no root needed).

use std::io::Write;
use std::process::Command;

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apitap"));
    cmd.arg("run").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run apitap");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(text.as_bytes()).expect("write");
    file
}

fn assert_one_line(stderr: &str, want_prefix: &str) {
    assert!(
        stderr.starts_with(want_prefix),
        "stderr {stderr:?} should start with {want_prefix:?}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn unknown_key_names_file_and_line() {
    let file = config("listen = \"127.0.0.1:9464\"\n\n[store]\nflush_every = 3\n");
    let path = file.path().display().to_string();
    let (code, stderr) = run(&["-c", &path], &[]);
    assert_eq!(code, 78, "a configuration error exits 78 (EX_CONFIG)");
    assert_one_line(
        &stderr,
        &format!("apitap: {path}:4: unknown field `flush_every`"),
    );
}

#[test]
fn invalid_value_names_file_line_and_key() {
    let file =
        config("[health]\nmemory_used_warning_percent = 95\nmemory_used_critical_percent = 90\n");
    let path = file.path().display().to_string();
    let (code, stderr) = run(&["--config", &path], &[]);
    assert_eq!(code, 78, "a configuration error exits 78 (EX_CONFIG)");
    assert_one_line(
        &stderr,
        &format!("apitap: {path}:3: health.memory_used_critical_percent: "),
    );
}

#[test]
fn invalid_environment_value_names_the_flag() {
    let (code, stderr) = run(&[], &[("APITAP_SNAP_LEN", "0")]);
    assert_eq!(code, 78, "a configuration error exits 78 (EX_CONFIG)");
    assert_one_line(
        &stderr,
        "apitap: invalid --snap-len (or APITAP_SNAP_LEN): snap_len: invalid snap length 0",
    );
}

#[test]
fn missing_config_file_is_one_line() {
    let (code, stderr) = run(&["-c", "/nonexistent/apitap.toml"], &[]);
    assert_eq!(code, 78, "a configuration error exits 78 (EX_CONFIG)");
    assert_one_line(
        &stderr,
        "apitap: cannot read config file /nonexistent/apitap.toml: ",
    );
}
