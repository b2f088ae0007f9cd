//! What gaps hid, told by the client's ACKs: each request carries where the client's ACK stood
//! in the response stream when it was sent, and a response starts after the request it answers
//! was sent. That pairs responses across gaps (responses lost whole, requests lost whole) and
//! tells a request whose response was lost from one the server never answered.

use super::Shared;
use super::pairing::{RespSide, record};
use super::stats::HttpStats;
use crate::ErrorType;

impl RespSide<'_, '_> {
    /// Before a final response starting at stream offset `at` is paired, the client's ACKs
    /// decide what gaps hid. A response starts after the client sent its request, and a client
    /// that waited for more of the response stream before sending its next request (no
    /// pipelining) had the whole previous response: its own response starts where its ACK
    /// stood. So:
    /// - after a gap in the response stream, a pending request sent that way whose ACK stands
    ///   before this response's start had its response (at least its start) in the gap: it is
    ///   recorded as `capture_gap` without one;
    /// - after a gap in the response stream, pipelined requests (one ACK for several) cannot
    ///   tell which of them this response answers: it pairs first in, first out, marked
    ///   `capture_gap`, unless the next request was sent after it started;
    /// - after a gap in the request stream, a response that starts before the oldest pending
    ///   request was sent answers a request lost in that gap.
    ///
    /// Without ACKs, pairing stays first in, first out.
    pub(super) fn realign(&mut self, at: u64, stats: &mut HttpStats) {
        let at = at as u32;
        let before = |a: u32, b: u32| (b.wrapping_sub(a) as i32) > 0;
        if std::mem::take(&mut self.s.response_gap) {
            while let Some(q) = self.s.queue.front() {
                let answered_in_gap =
                    !q.emitted && q.sequential && q.ack.is_some_and(|sent| before(sent, at));
                if !answered_in_gap {
                    break;
                }
                let Some(p) = self.s.queue.pop_front() else {
                    break;
                };
                let mut tx = p.tx;
                tx.error = Some(ErrorType::CaptureGap);
                record(tx, self.cx, stats);
            }
            let mut live = self.s.queue.iter();
            if let (Some(a), Some(b)) = (live.next(), live.next()) {
                let sent_after = b.ack.is_some_and(|sent_b| before(at, sent_b));
                self.s.resp.uncertain = !a.emitted && !a.sequential && !sent_after;
            }
        }
        if self.s.request_gap.is_some() {
            self.s.resp.answers_lost = match self.s.queue.front() {
                Some(p) => !p.emitted && p.ack.is_some_and(|sent| before(at, sent)),
                None => true,
            };
        }
    }
}

impl Shared {
    /// Why a request sent with the client's ACK at `ack` got no response before the connection
    /// ended: `capture_gap` when response bytes sent after it were lost (its response may be
    /// among them), else `connection_closed`.
    pub(super) fn unanswered(&self, ack: Option<u32>) -> ErrorType {
        let lost_after = match (self.response_lost_until, ack) {
            (Some(until), Some(sent)) => ((until as u32).wrapping_sub(sent) as i32) > 0,
            (Some(_), None) => self.response_gap,
            (None, _) => false,
        };
        if lost_after {
            ErrorType::CaptureGap
        } else {
            ErrorType::ConnectionClosed
        }
    }
}
