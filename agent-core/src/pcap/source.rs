//! A buffered byte source that knows its offset and tells a clean end of file from a cut one.

use std::io::{BufReader, ErrorKind, Read};

use super::PcapError;

/// Capacity of the read buffer: large sequential reads, bounded memory.
const READ_BUFFER: usize = 256 * 1024;

pub struct Source<R> {
    inner: BufReader<R>,
    offset: u64,
}

impl<R: Read> Source<R> {
    pub fn new(inner: R) -> Source<R> {
        Source {
            inner: BufReader::with_capacity(READ_BUFFER, inner),
            offset: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads exactly `n` bytes into `buf[start..start + n]` (growing it). Returns `Ok(false)` if
    /// the file ended before the first byte and `allow_eof`; a file that ends part way is
    /// [`PcapError::Truncated`].
    pub fn read_into(
        &mut self,
        buf: &mut Vec<u8>,
        start: usize,
        n: usize,
        what: &'static str,
        allow_eof: bool,
    ) -> Result<bool, PcapError> {
        buf.resize(start + n, 0);
        let mut filled = 0;
        while filled < n {
            match self.inner.read(&mut buf[start + filled..start + n]) {
                Ok(0) if filled == 0 && allow_eof => return Ok(false),
                Ok(0) => {
                    return Err(PcapError::Truncated {
                        what,
                        offset: self.offset,
                    });
                }
                Ok(k) => {
                    filled += k;
                    self.offset += k as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(PcapError::Io(e)),
            }
        }
        Ok(true)
    }
}
