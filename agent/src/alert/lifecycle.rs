//! inactive → pending → firing → resolved, driven by checks and the snapshot clock.
//!
//! - A breached check starts a pending alert; still breached after `for`, it fires (with
//!   `for = 0` it fires at once). Recovering while pending ends it silently.
//! - A firing alert is notified once when it fires and once when it resolves; while it keeps
//!   firing it is notified again only every `repeat_interval` (0: never). No storm.
//! - A firing alert whose check disappears (the service left the snapshot) resolves.
//! - Resolved alerts are listed for `recent` and then forgotten; a new breach is a new alert.

use std::collections::{BTreeMap, VecDeque};

use super::rules::{AlertKey, Check};

/// Resolved alerts kept for listing, at most.
const RECENT_MAX: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Firing,
    Resolved,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Firing => "firing",
            Phase::Resolved => "resolved",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub key: AlertKey,
    pub phase: Phase,
    /// When the rule was first breached (Prometheus' activeAt; Alertmanager's startsAt).
    pub active_since_ns: u64,
    pub fired_at_ns: Option<u64>,
    pub resolved_at_ns: Option<u64>,
    /// Latest value and its threshold (for a resolved alert: the value that resolved it).
    pub value: f64,
    pub threshold: f64,
    /// Last time people were told (fire or repeat).
    pub last_notified_ns: u64,
    /// Last time Alertmanager was sent this alert.
    pub last_refresh_ns: u64,
}

/// A notification the lifecycle asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Fired(Alert),
    /// Still firing after `repeat_interval`.
    Repeated(Alert),
    Resolved(Alert),
}

pub struct Lifecycle {
    for_ns: u64,
    repeat_ns: u64,
    recent_ns: u64,
    active: BTreeMap<AlertKey, Alert>,
    recent: VecDeque<Alert>,
}

impl Lifecycle {
    pub fn new(for_ns: u64, repeat_ns: u64, recent_ns: u64) -> Lifecycle {
        Lifecycle {
            for_ns,
            repeat_ns,
            recent_ns,
            active: BTreeMap::new(),
            recent: VecDeque::new(),
        }
    }

    /// Applies one round of checks taken at `now_ns`; returns what must be notified.
    pub fn step(&mut self, now_ns: u64, checks: &[Check]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for c in checks {
            seen.insert(&c.key);
            if c.breached {
                self.breached(now_ns, c, &mut events);
            } else {
                self.recovered(now_ns, &c.key, c.value, &mut events);
            }
        }
        let gone: Vec<AlertKey> = self
            .active
            .keys()
            .filter(|k| !seen.contains(k))
            .cloned()
            .collect();
        for key in gone {
            self.recovered(now_ns, &key, 0.0, &mut events);
        }
        let horizon = now_ns.saturating_sub(self.recent_ns);
        self.recent
            .retain(|a| a.resolved_at_ns.is_some_and(|t| t >= horizon));
        events
    }

    fn breached(&mut self, now: u64, c: &Check, events: &mut Vec<Event>) {
        let alert = self.active.entry(c.key.clone()).or_insert_with(|| Alert {
            key: c.key.clone(),
            phase: Phase::Pending,
            active_since_ns: now,
            fired_at_ns: None,
            resolved_at_ns: None,
            value: c.value,
            threshold: c.threshold,
            last_notified_ns: 0,
            last_refresh_ns: 0,
        });
        alert.value = c.value;
        alert.threshold = c.threshold;
        match alert.phase {
            Phase::Pending if now.saturating_sub(alert.active_since_ns) >= self.for_ns => {
                alert.phase = Phase::Firing;
                alert.fired_at_ns = Some(now);
                alert.last_notified_ns = now;
                alert.last_refresh_ns = now;
                events.push(Event::Fired(alert.clone()));
            }
            Phase::Firing
                if self.repeat_ns > 0
                    && now.saturating_sub(alert.last_notified_ns) >= self.repeat_ns =>
            {
                alert.last_notified_ns = now;
                alert.last_refresh_ns = now;
                events.push(Event::Repeated(alert.clone()));
            }
            _ => {}
        }
    }

    fn recovered(&mut self, now: u64, key: &AlertKey, value: f64, events: &mut Vec<Event>) {
        let Some(mut alert) = self.active.remove(key) else {
            return;
        };
        if alert.phase != Phase::Firing {
            return; // pending, never fired: nobody was told, nobody needs telling
        }
        alert.phase = Phase::Resolved;
        alert.resolved_at_ns = Some(now);
        alert.value = value;
        events.push(Event::Resolved(alert.clone()));
        self.recent.push_back(alert);
        while self.recent.len() > RECENT_MAX {
            self.recent.pop_front();
        }
    }

    /// Firing alerts not sent to Alertmanager for `every_ns`; marks them sent now.
    pub fn due_refresh(&mut self, now_ns: u64, every_ns: u64) -> Vec<Alert> {
        self.active
            .values_mut()
            .filter(|a| {
                a.phase == Phase::Firing && now_ns.saturating_sub(a.last_refresh_ns) >= every_ns
            })
            .map(|a| {
                a.last_refresh_ns = now_ns;
                a.clone()
            })
            .collect()
    }

