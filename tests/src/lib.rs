//! Helpers for the root end-to-end tests: namespaces, real servers, the agent under test.
