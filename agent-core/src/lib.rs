//! apitap's pure logic, with no aya dependency and no root: everything between a captured TCP
//! segment and an exported number.
//!
//! ```text
//! segment ─▶ flow (table + reassembly) ─▶ http (framing + pairing) ─▶ Transaction
//!        ─▶ route (templates) ─▶ aggregate (metrics, sketches, usage) ─▶ export (Prometheus)
//! ```
//! `pcap` feeds the same path from capture files (`apitap replay`).

pub mod aggregate;
pub mod engine;
pub mod export;
pub mod flow;
pub mod http;
pub mod identity;
pub mod pcap;
pub mod pipeline;
pub mod route;
pub mod segment;
pub mod time;
pub mod transaction;

pub use segment::{Direction, Segment, TcpFlags};
pub use transaction::{ErrorType, Transaction};
