//! Writes HTTP/2 frames and header blocks: for unit tests, fuzz seeds and benchmarks (the
//! agent itself only reads them).

use super::frame::{self, Header, Kind, flags};
use super::hpack::encode;

/// Appends one frame.
pub fn frame(out: &mut Vec<u8>, kind: Kind, fl: u8, stream: u32, payload: &[u8]) {
    let h = Header {
        len: payload.len() as u32,
        kind,
        flags: fl,
        stream,
        reserved: false,
    };
    out.extend_from_slice(&h.encode());
    out.extend_from_slice(payload);
}

pub fn preface(out: &mut Vec<u8>) {
    out.extend_from_slice(frame::PREFACE);
}

pub fn settings(out: &mut Vec<u8>, values: &[(u16, u32)]) {
    let mut p = Vec::new();
    for (id, v) in values {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(out, Kind::Settings, 0, 0, &p);
}

pub fn settings_ack(out: &mut Vec<u8>) {
    frame(out, Kind::Settings, flags::ACK, 0, &[]);
}

/// HEADERS with END_HEADERS (and END_STREAM when `end`).
pub fn headers(out: &mut Vec<u8>, stream: u32, block: &[u8], end: bool) {
    let fl = flags::END_HEADERS | if end { flags::END_STREAM } else { 0 };
    frame(out, Kind::Headers, fl, stream, block);
}

pub fn data(out: &mut Vec<u8>, stream: u32, payload: &[u8], end: bool) {
    frame(
        out,
        Kind::Data,
        if end { flags::END_STREAM } else { 0 },
        stream,
        payload,
    );
}

pub fn rst_stream(out: &mut Vec<u8>, stream: u32, code: u32) {
    frame(out, Kind::RstStream, 0, stream, &code.to_be_bytes());
}

pub fn goaway(out: &mut Vec<u8>, last: u32, code: u32) {
    let mut p = last.to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    frame(out, Kind::Goaway, 0, 0, &p);
}

pub fn window_update(out: &mut Vec<u8>, stream: u32, inc: u32) {
    frame(out, Kind::WindowUpdate, 0, stream, &inc.to_be_bytes());
}

pub fn ping(out: &mut Vec<u8>, ack: bool) {
    frame(
        out,
        Kind::Ping,
        if ack { flags::ACK } else { 0 },
        0,
        &[0; 8],
    );
}

/// A gRPC length-prefixed message (uncompressed).
pub fn grpc_message(payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0];
    m.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    m.extend_from_slice(payload);
    m
}

/// A request header block as a typical client encodes it: `:method` and `:scheme` from the
/// static table, `:path`, `:authority` and the extra fields as Huffman literals with
/// incremental indexing (name from the static table where it has one).
pub fn request_block(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    match method {
        "GET" => encode::indexed(&mut b, 2),
        "POST" => encode::indexed(&mut b, 3),
        m => encode::literal_indexed(&mut b, Ok(2), m.as_bytes(), true),
    }
    encode::indexed(&mut b, 6); // :scheme http
    encode::literal_indexed(&mut b, Ok(4), path.as_bytes(), true);
    encode::literal_indexed(&mut b, Ok(1), b"localhost", true);
    for (n, v) in extra {
        field(&mut b, n, v);
    }
    b
}

/// A response header block: `:status` (static when it has an entry) and extra fields.
pub fn response_block(status: u16, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    match status {
        200 => encode::indexed(&mut b, 8),
        204 => encode::indexed(&mut b, 9),
        404 => encode::indexed(&mut b, 13),
        500 => encode::indexed(&mut b, 14),
        s => encode::literal_plain(&mut b, Ok(8), s.to_string().as_bytes(), false),
    }
    for (n, v) in extra {
        field(&mut b, n, v);
    }
    b
}

/// A trailers block (gRPC: `grpc-status` and optionally `grpc-message`).
pub fn trailers_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in fields {
        field(&mut b, n, v);
    }
    b
}

