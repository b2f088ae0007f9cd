//! The replay loop: capture file -> [`Decoder`] -> analyzer ([`Engine`] alone, or the whole
//! [`Pipeline`]) -> transactions, in completion order.

use std::cell::RefCell;
use std::io::Read;

use super::{CaptureReader, Decoder, PcapError};
use crate::engine::Engine;
use crate::pipeline::Pipeline;
use crate::{Segment, Transaction};

/// What the replay loop feeds: segments in, transactions handed to `sink`.
pub trait Analyzer {
    fn advance(&mut self, now_ns: u64, sink: &mut dyn FnMut(&Transaction));
    fn ingest(&mut self, seg: &Segment<'_>, sink: &mut dyn FnMut(&Transaction));
    fn finish(&mut self, sink: &mut dyn FnMut(&Transaction));
}

impl Analyzer for Engine {
    fn advance(&mut self, now_ns: u64, sink: &mut dyn FnMut(&Transaction)) {
        let mut out = Vec::new(); // allocates only when a transaction completes
        Engine::advance(self, now_ns, &mut out);
        out.iter().for_each(|t| sink(t));
        self.recycle(&mut out);
    }
    fn ingest(&mut self, seg: &Segment<'_>, sink: &mut dyn FnMut(&Transaction)) {
        let mut out = Vec::new();
        Engine::ingest(self, seg, &mut out);
        out.iter().for_each(|t| sink(t));
        self.recycle(&mut out);
    }
    fn finish(&mut self, sink: &mut dyn FnMut(&Transaction)) {
        let mut out = Vec::new();
        Engine::finish(self, &mut out);
        out.iter().for_each(|t| sink(t));
        self.recycle(&mut out);
    }
}

impl Analyzer for Pipeline {
    fn advance(&mut self, now_ns: u64, sink: &mut dyn FnMut(&Transaction)) {
        Pipeline::advance(self, now_ns, &mut |t| sink(t));
    }
    fn ingest(&mut self, seg: &Segment<'_>, sink: &mut dyn FnMut(&Transaction)) {
        Pipeline::ingest(self, seg, &mut |t| sink(t));
    }
    fn finish(&mut self, sink: &mut dyn FnMut(&Transaction)) {
        Pipeline::finish(self, &mut |t| sink(t));
    }
}

/// Runs every packet of `reader` through `decoder` and `analyzer`, moving the analyzer's clock
/// with packet time, and hands each finished transaction to `emit`; at the end of the input
/// (or at a capture error) the analyzer is finished, so pending requests are emitted too.
/// Returns the capture error that stopped the input early, if any. The first `emit` error
/// stops the replay and is returned.
pub fn replay<R: Read, A: Analyzer + ?Sized, E>(
    reader: &mut CaptureReader<R>,
    decoder: &mut Decoder,
    analyzer: &mut A,
    mut emit: impl FnMut(&Transaction) -> Result<(), E>,
) -> Result<Option<PcapError>, E> {
    let failed: RefCell<Option<E>> = RefCell::new(None);
    let mut sink = |t: &Transaction| {
        let mut failed = failed.borrow_mut();
        if failed.is_none()
            && let Err(e) = emit(t)
        {
            *failed = Some(e);
        }
    };
    let stopped = loop {
        match reader.next_packet() {
            Ok(Some(pkt)) => {
                analyzer.advance(pkt.ts_ns, &mut sink);
                if let Some(seg) = decoder.decode(&pkt) {
                    analyzer.ingest(&seg, &mut sink);
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
        if failed.borrow().is_some() {
            break None;
        }
    };
    if failed.borrow().is_none() {
        analyzer.finish(&mut sink);
    }
    match failed.into_inner() {
        Some(e) => Err(e),
        None => Ok(stopped),
    }
}
