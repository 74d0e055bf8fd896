//! `omni_kubernetes_versions`: Omni's Kubernetes version catalogue (`KubernetesVersions`),
//! optionally narrowed to what one Talos version accepts (omni-api.md §3.3, §4 "Cluster").

use omni_client::resources::{KubernetesVersion, TalosVersion};
use omni_client::ListParams;
use serde::{Deserialize, Serialize};
use talos_machinery::versions::{parse_version, Version};
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, DataSource, Diagnostic, Result, Schema, Type, Value,
};

use crate::common;

const DESCRIPTION: &str = "\
Lists the Kubernetes versions this Omni instance knows, without the `v` prefix, oldest first.

With `talos_version`, only the versions Omni accepts together with that Talos version are \
listed: a cluster's Kubernetes version must be one of them exactly.";

/// `omni_kubernetes_versions` configuration and result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KubernetesVersionsState {
    /// Only versions compatible with this Talos version.
    pub talos_version: Value<String>,
    /// Lowest version to list.
    pub min_version: Value<String>,
    /// The versions.
    pub versions: Value<Vec<String>>,
    /// Newest of them.
    pub latest: Value<String>,
}

fn version_at(text: &str, attr: &str) -> Result<Version> {
    parse_version(text).map_err(|e| {
        Diagnostic::error("Invalid version", format!("{text:?}: {e}"))
            .at(AttributePath::new(attr))
            .into()
    })
}

/// Keeps the versions `>= min` that are in `allowed` (when given), sorted by semver.
pub fn select(all: Vec<String>, allowed: Option<&[String]>, min: Option<&Version>) -> Vec<String> {
    let mut out: Vec<(Version, String)> = all
        .into_iter()
        .map(|v| v.trim_start_matches('v').to_string())
        .filter(|v| allowed.is_none_or(|a| a.iter().any(|x| x.trim_start_matches('v') == v)))
        .filter_map(|v| Some((parse_version(&v).ok()?, v)))
        .filter(|(p, _)| min.is_none_or(|m| p >= m))
        .collect();
    out.sort();
    out.dedup();
    out.into_iter().map(|(_, v)| v).collect()
}

/// The `omni_kubernetes_versions` data source.
pub struct KubernetesVersionsDataSource;

#[async_trait]
impl DataSource for KubernetesVersionsDataSource {
    const TYPE_NAME: &'static str = "omni_kubernetes_versions";
    type State = KubernetesVersionsState;

    fn schema(&self) -> Schema {
        Schema::new(DESCRIPTION)
            .attribute(Attribute::string("talos_version").optional().description(
                "Only versions compatible with this Talos version (with or without `v`).",
            ))
            .attribute(
                Attribute::string("min_version")
                    .optional()
                    .description("Only versions at or above this one, e.g. `1.33`."),
            )
            .attribute(
                Attribute::list("versions", Type::String)
                    .computed()
                    .description("The versions, oldest first."),
            )
            .attribute(
                Attribute::string("latest")
                    .computed()
                    .description("The newest listed version; null when none matches."),
            )
    }

    async fn validate(&self, _ctx: &Ctx, c: &KubernetesVersionsState) -> Result<()> {
        if let Some(v) = c.min_version.as_str() {
            version_at(v, "min_version")?;
        }
        if let Some(v) = c.talos_version.as_str() {
            version_at(v, "talos_version")?;
        }
        Ok(())
    }

    async fn read(
        &self,
        ctx: &Ctx,
        mut config: KubernetesVersionsState,
    ) -> Result<KubernetesVersionsState> {
        let min = match config.min_version.as_str() {
            Some(v) => Some(version_at(v, "min_version")?),
            None => None,
        };
        let allowed = match config.talos_version.as_str() {
            Some(t) => {
                let id = version_at(t, "talos_version")?.to_string();
                let tv = common::api::<TalosVersion>(ctx)?
                    .get_opt(&id)
                    .await
                    .map_err(|e| common::omni_error(&format!("reading Talos version {id}"), e))?;
                match tv {
                    Some(tv) => Some(tv.spec.compatible_kubernetes_versions),
                    None => {
                        return Err(Diagnostic::error(
                            "Unknown Talos version",
                            format!(
                                "Omni does not offer Talos {id}; `omni_talos_versions` lists \
                                 the versions it does."
                            ),
                        )
                        .at(AttributePath::new("talos_version"))
                        .into())
                    }
                }
            }
            None => None,
        };
        let all: Vec<String> = common::api::<KubernetesVersion>(ctx)?
            .list(&ListParams::default())
            .await
            .map_err(|e| common::omni_error("listing Kubernetes versions", e))?
            .into_iter()
            .map(|o| o.id().to_string())
            .collect();
        let versions = select(all, allowed.as_deref(), min.as_ref());
        config.latest = versions.last().cloned().into();
        config.versions = Value::Known(versions);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn semver_order_compatibility_and_minimum() {
        let all = s(&["1.9.0", "1.10.1", "1.10.0", "1.33.2", "v1.32.0"]);
        assert_eq!(
            select(all.clone(), None, None),
            s(&["1.9.0", "1.10.0", "1.10.1", "1.32.0", "1.33.2"])
        );
        let allowed = s(&["v1.32.0", "1.33.2"]);
        assert_eq!(
            select(all.clone(), Some(&allowed), None),
            s(&["1.32.0", "1.33.2"])
        );
        let min = parse_version("1.33").unwrap();
        assert_eq!(
            select(all.clone(), Some(&allowed), Some(&min)),
            s(&["1.33.2"])
        );
        let min = parse_version("2.0").unwrap();
        assert!(select(all, None, Some(&min)).is_empty());
    }
}