fn field(b: &mut Vec<u8>, name: &str, value: &str) {
    let static_name = super::hpack::table::STATIC
        .iter()
        .position(|(n, _)| *n == name.as_bytes())
        .map(|i| i + 1);
    match (static_name, name) {
        (_, "authorization") => {
            encode::literal_never(
                b,
                static_name.ok_or(name.as_bytes()),
                value.as_bytes(),
                true,
            );
        }
        (Some(i), _) => encode::literal_indexed(b, Ok(i), value.as_bytes(), true),
        (None, _) => encode::literal_indexed(b, Err(name.as_bytes()), value.as_bytes(), true),
    }
}

/// A whole connection: both byte streams and what a correct parser records.
#[derive(Clone, Debug, Default)]
pub struct Session {
    pub client: Vec<u8>,
    pub server: Vec<u8>,
    /// (path, status, response body bytes) of each stream, in stream-id order.
    pub expected: Vec<(String, u16, u64)>,
}

/// `streams` exchanges on one connection, `parallel` at a time: GETs with JSON bodies, POSTs
/// with a request body, and gRPC calls (one in three) with trailers; responses of a batch
/// come in reverse order with their DATA frames interleaved, the way a server multiplexes.
pub fn session(streams: usize, parallel: usize) -> Session {
    let mut s = Session::default();
    preface(&mut s.client);
    settings(&mut s.client, &[(0x3, 100), (0x4, 65_535)]);
    settings(&mut s.server, &[(0x3, 128)]);
    settings_ack(&mut s.server);
    settings_ack(&mut s.client);
    let parallel = parallel.max(1);
    let mut id = 1u32;
    let mut done = 0;
    while done < streams {
        let batch: Vec<u32> = (0..parallel.min(streams - done))
            .map(|k| id + 2 * k as u32)
            .collect();
        id += 2 * batch.len() as u32;
        for &sid in &batch {
            let n = sid / 2;
            match n % 3 {
                0 => {
                    let path = format!("/api/items/{n}?token=t{n}");
                    headers(
                        &mut s.client,
                        sid,
                        &request_block("GET", &path, &[("user-agent", "h2-test/1")]),
                        true,
                    );
                }
                1 => {
                    let path = format!("/api/orders/{n}");
                    headers(
                        &mut s.client,
                        sid,
                        &request_block("POST", &path, &[("content-type", "application/json")]),
                        false,
                    );
                    data(&mut s.client, sid, br#"{"qty":1}"#, true);
                }
                _ => {
                    let b = request_block(
                        "POST",
                        "/shop.Catalog/GetItem",
                        &[("content-type", "application/grpc"), ("te", "trailers")],
                    );
                    headers(&mut s.client, sid, &b, false);
                    data(&mut s.client, sid, &grpc_message(&n.to_be_bytes()), true);
                }
            }
        }
        for &sid in batch.iter().rev() {
            let n = sid / 2;
            let grpc = n % 3 == 2;
            let ct = if grpc {
                "application/grpc"
            } else {
                "application/json"
            };
            let status = if !grpc && n % 7 == 3 { 404 } else { 200 };
            headers(
                &mut s.server,
                sid,
                &response_block(status, &[("content-type", ct)]),
                false,
            );
        }
        for (k, &sid) in batch.iter().enumerate() {
            let n = sid / 2;
            let body = vec![b'r'; 20 + (n as usize % 5) * 37];
            if n % 3 == 2 {
                let msg = grpc_message(&body);
                data(&mut s.server, sid, &msg, false);
                let code = (n % 17).to_string();
                headers(
                    &mut s.server,
                    sid,
                    &trailers_block(&[("grpc-status", &code)]),
                    true,
                );
                s.expected
                    .push(("/shop.Catalog/GetItem".into(), 200, msg.len() as u64));
            } else {
                let (a, b) = body.split_at(k % body.len());
                data(&mut s.server, sid, a, false);
                data(&mut s.server, sid, b, true);
                let status = if n % 7 == 3 { 404 } else { 200 };
                let path = if n % 3 == 0 {
                    format!("/api/items/{n}")
                } else {
                    format!("/api/orders/{n}")
                };
                s.expected.push((path, status, body.len() as u64));
            }
        }
        done += batch.len();
    }
    s
}
