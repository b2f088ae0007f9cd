//! A byte source with its own read buffer: records are handed out as slices of that buffer
//! (no copy per packet), the offset is known, and a clean end of file is told from a cut one.

use std::io::{ErrorKind, Read};
use std::ops::Range;

use super::PcapError;

/// Initial size of the read buffer: large sequential reads, bounded memory. It grows only to
/// hold a record larger than itself (records are bounded by the format readers).
const READ_BUFFER: usize = 256 * 1024;

pub struct Source<R> {
    inner: R,
    buf: Vec<u8>,
    /// First byte not yet consumed.
    start: usize,
    /// End of the bytes read from `inner`.
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
}

impl<R: Read> Source<R> {
    pub fn new(inner: R) -> Source<R> {
        Source {
            inner,
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            offset: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Makes `n` unconsumed bytes available in [`Source::peek`]. Returns `Ok(false)` if the
    /// file ended before any of them and `allow_eof`; a file that ends part way is
    /// [`PcapError::Truncated`].
    pub fn fill(
        &mut self,
        n: usize,
        what: &'static str,
        allow_eof: bool,
    ) -> Result<bool, PcapError> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        if self.start + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if n > self.buf.len() {
                self.buf.resize(n, 0);
            }
        }
        while self.end - self.start < n {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) if self.end == self.start && allow_eof => return Ok(false),
                Ok(0) => {
                    let offset = self.offset + (self.end - self.start) as u64;
                    return Err(PcapError::Truncated { what, offset });
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(PcapError::Io(e)),
            }
        }
        Ok(true)
    }

    /// The unconsumed bytes read so far.
    pub fn peek(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Consumes `n` bytes made available by [`Source::fill`]; returns their range in
    /// [`Source::data`], valid until the next `fill`.
    pub fn consume(&mut self, n: usize) -> Range<usize> {
        let n = n.min(self.end - self.start);
        let range = self.start..self.start + n;
        self.start += n;
        self.offset += n as u64;
        range
    }

    /// The read buffer, indexed by the ranges [`Source::consume`] returns.
    pub fn data(&self) -> &[u8] {
        &self.buf
    }
}
