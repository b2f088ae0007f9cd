//! Values that records share by `Arc` (service names, attributions, client ids): assigned and
//! compared by pointer, so that renewing a record, a connection's meta or a cache for the same
//! value writes no reference count (each clone or drop of an `Arc` is an atomic write).

use std::sync::Arc;

/// `src` into `dst`, keeping `dst`'s `Arc` when it is `src`'s own (no count written).
pub(crate) fn assign_arc<T: ?Sized>(dst: &mut Arc<T>, src: &Arc<T>) {
    if !Arc::ptr_eq(dst, src) {
        *dst = Arc::clone(src);
    }
}

/// [`assign_arc`] for optional fields.
pub(crate) fn assign_shared<T: ?Sized>(dst: &mut Option<Arc<T>>, src: &Option<Arc<T>>) {
    match (dst.as_mut(), src) {
        (Some(d), Some(s)) => assign_arc(d, s),
        _ => dst.clone_from(src),
    }
}

/// Whether two optional shared values are the same allocation (both absent counts as the
/// same): the identity check of the one-entry caches keyed by a transaction's `Arc`s.
pub(crate) fn same<T: ?Sized>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}
