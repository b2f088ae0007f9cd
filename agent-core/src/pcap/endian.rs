//! Fixed-width reads in a file's byte order, bounds-checked (a short slice reads as zero and is
//! rejected by the callers' length checks before that matters).

/// Byte order of a capture file or section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    Little,
    Big,
}

impl Endian {
    pub fn u16(self, b: &[u8], at: usize) -> u16 {
        let Some(bytes) = b.get(at..at + 2) else {
            return 0;
        };
        let arr = [bytes[0], bytes[1]];
        match self {
            Endian::Little => u16::from_le_bytes(arr),
            Endian::Big => u16::from_be_bytes(arr),
        }
    }

    pub fn u32(self, b: &[u8], at: usize) -> u32 {
        let Some(bytes) = b.get(at..at + 4) else {
            return 0;
        };
        let arr = [bytes[0], bytes[1], bytes[2], bytes[3]];
        match self {
            Endian::Little => u32::from_le_bytes(arr),
            Endian::Big => u32::from_be_bytes(arr),
        }
    }

    pub fn u64(self, b: &[u8], at: usize) -> u64 {
        let hi_lo = (u64::from(self.u32(b, at)), u64::from(self.u32(b, at + 4)));
        match self {
            Endian::Little => hi_lo.0 | (hi_lo.1 << 32),
            Endian::Big => (hi_lo.0 << 32) | hi_lo.1,
        }
    }
}

/// Network byte order u16 at `at` (0 when out of bounds).
pub fn be16(b: &[u8], at: usize) -> u16 {
    Endian::Big.u16(b, at)
}

/// Network byte order u32 at `at` (0 when out of bounds).
pub fn be32(b: &[u8], at: usize) -> u32 {
    Endian::Big.u32(b, at)
}
