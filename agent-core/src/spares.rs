//! Finished records kept for the next requests to start from.
//!
//! A record holds shared text (`Arc<str>`: service, client, path, user agent, route) and an
//! `Arc` of the server's attribution. Every clone and every drop of an `Arc` is an atomic
//! read-modify-write on a count other threads may touch: about ten per request, and the five
//! decrements of dropping a record alone were 4 % of the analysis thread (perf, worst case of
//! `cargo xtask bench`). So the pipeline hands its records back once they were routed,
//! aggregated and handed on ([`Spares::give_back`], through `Engine::recycle`), and a request
//! starts from one of them ([`Spares::take`]):
//! - a field that is the same as in the old record keeps the old `Arc` (no count written):
//!   the connection's service, attribution and client, compared by pointer;
//! - the old path, query and user agent come back as [`Leftovers`], and the request keeps one
//!   only when its own value is the same text ([`Leftovers::text`]);
//! - request and trace ids reuse the old strings' buffers ([`Leftovers::string`]): no
//!   allocation per request that carries them.
//!
//! Everything else is written fresh, as for a new record (`ConnMeta::transaction_sharing`),
//! and the old record is taken apart by an exhaustive pattern, so a field added to
//! [`Transaction`] does not compile until it is handled here: nothing of an old request can
//! leak into a new one. At most [`MAX_SPARES`]
//! records are kept; the rest are dropped as before.

use std::sync::Arc;

use crate::shared::{assign_arc, assign_shared};
use crate::transaction::{ConnMeta, Records, Transaction};

/// Records kept for reuse. A handful suffices: records come back after every drain, and a
/// drain finishes a few requests at a time.
pub const MAX_SPARES: usize = 32;

/// The kept records (see the module doc).
#[derive(Debug, Default)]
pub struct Spares {
    kept: Records,
}

impl Spares {
    /// A record of `meta`'s connection whose first request byte came at `start_ns`, with
    /// nothing else known yet (as [`ConnMeta::transaction`]), and what its old self held.
    /// The record is renewed in its own box.
    pub fn take(&mut self, meta: &ConnMeta, start_ns: u64) -> (Box<Transaction>, Leftovers) {
        match self.kept.pop() {
            Some(mut old) => {
                let left = renew(&mut old, meta, start_ns);
                (old, left)
            }
            None => (Box::new(meta.transaction(start_ns)), Leftovers::default()),
        }
    }

    /// `tx`, built whole (an HTTP/2 stream, a response to a request lost in a gap), in the box
    /// of a kept record when there is one: no allocation, and the old record is dropped as it
    /// would have been.
    pub fn boxed(&mut self, tx: Transaction) -> Box<Transaction> {
        match self.kept.pop() {
            Some(mut old) => {
                *old = tx;
                old
            }
            None => Box::new(tx),
        }
    }

    /// Keeps finished records (up to [`MAX_SPARES`]) and empties `done`.
    pub fn give_back(&mut self, done: &mut Records) {
        let room = MAX_SPARES.saturating_sub(self.kept.len());
        done.truncate(room);
        self.kept.append(done);
    }

    /// Records kept now.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

/// Shared text handed back from finished records, moved into a new record instead of cloned
/// when it is the very `Arc` wanted (no count written). The route stage keeps its templates
/// here: a handful of endpoints make up most traffic at any moment.
#[derive(Debug, Default, Clone)]
pub struct SpareText {
    kept: Vec<Arc<str>>,
}

/// Shared texts kept by a [`SpareText`]; a full one drops its oldest.
pub const MAX_SPARE_TEXTS: usize = 16;

impl SpareText {
    /// `wanted` itself: a kept one (latest first) when there is one, else a clone.
    pub fn share(&mut self, wanted: &Arc<str>) -> Arc<str> {
        match self.kept.iter().rposition(|k| Arc::ptr_eq(k, wanted)) {
            Some(i) => self.kept.swap_remove(i),
            None => Arc::clone(wanted),
        }
    }

    /// Keeps `text` for a later [`share`](Self::share).
    pub fn give_back(&mut self, text: Option<Arc<str>>) {
        let Some(text) = text else { return };
        if self.kept.len() == MAX_SPARE_TEXTS {
            self.kept.remove(0);
        }
        self.kept.push(text);
    }
}

/// Text an old record held that a new request may keep when its own is the same.
#[derive(Debug, Default)]
pub struct Leftovers {
    pub path: Option<Arc<str>>,
    pub query: Option<Arc<str>>,
    pub user_agent: Option<Arc<str>>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
    pub parent_span_id: Option<String>,
}

impl Leftovers {
    /// `value` as shared text: the old `Arc` when it holds the same text, else `share`'s.
    pub fn text(
        old: Option<Arc<str>>,
        value: &str,
        share: impl FnOnce(&str) -> Arc<str>,
    ) -> Arc<str> {
        match old {
            Some(old) if *old == *value => old,
            _ => share(value),
        }
    }

