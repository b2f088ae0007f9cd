use super::model::*;
use super::*;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rstest::rstest;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn sample() -> Panes {
    Panes {
        services: Services {
            services: vec![ServiceRow {
                service: "nginx".into(),
                requests: 1234,
                error_rate_5m: 0.25,
                p95_5m_ms: 1.5,
                ..Default::default()
            }],
            ..Default::default()
        },
        series: Series {
            end_s: 100,
            services: vec![ServiceSeries {
                service: "nginx".into(),
                requests: vec![5; 900],
                errors: vec![0; 900],
                p95_ms: vec![None; 900],
                ..Default::default()
            }],
        },
        endpoints: Endpoints {
            timestamp: "2026-11-25T05:52:01.000000Z".into(),
            endpoints: vec![EndpointRow {
                service: "nginx".into(),
                method: "GET".into(),
                endpoint: "/api/users/{id}".into(),
                count: 1234,
                error_rate: 0.0,
                p95_latency_ms: 0.4,
                ..Default::default()
            }],
        },
        clients: Clients {
            clients: vec![ClientRow {
                client: "127.0.0.1".into(),
                count: 1234,
                rate_limited: 17,
                ..Default::default()
            }],
        },
        alerts: Alerts {
            alerts: vec![AlertRow {
                name: "ApiErrorRateHigh".into(),
                severity: "critical".into(),
                state: "firing".into(),
                summary: "nginx error rate 25%".into(),
            }],
        },
        capture: Capture {
            interfaces: vec!["lo".into()],
            programs_attached: 1,
            events_lost: 3,
            ..Default::default()
        },
    }
}

fn screen(state: &State) -> String {
    let mut t = Terminal::new(TestBackend::new(140, 40)).expect("test backend");
    t.draw(|f| view::draw(f, state)).expect("draw");
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

#[rstest]
fn draws_the_four_panes_with_their_numbers() {
    let state = State {
        url: "http://127.0.0.1:9464".into(),
        panes: Some(sample()),
        ..Default::default()
    };
    let text = screen(&state);
    for want in [
        "apitap top",
        "live · 2026-11-25T05:52:01",
        "nginx",
        "5.0 req/s",
        "25.0%",
        "GET",
        "/api/users/{id}",
        "1,234",
        "400µs",
        "127.0.0.1",
        "17",
        "ApiErrorRateHigh",
        "1 firing",
        "interfaces lo (1 programs)",
        "lost 3",
        "q quit",
    ] {
        assert!(text.contains(want), "{want:?} missing from\n{text}");
    }
}

#[rstest]
fn an_unreachable_agent_is_said_in_the_header() {
    let state = State {
        url: "http://127.0.0.1:9".into(),
        error: Some("agent unreachable: connection refused".into()),
        ..Default::default()
    };
    let text = screen(&state);
    assert!(
        text.contains("agent unreachable: connection refused"),
        "{text}"
    );
    assert!(text.contains("waiting for the agent"));
}

#[rstest]
fn keys_sort_filter_switch_and_quit() {
    let mut s = State {
        panes: Some(sample()),
        ..Default::default()
    };
    assert_eq!(s.on_key(key(KeyCode::Char('s'))), Action::Fetch);
    assert_eq!(s.view.endpoint_sort, EndpointSort::ErrorRate);
    assert_eq!(s.on_key(key(KeyCode::Char('c'))), Action::Fetch);
    assert_eq!(s.view.client_sort, ClientSort::RateLimited);
    assert_eq!(s.on_key(key(KeyCode::Right)), Action::Redraw);
    assert_eq!(s.view.service.as_deref(), Some("nginx"));
    s.on_key(key(KeyCode::Char('/')));
    for c in "users".chars() {
        s.on_key(key(KeyCode::Char(c)));
    }
    assert_eq!(s.view.filter, "", "applied only on Enter");
    // 'q' while typing is text, not quit.
    assert_eq!(s.on_key(key(KeyCode::Char('q'))), Action::Redraw);
    s.on_key(key(KeyCode::Backspace));
    s.on_key(key(KeyCode::Enter));
    assert_eq!(s.view.filter, "users");
    assert!(screen(&s).contains("filter \"users\""));
    assert_eq!(s.on_key(key(KeyCode::Char('q'))), Action::Quit);
    assert_eq!(
        s.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Action::Quit
    );
}

#[rstest]
fn the_token_comes_from_the_flag_else_the_data_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(resolve_token(None, dir.path()).is_err());
    std::fs::write(dir.path().join(TOKEN_FILE), "s3cret\n").expect("write");
    assert_eq!(resolve_token(None, dir.path()).expect("file"), "s3cret");
    assert_eq!(
        resolve_token(Some("flag"), dir.path()).expect("flag"),
        "flag"
    );
    std::fs::write(dir.path().join(TOKEN_FILE), "\n").expect("write");
    let err = resolve_token(None, dir.path()).expect_err("empty file");
    assert!(err.to_string().contains("empty"));
    assert_eq!(crate::exit::code_of(&err), crate::exit::CONFIG);
}

#[rstest]
#[case(0, "0")]
#[case(999, "999")]
#[case(1000, "1,000")]
#[case(1234567, "1,234,567")]
fn counts_are_grouped(#[case] n: u64, #[case] want: &str) {
    assert_eq!(view::count(n), want);
}
