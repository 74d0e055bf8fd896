//! Data sources (`omni_*`). One module per data source; add each to [`all`]
//! with `tfplugin::data_source(..)`.

use std::sync::Arc;

pub mod image_factory_extensions;
pub mod image_factory_overlays;
pub mod image_factory_urls;
pub mod image_factory_versions;

/// Every data source the provider serves.
pub fn all() -> Vec<Arc<dyn tfplugin::DynDataSource>> {
    vec![
        tfplugin::data_source(image_factory_versions::ImageFactoryVersionsDataSource),
        tfplugin::data_source(image_factory_extensions::ImageFactoryExtensionsDataSource),
        tfplugin::data_source(image_factory_overlays::ImageFactoryOverlaysDataSource),
        tfplugin::data_source(image_factory_urls::ImageFactoryUrlsDataSource),
    ]
}
