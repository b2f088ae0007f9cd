//! Texts every record of many flows shares, made once: the client IP as text (one client
//! opens many connections) and the service name of a server port. A new connection then costs
//! no formatting and no allocation for them, and its flows share one copy.

use foldhash::{HashMap, HashMapExt};
use std::net::IpAddr;
use std::sync::Arc;

/// Client addresses remembered; past it the map starts over (a bound, not a working set).
const MAX_CLIENT_IPS: usize = 16_384;

/// Interned per-flow texts.
#[derive(Debug, Default)]
pub struct Names {
    client_ips: HashMap<IpAddr, Arc<str>>,
    services: HashMap<u16, Arc<str>>,
}

impl Names {
    pub fn new() -> Names {
        Names {
            client_ips: HashMap::new(),
            services: HashMap::new(),
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

    /// The service name of a server port, made by `name` the first time.
    pub fn service(&mut self, port: u16, name: impl FnOnce() -> Arc<str>) -> Arc<str> {
        Arc::clone(self.services.entry(port).or_insert_with(name))
    }
}
