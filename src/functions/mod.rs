//! Provider functions (`provider::omni::*`). One module per function; add each to [`all`] with
//! `tfplugin::function(..)`.

use std::sync::Arc;

/// Every provider function.
pub fn all() -> Vec<Arc<dyn tfplugin::DynFunction>> {
    vec![]
}
