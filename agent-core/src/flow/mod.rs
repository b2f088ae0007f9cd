//! Flow table and per-direction TCP reassembly.

pub mod stats;
