//! Provider functions (`provider::omni::*`). One module per function; add each to [`all`] with
//! `tfplugin::function(..)`.

use std::sync::Arc;

pub mod schematic_id;

/// Every provider function.
pub fn all() -> Vec<Arc<dyn tfplugin::DynFunction>> {
    vec![tfplugin::function(schematic_id::SchematicIdFunction)]
}