    /// `value` in the old string's buffer when there is one.
    pub fn string(old: Option<String>, value: &str) -> String {
        match old {
            Some(mut s) => {
                s.clear();
                s.push_str(value);
                s
            }
            None => value.to_owned(),
        }
    }
}

/// Makes `old` the fresh record of `meta`'s connection (as [`ConnMeta::transaction`]) where it
/// lies, and returns the text it held.
fn renew(old: &mut Transaction, meta: &ConnMeta, start_ns: u64) -> Leftovers {
    // Exhaustive on purpose: every field is either renewed from `meta` or handed back. The
    // test `a_renewed_record_is_a_fresh_one_of_its_connection` holds this to
    // `ConnMeta::transaction`.
    let Transaction {
        start_ns: start,
        method,
        path,
        query,
        route,
        status,
        version,
        duration_ns,
        ttfb_ns,
        request_body_size,
        response_body_size,
        request_wire_bytes,
        response_wire_bytes,
        client,
        server,
        service,
        attribution,
        user_agent,
        client_id,
        request_id,
        trace_id,
        parent_span_id,
        error,
        rpc,
    } = old;
    assign_shared(attribution, &meta.attribution);
    assign_arc(service, &meta.service);
    match client_id {
        Some(id) => assign_arc(id, &meta.client_ip),
        None => *client_id = Some(Arc::clone(&meta.client_ip)),
    }
    *start = start_ns;
    *method = None;
    *route = None;
    *status = None;
    *version = None;
    *duration_ns = None;
    *ttfb_ns = None;
    *request_body_size = None;
    *response_body_size = None;
    *request_wire_bytes = 0;
    *response_wire_bytes = 0;
    *client = Some(meta.client);
    *server = Some(meta.server);
    *error = None;
    *rpc = None;
    Leftovers {
        path: path.take(),
        query: query.take(),
        user_agent: user_agent.take(),
        request_id: request_id.take(),
        trace_id: trace_id.take(),
        parent_span_id: parent_span_id.take(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn meta(client: &str, service: &str) -> ConnMeta {
        let client: SocketAddr = client.parse().expect("address");
        ConnMeta {
            client,
            server: "10.0.0.1:80".parse().expect("address"),
            service: Arc::from(service),
            attribution: None,
            client_ip: Arc::from(client.ip().to_string()),
        }
    }

    #[test]
    fn a_renewed_record_is_a_fresh_one_of_its_connection() {
        let (a, b) = (meta("10.0.0.2:1000", "api"), meta("10.0.0.3:2000", "web"));
        let mut spares = Spares::default();
        spares.give_back(&mut vec![Box::new(a.finished_sample())]);
        let (tx, left) = spares.take(&b, 7);
        assert_eq!(*tx, b.transaction(7));
        assert_eq!(left.path.as_deref(), Some("/a"));
        assert_eq!(left.request_id.as_deref(), Some("r-1"));
        assert!(spares.is_empty());
    }

    #[test]
    fn the_same_connection_fields_keep_their_arcs() {
        let m = meta("10.0.0.2:1000", "api");
        let mut spares = Spares::default();
        spares.give_back(&mut vec![Box::new(m.finished_sample())]);
        let (tx, _) = spares.take(&m, 7);
        assert!(Arc::ptr_eq(&tx.service, &m.service));
        assert!(Arc::ptr_eq(
            tx.client_id.as_ref().expect("client"),
            &m.client_ip
        ));
        // The meta's own, the record's: nothing else holds the service.
        assert_eq!(Arc::strong_count(&m.service), 2);
    }

    #[test]
    fn leftovers_are_kept_only_for_the_same_text() {
        let old: Arc<str> = Arc::from("/a");
        let kept = Leftovers::text(Some(Arc::clone(&old)), "/a", |_| unreachable!());
        assert!(Arc::ptr_eq(&kept, &old));
        let other = Leftovers::text(Some(old), "/b", |t| Arc::from(t));
        assert_eq!(&*other, "/b");
        let mut s = String::with_capacity(64);
        s.push_str("old id");
        let ptr = s.as_ptr();
        let reused = Leftovers::string(Some(s), "new");
        assert_eq!((reused.as_str(), reused.as_ptr()), ("new", ptr));
    }

    #[test]
    fn spare_text_hands_back_the_same_arc_and_stays_bounded() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("/a"), Arc::from("/b"));
        let mut spare = SpareText::default();
        spare.give_back(Some(Arc::clone(&a)));
        assert_eq!(Arc::strong_count(&a), 2);
        let got = spare.share(&a);
        assert!(Arc::ptr_eq(&got, &a));
        // Moved out, not cloned: still two owners.
        assert_eq!(Arc::strong_count(&a), 2);
        let other = spare.share(&b);
        assert!(Arc::ptr_eq(&other, &b));
        for _ in 0..MAX_SPARE_TEXTS + 3 {
            spare.give_back(Some(Arc::clone(&b)));
        }
        assert_eq!(spare.kept.len(), MAX_SPARE_TEXTS);
    }

    #[test]
    fn at_most_max_spares_are_kept() {
        let m = meta("10.0.0.2:1000", "api");
        let mut spares = Spares::default();
        let mut done: Records = (0..MAX_SPARES + 5)
            .map(|_| Box::new(m.transaction(0)))
            .collect();
        spares.give_back(&mut done);
        assert!(done.is_empty());
        assert_eq!(spares.len(), MAX_SPARES);
        spares.give_back(&mut vec![Box::new(m.transaction(0))]);
        assert_eq!(spares.len(), MAX_SPARES);
    }

    #[test]
    fn a_record_built_whole_goes_into_a_kept_box() {
        let (a, b) = (meta("10.0.0.2:1000", "api"), meta("10.0.0.3:2000", "web"));
        let mut spares = Spares::default();
        let old = Box::new(a.finished_sample());
        let at: *const Transaction = &*old;
        spares.give_back(&mut vec![old]);
        let tx = spares.boxed(b.transaction(9));
        assert_eq!(
            (*tx == b.transaction(9), std::ptr::eq(&*tx, at)),
            (true, true)
        );
        assert!(spares.is_empty());
        // None kept: a new box.
        assert_eq!(*spares.boxed(b.transaction(3)), b.transaction(3));
    }
}
