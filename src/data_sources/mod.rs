//! Data sources (`omni_*`). One module per data source; add each to [`all`]
//! with `tfplugin::data_source(..)`.

use std::sync::Arc;

/// Every data source the provider serves.
pub fn all() -> Vec<Arc<dyn tfplugin::DynDataSource>> {
    vec![]
}
