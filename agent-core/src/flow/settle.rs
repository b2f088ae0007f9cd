//! When a flow stops waiting: evidence resolved by the bytes arriving, parked segments released
//! once the bytes they acknowledge are delivered, and, when nothing moves by itself, one wait
//! given up because the reorder window passed, a bound overflowed or the flow ends (see
//! [`super::order`] for the model).

use super::{Ctx, DIRECTIONS, Deliver, Flow};

/// Why a flow stops waiting for acknowledged bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Settle {
    /// Decide what the window and bounds allow.
    Window,
    /// The flow ends: decide everything now.
    Now,
}

impl Flow {
    /// Gives up on acknowledged bytes of direction `d` up to `ack`: they are lost.
    fn declare_lost(&mut self, d: usize, ack: u32, cx: &mut Ctx<'_>) {
        let mut sink = Deliver {
            protocol: &mut self.protocol,
            meta: super::meta_of(&self.meta),
            dir: DIRECTIONS[d],
            peer_start: self.sides[1 - d].reasm.start_seq(),
            cx: &mut cx.protocol,
        };
        self.sides[d]
            .reasm
            .flush(Some(ack), cx.reassembly, &mut sink);
    }

    /// Resolves what can be: evidence whose bytes came, parked segments whose acknowledged
    /// bytes were delivered; then, when nothing moves by itself, gives up on one wait the
    /// window, a bound or the end of the flow allows; until nothing changes.
    pub(super) fn settle(&mut self, now: u64, how: Settle, cx: &mut Ctx<'_>) {
        if self.sides.iter().all(|s| s.waiting.is_none()) {
            return;
        }
        loop {
            let mut changed = false;
            for d in 0..2 {
                changed |= self.resolve(d, now, cx);
                changed |= self.release_open(d, cx);
            }
            if changed || self.give_up_one(now, how, cx) {
                continue;
            }
            break;
        }
        for s in &mut self.sides {
            s.tidy();
        }
    }

    /// Evidence about direction `d` whose bytes were delivered is cleared (a recovery unless
    /// they were declared lost meanwhile); otherwise its window restarts on progress.
    fn resolve(&mut self, d: usize, now: u64, cx: &mut Ctx<'_>) -> bool {
        let window = cx.limits.reorder_window_bytes;
        let s = &mut self.sides[d];
        let (next, lost) = (s.reasm.next_seq(), s.reasm.lost_bytes());
        let unseen = |ack| s.reasm.unseen_below(ack, window);
        let Some(w) = s.waiting.as_deref_mut() else {
            return false;
        };
        let Some(e) = w.evidence.as_mut() else {
            return false;
        };
        if unseen(e.ack) {
            e.progressed(next, now);
            return false;
        }
        if lost == w.lost_then {
            cx.reassembly.reorder_recovered += 1;
        }
        w.evidence = None;
        true
    }

    /// Pushes every parked segment of `d` whose acknowledged bytes the peer delivered.
    fn release_open(&mut self, d: usize, cx: &mut Ctx<'_>) -> bool {
        let window = cx.limits.reorder_window_bytes;
        let mut any = false;
        loop {
            let [a, b] = &mut self.sides;
            let (me, peer) = if d == 0 { (a, b) } else { (b, a) };
            let released = me.waiting.as_deref_mut().and_then(|w| {
                w.parked
                    .release(|ack| !peer.reasm.unseen_below(ack, window), false)
            });
            let Some(r) = released else {
                return any;
            };
            self.push(d, r.payload(), cx);
            any = true;
        }
    }

    /// Declares lost the acknowledged bytes of one direction whose wait is over (window passed,
    /// bounds exceeded, or the flow ends) and which are not themselves parked. When only
    /// parked bytes are waited for and the flow ends or overflows, parked segments are pushed
    /// as they are.
    fn give_up_one(&mut self, now: u64, how: Settle, cx: &mut Ctx<'_>) -> bool {
        let w = cx.limits.reorder;
        let over = self.sides.iter().any(|s| s.parked().len() > w.max_segments)
            || self.buffered_now() > cx.limits.flow_budget_bytes;
        for d in 0..2 {
            let s = &self.sides[d];
            let Some(e) = s.evidence() else {
                continue;
            };
            let parked_here = s.reasm.next_seq().is_some_and(|n| s.parked().covers(n));
            if parked_here {
                continue;
            }
            let passed = e.passed(now, &w);
            if how == Settle::Window && !over && !passed {
                continue;
            }
            match how {
                Settle::Now => {}
                Settle::Window if passed => cx.reassembly.reorder_window_expired += 1,
                Settle::Window => cx.reassembly.reorder_limit += 1,
            }
            // Not past the first parked byte of this direction (what lies beyond came, and
            // waits for the peer), nor past what a parked segment of the peer waits for (it is
            // released in between, in causal order).
            let next = s.reasm.next_seq().unwrap_or(e.ack);
            let ahead = |x: u32| x.wrapping_sub(next);
            let upto = [
                s.parked().first_at_or_after(next),
                self.sides[1 - d].parked().lowest_gate_after(next),
            ]
            .into_iter()
            .flatten()
            .fold(
                e.ack,
                |upto, x| if ahead(x) < ahead(upto) { x } else { upto },
            );
            self.declare_lost(d, upto, cx);
            let side = &mut self.sides[d];
            let next = side.reasm.next_seq();
            match side.evidence_mut() {
                Some(e) if upto != e.ack => e.rebase(next),
                _ => side.set_evidence(None),
            }
            return true;
        }
        if how == Settle::Window && !over {
            return false;
        }
        for d in 0..2 {
            let released = self.sides[d]
                .waiting
                .as_deref_mut()
                .and_then(|w| w.parked.release(|_| true, true));
            if let Some(r) = released {
                if how == Settle::Window {
                    cx.reassembly.reorder_limit += 1;
                }
                self.push(d, r.payload(), cx);
                return true;
            }
        }
        false
    }
}
