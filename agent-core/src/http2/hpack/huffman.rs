//! The HPACK Huffman code (RFC 7541 Appendix B), decoded as a canonical code.
//!
//! The code in the RFC is canonical: sorted by (length, symbol), each code is the previous one
//! plus one, shifted left when the length grows. So the 257 code lengths are all the table we
//! need; the codes, and the per-length limits the decoder compares against, are derived from
//! them at compile time (and a unit test checks a few codes against the RFC's table).

/// Code length in bits of each symbol 0..=255 and EOS (256), RFC 7541 Appendix B.
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, //
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, //
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, //
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, //
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, //
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, //
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, //
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, //
    30,
];

const EOS: u16 = 256;
const MAX_LEN: usize = 30;

/// Per code length: the first code of that length, how many codes have it, and where its
/// symbols start in `SYMBOLS`.
struct Canonical {
    first: [u32; MAX_LEN + 1],
    count: [u32; MAX_LEN + 1],
    offset: [u16; MAX_LEN + 1],
    /// Symbols sorted by (length, symbol).
    symbols: [u16; 257],
    /// Lengths that occur, ascending (0 ends the list).
    lengths: [u8; MAX_LEN + 1],
}

const fn canonical() -> Canonical {
    let mut count = [0u32; MAX_LEN + 1];
    let mut i = 0;
    while i < 257 {
        count[LENGTHS[i] as usize] += 1;
        i += 1;
    }
    let mut first = [0u32; MAX_LEN + 1];
    let mut offset = [0u16; MAX_LEN + 1];
    let mut lengths = [0u8; MAX_LEN + 1];
    let mut code = 0u32;
    let mut at = 0u16;
    let mut n = 0;
    let mut len = 1;
    while len <= MAX_LEN {
        code <<= 1;
        first[len] = code;
        offset[len] = at;
        if count[len] > 0 {
            lengths[n] = len as u8;
            n += 1;
        }
        code += count[len];
        at += count[len] as u16;
        len += 1;
    }
    let mut symbols = [0u16; 257];
    let mut fill = offset;
    let mut s = 0;
    while s < 257 {
        let l = LENGTHS[s] as usize;
        symbols[fill[l] as usize] = s as u16;
        fill[l] += 1;
        s += 1;
    }
    Canonical {
        first,
        count,
        offset,
        symbols,
        lengths,
    }
}

static CODE: Canonical = canonical();

/// Why a Huffman string is invalid (RFC 7541 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HuffmanError {
    /// The EOS symbol inside the string.
    Eos,
    /// More than 7 bits of padding, or padding that is not the EOS prefix (all ones).
    Padding,
}

/// Decodes `input` and appends the bytes to `out`.
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    // Left-aligned bit accumulator: the next unread bit is bit 63.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    let mut pos = 0;
    out.reserve(input.len() * 8 / 5);
    loop {
        while bits <= 56 && pos < input.len() {
            acc |= u64::from(input[pos]) << (56 - bits);
            bits += 8;
            pos += 1;
        }
        if bits == 0 {
            return Ok(());
        }
        let mut matched = false;
        for &len in CODE.lengths.iter() {
            let len = u32::from(len);
            if len == 0 || len > bits {
                break;
            }
            let code = (acc >> (64 - len)) as u32;
            let l = len as usize;
            let rel = code.wrapping_sub(CODE.first[l]);
            if code >= CODE.first[l] && rel < CODE.count[l] {
                let sym = CODE.symbols[usize::from(CODE.offset[l]) + rel as usize];
                if sym == EOS {
                    return Err(HuffmanError::Eos);
                }
                out.push(sym as u8);
                acc <<= len;
                bits -= len;
                matched = true;
                break;
            }
        }
        if !matched {
            // What is left must be padding: at most 7 bits, all ones.
            let ones = (acc >> (64 - bits)) as u32;
            return if bits <= 7 && ones == (1u32 << bits) - 1 {
                Ok(())
            } else {
                Err(HuffmanError::Padding)
            };
        }
    }
}

/// Encodes `input` (for tests and fuzz seeds; the agent only decodes).
pub fn encode(input: &[u8], out: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in input {
        let (code, len) = code_of(u16::from(b));
        acc = (acc << len) | u64::from(code);
        bits += len;
        while bits >= 8 {
            out.push((acc >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    if bits > 0 {
        let pad = 8 - bits;
        out.push(((acc << pad) | ((1 << pad) - 1)) as u8);
    }
}

/// The (code, length) of a symbol.
fn code_of(sym: u16) -> (u32, u32) {
    let l = usize::from(LENGTHS[usize::from(sym)]);
    let start = usize::from(CODE.offset[l]);
    let rank = CODE.symbols[start..start + CODE.count[l] as usize]
        .iter()
        .position(|s| *s == sym)
        .expect("every symbol is listed under its own length");
    (CODE.first[l] + rank as u32, l as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    // RFC 7541 Appendix B rows.
    #[case::zero(0, 0x1ff8, 13)]
    #[case::space(b' '.into(), 0x14, 6)]
    #[case::digit_0(b'0'.into(), 0x0, 5)]
    #[case::a(b'a'.into(), 0x3, 5)]
    #[case::byte_255(255, 0x3ffffee, 26)]
    #[case::eos(256, 0x3fffffff, 30)]
    fn codes_match_the_rfc_table(#[case] sym: u16, #[case] code: u32, #[case] len: u32) {
        assert_eq!(code_of(sym), (code, len));
    }

    #[rstest]
    // RFC 7541 C.4.1 and C.6.1.
    #[case::www_example_com(&b"www.example.com"[..], "f1e3c2e5f23a6ba0ab90f4ff")]
    #[case::no_cache(&b"no-cache"[..], "a8eb10649cbf")]
    #[case::status_302(&b"302"[..], "6402")]
    #[case::date(&b"Mon, 21 Oct 2013 20:13:21 GMT"[..], "d07abe941054d444a8200595040b8166e082a62d1bff")]
    fn rfc_examples_round_trip(#[case] text: &[u8], #[case] hex: &str) {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        let mut out = Vec::new();
        decode(&bytes, &mut out).expect("decodes");
        assert_eq!(out, text);
        let mut enc = Vec::new();
        encode(text, &mut enc);
        assert_eq!(enc, bytes);
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let mut enc = Vec::new();
        encode(&all, &mut enc);
        let mut out = Vec::new();
        decode(&enc, &mut out).expect("decodes");
        assert_eq!(out, all);
    }

    #[rstest]
    #[case::eos_inside(&[0xff, 0xff, 0xff, 0xfc][..], HuffmanError::Eos)]
    #[case::long_padding(&[0xff][..], HuffmanError::Padding)]
    #[case::zero_padding(&[0x00][..], HuffmanError::Padding)] // "0" (00000) then 000 padding
    fn invalid_strings_are_refused(#[case] input: &[u8], #[case] want: HuffmanError) {
        assert_eq!(decode(input, &mut Vec::new()), Err(want));
    }
}
