//! HTTP/2 connection tests: frames written with [`super::build`], fed to an [`H2Conn`] as
//! reassembled pieces, records checked field by field.

mod engine;
mod grpc;
mod recovery;
mod streams;

use super::build;
use super::{H2Config, H2Conn, H2Ctx, H2Stats};
use crate::identity::IdentityConfig;
use crate::spares::Spares;
use crate::stream::Piece;
use crate::{ConnMeta, Direction, Records, Transaction};

pub const T0: u64 = 1_795_585_921_000_000_000;
pub const C: Direction = Direction::ToServer;
pub const S: Direction = Direction::ToClient;

pub struct Harness {
    pub conn: H2Conn,
    pub cfg: H2Config,
    pub identity: IdentityConfig,
    pub meta: ConnMeta,
    pub out: Records,
    pub spares: Spares,
    pub stats: H2Stats,
    pub ts: u64,
}

impl Harness {
    pub fn new(fresh: bool) -> Harness {
        Harness::with(fresh, H2Config::default())
    }

    pub fn with(fresh: bool, cfg: H2Config) -> Harness {
        let mut stats = H2Stats::default();
        let conn = H2Conn::new(fresh, &cfg, &mut stats);
        let meta = ConnMeta::new(
            "192.0.2.1:40000".parse().expect("addr"),
            "192.0.2.2:8080".parse().expect("addr"),
            "port-8080".into(),
            "192.0.2.1".into(),
        );
        Harness {
            conn,
            cfg,
            identity: IdentityConfig::default(),
            meta,
            out: Vec::new(),
            spares: Spares::default(),
            stats,
            ts: T0,
        }
    }

    /// A fresh connection after the preface and both SETTINGS.
    pub fn opened() -> Harness {
        let mut h = Harness::new(true);
        let mut c = Vec::new();
        build::preface(&mut c);
        build::settings(&mut c, &[(3, 100), (4, 65535)]);
        h.send(C, &c);
        let mut s = Vec::new();
        build::settings(&mut s, &[(3, 128)]);
        build::settings_ack(&mut s);
        h.send(S, &s);
        let mut c = Vec::new();
        build::settings_ack(&mut c);
        h.send(C, &c);
        h
    }

    pub fn piece(&mut self, dir: Direction, piece: Piece<'_>) {
        self.ts += 1_000;
        let mut cx = H2Ctx {
            cfg: &self.cfg,
            identity: &self.identity,
            meta: &self.meta,
            out: &mut self.out,
            spares: &mut self.spares,
        };
        self.conn
            .feed(dir, piece, self.ts, &mut cx, &mut self.stats);
    }

    pub fn send(&mut self, dir: Direction, bytes: &[u8]) {
        self.piece(dir, Piece::Data(bytes));
    }

    pub fn expire(&mut self, now: u64, timeout: u64) {
        let mut cx = H2Ctx {
            cfg: &self.cfg,
            identity: &self.identity,
            meta: &self.meta,
            out: &mut self.out,
            spares: &mut self.spares,
        };
        self.conn.expire(now, timeout, &mut cx, &mut self.stats);
    }

    pub fn close(&mut self, error: crate::ErrorType) {
        let mut cx = H2Ctx {
            cfg: &self.cfg,
            identity: &self.identity,
            meta: &self.meta,
            out: &mut self.out,
            spares: &mut self.spares,
        };
        self.conn.close(error, self.ts, &mut cx, &mut self.stats);
    }

    /// Records sorted by path then method (stream completion order varies by test).
    pub fn paths(&self) -> Vec<(Option<&str>, Option<u16>)> {
        self.out
            .iter()
            .map(|t| (t.path.as_deref(), t.status))
            .collect()
    }
}

/// One GET on `stream` with a `len`-byte response body.
pub fn get(stream: u32, path: &str) -> Vec<u8> {
    let mut c = Vec::new();
    build::headers(
        &mut c,
        stream,
        &build::request_block("GET", path, &[]),
        true,
    );
    c
}

pub fn ok(stream: u32, body: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    build::headers(
        &mut s,
        stream,
        &build::response_block(200, &[("content-type", "text/plain")]),
        false,
    );
    build::data(&mut s, stream, body, true);
    s
}
