//! Requests from a client, arbitrary bytes as the server's response stream.
#![no_main]

mod common;

use agent_core::Direction;
use agent_core::engine::Engine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, resp) = data.split_at(data.len().min(5));
    let (sizes, method) = match head {
        [m, rest @ ..] => (rest, *m),
        [] => (&[][..], 0),
    };
    let req: &[u8] = match method % 4 {
        0 => b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        1 => b"HEAD /a HTTP/1.1\r\n\r\n",
        2 => b"CONNECT h:443 HTTP/1.1\r\n\r\n",
        _ => b"PUT /u HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
    };
    let mut engine = Engine::new(common::small_config());
    let mut out = Vec::new();
    let mut f = common::Feeder::new(40001);
    f.open(&mut engine, &mut out);
    f.stream(&mut engine, &mut out, Direction::ToServer, req, &[]);
    f.stream(&mut engine, &mut out, Direction::ToClient, resp, sizes);
    common::check(&engine, &out, 0);
    engine.finish(&mut out);
    common::check(&engine, &out, 0);
    // Every request yields exactly one record, whatever the server sent.
    assert!(out.len() >= usize::from(method % 4 != 0));
    let _ = agent_core::http::head::parse_response(resp, &engine.config().head);
});
