//! Incremental decoder of the chunked transfer coding (RFC 9112 §7.1): chunk extensions and
//! trailer fields are skipped, bare LF line ends are tolerated, and chunk data that the capture
//! did not copy can be skipped by length.

/// Longest chunk-size line or trailer line accepted.
const MAX_LINE: u32 = 8 * 1024;
/// Hex digits of a chunk size (2^60 bytes is plenty).
const MAX_SIZE_DIGITS: u8 = 15;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size {
        digits: u8,
    },
    /// After the size: whitespace and `;ext` up to the line end.
    SizeRest,
    /// Saw CR of the size line.
    SizeLf,
    /// Inside chunk data.
    Data {
        left: u64,
    },
    /// After chunk data: expecting CRLF.
    DataCr,
    DataLf,
    /// At the start of a trailer line (an empty line ends the body).
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// Saw CR of a trailer line (`empty`: it was the final empty line).
    TrailerLf {
        empty: bool,
    },
    Done,
}

/// Why the chunked framing broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("invalid chunk size line")]
    BadSize,
    #[error("missing CRLF after chunk data")]
    BadTerminator,
    #[error("chunk line too long")]
    LineTooLong,
}

/// Decoder state for one message body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkDecoder {
    state: State,
    size: u64,
    line: u32,
    /// Sum of chunk sizes so far (the decoded body length).
    body: u64,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        ChunkDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            line: 0,
            body: 0,
        }
    }
}

impl ChunkDecoder {
    /// Decoded body bytes so far.
    pub fn body_len(&self) -> u64 {
        self.body
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes bytes; returns how many belong to this body (fewer than given once done).
    pub fn feed(&mut self, data: &[u8]) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < data.len() {
            if let State::Data { left } = self.state {
                let n = left.min((data.len() - i) as u64);
                i += n as usize;
                self.set_data_left(left - n);
                continue;
            }
            if self.state == State::Done {
                break;
            }
            self.step(data[i])?;
            i += 1;
        }
        Ok(i)
    }

    /// Skips `n` bytes whose content is unknown; returns how many were chunk data (the rest
    /// would have been framing, which cannot be skipped).
    pub fn skip(&mut self, n: u64) -> u64 {
        match self.state {
            State::Data { left } => {
                let k = left.min(n);
                self.set_data_left(left - k);
                k
            }
            _ => 0,
        }
    }

    fn set_data_left(&mut self, left: u64) {
        self.state = if left == 0 {
            State::DataCr
        } else {
            State::Data { left }
        };
    }

    fn line_byte(&mut self) -> Result<(), ChunkError> {
        self.line += 1;
        if self.line > MAX_LINE {
            Err(ChunkError::LineTooLong)
        } else {
            Ok(())
        }
    }

    fn end_size_line(&mut self) {
        self.line = 0;
        if self.size == 0 {
            self.state = State::TrailerStart;
        } else {
            self.body = self.body.saturating_add(self.size);
            self.state = State::Data { left: self.size };
        }
    }

    fn step(&mut self, b: u8) -> Result<(), ChunkError> {
        match self.state {
            State::Size { digits } => {
                self.line_byte()?;
                if let Some(v) = char::from(b).to_digit(16) {
                    if digits >= MAX_SIZE_DIGITS {
                        return Err(ChunkError::BadSize);
                    }
                    self.size = (self.size << 4) | u64::from(v);
                    self.state = State::Size { digits: digits + 1 };
                } else if digits == 0 {
                    return Err(ChunkError::BadSize);
                } else {
                    self.size_rest(b)?;
                }
            }
            State::SizeRest => {
                self.line_byte()?;
                self.size_rest(b)?;
            }
            State::SizeLf => {
                if b != b'\n' {
                    return Err(ChunkError::BadSize);
                }
                self.end_size_line();
            }
            State::DataCr => match b {
                b'\r' => self.state = State::DataLf,
                b'\n' => self.next_chunk(),
                _ => return Err(ChunkError::BadTerminator),
            },
            State::DataLf => {
                if b != b'\n' {
                    return Err(ChunkError::BadTerminator);
                }
                self.next_chunk();
            }
            State::TrailerStart => match b {
                b'\r' => self.state = State::TrailerLf { empty: true },
                b'\n' => self.state = State::Done,
                _ => {
                    self.line = 1;
                    self.state = State::TrailerLine;
                }
            },
            State::TrailerLine => {
                self.line_byte()?;
                match b {
                    b'\r' => self.state = State::TrailerLf { empty: false },
                    b'\n' => self.state = State::TrailerStart,
                    _ => {}
                }
            }
            State::TrailerLf { empty } => {
                if b != b'\n' {
                    return Err(ChunkError::BadTerminator);
                }
                self.state = if empty {
                    State::Done
                } else {
                    State::TrailerStart
                };
            }
            State::Data { .. } | State::Done => {}
        }
        Ok(())
    }

