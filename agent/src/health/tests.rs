use super::*;
use agent_core::aggregate::snapshot::ServiceStats;
use rstest::rstest;

#[rstest]
#[case::below_warning(0.01, Status::Healthy)]
#[case::at_warning(0.05, Status::Warning)]
#[case::at_critical(0.10, Status::Critical)]
#[case::above_critical(0.5, Status::Critical)]
fn rising_thresholds_grade_values(#[case] value: f64, #[case] want: Status) {
    assert_eq!(rising(value, 0.05, 0.10), want);
}

#[rstest]
#[case::healthy(Status::Healthy, true)]
#[case::warning(Status::Warning, true)]
#[case::critical(Status::Critical, false)]
#[case::unhealthy(Status::Unhealthy, false)]
fn only_healthy_and_warning_are_serving(#[case] status: Status, #[case] serving: bool) {
    assert_eq!(status.is_serving(), serving);
}

fn service(error_rate: f64, p95_s: f64) -> ServiceStats {
    ServiceStats {
        service: "port-8080".into(),
        error_rate_5m: error_rate,
        p95_5m_s: p95_s,
        ..ServiceStats::default()
    }
}

#[rstest]
#[case::quiet_service(0.0, 0.0, Status::Healthy)]
#[case::errors_warn(0.06, 0.1, Status::Warning)]
#[case::errors_critical(0.2, 0.1, Status::Critical)]
#[case::slow_warns(0.0, 1.5, Status::Warning)]
#[case::very_slow_is_critical(0.0, 6.0, Status::Critical)]
fn service_check_compares_with_alert_thresholds(
    #[case] rate: f64,
    #[case] p95_s: f64,
    #[case] want: Status,
) {
    let (status, value) = services::check(&service(rate, p95_s), &Thresholds::default());
    assert_eq!(status, want);
    assert_eq!(
        value["status"],
        serde_json::to_value(want).expect("serializes")
    );
}

#[test]
fn capture_not_attached_is_unhealthy_and_losses_warn() {
    let c = CaptureHealth::new();
    assert_eq!(capture::check(&c).0, Status::Unhealthy);
    c.set_ready(true);
    c.set_programs_attached(2);
    assert!(c.is_ready());
    assert_eq!(capture::check(&c).0, Status::Healthy);
    c.set_events_lost(7);
    let (status, value) = capture::check(&c);
    assert_eq!(status, Status::Warning);
    assert_eq!(value["events_lost"], 7);
}

#[test]
fn disk_and_memory_checks_report_figures() {
    let limits = HealthConfig::default();
    let (_, disk) = system::disk_check(Path::new("/tmp/does/not/exist/yet"), &limits);
    assert!(
        disk["free_percent"]
            .as_f64()
            .is_some_and(|p| (0.0..=100.0).contains(&p)),
        "{disk}"
    );
    let (_, memory) = SystemProbe::new().memory_check(&limits);
    assert!(
        memory["used_percent"]
            .as_f64()
            .is_some_and(|p| (0.0..=100.0).contains(&p)),
        "{memory}"
    );
}

#[rstest]
#[case::plenty_free(0.0, 0.0, Status::Healthy)]
#[case::free_space_below_warning(100.0, 0.0, Status::Warning)]
#[case::free_space_below_critical(100.0, 100.0, Status::Critical)]
fn disk_thresholds_apply(#[case] warn_free: f64, #[case] crit_free: f64, #[case] want: Status) {
    let limits = HealthConfig {
        disk_free_warning_percent: warn_free,
        disk_free_critical_percent: crit_free,
        ..HealthConfig::default()
    };
    // /tmp is neither full nor completely empty on any test machine.
    let (status, _) = system::disk_check(Path::new("/tmp"), &limits);
    assert_eq!(status, want);
}

use std::path::Path;
