//! RFC 7541 Appendix C examples, and decoding with a table that is only partly known.

use super::encode::{indexed, literal_indexed, literal_plain, size_update};
use super::*;
use rstest::rstest;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

type Fields = Vec<(Option<String>, Option<String>)>;

fn decode(d: &mut Decoder, block: &[u8]) -> Result<(Fields, BlockSummary), HpackError> {
    let mut fields = Vec::new();
    let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
    let sum = d.decode(block, 64 * 1024, &mut |f| {
        fields.push((text(f.name), text(f.value)));
    })?;
    Ok((fields, sum))
}

fn known(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(n, v)| (Some(n.to_string()), Some(v.to_string())))
        .collect()
}

fn table(d: &Decoder) -> (usize, usize) {
    (d.table().len(), d.table().size())
}

const C3: [&str; 3] = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
];
const C4: [&str; 3] = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
];

#[rstest]
#[case::plain(C3)]
#[case::huffman(C4)]
fn rfc_requests_share_one_table(#[case] blocks: [&str; 3]) {
    let mut d = Decoder::new(64 * 1024, true);
    let base = [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ];
    assert_eq!(
        decode(&mut d, &hex(blocks[0])).expect("c.1").0,
        known(&base)
    );
    assert_eq!(table(&d), (1, 57));
    let mut second = base.to_vec();
    second.push(("cache-control", "no-cache"));
    assert_eq!(
        decode(&mut d, &hex(blocks[1])).expect("c.2").0,
        known(&second)
    );
    assert_eq!(table(&d), (2, 110));
    let third = known(&[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ]);
    assert_eq!(decode(&mut d, &hex(blocks[2])).expect("c.3").0, third);
    assert_eq!(table(&d), (3, 164));
}

#[test]
fn rfc_responses_evict_with_a_256_byte_table() {
    // C.5: the table is limited to 256 bytes (as by SETTINGS_HEADER_TABLE_SIZE + size update).
    let mut d = Decoder::new(256, true);
    let first = "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d";
    let (f, _) = decode(&mut d, &hex(first)).expect("c.5.1");
    assert_eq!(f[0], (Some(":status".into()), Some("302".into())));
    assert_eq!(table(&d), (4, 222));
    let (f, _) = decode(&mut d, &hex("4803 3330 37c1 c0bf")).expect("c.5.2");
    assert_eq!(
        f,
        known(&[
            (":status", "307"),
            ("cache-control", "private"),
            ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
            ("location", "https://www.example.com"),
        ])
    );
    assert_eq!(table(&d), (4, 222));
    let third = "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31";
    let (f, _) = decode(&mut d, &hex(third)).expect("c.5.3");
    assert_eq!(f.len(), 6);
    assert_eq!(
        f[5].1.as_deref(),
        Some("foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")
    );
    assert_eq!(table(&d), (3, 215));
}

#[test]
fn joined_late_static_and_literals_decode_dynamic_refs_are_unknown() {
    let mut d = Decoder::new(64 * 1024, false);
    let mut b = Vec::new();
    indexed(&mut b, 3); // :method POST (static)
    literal_indexed(&mut b, Ok(5), b"/pkg.Svc/Get", true); // :path, inserted
    indexed(&mut b, 70); // an entry from before we joined
    literal_plain(&mut b, Ok(64), b"x", false); // name from an unknown entry
    let (f, sum) = decode(&mut d, &b).expect("decodes");
    assert_eq!(
        f,
        vec![
            (Some(":method".into()), Some("POST".into())),
            (Some(":path".into()), Some("/pkg.Svc/Get".into())),
            (None, None),
            (None, Some("x".into())),
        ]
    );
    assert_eq!((sum.fields, sum.unknown), (4, 2));
    // The inserted entry is now index 62, whatever the peer's table held before.
    let mut b = Vec::new();
    indexed(&mut b, 62);
    let (f, sum) = decode(&mut d, &b).expect("decodes");
    assert_eq!(f, known(&[(":path", "/pkg.Svc/Get")]));
    assert_eq!(sum.unknown, 0);
}

#[test]
fn a_lost_block_makes_older_entries_unknown_not_wrong() {
    let mut d = Decoder::new(64 * 1024, true);
    let mut b = Vec::new();
    literal_indexed(&mut b, Ok(4), b"/a", false);
    decode(&mut d, &b).expect("decodes");
    // A block we never saw may have inserted entries: 62 may no longer be "/a".
    d.lose_block();
    let mut b = Vec::new();
    indexed(&mut b, 62);
    let (f, sum) = decode(&mut d, &b).expect("decodes");
    assert_eq!(f, vec![(None, None)]);
    assert_eq!(sum.unknown, 1);
}

#[test]
fn a_complete_table_refuses_references_past_its_end() {
    let mut d = Decoder::new(64 * 1024, true);
    let mut b = Vec::new();
    indexed(&mut b, 62);
    assert_eq!(decode(&mut d, &b).map(|_| ()), Err(HpackError::Index));
    assert_eq!(decode(&mut d, &[0x80]).map(|_| ()), Err(HpackError::Index));
}

#[test]
fn size_updates_past_the_cap_are_capped_and_counted() {
    let mut d = Decoder::new(100, true);
    let mut b = Vec::new();
    size_update(&mut b, 8192);
    literal_indexed(&mut b, Err(b"k1"), &[b'v'; 40], false); // 74 bytes
    literal_indexed(&mut b, Err(b"k2"), &[b'w'; 40], false); // evicts k1 at our cap
    let (_, sum) = decode(&mut d, &b).expect("decodes");
    assert_eq!(sum.capped, 1);
    assert_eq!(table(&d), (1, 74));
    // k1 may still be in the peer's larger table: unknown, not an error.
    let mut b = Vec::new();
    indexed(&mut b, 63);
    assert_eq!(decode(&mut d, &b).expect("decodes").0, vec![(None, None)]);
}

#[test]
fn size_update_to_zero_empties_the_table() {
    let mut d = Decoder::new(4096, true);
    let mut b = Vec::new();
    literal_indexed(&mut b, Err(b"k"), b"v", false);
    size_update(&mut b, 0);
    decode(&mut d, &b).expect("decodes");
    assert_eq!(table(&d), (0, 0));
}

#[rstest]
#[case::truncated_integer(&[0xff][..], HpackError::Truncated)]
#[case::integer_overflow(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f][..], HpackError::Integer)]
#[case::string_past_block(&[0x40, 0x05, b'a'][..], HpackError::Truncated)]
#[case::bad_huffman(&[0x40, 0x81, 0x00, 0x00][..], HpackError::Huffman)]
#[case::missing_value(&[0x44][..], HpackError::Truncated)]
fn malformed_blocks_are_errors(#[case] block: &[u8], #[case] want: HpackError) {
    let mut d = Decoder::new(4096, true);
    assert_eq!(decode(&mut d, block).map(|_| ()), Err(want));
}

#[test]
fn strings_longer_than_the_limit_are_refused() {
    let mut d = Decoder::new(4096, true);
    let mut b = Vec::new();
    literal_plain(&mut b, Ok(4), &[b'/'; 100], false);
    let r = d.decode(&b, 50, &mut |_| {});
    assert_eq!(r, Err(HpackError::StringTooLong));
}