    fn size_rest(&mut self, b: u8) -> Result<(), ChunkError> {
        match b {
            b'\r' => self.state = State::SizeLf,
            b'\n' => self.end_size_line(),
            // Extensions (`;name=value`) and whitespace before them are skipped.
            b';' | b' ' | b'\t' => self.state = State::SizeRest,
            _ if self.state == State::SizeRest => {}
            _ => return Err(ChunkError::BadSize),
        }
        Ok(())
    }

    fn next_chunk(&mut self) {
        self.size = 0;
        self.line = 0;
        self.state = State::Size { digits: 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const BODY: &[u8] =
        b"4;ext=1\r\nWiki\r\n5 ; name=\"v\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\nX-T: 1\r\n\r\n";

    #[rstest]
    fn chunked_with_extensions_and_trailers_decodes_whole() {
        let mut d = ChunkDecoder::default();
        let mut tail = BODY.to_vec();
        tail.extend_from_slice(b"GET");
        assert_eq!(d.feed(&tail), Ok(BODY.len()));
        assert!(d.is_done());
        assert_eq!(d.body_len(), 23);
    }

    #[rstest]
    fn chunked_split_at_every_byte_decodes_the_same() {
        for split in 0..=BODY.len() {
            let mut d = ChunkDecoder::default();
            let a = d.feed(&BODY[..split]).expect("first part");
            let b = d.feed(&BODY[split..]).expect("second part");
            assert_eq!(a + b, BODY.len(), "split at {split}");
            assert!(d.is_done(), "split at {split}");
            assert_eq!(d.body_len(), 23);
        }
    }

    #[rstest]
    fn chunked_one_byte_at_a_time_decodes() {
        let mut d = ChunkDecoder::default();
        for b in BODY {
            assert_eq!(d.feed(std::slice::from_ref(b)), Ok(1));
        }
        assert!(d.is_done());
    }

    #[rstest]
    fn uncopied_chunk_data_is_skipped_by_length() {
        let mut d = ChunkDecoder::default();
        assert_eq!(d.feed(b"10\r\n0123"), Ok(8));
        assert_eq!(d.skip(12), 12);
        assert_eq!(d.feed(b"\r\n0\r\n\r\n"), Ok(7));
        assert!(d.is_done());
        assert_eq!(d.body_len(), 16);
    }

    #[rstest]
    fn uncopied_framing_cannot_be_skipped() {
        let mut d = ChunkDecoder::default();
        assert_eq!(d.feed(b"4\r\nab"), Ok(5));
        assert_eq!(d.skip(10), 2);
    }

    #[rstest]
    #[case::not_hex(&b"zz\r\n"[..])]
    #[case::missing_crlf_after_data(&b"2\r\nabX\r\n"[..])]
    #[case::too_many_digits(&b"1234567890123456\r\n"[..])]
    #[case::empty_size(&b"\r\n"[..])]
    fn malformed_chunk_framing_is_an_error(#[case] input: &[u8]) {
        assert!(ChunkDecoder::default().feed(input).is_err());
    }
}
