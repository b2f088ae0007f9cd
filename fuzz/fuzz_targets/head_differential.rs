//! The head parser's fast path against httparse: on any bytes, the request and response head
//! parsers must return exactly what the httparse path alone returns (`head::reference`). The
//! bytes are tried as they are and after a valid start line, so the fuzzer spends its time in
//! the headers, where the two paths differ most.
#![no_main]

use agent_core::http::HeadLimits;
use agent_core::http::head::{self, reference};
use agent_core::identity::IdentityConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id = IdentityConfig {
        trusted_proxies: vec!["10.0.0.0/8".parse().expect("cidr")],
        ..IdentityConfig::default()
    };
    // A small header limit as well, so the limit's edge is reached.
    let limits = [
        HeadLimits::default(),
        HeadLimits {
            max_headers: 3,
            ..HeadLimits::default()
        },
    ];
    let request = [b"GET /a?b=c HTTP/1.1\r\n".as_slice(), data].concat();
    let response = [b"HTTP/1.1 200 OK\r\n".as_slice(), data].concat();
    for l in &limits {
        for bytes in [data, request.as_slice()] {
            assert_eq!(
                head::parse_request_prefix(bytes, l, &id),
                reference::parse_request_prefix(bytes, l, &id),
                "request {bytes:?}"
            );
        }
        for bytes in [data, response.as_slice()] {
            assert_eq!(
                head::parse_response_prefix(bytes, l),
                reference::parse_response_prefix(bytes, l),
                "response {bytes:?}"
            );
        }
    }
});
