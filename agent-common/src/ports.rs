//! Server ports as 65,536-bit bitmaps: one array lookup and a bit test per port in the kernel,
//! instead of hash lookups.

/// Words in a [`PortBitmap`].
pub const PORT_WORDS: usize = 1024;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortBitmap {
    pub words: [u64; PORT_WORDS],
}

const _: () = assert!(core::mem::size_of::<PortBitmap>() == 8192);

impl Default for PortBitmap {
    fn default() -> Self {
        PortBitmap {
            words: [0; PORT_WORDS],
        }
    }
}

impl PortBitmap {
    #[inline(always)]
    pub fn contains(&self, port: u16) -> bool {
        // port >> 6 < 1024 for every u16.
        match self.words.get((port >> 6) as usize) {
            Some(w) => w & (1u64 << (port & 63)) != 0,
            None => false,
        }
    }

    pub fn insert(&mut self, port: u16) {
        if let Some(w) = self.words.get_mut((port >> 6) as usize) {
            *w |= 1u64 << (port & 63);
        }
    }

    pub fn remove(&mut self, port: u16) {
        if let Some(w) = self.words.get_mut((port >> 6) as usize) {
            *w &= !(1u64 << (port & 63));
        }
    }
}

/// The value of the ports map's single entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ports {
    /// Server ports whose segments are recorded.
    pub watched: PortBitmap,
    /// Watched ports whose segments are all copied (up to the snap length), as before the
    /// head-only policy: user space sets these for servers whose messages it could not frame
    /// from heads alone (chunked bodies, HTTP/2).
    pub copy_all: PortBitmap,
}

const _: () = assert!(core::mem::size_of::<Ports>() == 16384);

#[cfg(feature = "user")]
// SAFETY: repr(C) plain old data without padding (sizes asserted above).
unsafe impl aya::Pod for PortBitmap {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for Ports {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_set_tested_and_cleared_per_port() {
        let mut b = PortBitmap::default();
        for p in [0u16, 63, 64, 80, 8080, 65535] {
            assert!(!b.contains(p));
            b.insert(p);
            assert!(b.contains(p));
        }
        assert!(!b.contains(81));
        b.remove(80);
        assert!(!b.contains(80));
        assert!(b.contains(8080));
    }
}
