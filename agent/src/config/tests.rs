use super::*;
use rstest::rstest;
use std::path::Path;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(Path::new("/etc/apitap.toml"), text)
}

fn error_line(text: &str) -> String {
    parse(text)
        .expect_err("the config must be refused")
        .to_string()
}

#[rstest]
#[case::unknown_top_level_key(
    "listen = \"127.0.0.1:1\"\nsnaplen = 3\n",
    "/etc/apitap.toml:2: unknown field `snaplen`"
)]
#[case::unknown_key_in_a_section(
    "[store]\nflush_interval_ms = 100\n\n[health]\ndisk_warn = 1\n",
    "/etc/apitap.toml:5: unknown field `disk_warn`"
)]
#[case::unknown_section("[stores]\nx = 1\n", "/etc/apitap.toml:1: unknown field `stores`")]
#[case::wrong_type(
    "ports = [80]\n[store]\nmax_pending = \"many\"\n",
    "/etc/apitap.toml:3: invalid type: string \"many\""
)]
#[case::bad_socket_address(
    "\n\nlisten = \"nowhere\"\n",
    "/etc/apitap.toml:3: invalid socket address syntax"
)]
#[case::syntax_error("ports = [80,\n\nsnap_len = \n", "/etc/apitap.toml:")]
#[case::value_out_of_range(
    "[engine]\n\n[store]\n# fast\nflush_interval_ms = 0\n",
    "/etc/apitap.toml:5: store.flush_interval_ms: must be 10-3600000"
)]
#[case::port_zero_in_a_list("ports = [80, 0]\n", "/etc/apitap.toml:1: ports.1: invalid port 0")]
#[case::bad_snap_len(
    "snap_len = 0\n",
    "/etc/apitap.toml:1: snap_len: invalid snap length 0"
)]
#[case::endpoint_override_out_of_order(
    "[[alerts.endpoints]]\nendpoint = \"/a\"\n\n[[alerts.endpoints]]\nendpoint = \"/b\"\nrpm_warning = 5000\n",
    "/etc/apitap.toml:4: alerts.endpoints.1.rpm_critical: the critical threshold is below the warning one"
)]
#[case::threshold_order(
    "[alerts]\nerror_rate_warning = 0.5\nerror_rate_critical = 0.2\n",
    "/etc/apitap.toml:3: alerts.error_rate_critical"
)]
#[case::disk_thresholds(
    "[health]\ndisk_free_critical_percent = 50\n",
    "/etc/apitap.toml:2: health.disk_free_critical_percent"
)]
#[case::redis_scheme(
    "redis_url = \"http://localhost\"\n",
    "/etc/apitap.toml:1: redis_url: expected a redis://"
)]
#[case::tls_config_without_rediss(
    "redis_url = \"redis://127.0.0.1/\"\n[store.tls_config]\ninsecure_skip_verify = true\n",
    "/etc/apitap.toml:2: store.tls_config: applies to a rediss:// redis_url only"
)]
#[case::missing_ca_file(
    "redis_url = \"rediss://127.0.0.1/\"\n[store.tls_config]\nca_file = \"/nonexistent/ca.pem\"\n",
    "/etc/apitap.toml:2: store.tls_config: cannot read /nonexistent/ca.pem"
)]
#[case::client_cert_without_key(
    "[alerts]\nalertmanager_url = \"https://127.0.0.1:9093\"\n[alerts.tls_config]\ncert_file = \"/etc/c.pem\"\n",
    "/etc/apitap.toml:3: alerts.tls_config: cert_file and key_file go together"
)]
#[case::unknown_tls_key(
    "[alerts.tls_config]\nca = \"x\"\n",
    "/etc/apitap.toml:2: unknown field `ca`"
)]
#[case::smtp_password_in_clear(
    "[alerts.smtp]\nserver = \"h\"\nfrom = \"a@b\"\nto = [\"c@d\"]\ntls = \"none\"\nusername = \"u\"\n",
    "/etc/apitap.toml:5: alerts.smtp.tls: a username and password are only sent inside TLS"
)]
#[case::trusted_proxy_not_a_cidr(
    "[clients]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.local\"]\n",
    "/etc/apitap.toml:2: clients.trusted_proxies.1: invalid CIDR \"proxy.local\""
)]
#[case::log_level_typo(
    "log_level = \"debg\"\n",
    "/etc/apitap.toml:1: log_level: invalid log level \"debg\""
)]
#[case::attach_mode("attach_mode = \"tc\"\n", "/etc/apitap.toml:1: unknown variant `tc`")]
fn refuses_a_bad_file_naming_file_and_line(#[case] text: &str, #[case] want_prefix: &str) {
    let got = error_line(text);
    assert!(
        got.starts_with(want_prefix),
        "got {got:?}, want prefix {want_prefix:?}"
    );
    assert!(!got.contains('\n'), "one line: {got:?}");
}

