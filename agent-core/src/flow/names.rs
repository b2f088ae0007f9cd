//! Texts every record of many flows shares, made once: the client IP as text (one client
//! opens many connections). A new connection then costs no formatting and no allocation for
//! it, and its flows share one copy. (Service names are made once per server by the engine's
//! [`crate::server::ResolveServer`].)

use foldhash::{HashMap, HashMapExt};
use std::net::IpAddr;
use std::sync::Arc;

/// Client addresses remembered; past it the map starts over (a bound, not a working set).
const MAX_CLIENT_IPS: usize = 16_384;

/// Interned per-flow texts.
#[derive(Debug, Default)]
pub struct Names {
    client_ips: HashMap<IpAddr, Arc<str>>,
}

impl Names {
    pub fn new() -> Names {
        Names {
            client_ips: HashMap::new(),
        }
    }

    /// The client IP as text.
    pub fn client_ip(&mut self, ip: IpAddr) -> Arc<str> {
        if let Some(text) = self.client_ips.get(&ip) {
            return Arc::clone(text);
        }
        if self.client_ips.len() >= MAX_CLIENT_IPS {
            self.client_ips.clear();
        }
        let text: Arc<str> = Arc::from(ip.to_string());
        self.client_ips.insert(ip, Arc::clone(&text));
        text
    }
}
