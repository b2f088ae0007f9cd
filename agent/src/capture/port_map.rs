//! The kernel's port map: the watched server ports (from the configuration, or followed in
//! /proc/net/tcp{,6}) and the watched ports whose segments are copied in full, which the
//! analysis thread asks for through [`CopyHints`] when heads alone were not enough to frame a
//! server's messages.

use agent_common::Ports;
use agent_core::Transaction;
use aya::maps::{Array, MapData};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use tracing::{info, warn};

use super::stats::UserCounters;

struct Inner {
    map: Array<MapData, Ports>,
    watched: BTreeSet<u16>,
    copy_all: BTreeSet<u16>,
}

/// Shared by the port follower and the analysis thread; every change is one map write.
pub struct PortMap {
    inner: Mutex<Inner>,
    counters: Arc<UserCounters>,
}

impl PortMap {
    pub fn new(map: Array<MapData, Ports>, counters: Arc<UserCounters>) -> PortMap {
        PortMap {
            inner: Mutex::new(Inner {
                map,
                watched: BTreeSet::new(),
                copy_all: BTreeSet::new(),
            }),
            counters,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the watched ports equal to `want`; a port no longer watched also loses its full
    /// copy.
    pub fn set_watched(&self, want: BTreeSet<u16>) {
        let mut inner = self.lock();
        if inner.watched == want {
            return;
        }
        let copy_all: BTreeSet<u16> = inner.copy_all.intersection(&want).copied().collect();
        if write(&mut inner.map, &want, &copy_all) {
            info!(ports = ?want, "watched ports");
            inner.watched = want;
            inner.copy_all = copy_all;
            self.publish(&inner);
        }
    }

    /// Has every segment of server port `port` copied from now on.
    pub fn copy_in_full(&self, port: u16) {
        let mut inner = self.lock();
        if !inner.watched.contains(&port) || inner.copy_all.contains(&port) {
            return;
        }
        let mut copy_all = inner.copy_all.clone();
        copy_all.insert(port);
        let watched = inner.watched.clone();
        if write(&mut inner.map, &watched, &copy_all) {
            info!(
                port,
                "server port copied in full from now on (its messages need more than their heads)"
            );
            inner.copy_all = copy_all;
            self.publish(&inner);
        }
    }

    fn publish(&self, inner: &Inner) {
        self.counters
            .ports_copied_in_full
            .store(inner.copy_all.len() as u64, Relaxed);
    }
}

fn write(
    map: &mut Array<MapData, Ports>,
    watched: &BTreeSet<u16>,
    copy_all: &BTreeSet<u16>,
) -> bool {
    let mut v = Ports::default();
    for p in watched {
        v.watched.insert(*p);
    }
    for p in copy_all {
        v.copy_all.insert(*p);
    }
    match map.set(0, v, 0) {
        Ok(()) => true,
        Err(e) => {
            warn!(ports = ?watched, "cannot update the port map: {e}");
            false
        }
    }
}

/// Whether a transaction shows that heads alone do not frame its server's messages.
pub fn needs_full_copy(t: &Transaction) -> bool {
    // HTTP/2 frame headers lie anywhere in a burst.
    if t.version == Some("2") {
        return true;
    }
    // A body size is unknown without an error when chunk framing was not copied.
    t.error.is_none()
        && ((t.status.is_some() && t.response_body_size.is_none())
            || (t.method.is_some() && t.request_body_size.is_none()))
}

/// The analysis thread's view of the port map: looks at each transaction and asks for a full
/// copy of its server's port when needed (a map write the first time only).
pub struct CopyHints {
    ports: Arc<PortMap>,
    asked: Box<agent_common::PortBitmap>,
}

impl CopyHints {
    pub fn new(ports: Arc<PortMap>) -> CopyHints {
        CopyHints {
            ports,
            asked: Box::default(),
        }
    }

    pub fn observe(&mut self, t: &Transaction) {
        let Some(port) = t.server.map(|s| s.port()) else {
            return;
        };
        if self.asked.contains(port) || !needs_full_copy(t) {
            return;
        }
        self.asked.insert(port);
        self.ports.copy_in_full(port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_core::ErrorType;
    use rstest::rstest;

    fn tx() -> Transaction {
        Transaction {
            method: Some("GET".into()),
            status: Some(200),
            version: Some("1.1"),
            request_body_size: Some(0),
            response_body_size: Some(12),
            ..Transaction::default()
        }
    }

    #[rstest]
    #[case::framed_from_heads(tx(), false)]
    #[case::chunked_response_not_copied(Transaction { response_body_size: None, ..tx() }, true)]
    #[case::chunked_request_not_copied(Transaction { request_body_size: None, ..tx() }, true)]
    #[case::http2(Transaction { version: Some("2"), ..tx() }, true)]
    #[case::lost_bytes_are_not_a_reason(
        Transaction { response_body_size: None, error: Some(ErrorType::CaptureGap), ..tx() },
        false
    )]
    #[case::no_response_is_not_a_reason(
        Transaction { status: None, response_body_size: None, error: Some(ErrorType::Timeout), ..tx() },
        false
    )]
    fn full_copies_are_asked_for_what_heads_cannot_frame(
        #[case] t: Transaction,
        #[case] want: bool,
    ) {
        assert_eq!(needs_full_copy(&t), want);
    }
}
