//! Route templates: the `endpoint` label and `http.route`.

pub mod method;

pub use method::{METHODS, method_index, normalize_method};
