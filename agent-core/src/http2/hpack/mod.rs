//! HPACK (RFC 7541) header-block decoding for a passive observer.
//!
//! Why not a crate: the maintained HPACK decoders (the `h2` crate's internal one, `hpack`,
//! `fluke-hpack`/`loona-hpack`, `httlib-hpack`) all assume they saw the connection from its
//! first header block and fail the whole block on a reference they cannot resolve. An agent
//! that attaches to running servers, or loses a segment, must instead keep decoding: static
//! entries and literals still decode, a reference to a dynamic entry it never saw becomes an
//! *unknown* field, and the table tracks exactly the entries inserted since (see [`table`]).
//! That is the core of the decoder, so it is written here, unit tested against the RFC's
//! examples and fuzzed (`fuzz/fuzz_targets/h2_frames.rs`).
//!
//! Fields are passed to a callback as slices (borrowed from the block, the table or a scratch
//! buffer); nothing is kept but the dynamic table.

pub mod huffman;
pub mod table;

use table::{DynamicTable, Lookup};

/// The dynamic-table size HTTP/2 starts with (SETTINGS_HEADER_TABLE_SIZE's initial value).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Why a header block cannot be decoded (a COMPRESSION_ERROR for the peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("header block ends inside a representation")]
    Truncated,
    #[error("integer overflow")]
    Integer,
    #[error("index 0 or past the dynamic table")]
    Index,
    #[error("invalid Huffman string")]
    Huffman,
    #[error("string longer than the header block limit")]
    StringTooLong,
}

/// One decoded field; `None` is a part that could not be decoded (a reference to a dynamic
/// entry the decoder never saw).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// What one block held besides its fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockSummary {
    pub fields: u32,
    /// Fields with an unknown name or value.
    pub unknown: u32,
    /// Size updates above the decoder's cap (the table was kept at the cap instead).
    pub capped: u32,
}