#[test]
fn empty_file_is_the_defaults() {
    assert_eq!(parse("").expect("empty is valid"), Config::default());
}

#[test]
fn defaults_follow_the_spec() {
    let c = Config::default();
    assert_eq!(c.listen.to_string(), "127.0.0.1:9464");
    assert_eq!(c.clients.header, "x-api-key");
    assert_eq!(c.store.flush_interval_ms, 1_000);
    assert_eq!(c.store.max_pending, 100_000);
    let t = c.alerts.thresholds();
    assert_eq!((t.error_rate_warning, t.error_rate_critical), (0.05, 0.10));
    assert_eq!((t.p95_warning_ms, t.p95_critical_ms), (1_000, 5_000));
    assert_eq!((t.rpm_warning, t.rpm_critical), (1_000, 2_000));
    assert_eq!(c.health.disk_free_warning_percent, 20.0);
    assert_eq!(c.health.memory_used_critical_percent, 90.0);
    assert!(c.validate().is_ok());
}

#[test]
fn endpoint_rule_inherits_unset_thresholds() {
    let c = parse("[alerts]\np95_warning_ms = 200\n[[alerts.endpoints]]\nendpoint = \"/x\"\nrpm_warning = 10\n")
        .expect("valid");
    let t = c.alerts.endpoints[0].apply(&c.alerts.thresholds());
    assert_eq!(
        (t.p95_warning_ms, t.rpm_warning, t.rpm_critical),
        (200, 10, 2_000)
    );
}

#[test]
fn example_config_parses_to_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/apitap.example.toml");
    let cfg = Config::from_file(&path).expect("the shipped example is valid");
    assert_eq!(cfg, Config::default());
}

#[test]
fn example_config_documents_every_section() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/apitap.example.toml");
    let text = std::fs::read_to_string(path).expect("example exists");
    for section in [
        "[routes]",
        "[clients]",
        "[redact]",
        "[engine]",
        "[store]",
        "[alerts]",
        "[[alerts.endpoints]]",
        "[health]",
        "[discovery]",
        "[kubernetes]",
        "[[services]]",
    ] {
        assert!(text.contains(section), "{section} is documented");
    }
}

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut file, text.as_bytes()).expect("write");
    file
}

#[test]
fn flag_beats_file_and_file_beats_default() {
    let file = file_with("snap_len = 512\nring_bytes = 131072\n");
    let args = RunArgs {
        config: Some(file.path().to_path_buf()),
        snap_len: Some(1024),
        redis_url: Some("redis://127.0.0.1:6379".into()),
        ..RunArgs::default()
    };
    let cfg = Config::from_run_args(&args).expect("valid");
    assert_eq!(cfg.snap_len, 1024);
    assert_eq!(cfg.ring_bytes, 131072);
    assert_eq!(cfg.redis_url.as_deref(), Some("redis://127.0.0.1:6379"));
    assert_eq!(cfg.log_format, "text");
}

#[test]
fn stack_stamps_are_on_by_default_and_switch_off_from_file_or_flag() {
    assert!(Config::default().stack_stamps);
    let file = file_with("stack_stamps = false\n");
    let from_file = RunArgs {
        config: Some(file.path().to_path_buf()),
        ..RunArgs::default()
    };
    assert!(
        !Config::from_run_args(&from_file)
            .expect("valid")
            .stack_stamps
    );
    let flag_wins = RunArgs {
        stack_stamps: Some(true),
        ..from_file
    };
    assert!(
        Config::from_run_args(&flag_wins)
            .expect("valid")
            .stack_stamps
    );
}

