//! `omni_image_factory_overlays`: the official board overlays for a Talos version
//! (image-factory-and-talos.md §3.1).

use serde::{Deserialize, Serialize};
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, DataSource, Nesting, Result, Schema, Value,
};

use super::image_factory_extensions::{talos_version_arg, validate_filters, NameFilter};
use crate::common::factory_http::{self, factory_error_at};

const DESCRIPTION: &str = "Lists the official board overlays (single-board computers) the \
[Image Factory](https://factory.talos.dev) offers for one Talos version \
(`GET /version/{v}/overlays/official`; empty before Talos 1.7), optionally filtered by name. \
Use `name` and `image` in `omni_schematic.overlay`.";

/// `omni_image_factory_overlays` state.
#[derive(Serialize, Deserialize)]
pub struct OverlaysState {
    /// Talos version.
    pub talos_version: Value<String>,
    /// Substring filter.
    pub name_contains: Value<String>,
    /// Regex filter.
    pub name_regex: Value<String>,
    /// Matching overlays.
    pub overlays: Value<Vec<OverlayItem>>,
}

/// One overlay.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OverlayItem {
    /// Name.
    pub name: Value<String>,
    /// Image.
    pub image: Value<String>,
    /// Image reference.
    pub r#ref: Value<String>,
    /// Digest.
    pub digest: Value<String>,
}

/// The data source.
pub struct ImageFactoryOverlaysDataSource;

#[async_trait]
impl DataSource for ImageFactoryOverlaysDataSource {
    const TYPE_NAME: &'static str = "omni_image_factory_overlays";
    type State = OverlaysState;

    fn schema(&self) -> Schema {
        Schema::new(DESCRIPTION)
            .attribute(
                Attribute::string("talos_version").required().description(
                    "Talos version, e.g. `v1.13.9` (full version; the `v` is optional).",
                ),
            )
            .attribute(
                Attribute::string("name_contains")
                    .optional()
                    .description("Keep only overlays whose name contains this text, e.g. `rpi`."),
            )
            .attribute(Attribute::string("name_regex").optional().description(
                "Keep only overlays whose name matches this regular expression. With \
                 `name_contains`, both must match.",
            ))
            .attribute(
                Attribute::nested(
                    "overlays",
                    Nesting::List,
                    vec![
                        Attribute::string("name")
                            .computed()
                            .description("Overlay name, e.g. `rpi_generic`."),
                        Attribute::string("image")
                            .computed()
                            .description("Overlay image, e.g. `siderolabs/sbc-raspberrypi`."),
                        Attribute::string("ref")
                            .computed()
                            .description("Image reference."),
                        Attribute::string("digest")
                            .computed()
                            .description("Image digest."),
                    ],
                )
                .computed()
                .description("Matching overlays in the factory's order; empty when none match."),
            )
    }

    async fn validate(&self, _ctx: &Ctx, config: &OverlaysState) -> Result<()> {
        validate_filters(&config.talos_version, &config.name_regex)
    }

    async fn read(&self, ctx: &Ctx, mut config: OverlaysState) -> Result<OverlaysState> {
        let version = talos_version_arg(&config.talos_version)?;
        let filter = NameFilter::new(&config.name_contains, &config.name_regex)?;
        let factory = factory_http::client(ctx)?;
        let list = factory.overlays(&version).await.map_err(|e| {
            factory_error_at(
                &format!("listing overlays for Talos {version}"),
                &e,
                AttributePath::new("talos_version"),
            )
        })?;
        config.overlays = Value::Known(
            list.into_iter()
                .filter(|o| filter.matches(&o.name))
                .map(|o| OverlayItem {
                    name: o.name.into(),
                    image: o.image.into(),
                    r#ref: o.r#ref.into(),
                    digest: o.digest.into(),
                })
                .collect(),
        );
        Ok(config)
    }
}
