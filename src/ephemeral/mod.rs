//! Ephemeral resources (`omni_*`): values Terraform uses during a run and never stores.
//! One module per ephemeral resource; add each to [`all`] with `tfplugin::ephemeral_resource(..)`.

use std::sync::Arc;

pub mod kubeconfig;
pub mod talosconfig;

/// Every ephemeral resource the provider serves.
pub fn all() -> Vec<Arc<dyn tfplugin::DynEphemeralResource>> {
    vec![
        tfplugin::ephemeral_resource(kubeconfig::KubeconfigEphemeral),
        tfplugin::ephemeral_resource(talosconfig::TalosconfigEphemeral),
    ]
}