#[test]
fn bad_flag_names_the_flag_not_the_file() {
    let file = file_with("snap_len = 512\n");
    let args = RunArgs {
        config: Some(file.path().to_path_buf()),
        snap_len: Some(0),
        ..RunArgs::default()
    };
    let err = Config::from_run_args(&args)
        .expect_err("invalid")
        .to_string();
    assert!(
        err.starts_with("invalid --snap-len (or APITAP_SNAP_LEN): snap_len: invalid snap length 0"),
        "{err}"
    );
}

#[test]
fn alert_flags_land_in_the_alerts_section() {
    let args = RunArgs {
        alert_webhook: Some("http://127.0.0.1:9/hook".into()),
        ..RunArgs::default()
    };
    let cfg = Config::from_run_args(&args).expect("valid");
    assert_eq!(
        cfg.alerts.webhook.as_deref(),
        Some("http://127.0.0.1:9/hook")
    );
}

#[test]
fn missing_file_is_one_clear_line() {
    let err = Config::from_file(Path::new("/nonexistent/apitap.toml")).expect_err("missing");
    assert!(
        err.to_string()
            .starts_with("cannot read config file /nonexistent/apitap.toml: ")
    );
}

#[test]
fn the_reorder_window_reaches_the_engine_and_its_defaults_are_the_engines() {
    let engine_default = agent_core::engine::EngineConfig::default();
    let defaults = Config::default().engine_config();
    assert_eq!(
        (
            defaults.reorder_window_packets,
            defaults.reorder_window_ns,
            defaults.reorder_max_segments
        ),
        (
            engine_default.reorder_window_packets,
            engine_default.reorder_window_ns,
            engine_default.reorder_max_segments
        )
    );
    let cfg = parse(
        "[engine]\nreorder_window_packets = 64\nreorder_window_ms = 50\nreorder_max_segments = 9\n",
    )
    .expect("valid");
    let e = cfg.engine_config();
    assert_eq!(
        (
            e.reorder_window_packets,
            e.reorder_window_ns,
            e.reorder_max_segments
        ),
        (64, 50_000_000, 9)
    );
    assert!(
        error_line("[engine]\nreorder_max_segments = 0\n")
            .contains("engine.reorder_max_segments: must be at least 1")
    );
}

#[test]
fn http2_bounds_reach_the_engine_and_their_defaults_are_the_engines() {
    let engine_default = agent_core::engine::EngineConfig::default();
    assert_eq!(Config::default().engine_config().h2, engine_default.h2);
    let cfg = parse(
        "[engine]\nh2_max_streams = 32\nh2_max_header_block_bytes = 8192\nh2_max_table_bytes = 4096\n",
    )
    .expect("valid");
    let h2 = cfg.engine_config().h2;
    assert_eq!(
        (
            h2.max_streams,
            h2.max_header_block_bytes,
            h2.max_table_bytes
        ),
        (32, 8192, 4096)
    );
    for (toml, message) in [
        (
            "h2_max_streams = 0",
            "engine.h2_max_streams: must be 1-65536",
        ),
        (
            "h2_max_header_block_bytes = 10",
            "engine.h2_max_header_block_bytes: must be 1024 to engine.flow_budget_bytes",
        ),
        (
            "h2_max_table_bytes = 100",
            "engine.h2_max_table_bytes: must be 4096-1048576",
        ),
    ] {
        let line = error_line(&format!("[engine]\n{toml}\n"));
        assert!(line.contains(message), "{toml}: {line}");
    }
}

#[test]
fn service_rules_and_discovery_settings_are_validated_with_their_key() {
    let file = file_with("[discovery]\ninterval_ms = 50\n");
    let err = Config::from_file(file.path()).expect_err("too short an interval");
    assert!(
        err.to_string()
            .ends_with(":2: discovery.interval_ms: must be 100-60000"),
        "{err}"
    );
    for (toml, message) in [
        (
            "settle_secs = 3601",
            "discovery.settle_secs: must be 0-3600",
        ),
        (
            "refresh_secs = 5",
            "discovery.refresh_secs: must be 10-86400",
        ),
    ] {
        let file = file_with(&format!("[discovery]\n{toml}\n"));
        let err = Config::from_file(file.path()).expect_err(toml);
        assert!(err.to_string().ends_with(message), "{err}");
    }
    let file = file_with("[[services]]\nname = \"x\"\n\n[[services]]\nport = 80\n");
    let err = Config::from_file(file.path()).expect_err("a rule without matcher");
    assert!(
        err.to_string()
            .contains(":1: services.0.namespace: a rule needs"),
        "{err}"
    );
}
