//! HTTP/1.x states of connections that ended, kept for new connections to start from.

use std::collections::VecDeque;

use super::{HeadLimits, HttpConn};
#[cfg(doc)]
use crate::recent::RecentFields;

/// Connection states [`SpareConns`] keeps at most.
pub const MAX_SPARE_CONNS: usize = 16;
/// Requests of room a kept connection's queue keeps (more is freed).
const KEPT_QUEUE: usize = 4;

/// HTTP/1.x states of finished connections, for new connections to start from. A new
/// connection allocated its state (a box of 608 bytes) and its request queue (408 bytes a
/// request), and the memos of its path, query and user agent started empty, so its first
/// request copied them again: with one request per connection, that was every allocation
/// the pipeline made. A kept state is renewed as [`HttpConn::new`] builds one, except that it
/// keeps the queue's room (up to `KEPT_QUEUE` requests) and the memos ([`RecentFields`]),
/// which compare by content and so hold for any connection. At most [`MAX_SPARE_CONNS`] are
/// kept: 35 KiB, plus the texts their memos share (each within a head's bounds).
#[derive(Debug, Default)]
pub struct SpareConns {
    /// Boxed as the flows hold them: keeping the box is keeping its allocation.
    #[allow(clippy::vec_box)]
    kept: Vec<Box<HttpConn>>,
}

impl SpareConns {
    /// The state of a new connection ([`HttpConn::new`]): a kept one renewed when there is
    /// one.
    pub fn take(&mut self, fresh: bool, limits: &HeadLimits) -> Box<HttpConn> {
        match self.kept.pop() {
            Some(mut conn) => {
                conn.renew(fresh, limits);
                conn
            }
            None => Box::new(HttpConn::new(fresh, limits)),
        }
    }

    /// Keeps the state of a connection that ended (its requests are dropped now), unless
    /// [`MAX_SPARE_CONNS`] are kept already.
    pub fn keep(&mut self, mut conn: Box<HttpConn>) {
        if self.kept.len() == MAX_SPARE_CONNS {
            return;
        }
        conn.s.queue.clear();
        if conn.s.queue.capacity() > KEPT_QUEUE {
            conn.s.queue = VecDeque::new();
        }
        self.kept.push(conn);
    }

    /// States kept now.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Heap bytes the kept states hold (as [`HttpConn::heap_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        self.kept.iter().map(|c| c.heap_bytes()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}
