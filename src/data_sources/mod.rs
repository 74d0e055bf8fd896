//! Data sources (`omni_*`). One module per data source; add each to [`all`]
//! with `tfplugin::data_source(..)`.

use std::sync::Arc;

pub mod cluster_status;
pub mod image_factory_extensions;
pub mod image_factory_overlays;
pub mod image_factory_urls;
pub mod image_factory_versions;
pub mod kubeconfig;
pub mod kubernetes_versions;
pub mod machine;
pub mod machines;
pub mod talos_versions;
pub mod talosconfig;

/// Every data source the provider serves.
pub fn all() -> Vec<Arc<dyn tfplugin::DynDataSource>> {
    vec![
        tfplugin::data_source(image_factory_versions::ImageFactoryVersionsDataSource),
        tfplugin::data_source(image_factory_extensions::ImageFactoryExtensionsDataSource),
        tfplugin::data_source(image_factory_overlays::ImageFactoryOverlaysDataSource),
        tfplugin::data_source(image_factory_urls::ImageFactoryUrlsDataSource),
        tfplugin::data_source(machines::MachinesDataSource),
        tfplugin::data_source(machine::MachineDataSource),
        tfplugin::data_source(cluster_status::ClusterStatusDataSource),
        tfplugin::data_source(talos_versions::TalosVersionsDataSource),
        tfplugin::data_source(kubernetes_versions::KubernetesVersionsDataSource),
        tfplugin::data_source(kubeconfig::KubeconfigDataSource),
        tfplugin::data_source(talosconfig::TalosconfigDataSource),
    ]
}
