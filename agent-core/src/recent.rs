//! Per-connection memos of request fields. A connection's requests usually repeat their path,
//! query, user agent and credentials; a request repeating one shares the connection's last
//! value (a reference count) instead of copying it, and a client id is derived once per
//! credential. HTTP/1 flows and HTTP/2 connections keep one [`RecentFields`] each. A new HTTP/1
//! connection may start with the memos of one that ended (`http::SpareConns`): they compare
//! by content, so what they hold is as valid for it.

use crate::identity::KnownCredentials;
use std::sync::Arc;

/// The last value of one request field on this connection.
#[derive(Debug, Default)]
pub struct Recent(Option<Arc<str>>);

impl Recent {
    /// `value`, shared with the connection's last one when it is the same text.
    pub fn share(&mut self, value: &str) -> Arc<str> {
        match &self.0 {
            Some(last) if **last == *value => Arc::clone(last),
            _ => {
                let fresh: Arc<str> = Arc::from(value);
                self.0 = Some(Arc::clone(&fresh));
                fresh
            }
        }
    }
}

/// Per-connection memos of request fields.
#[derive(Debug, Default)]
pub struct RecentFields {
    pub path: Recent,
    pub query: Recent,
    pub user_agent: Recent,
    /// The connection's last API key, token and forwarded client, and the ids derived from
    /// them.
    pub client: KnownCredentials,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_value_is_shared_and_a_new_one_replaces_it() {
        let mut r = Recent::default();
        let a = r.share("/a");
        let again = r.share("/a");
        assert!(Arc::ptr_eq(&a, &again));
        let b = r.share("/b");
        assert_eq!(&*b, "/b");
        assert!(
            !Arc::ptr_eq(&r.share("/a"), &a),
            "only the last value is kept"
        );
    }
}
