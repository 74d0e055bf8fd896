//! `omni_image_factory_versions`: the Talos versions the Image Factory builds images for
//! (image-factory-and-talos.md §3.1, §3.2).

use serde::{Deserialize, Serialize};
use tfplugin::{async_trait, Attribute, Ctx, DataSource, Result, Schema, Type, Value};

use crate::common::factory_http::{self, factory_error};

const DESCRIPTION: &str =
    "Lists the Talos versions the [Image Factory](https://factory.talos.dev) \
(the provider's `image_factory_url`) can build images for, oldest first, `v`-prefixed \
(`GET /versions`).";

/// `omni_image_factory_versions` state.
#[derive(Serialize, Deserialize)]
pub struct VersionsState {
    /// Drop pre-releases.
    pub stable_only: Value<bool>,
    /// The versions.
    pub talos_versions: Value<Vec<String>>,
    /// Newest of `talos_versions`.
    pub latest: Value<String>,
}

/// The data source.
pub struct ImageFactoryVersionsDataSource;

/// Keeps the order; drops pre-releases when `stable_only`. Unparsable entries are dropped by
/// the stable filter (they cannot be shown to be stable).
pub fn filter_versions(all: Vec<String>, stable_only: bool) -> Vec<String> {
    all.into_iter()
        .filter(|v| {
            !stable_only
                || talos_machinery::versions::parse_tolerant(v).is_ok_and(|p| p.pre.is_empty())
        })
        .collect()
}

#[async_trait]
impl DataSource for ImageFactoryVersionsDataSource {
    const TYPE_NAME: &'static str = "omni_image_factory_versions";
    type State = VersionsState;

    fn schema(&self) -> Schema {
        Schema::new(DESCRIPTION)
            .attribute(Attribute::bool("stable_only").optional().description(
                "Only stable releases (no `alpha`, `beta`, `rc`). Defaults to `false`.",
            ))
            .attribute(
                Attribute::list("talos_versions", Type::String)
                    .computed()
                    .description("Talos versions, ascending, e.g. `v1.13.9`."),
            )
            .attribute(Attribute::string("latest").computed().description(
                "The last (newest) entry of `talos_versions`; null when the list is empty.",
            ))
    }

    async fn read(&self, ctx: &Ctx, mut config: VersionsState) -> Result<VersionsState> {
        let factory = factory_http::client(ctx)?;
        let all = factory
            .versions()
            .await
            .map_err(|e| factory_error("listing Talos versions", &e))?;
        let list = filter_versions(all, config.stable_only.as_option() == Some(&true));
        config.latest = list.last().cloned().into();
        config.talos_versions = Value::Known(list);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_filter() {
        let all = vec![
            "v1.13.9".to_string(),
            "v1.14.0-alpha.1".to_string(),
            "v1.14.0-rc.1".to_string(),
            "garbage".to_string(),
        ];
        assert_eq!(filter_versions(all.clone(), false), all);
        assert_eq!(filter_versions(all, true), vec!["v1.13.9".to_string()]);
        assert!(filter_versions(vec![], true).is_empty());
    }
}
