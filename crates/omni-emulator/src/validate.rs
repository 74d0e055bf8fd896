//! Omni's server-side validations (omni-api.md §4).

use crate::model::Res;
use crate::store::Store;

/// Create validations; returns the collected error messages.
pub fn on_create(store: &Store, r: &Res) -> Vec<String> {
    let _ = (store, r);
    Vec::new()
}

/// Update validations (`old` is `None` when the resource is missing).
pub fn on_update(store: &Store, old: Option<&Res>, new: &Res) -> Vec<String> {
    let _ = (store, old, new);
    Vec::new()
}

/// Destroy / teardown validations.
pub fn on_destroy(store: &Store, existing: Option<&Res>) -> Vec<String> {
    let _ = (store, existing);
    Vec::new()
}
