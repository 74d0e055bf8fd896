//! Managed resources (`omni_*`). One module per resource (see STYLE.md: "A
//! resource is one module"); add each to [`all`] with `tfplugin::resource(..)`.

use std::sync::Arc;

pub mod cluster;
pub mod machine_set;
pub mod machine_set_node;
pub mod schematic;

/// Every managed resource the provider serves.
pub fn all() -> Vec<Arc<dyn tfplugin::DynResource>> {
    vec![
        tfplugin::resource(cluster::ClusterResource),
        tfplugin::resource(schematic::SchematicResource),
        tfplugin::resource(machine_set::MachineSetResource),
        tfplugin::resource(machine_set_node::MachineSetNodeResource),
    ]
}
