//! Which path segments are identifiers rather than names.
//!
//! A segment becomes `{id}` when it is: all decimal digits; a UUID (8-4-4-4-12 hex); 16 or more
//! hex digits (hashes, object ids); a date (`2026-11-25`, optionally followed by a time); or a
//! long mixed token (16+ characters of `[A-Za-z0-9_-]` with at least 3 digits and a letter:
//! base64/base62 keys, slugs with embedded ids). Short words with a digit (`v1`, `oauth2`) stay.

/// True when `seg` looks like a value rather than part of the API's vocabulary.
pub fn looks_like_id(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    if is_uuid(b) || is_date_prefixed(b) {
        return true;
    }
    if b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit) {
        return true;
    }
    if b.len() >= 16
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
    {
        let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
        let letters = b.iter().filter(|c| c.is_ascii_alphabetic()).count();
        return digits >= 3 && letters >= 1;
    }
    false
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `YYYY-MM-DD` alone or followed by `T`/`_`/space and anything (timestamps).
fn is_date_prefixed(b: &[u8]) -> bool {
    b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
        && (b.len() == 10 || matches!(b[10], b'T' | b't' | b'_' | b' '))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::number("42", true)]
    #[case::long_number("12345678901234567890", true)]
    #[case::uuid("123e4567-e89b-12d3-a456-426614174000", true)]
    #[case::sha1_hash("da39a3ee5e6b4b0d3255bfef95601890afd80709", true)]
    #[case::mongo_object_id_24_hex("507f1f77bcf86cd799439011", true)]
    #[case::date("2026-11-25", true)]
    #[case::timestamp("2026-11-25T05:52:01Z", true)]
    #[case::base62_token("a8Fk2LmQ9zR4tY7wX1", true)]
    #[case::word("users", false)]
    #[case::version("v1", false)]
    #[case::short_mixed("oauth2", false)]
    #[case::long_word_without_digits("authentication-providers", false)]
    #[case::short_hex_word("cafe", false)]
    #[case::empty("", false)]
    fn classifies_segment(#[case] seg: &str, #[case] id: bool) {
        assert_eq!(looks_like_id(seg), id, "{seg}");
    }
}
