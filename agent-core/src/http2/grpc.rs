//! gRPC over HTTP/2: recognising a call, its method, and its status.
//!
//! A call is a request with `content-type: application/grpc` (or `application/grpc+proto`,
//! `application/grpc+json` …) and path `/package.Service/Method`. Its status is the
//! `grpc-status` of the trailers, or of a trailers-only response (one HEADERS frame with
//! END_STREAM). A response with no `grpc-status` but a non-200 `:status` (a proxy's error)
//! gets the code the gRPC project's HTTP-to-gRPC mapping gives it, as a client would see it.

/// gRPC status codes by number (https://grpc.github.io/grpc/core/md_doc_statuscodes.html).
pub const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

pub const OK: u8 = 0;
pub const UNKNOWN: u8 = 2;
pub const DEADLINE_EXCEEDED: u8 = 4;
pub const PERMISSION_DENIED: u8 = 7;
pub const RESOURCE_EXHAUSTED: u8 = 8;
pub const UNIMPLEMENTED: u8 = 12;
pub const INTERNAL: u8 = 13;
pub const UNAVAILABLE: u8 = 14;
pub const DATA_LOSS: u8 = 15;
pub const UNAUTHENTICATED: u8 = 16;

/// The name of a code (`UNKNOWN` for numbers past the table).
pub fn code_name(code: u8) -> &'static str {
    CODE_NAMES
        .get(usize::from(code))
        .copied()
        .unwrap_or("UNKNOWN")
}

/// Codes that mean the server failed (OpenTelemetry's rule for gRPC server spans), the
/// analogue of a 5xx: they count against availability. Every non-zero code counts in
/// `api_errors_total`.
pub fn is_server_failure(code: u8) -> bool {
    matches!(
        code,
        UNKNOWN | DEADLINE_EXCEEDED | UNIMPLEMENTED | INTERNAL | UNAVAILABLE | DATA_LOSS
    )
}

/// `content-type: application/grpc`, with or without a `+format` or parameters.
pub fn is_grpc_content_type(value: &[u8]) -> bool {
    const PREFIX: &[u8] = b"application/grpc";
    value.len() >= PREFIX.len()
        && value[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
        && matches!(value.get(PREFIX.len()), None | Some(b'+' | b';' | b' '))
}

/// A `grpc-status` value (a decimal number; out-of-range numbers become UNKNOWN).
pub fn parse_status(value: &[u8]) -> Option<u8> {
    let v = value.trim_ascii();
    if v.is_empty() || v.len() > 3 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = v.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0'));
    Some(if n < CODE_NAMES.len() as u32 {
        n as u8
    } else {
        UNKNOWN
    })
}

/// The gRPC code a client reports for a non-200 HTTP status without `grpc-status`
/// (gRPC's doc/http-grpc-status-mapping.md); `None` for 200.
pub fn status_from_http(status: u16) -> Option<u8> {
    Some(match status {
        200 => return None,
        400 => INTERNAL,
        401 => UNAUTHENTICATED,
        403 => PERMISSION_DENIED,
        404 => UNIMPLEMENTED,
        429 | 502 | 503 | 504 => UNAVAILABLE,
        _ => UNKNOWN,
    })
}

/// `/package.Service/Method` → (`package.Service`, `Method`).
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(&b"application/grpc"[..], true)]
    #[case(&b"application/grpc+proto"[..], true)]
    #[case(&b"Application/GRPC+json"[..], true)]
    #[case(&b"application/grpc; charset=utf-8"[..], true)]
    #[case(&b"application/grpc-web"[..], false)]
    #[case(&b"application/json"[..], false)]
    fn content_types(#[case] v: &[u8], #[case] grpc: bool) {
        assert_eq!(is_grpc_content_type(v), grpc);
    }

    #[rstest]
    #[case(&b"0"[..], Some(0))]
    #[case(&b"14"[..], Some(14))]
    #[case(&b" 16 "[..], Some(16))]
    #[case(&b"99"[..], Some(UNKNOWN))]
    #[case(&b"x"[..], None)]
    #[case(&b""[..], None)]
    fn statuses(#[case] v: &[u8], #[case] want: Option<u8>) {
        assert_eq!(parse_status(v), want);
    }

    #[test]
    fn names() {
        assert_eq!(code_name(5), "NOT_FOUND");
        assert_eq!(code_name(8), "RESOURCE_EXHAUSTED");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(200), "UNKNOWN");
        assert!(is_server_failure(UNAVAILABLE) && !is_server_failure(5));
    }

    #[rstest]
    #[case("/helloworld.Greeter/SayHello", Some(("helloworld.Greeter", "SayHello")))]
    #[case("/Svc/M", Some(("Svc", "M")))]
    #[case("/a/b/c", None)]
    #[case("/only", None)]
    #[case("//M", None)]
    fn paths(#[case] p: &str, #[case] want: Option<(&str, &str)>) {
        assert_eq!(split_path(p), want);
    }
}
