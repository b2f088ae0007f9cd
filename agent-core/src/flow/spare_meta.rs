//! The metas ([`ConnMeta`]) of connections that ended, kept for new connections to renew.
//!
//! A meta holds three reference-counted texts every record of its connection shares: the
//! service name, the server's attribution and the client IP. Building one for each new
//! connection and dropping it at the end wrote six atomic reference counts per connection. A
//! kept meta renewed for the same server and client writes none: the resolver leaves a field
//! that already holds its answer as it is ([`ResolveServer::resolve_into`]), and the client
//! IP's text is kept when the address is the same. With one request per connection that made
//! the analysis thread about 7 % cheaper (docs/PERFORMANCE.md, "A new connection renews").
//! At most [`MAX_SPARE_METAS`] are kept (about 100 bytes each).

use std::net::SocketAddr;

use super::names::Names;
use crate::server::{ResolveServer, Server, Skip};
use crate::transaction::ConnMeta;

/// Metas kept at most: more than the connections that end between two that open, in any
/// steady state; a burst of closes beyond it drops the rest as before.
pub const MAX_SPARE_METAS: usize = 64;

#[derive(Debug, Default)]
pub struct SpareMetas {
    kept: Vec<ConnMeta>,
}

impl SpareMetas {
    /// The meta of a new connection `client` -> `server`: a kept one renewed when there is
    /// one. `Err` when the server is not tracked (the kept meta stays kept).
    pub fn take(
        &mut self,
        client: SocketAddr,
        server: SocketAddr,
        resolver: &mut dyn ResolveServer,
        names: &mut Names,
    ) -> Result<ConnMeta, Skip> {
        let Some(kept) = self.kept.pop() else {
            let found = resolver.resolve(server)?;
            return Ok(ConnMeta::new(
                client,
                server,
                found,
                names.client_ip(client.ip()),
            ));
        };
        let ConnMeta {
            client: kept_client,
            server: kept_server,
            service,
            attribution,
            client_ip,
        } = kept;
        let mut found = Server {
            service,
            attribution,
        };
        if let Err(skip) = resolver.resolve_into(server, &mut found) {
            self.kept
                .push(ConnMeta::new(kept_client, kept_server, found, client_ip));
            return Err(skip);
        }
        let client_ip = if kept_client.ip() == client.ip() {
            client_ip
        } else {
            names.client_ip(client.ip())
        };
        Ok(ConnMeta::new(client, server, found, client_ip))
    }

    /// Keeps the meta of a connection that ended, unless [`MAX_SPARE_METAS`] are kept.
    pub fn keep(&mut self, meta: ConnMeta) {
        if self.kept.len() < MAX_SPARE_METAS {
            self.kept.push(meta);
        }
    }

    /// Heap bytes of the kept metas (their shared texts are counted where they are made).
    pub fn heap_bytes(&self) -> usize {
        self.kept.capacity() * std::mem::size_of::<ConnMeta>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::PortNames;
    use std::sync::Arc;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    /// Excludes one port, names the others `port-N`.
    struct ExcludingPort(u16, PortNames);

    impl ResolveServer for ExcludingPort {
        fn resolve(&mut self, server: SocketAddr) -> Result<Server, Skip> {
            if server.port() == self.0 {
                return Err(Skip::Excluded);
            }
            self.1.resolve(server)
        }
    }

    #[test]
    fn a_renewed_meta_equals_a_new_one_and_shares_what_was_already_right() {
        let mut resolver = PortNames::new([(8080, "users".to_string())]);
        let mut names = Names::new();
        let mut spares = SpareMetas::default();
        let (a, b, server) = (
            addr("10.0.0.7:40000"),
            addr("10.0.0.7:40001"),
            addr("10.0.0.1:8080"),
        );
        let first = spares
            .take(a, server, &mut resolver, &mut names)
            .expect("tracked");
        let (service, client_ip) = (Arc::clone(&first.service), Arc::clone(&first.client_ip));
        spares.keep(first);
        let second = spares
            .take(b, server, &mut resolver, &mut names)
            .expect("tracked");
        let fresh = ConnMeta::new(
            b,
            server,
            resolver.resolve(server).expect("tracked"),
            names.client_ip(b.ip()),
        );
        assert_eq!(second, fresh);
        assert!(Arc::ptr_eq(&second.service, &service));
        assert!(Arc::ptr_eq(&second.client_ip, &client_ip));

        // Another server and another client: both texts are replaced.
        spares.keep(second);
        let (c, other) = (addr("10.0.0.9:40000"), addr("10.0.0.1:9090"));
        let third = spares
            .take(c, other, &mut resolver, &mut names)
            .expect("tracked");
        assert_eq!(&*third.service, "port-9090");
        assert_eq!(&*third.client_ip, "10.0.0.9");
        assert_eq!((third.client, third.server), (c, other));
    }

    #[test]
    fn an_untracked_server_leaves_the_kept_meta_kept() {
        let mut resolver = ExcludingPort(9999, PortNames::default());
        let mut names = Names::new();
        let mut spares = SpareMetas::default();
        let meta = spares
            .take(
                addr("10.0.0.7:40000"),
                addr("10.0.0.1:8080"),
                &mut resolver,
                &mut names,
            )
            .expect("tracked");
        spares.keep(meta);
        let skipped = spares.take(
            addr("10.0.0.7:40001"),
            addr("10.0.0.1:9999"),
            &mut resolver,
            &mut names,
        );
        assert_eq!(skipped, Err(Skip::Excluded));
        assert_eq!(spares.kept.len(), 1);
        assert_eq!(&*spares.kept[0].service, "port-8080");
    }

    #[test]
    fn at_most_the_bound_is_kept() {
        let mut resolver = PortNames::default();
        let mut names = Names::new();
        let mut spares = SpareMetas::default();
        let metas: Vec<ConnMeta> = (0..MAX_SPARE_METAS + 10)
            .map(|i| {
                ConnMeta::new(
                    addr(&format!("10.0.0.7:{}", 1000 + i)),
                    addr("10.0.0.1:80"),
                    resolver.resolve(addr("10.0.0.1:80")).expect("tracked"),
                    names.client_ip(addr("10.0.0.7:1").ip()),
                )
            })
            .collect();
        for m in metas {
            spares.keep(m);
        }
        assert_eq!(spares.kept.len(), MAX_SPARE_METAS);
    }
}
