//! Managed resources (`omni_*`). One module per resource (see STYLE.md: "A
//! resource is one module"); add each to [`all`] with `tfplugin::resource(..)`.

pub mod cluster;
pub mod config_patch;
pub mod kernel_args;
pub mod machine_class;
pub mod machine_extensions;
pub mod machine_labels;
pub mod machine_set;
pub mod machine_set_node;
pub mod schematic;

use std::sync::Arc;

/// Every managed resource the provider serves.
pub fn all() -> Vec<Arc<dyn tfplugin::DynResource>> {
    vec![
        tfplugin::resource(cluster::ClusterResource),
        tfplugin::resource(schematic::SchematicResource),
        tfplugin::resource(machine_set::MachineSetResource),
        tfplugin::resource(machine_set_node::MachineSetNodeResource),
        tfplugin::resource(config_patch::ConfigPatchResource),
        tfplugin::resource(machine_class::MachineClassResource),
        tfplugin::resource(machine_extensions::MachineExtensionsResource),
        tfplugin::resource(machine_labels::MachineLabelsResource),
        tfplugin::resource(kernel_args::KernelArgsResource),
    ]
}
