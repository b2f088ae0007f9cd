//! HTTP/2 (RFC 9113) over one TCP connection, and gRPC on top of it.
//!
//! ```text
//! reassembled bytes ─▶ reader (frames, per direction) ─▶ conn (header blocks, HPACK,
//!                      streams by id) ─▶ one Transaction per stream
//! ```
//!
//! - [`frame`]: frame headers, per-type rules, padding and priority fields.
//! - [`reader`]: one direction's bytes into frames; finds frame boundaries by shape after a
//!   gap or in a connection joined after its start.
//! - [`hpack`]: header decoding that keeps going with a partly unknown dynamic table.
//! - [`conn`] and [`stream`]: streams paired by id, RST_STREAM, GOAWAY, timeouts.
//! - [`grpc`]: calls, methods and status codes.
//!
//! Bounds (all counted when hit, see [`H2Stats`]): streams per connection, bytes of one header
//! block, the HPACK table of each direction, bytes held while searching for a frame boundary.
//! A frame that breaks RFC 9113 (or a header block HPACK cannot decode) ends parsing of that
//! connection, counted by reason; its open streams are recorded when the connection ends.

pub mod build;
pub mod conn;
pub mod frame;
pub mod grpc;
pub mod hpack;
pub mod reader;
pub mod stats;
pub mod stream;

pub use conn::{H2Conn, H2Ctx};
pub use stats::{H2Stats, Malformed};

/// Limits of the HTTP/2 layer; `Default` gives the documented values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H2Config {
    /// Streams tracked at once per connection; a stream past it is not recorded (counted in
    /// `streams_over_limit`). Default 256 (servers usually allow 100–128 concurrent streams).
    pub max_streams: usize,
    /// Bytes of one compressed header block (HEADERS or PUSH_PROMISE plus CONTINUATION); a
    /// larger block is not decoded, its stream's fields are unknown and the HPACK table is
    /// unknown afterwards (counted). Default 64 KiB.
    pub max_header_block_bytes: usize,
    /// Largest HPACK dynamic table kept per direction, whatever SETTINGS_HEADER_TABLE_SIZE
    /// allows (size updates above it are counted). Default 64 KiB (servers use 4 KiB).
    pub max_table_bytes: usize,
}

impl Default for H2Config {
    fn default() -> Self {
        H2Config {
            max_streams: 256,
            max_header_block_bytes: 64 * 1024,
            max_table_bytes: 64 * 1024,
        }
    }
}

#[cfg(test)]
mod tests;
