//! apitap's pure logic, with no aya dependency and no root: everything between a captured TCP
//! segment and an exported number.
//!
//! ```text
//! segment ─▶ engine (flow table, budgets, timeouts)
//!        ─▶ flow (reassembly per direction ─▶ stream pieces ─▶ protocol: http …) ─▶ Transaction
//!        ─▶ route (templates) ─▶ aggregate (metrics, sketches, usage) ─▶ export (Prometheus)
//! ```
//! Each layer imports only the layers below it and counts what it sees in its own stats
//! (`FlowStats`, `ReassemblyStats`, `HttpStats`); the engine keeps them side by side and
//! `pipeline` sums them into the exported `apitap_*` figures. `pcap` feeds the same path from
//! capture files (`apitap replay`).

pub mod aggregate;
pub mod ascii;
pub mod engine;
pub mod export;
pub mod flow;
pub mod http;
pub mod http2;
pub mod identity;
pub mod pcap;
pub mod pipeline;
pub mod recent;
pub mod route;
pub mod segment;
pub mod series;
pub mod server;
mod shared;
pub mod spares;
pub mod stream;
pub mod synthetic;
pub mod time;
pub mod transaction;

pub use segment::{Direction, Segment, TcpFlags};
pub use server::{Attribution, ResolveServer, Server};
pub use transaction::{ConnMeta, ErrorType, Records, Rpc, Transaction};