/// The decoder of one direction of a connection.
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// Largest dynamic table kept, whatever the peer announces.
    cap: usize,
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl Decoder {
    /// `from_start`: the connection was seen from its first byte, so the table starts empty
    /// at 4096 bytes and is known whole. Otherwise its content is unknown and its size is
    /// taken as `cap` until a size update says otherwise.
    pub fn new(cap: usize, from_start: bool) -> Decoder {
        let max = if from_start {
            DEFAULT_TABLE_SIZE.min(cap)
        } else {
            cap
        };
        let mut table = DynamicTable::new(max, from_start);
        if from_start && cap < DEFAULT_TABLE_SIZE {
            table.mark_incomplete();
        }
        Decoder {
            table,
            cap,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
        }
    }

    pub fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Bytes held (table entries and scratch buffers), for the memory budget.
    pub fn held_bytes(&self) -> usize {
        self.table.size() + self.name_buf.capacity() + self.value_buf.capacity()
    }

    /// A header block was lost (capture gap, or too large to keep): the table is unknown
    /// from now on.
    pub fn lose_block(&mut self) {
        self.table.forget();
    }

    /// The decoding side announced SETTINGS_HEADER_TABLE_SIZE: the encoder may grow its table
    /// up to it without a size update we would see before the first insertion, so keep up to
    /// that much (keeping entries the peer evicted is harmless).
    pub fn settings_table_size(&mut self, size: u32) {
        let size = size as usize;
        if size > self.table.max_size() {
            if size > self.cap {
                self.table.mark_incomplete();
            }
            self.table.set_max_size(size.min(self.cap));
        }
    }

    /// Decodes one complete header block, calling `field` for each field in order.
    /// `max_string` bounds each literal (the caller's header block limit).
    pub fn decode(
        &mut self,
        block: &[u8],
        max_string: usize,
        field: &mut dyn FnMut(Field<'_>),
    ) -> Result<BlockSummary, HpackError> {
        let mut sum = BlockSummary::default();
        let mut pos = 0;
        while pos < block.len() {
            let b = block[pos];
            if b & 0x80 != 0 {
                // Indexed field.
                let index = integer(block, &mut pos, 7)?;
                sum.fields += 1;
                match self.table.get(index) {
                    Lookup::Found(name, value) => {
                        sum.unknown += u32::from(name.is_none());
                        field(Field {
                            name,
                            value: Some(value),
                        });
                    }
                    Lookup::Unknown => {
                        sum.unknown += 1;
                        field(Field {
                            name: None,
                            value: None,
                        });
                    }
                    Lookup::Invalid => return Err(HpackError::Index),
                }
            } else if b & 0xe0 == 0x20 {
                // Dynamic table size update.
                let size = integer(block, &mut pos, 5)?;
                if size > self.cap {
                    sum.capped += 1;
                    self.table.mark_incomplete();
                }
                self.table.set_max_size(size.min(self.cap));
            } else {
                // Literal: with incremental indexing (01), without (0000) or never indexed
                // (0001).
                let (prefix, index_it) = if b & 0x40 != 0 { (6, true) } else { (4, false) };
                let name_index = integer(block, &mut pos, prefix)?;
                let name_known = if name_index == 0 {
                    self.name_buf.clear();
                    string(block, &mut pos, max_string, &mut self.name_buf)?;
                    true
                } else {
                    match self.table.get(name_index) {
                        Lookup::Found(Some(n), _) => {
                            self.name_buf.clear();
                            self.name_buf.extend_from_slice(n);
                            true
                        }
                        Lookup::Found(None, _) | Lookup::Unknown => false,
                        Lookup::Invalid => return Err(HpackError::Index),
                    }
                };
                self.value_buf.clear();
                string(block, &mut pos, max_string, &mut self.value_buf)?;
                sum.fields += 1;
                sum.unknown += u32::from(!name_known);
                let name = name_known.then_some(self.name_buf.as_slice());
                field(Field {
                    name,
                    value: Some(&self.value_buf),
                });
                if index_it {
                    self.table.insert(name, &self.value_buf);
                }
            }
        }
        // Scratch buffers grow to the longest literal; do not keep a large one per flow.
        const KEEP_SCRATCH: usize = 1024;
        if self.value_buf.capacity() > KEEP_SCRATCH {
            self.value_buf = Vec::new();
        }
        if self.name_buf.capacity() > KEEP_SCRATCH {
            self.name_buf = Vec::new();
        }
        Ok(sum)
    }
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), bounded to what fits a `u32`.
fn integer(block: &[u8], pos: &mut usize, n: u32) -> Result<usize, HpackError> {
    let mask = (1u32 << n) - 1;
    let first = u32::from(*block.get(*pos).ok_or(HpackError::Truncated)?) & mask;
    *pos += 1;
    if first < mask {
        return Ok(first as usize);
    }
    let mut value = u64::from(mask);
    let mut shift = 0;
    loop {
        let b = *block.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        value += u64::from(b & 0x7f) << shift;
        if value > u64::from(u32::MAX) {
            return Err(HpackError::Integer);
        }
        if b & 0x80 == 0 {
            return Ok(value as usize);
        }
        shift += 7;
        if shift > 28 {
            return Err(HpackError::Integer);
        }
    }
}

/// A string literal (RFC 7541 §5.2), appended to `out`.
fn string(block: &[u8], pos: &mut usize, max: usize, out: &mut Vec<u8>) -> Result<(), HpackError> {
    let huffman = block.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = integer(block, pos, 7)?;
    if len > max {
        return Err(HpackError::StringTooLong);
    }
    let end = pos.checked_add(len).ok_or(HpackError::Truncated)?;
    let raw = block.get(*pos..end).ok_or(HpackError::Truncated)?;
    *pos = end;
    if huffman {
        huffman::decode(raw, out).map_err(|_| HpackError::Huffman)
    } else {
        out.extend_from_slice(raw);
        Ok(())
    }
}

/// A minimal HPACK encoder for tests, fuzz seeds and benches (the agent only decodes).
pub mod encode {
    use super::huffman;

    fn integer(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
        let mask = (1usize << n) - 1;
        if v < mask {
            out.push(first | v as u8);
            return;
        }
        out.push(first | mask as u8);
        v -= mask;
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn string(out: &mut Vec<u8>, s: &[u8], huff: bool) {
        if huff {
            let mut h = Vec::new();
            huffman::encode(s, &mut h);
            integer(out, 0x80, 7, h.len());
            out.extend_from_slice(&h);
        } else {
            integer(out, 0, 7, s.len());
            out.extend_from_slice(s);
        }
    }

    /// Indexed field (static 1..=61 or dynamic 62..).
    pub fn indexed(out: &mut Vec<u8>, index: usize) {
        integer(out, 0x80, 7, index);
    }

    /// Literal with incremental indexing; `name` is an index or a literal name.
    pub fn literal_indexed(
        out: &mut Vec<u8>,
        name: Result<usize, &[u8]>,
        value: &[u8],
        huff: bool,
    ) {
        literal(out, 0x40, 6, name, value, huff);
    }

    /// Literal without indexing.
    pub fn literal_plain(out: &mut Vec<u8>, name: Result<usize, &[u8]>, value: &[u8], huff: bool) {
        literal(out, 0x00, 4, name, value, huff);
    }

    /// Literal never indexed (sensitive values such as authorization).
    pub fn literal_never(out: &mut Vec<u8>, name: Result<usize, &[u8]>, value: &[u8], huff: bool) {
        literal(out, 0x10, 4, name, value, huff);
    }

    fn literal(
        out: &mut Vec<u8>,
        first: u8,
        n: u32,
        name: Result<usize, &[u8]>,
        value: &[u8],
        huff: bool,
    ) {
        match name {
            Ok(i) => integer(out, first, n, i),
            Err(lit) => {
                integer(out, first, n, 0);
                string(out, lit, huff);
            }
        }
        string(out, value, huff);
    }

    /// Dynamic table size update.
    pub fn size_update(out: &mut Vec<u8>, size: usize) {
        integer(out, 0x20, 5, size);
    }
}

#[cfg(test)]
mod tests;