    /// Pending and firing alerts, then the recently resolved ones (newest first).
    pub fn active_and_recent(&self) -> Vec<Alert> {
        self.active
            .values()
            .cloned()
            .chain(self.recent.iter().rev().cloned())
            .collect()
    }

    pub fn firing_count(&self) -> usize {
        self.active
            .values()
            .filter(|a| a.phase == Phase::Firing)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::super::rules::{RuleKind, Severity};
    use super::*;
    use rstest::rstest;

    const S: u64 = 1_000_000_000;

    fn check(breached: bool) -> Check {
        Check {
            key: AlertKey {
                kind: RuleKind::ErrorRate,
                severity: Severity::Warning,
                namespace: String::new(),
                service: "port-8080".into(),
                method: None,
                endpoint: None,
            },
            value: if breached { 0.2 } else { 0.01 },
            threshold: 0.05,
            breached,
        }
    }

    /// Runs one check per second (breached or not) and names the events by second.
    fn run(l: &mut Lifecycle, pattern: &[bool]) -> Vec<(u64, &'static str)> {
        let mut out = Vec::new();
        for (i, b) in pattern.iter().enumerate() {
            let now = 1_000 * S + i as u64 * S;
            for e in l.step(now, &[check(*b)]) {
                let name = match e {
                    Event::Fired(_) => "fired",
                    Event::Repeated(_) => "repeated",
                    Event::Resolved(_) => "resolved",
                };
                out.push((i as u64, name));
            }
        }
        out
    }

    #[rstest]
    #[case::fires_at_once_without_for(0, &[true, true, false], &[(0, "fired"), (2, "resolved")])]
    #[case::pending_for_two_seconds_then_fires(2, &[true, true, true, true], &[(2, "fired")])]
    #[case::recovering_while_pending_is_silent(2, &[true, true, false, true, false], &[])]
    #[case::fires_once_resolves_once(1, &[true, true, true, true, true, false, false], &[(1, "fired"), (5, "resolved")])]
    #[case::refires_as_a_new_alert(0, &[true, false, true], &[(0, "fired"), (1, "resolved"), (2, "fired")])]
    fn lifecycle(#[case] for_s: u64, #[case] pattern: &[bool], #[case] want: &[(u64, &str)]) {
        let mut l = Lifecycle::new(for_s * S, 0, 3_600 * S);
        assert_eq!(run(&mut l, pattern), want);
    }

    #[test]
    fn repeats_only_after_the_repeat_interval() {
        let mut l = Lifecycle::new(0, 3 * S, 3_600 * S);
        let got = run(&mut l, &[true; 8]);
        assert_eq!(got, vec![(0, "fired"), (3, "repeated"), (6, "repeated")]);
    }

    #[test]
    fn states_are_listed_and_counted() {
        let mut l = Lifecycle::new(2 * S, 0, 3_600 * S);
        l.step(10 * S, &[check(true)]);
        let listed = l.active_and_recent();
        assert_eq!(
            (listed.len(), listed[0].phase, l.firing_count()),
            (1, Phase::Pending, 0)
        );
        l.step(12 * S, &[check(true)]);
        assert_eq!(
            (l.active_and_recent()[0].phase, l.firing_count()),
            (Phase::Firing, 1)
        );
        assert_eq!(
            l.active_and_recent()[0].active_since_ns,
            10 * S,
            "startsAt is the first breach"
        );
        l.step(13 * S, &[check(false)]);
        let listed = l.active_and_recent();
        assert_eq!(
            (listed[0].phase, listed[0].resolved_at_ns, l.firing_count()),
            (Phase::Resolved, Some(13 * S), 0)
        );
    }

    #[test]
    fn resolved_alerts_are_forgotten_after_the_recent_period() {
        let mut l = Lifecycle::new(0, 0, 60 * S);
        l.step(0, &[check(true)]);
        l.step(S, &[check(false)]);
        l.step(30 * S, &[check(false)]);
        assert_eq!(l.active_and_recent().len(), 1);
        l.step(62 * S, &[check(false)]);
        assert!(l.active_and_recent().is_empty());
    }

    #[test]
    fn a_vanished_scope_resolves() {
        let mut l = Lifecycle::new(0, 0, 60 * S);
        l.step(0, &[check(true)]);
        let events = l.step(S, &[]);
        assert!(matches!(events.as_slice(), [Event::Resolved(_)]));
    }

    #[test]
    fn alertmanager_refresh_is_due_per_interval() {
        let mut l = Lifecycle::new(0, 0, 60 * S);
        l.step(0, &[check(true)]);
        assert!(l.due_refresh(30 * S, 60 * S).is_empty());
        assert_eq!(l.due_refresh(60 * S, 60 * S).len(), 1);
        assert!(l.due_refresh(61 * S, 60 * S).is_empty());
    }
}
