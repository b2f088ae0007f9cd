//! Arbitrary bytes as a client's request stream (split into segments), answered by a server:
//! head parsing, body framing, resync and pairing must never panic and keep budgets.
#![no_main]

mod common;

use agent_core::Direction;
use agent_core::engine::Engine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (sizes, body) = data.split_at(data.len().min(4));
    let mut engine = Engine::new(common::small_config());
    let mut out = Vec::new();
    let mut f = common::Feeder::new(40000);
    f.open(&mut engine, &mut out);
    f.stream(&mut engine, &mut out, Direction::ToServer, body, sizes);
    common::check(&engine, &out, 0);
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    for _ in 0..3 {
        f.stream(&mut engine, &mut out, Direction::ToClient, ok, &[]);
    }
    common::check(&engine, &out, 0);
    engine.finish(&mut out);
    common::check(&engine, &out, 0);
    assert_eq!(engine.stats().flows.tracked, 0);
    // Heads and chunked bodies on their own.
    let _ = agent_core::http::head::parse_request(
        body,
        &engine.config().head,
        &engine.config().identity,
    );
    let mut whole = agent_core::http::chunked::ChunkDecoder::default();
    let mut bytewise = agent_core::http::chunked::ChunkDecoder::default();
    let a = whole.feed(body);
    let mut b = Ok(0);
    for byte in body {
        match bytewise.feed(std::slice::from_ref(byte)) {
            Ok(0) => break,
            Ok(n) => b = b.map(|t| t + n),
            Err(e) => {
                b = Err(e);
                break;
            }
        }
    }
    assert_eq!(
        a.is_ok(),
        b.is_ok(),
        "split decoding agrees with whole decoding"
    );
    if let (Ok(x), Ok(y)) = (a, b) {
        assert_eq!(x, y);
        assert_eq!(whole.body_len(), bytewise.body_len());
    }
});
