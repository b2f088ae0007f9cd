//! Byte scans the HTTP/1 hot path runs on every head, eight bytes at a time.

/// Runs of 0x01 and 0x80 in each byte of a word.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Eight bytes at `i`, little endian, when there are eight.
pub fn word(bytes: &[u8], i: usize) -> Option<u64> {
    let mut eight = [0u8; 8];
    eight.copy_from_slice(bytes.get(i..i + 8)?);
    Some(u64::from_le_bytes(eight))
}

/// The offset of the first byte at or after `i` outside printable ASCII (0x20..=0x7E), or
/// `bytes.len()`. Sixteen bytes at a time while there are sixteen, then eight, then one.
pub fn first_unprintable(bytes: &[u8], mut i: usize) -> usize {
    while let Some(m) = wide::unprintable_mask(bytes, i) {
        if m != 0 {
            return i + m.trailing_zeros() as usize;
        }
        i += wide::LANES;
    }
    while let Some(w) = word(bytes, i) {
        // Per byte: below 0x20 (a borrow with the high bit clear before), 0x7F (a carry into
        // the high bit) or 0x80 and above (the high bit). Borrows and carries only travel to
        // later bytes, so the first flagged byte is exact.
        let flagged = ((w.wrapping_sub(ONES * 0x20) & !w) | w.wrapping_add(ONES) | w) & HIGHS;
        if flagged != 0 {
            return i + (flagged.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while bytes.get(i).is_some_and(|b| (0x20..0x7F).contains(b)) {
        i += 1;
    }
    i
}

/// Whether all of `bytes` is printable ASCII.
pub fn is_printable(bytes: &[u8]) -> bool {
    first_unprintable(bytes, 0) == bytes.len()
}

/// `bytes` as text when all of it is ASCII. The hot path's fields (request line, user agent,
/// ids) are short printable ASCII; `str::from_utf8` walks them byte by byte (~100
/// instructions each), this checks them a word at a time.
pub fn as_str(bytes: &[u8]) -> Option<&str> {
    if !bytes.is_ascii() {
        return None;
    }
    // SAFETY: every byte is below 0x80 (checked just above), and ASCII is valid UTF-8.
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// Whether `bytes` holds `b`.
pub fn contains(bytes: &[u8], b: u8) -> bool {
    let mut i = 0;
    while let Some(m) = wide::equal_mask(bytes, i, b) {
        if m != 0 {
            return true;
        }
        i += wide::LANES;
    }
    while let Some(w) = word(bytes, i) {
        // A zero byte of `w ^ b…b`: exact as a yes/no, whatever its position.
        let x = w ^ (ONES * u64::from(b));
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            return true;
        }
        i += 8;
    }
    bytes[i..].contains(&b)
}

/// How many of the first bytes of `w` (little endian, every byte below 0x80) are ASCII
/// letters or `-`: the bytes of nearly every header name and method, eight at a time.
pub fn leading_letters_or_dash(w: u64) -> usize {
    // Bytes below 0x80 stay below 0x80 through `| 0x20` and the additions below, so no carry
    // crosses into the next byte and every byte's answer is exact.
    let x = w | (ONES * 0x20); // letters to lower case
    let at_least_a = x + ONES * (0x80 - b'a' as u64);
    let past_z = x + ONES * (0x80 - (b'z' as u64 + 1));
    let letter = at_least_a & !past_z;
    let d = w ^ (ONES * u64::from(b'-'));
    let dash = !(((d & !HIGHS) + !HIGHS) | d);
    let other = !(letter | dash) & HIGHS;
    (other.trailing_zeros() / 8) as usize
}

/// Whether the header name `name` (token bytes only) is `lower`, compared without case.
/// `lower` is lower-case letters and `-`: with token bytes on the other side, setting bit 0x20
/// folds exactly the upper-case letters onto it, so words compare at once.
pub fn is_name(name: &[u8], lower: &[u8]) -> bool {
    const FOLD: u64 = ONES * 0x20;
    debug_assert!(lower.iter().all(|b| b.is_ascii_lowercase() || *b == b'-'));
    let n = lower.len();
    if name.len() != n {
        return false;
    }
    if n < 8 {
        return name.iter().zip(lower).all(|(a, b)| a | 0x20 == *b);
    }
    // The first eight bytes and the last eight (overlapping when shorter than 16), then the
    // middle for longer names.
    let (Some(head), Some(tail)) = (word(name, 0), word(name, n - 8)) else {
        return false;
    };
    let same = |w: u64, i| word(lower, i).is_some_and(|l| w | FOLD == l);
    same(head, 0)
        && same(tail, n - 8)
        && (8..n.saturating_sub(8)).all(|i| name[i] | 0x20 == lower[i])
}

/// Sixteen bytes at once where the CPU has vectors for it: SSE2, part of every x86-64. Each
/// function answers `None` when fewer than sixteen bytes lie at `i`, and always `None` on
/// other architectures, whose callers go on eight bytes at a time.
mod wide {
    pub const LANES: usize = 16;

    /// One bit per byte of the sixteen at `i` (bit 0 first): set outside 0x20..=0x7E.
    #[cfg(target_arch = "x86_64")]
    pub fn unprintable_mask(bytes: &[u8], i: usize) -> Option<u32> {
        use std::arch::x86_64::*;
        let chunk = bytes.get(i..i + LANES)?;
        // SAFETY: `chunk` is sixteen readable bytes (an unaligned load needs no more), and SSE2
        // is in the x86-64 baseline.
        unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().cast());
            // As signed bytes, 0x80 and above are negative: "less than 0x20" takes them too.
            let below = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            let del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F));
            Some(_mm_movemask_epi8(_mm_or_si128(below, del)) as u32)
        }
    }

    /// One bit per byte of the sixteen at `i` (bit 0 first): set where the byte is `b`.
    #[cfg(target_arch = "x86_64")]
    pub fn equal_mask(bytes: &[u8], i: usize, b: u8) -> Option<u32> {
        use std::arch::x86_64::*;
        let chunk = bytes.get(i..i + LANES)?;
        // SAFETY: as in `unprintable_mask`.
        unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().cast());
            Some(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8))) as u32)
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn unprintable_mask(_: &[u8], _: usize) -> Option<u32> {
        None
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn equal_mask(_: &[u8], _: usize, _: u8) -> Option<u32> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_takes_ascii_only() {
        assert_eq!(as_str(b"GET / HTTP/1.1"), Some("GET / HTTP/1.1"));
        assert_eq!(as_str(b""), Some(""));
        assert_eq!(as_str(b"caf\xc3\xa9"), None);
        assert_eq!(
            as_str(&[b'a'; 9].iter().chain(&[0x80]).copied().collect::<Vec<_>>()),
            None
        );
    }

    #[test]
    fn first_unprintable_finds_the_exact_byte_in_every_position() {
        for len in 0..40 {
            for at in 0..=len {
                for bad in [0x00, 0x09, 0x0D, 0x0A, 0x1F, 0x7F, 0x80, 0xFF] {
                    let mut v = vec![b'a'; len];
                    if at < len {
                        v[at] = bad;
                        // A second bad byte later must not move the answer.
                        if at + 3 < len {
                            v[at + 3] = 0xFF;
                        }
                    }
                    assert_eq!(
                        first_unprintable(&v, 0),
                        at,
                        "len {len} at {at} byte {bad:#x}"
                    );
                    assert_eq!(is_printable(&v), at == len);
                }
            }
        }
        // Every printable byte passes, in and out of word alignment.
        let printable: Vec<u8> = (0x20..0x7F).collect();
        assert_eq!(first_unprintable(&printable, 0), printable.len());
        assert_eq!(first_unprintable(&printable, 3), printable.len());
    }

    #[test]
    fn contains_every_byte_in_every_position() {
        for len in 0..40 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let fill = if b == b'a' { b'b' } else { b'a' };
                    let mut v = vec![fill; len];
                    assert!(!contains(&v, b));
                    v[at] = b;
                    assert!(contains(&v, b), "len {len} at {at} byte {b:#x}");
                }
            }
        }
    }

    #[test]
    fn leading_letters_or_dash_stops_at_the_first_other_byte() {
        for b in 0..0x80u8 {
            let ok = b.is_ascii_alphabetic() || b == b'-';
            for at in 0..8 {
                let mut eight = *b"Ab-zZ-aQ";
                eight[at] = b;
                // A second byte of the same kind later must not move the answer.
                if at + 2 < 8 {
                    eight[at + 2] = b;
                }
                let want = if ok { 8 } else { at };
                assert_eq!(
                    leading_letters_or_dash(u64::from_le_bytes(eight)),
                    want,
                    "byte {b:#x} at {at}"
                );
            }
        }
    }

    #[test]
    fn names_compare_as_eq_ignore_ascii_case_on_tokens() {
        let lowers: [&[u8]; 5] = [
            b"upgrade",
            b"user-agent",
            b"content-length",
            b"x-forwarded-for",
            b"transfer-encoding",
        ];
        let token = b"!#$%&'*+-.^_`|~09AZaz";
        for lower in lowers {
            assert!(is_name(lower, lower));
            assert!(is_name(&lower.to_ascii_uppercase(), lower));
            assert!(!is_name(&lower[1..], lower));
            // Every token byte in every position: the same answer as eq_ignore_ascii_case.
            for i in 0..lower.len() {
                for &b in token.iter().chain(b"CcKkNnTtEe-") {
                    let mut name = lower.to_vec();
                    name[i] = b;
                    assert_eq!(
                        is_name(&name, lower),
                        name.eq_ignore_ascii_case(lower),
                        "{:?}",
                        String::from_utf8_lossy(&name)
                    );
                }
            }
        }
    }
}
