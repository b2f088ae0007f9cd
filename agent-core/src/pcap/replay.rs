//! The replay loop: capture file -> [`Decoder`] -> [`Engine`] -> transactions, in order.

use std::io::Read;

use super::{CaptureReader, Decoder, PcapError};
use crate::Transaction;
use crate::engine::Engine;

/// Runs every packet of `reader` through `decoder` and `engine`, moving the engine's clock with
/// packet time, and hands each finished transaction to `emit` in completion order; at the end
/// of the input the engine is finished. Returns the capture error that stopped the input early,
/// if any (everything read before it has been processed and emitted); an `emit` error stops the
/// replay at once.
pub fn replay<R: Read, E>(
    reader: &mut CaptureReader<R>,
    decoder: &mut Decoder,
    engine: &mut Engine,
    mut emit: impl FnMut(&Transaction) -> Result<(), E>,
) -> Result<Option<PcapError>, E> {
    let mut out = Vec::with_capacity(64);
    let stopped = loop {
        match reader.next_packet() {
            Ok(Some(pkt)) => {
                engine.advance(pkt.ts_ns, &mut out);
                if let Some(seg) = decoder.decode(&pkt) {
                    engine.ingest(&seg, &mut out);
                }
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
        for t in out.drain(..) {
            emit(&t)?;
        }
    };
    engine.finish(&mut out);
    for t in out.drain(..) {
        emit(&t)?;
    }
    Ok(stopped)
}
