//! The HPACK static table (RFC 7541 Appendix A) and a dynamic table that may be only partly
//! known.
//!
//! A decoder that joins a connection late (or loses a header block in a capture gap) does not
//! know what the peer's dynamic table holds. What it does know exactly is every entry inserted
//! since: HPACK numbers dynamic entries from the newest (index 62) backwards, so the entries we
//! saw inserted are the lowest dynamic indices, in order, whatever older entries the table also
//! holds. A reference past them is *unknown*, never guessed. Eviction drops the oldest entries
//! first, and entries we do not know are older than all we do, so our entries are evicted
//! exactly as the peer's are while the maximum size is known; keeping an entry the peer already
//! evicted is harmless (a conforming encoder never references it).

use std::collections::VecDeque;

/// Entries 1..=61 of the static table.
pub const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The HPACK size of an entry beyond its name and value (RFC 7541 §4.1).
pub const ENTRY_OVERHEAD: usize = 32;

/// A dynamic-table entry. `None` is a part whose text is unknown (its name came from an entry
/// we never saw); such an entry's size is a lower bound.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    name: Option<Box<[u8]>>,
    value: Box<[u8]>,
    size: usize,
}

/// What an index resolves to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Name (`None` when unknown) and value.
    Found(Option<&'a [u8]>, &'a [u8]),
    /// A dynamic entry we never saw.
    Unknown,
    /// Index 0, or past the table of a decoder that knows it whole.
    Invalid,
}

/// A dynamic table, newest entry first.
#[derive(Debug)]
pub struct DynamicTable {
    entries: VecDeque<Entry>,
    /// Sum of entry sizes (a lower bound when some names are unknown).
    size: usize,
    /// The maximum size in force.
    max_size: usize,
    /// True while every entry the peer holds is one we saw inserted.
    complete: bool,
}

impl DynamicTable {
    /// `complete`: the decoder saw the connection from its start.
    pub fn new(max_size: usize, complete: bool) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
            complete,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// HPACK size of the known entries.
    pub fn size(&self) -> usize {
        self.size
    }

    pub fn max_size(&self) -> usize {
        self.max_size
    }

    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Resolves a 1-based HPACK index (static, then dynamic).
    pub fn get(&self, index: usize) -> Lookup<'_> {
        if index == 0 {
            return Lookup::Invalid;
        }
        if let Some((n, v)) = STATIC.get(index - 1) {
            return Lookup::Found(Some(n), v);
        }
        match self.entries.get(index - 1 - STATIC.len()) {
            Some(e) => Lookup::Found(e.name.as_deref(), &e.value),
            None if self.complete => Lookup::Invalid,
            None => Lookup::Unknown,
        }
    }

    /// Inserts an entry (evicting the oldest as needed). An entry larger than the maximum
    /// empties the table (RFC 7541 §4.4).
    pub fn insert(&mut self, name: Option<&[u8]>, value: &[u8]) {
        let size = name.map_or(0, <[u8]>::len) + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.entries.push_front(Entry {
            name: name.map(Box::from),
            value: Box::from(value),
            size,
        });
        self.size += size;
    }

    /// A dynamic table size update, or a cap applied by the owner.
    pub fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// Forget every entry: the peer's table is unknown from now on (a lost header block).
    pub fn forget(&mut self) {
        self.entries.clear();
        self.size = 0;
        self.complete = false;
    }

    /// From now on, references past the known entries are unknown rather than invalid.
    pub fn mark_incomplete(&mut self) {
        self.complete = false;
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some(e) => self.size -= e.size,
                None => break,
            }
        }
    }
}
