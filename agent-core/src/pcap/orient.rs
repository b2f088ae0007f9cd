//! Which end of a TCP connection is the server.
//!
//! With watched ports the server is the end whose port is watched. Without, it is inferred once
//! per connection and remembered: the end that received a SYN (or sent a SYN-ACK); else the end
//! whose first payload is an HTTP response / whose peer sent a request line; else the lower port.

use std::net::SocketAddr;

use foldhash::HashMap;

use super::ip::TcpPacket;
use crate::{Direction, TcpFlags};

/// Connections remembered at once; past it the table is cleared (and counted) rather than grown.
const MAX_REMEMBERED: usize = 1 << 20;

/// An oriented packet: (client, server, direction).
pub type Oriented = (SocketAddr, SocketAddr, Direction);

/// Decides the server side of each packet's connection.
#[derive(Debug, Default)]
pub struct Orienter {
    ports: Vec<u16>,
    servers: HashMap<(SocketAddr, SocketAddr), Remembered>,
    /// Times the table was cleared because it was full.
    pub resets: u64,
}

#[derive(Clone, Copy, Debug)]
struct Remembered {
    server: SocketAddr,
    /// FIN seen from the client (bit 0) and the server (bit 1).
    fins: u8,
}

impl Orienter {
    /// `ports` empty: infer per connection.
    pub fn new(ports: &[u16]) -> Orienter {
        Orienter {
            ports: ports.to_vec(),
            ..Orienter::default()
        }
    }

    /// Orients a packet; `None` when ports are given and neither end uses one.
    pub fn orient(&mut self, p: &TcpPacket<'_>) -> Option<Oriented> {
        if !self.ports.is_empty() {
            let server = if self.ports.contains(&p.dst.port()) {
                p.dst
            } else if self.ports.contains(&p.src.port()) {
                p.src
            } else {
                return None;
            };
            return Some(oriented(p, server));
        }
        Some(self.infer(p))
    }

    fn infer(&mut self, p: &TcpPacket<'_>) -> Oriented {
        let key = if p.src <= p.dst {
            (p.src, p.dst)
        } else {
            (p.dst, p.src)
        };
        let flags = TcpFlags(p.flags);
        let fin_bit = |d: Direction| if d == Direction::ToServer { 1 } else { 2 };
        // A SYN starts a connection (possibly reusing the 4-tuple): decide afresh.
        let syn_server = flags
            .syn()
            .then_some(if flags.ack() { p.src } else { p.dst });
        if syn_server.is_none()
            && let Some(known) = self.servers.get_mut(&key)
        {
            let o = oriented(p, known.server);
            if flags.fin() {
                known.fins |= fin_bit(o.2);
            }
            if flags.rst() || known.fins == 3 {
                self.servers.remove(&key);
            }
            return o;
        }
        let o = oriented(p, syn_server.unwrap_or_else(|| guess(p)));
        if !flags.rst() {
            if self.servers.len() >= MAX_REMEMBERED && !self.servers.contains_key(&key) {
                self.servers.clear();
                self.resets += 1;
            }
            let fins = if flags.fin() { fin_bit(o.2) } else { 0 };
            self.servers.insert(key, Remembered { server: o.1, fins });
        }
        o
    }

    /// Connections currently remembered.
    pub fn remembered(&self) -> usize {
        self.servers.len()
    }
}

fn oriented(p: &TcpPacket<'_>, server: SocketAddr) -> Oriented {
    if server == p.dst {
        (p.src, p.dst, Direction::ToServer)
    } else {
        (p.dst, p.src, Direction::ToClient)
    }
}

/// The server of a connection first seen mid-stream.
fn guess(p: &TcpPacket<'_>) -> SocketAddr {
    if p.payload.starts_with(b"HTTP/1.") {
        p.src
    } else if looks_like_request_line(p.payload) {
        p.dst
    } else if p.src.port() < p.dst.port() {
        p.src
    } else {
        p.dst
    }
}

/// `TOKEN SP ...` with an upper-case method token of 3 to 10 letters.
fn looks_like_request_line(payload: &[u8]) -> bool {
    let method_len = payload
        .iter()
        .take(11)
        .take_while(|b| b.is_ascii_uppercase())
        .count();
    (3..=10).contains(&method_len) && payload.get(method_len) == Some(&b' ')
}
