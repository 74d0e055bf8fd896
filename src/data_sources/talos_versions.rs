//! `omni_talos_versions`: Omni's Talos version catalogue (`TalosVersions`, synced from the
//! Image Factory) with the Kubernetes versions each one supports (omni-api.md §3.3, §3.4).

use omni_client::resources::TalosVersion;
use omni_client::ListParams;
use serde::{Deserialize, Serialize};
use talos_machinery::versions::{parse_version, Version};
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, DataSource, Diagnostic, Nesting, Result, Schema,
    Type, Value,
};

use crate::common;

const DESCRIPTION: &str = "\
Lists the Talos versions this Omni instance offers for clusters, each with the Kubernetes \
versions it is compatible with, sorted by version (oldest first).

Versions are given without the `v` prefix, as Omni stores them and as `omni_cluster` expects. \
By default deprecated and unsupported versions are left out, since Omni refuses them for new \
clusters; `latest` is the newest stable version that remains.";

/// One Talos version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TalosVersionModel {
    /// Version without `v`.
    pub version: Value<String>,
    /// Compatible Kubernetes versions, ascending.
    pub compatible_kubernetes_versions: Value<Vec<String>>,
    /// Omni no longer supports it for new clusters.
    pub deprecated: Value<bool>,
    /// Newer than this Omni release supports.
    pub unsupported: Value<bool>,
    /// A pre-release.
    pub prerelease: Value<bool>,
}

/// `omni_talos_versions` configuration and result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TalosVersionsState {
    /// Leave pre-releases out.
    pub stable_only: Value<bool>,
    /// Lowest version to list.
    pub min_version: Value<String>,
    /// Only versions compatible with this Kubernetes version.
    pub kubernetes_version: Value<String>,
    /// Keep deprecated and unsupported versions.
    pub include_unsupported: Value<bool>,
    /// Version strings.
    pub versions: Value<Vec<String>>,
    /// Full entries.
    pub talos_versions: Value<Vec<TalosVersionModel>>,
    /// Newest stable entry.
    pub latest: Value<String>,
}

/// The filters, resolved.
#[derive(Debug, Default)]
pub struct Filter {
    stable_only: bool,
    min: Option<Version>,
    kubernetes: Option<String>,
    include_unsupported: bool,
}

fn version_at(text: &str, attr: &str) -> Result<Version> {
    parse_version(text).map_err(|e| {
        Diagnostic::error("Invalid version", format!("{text:?}: {e}"))
            .at(AttributePath::new(attr))
            .into()
    })
}

impl Filter {
    /// From configuration; bad versions are errors at their attribute.
    pub fn from_config(c: &TalosVersionsState) -> Result<Filter> {
        Ok(Filter {
            stable_only: c.stable_only.as_option().copied().unwrap_or(false),
            min: match c.min_version.as_str() {
                Some(v) => Some(version_at(v, "min_version")?),
                None => None,
            },
            kubernetes: match c.kubernetes_version.as_str() {
                Some(v) => Some(version_at(v, "kubernetes_version")?.to_string()),
                None => None,
            },
            include_unsupported: c.include_unsupported.as_option().copied().unwrap_or(false),
        })
    }

    /// Applies the filters and sorts by semver.
    pub fn apply(&self, all: Vec<TalosVersionModel>) -> Vec<TalosVersionModel> {
        let mut out: Vec<(Version, TalosVersionModel)> = all
            .into_iter()
            .filter_map(|m| {
                let v = parse_version(m.version.as_str()?).ok()?;
                Some((v, m))
            })
            .filter(|(v, m)| {
                if self.stable_only && !v.0.pre.is_empty() {
                    return false;
                }
                if self.min.as_ref().is_some_and(|min| v < min) {
                    return false;
                }
                let bad = m.deprecated == Value::Known(true) || m.unsupported == Value::Known(true);
                if bad && !self.include_unsupported {
                    return false;
                }
                if let Some(k) = &self.kubernetes {
                    let ok = m
                        .compatible_kubernetes_versions
                        .as_option()
                        .is_some_and(|ks| ks.iter().any(|x| x.trim_start_matches('v') == k));
                    if !ok {
                        return false;
                    }
                }
                true
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.into_iter().map(|(_, m)| m).collect()
    }
}

/// Newest entry that is stable and neither deprecated nor unsupported.
pub fn latest(list: &[TalosVersionModel]) -> Option<String> {
    list.iter()
        .rev()
        .find(|m| {
            m.prerelease != Value::Known(true)
                && m.deprecated != Value::Known(true)
                && m.unsupported != Value::Known(true)
        })
        .and_then(|m| m.version.as_str().map(str::to_string))
}

fn sort_versions(mut vs: Vec<String>) -> Vec<String> {
    vs.sort_by(|a, b| match (parse_version(a), parse_version(b)) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    });
    vs
}

/// The `omni_talos_versions` data source.
pub struct TalosVersionsDataSource;

#[async_trait]
impl DataSource for TalosVersionsDataSource {
    const TYPE_NAME: &'static str = "omni_talos_versions";
    type State = TalosVersionsState;

    fn schema(&self) -> Schema {
        let entry = vec![
            Attribute::string("version")
                .computed()
                .description("Talos version without `v`."),
            Attribute::list("compatible_kubernetes_versions", Type::String)
                .computed()
                .description("Kubernetes versions Omni accepts with it, oldest first."),
            Attribute::bool("deprecated")
                .computed()
                .description("Too old: Omni refuses it for new clusters."),
            Attribute::bool("unsupported")
                .computed()
                .description("Newer than this Omni release supports."),
            Attribute::bool("prerelease")
                .computed()
                .description("A pre-release (alpha, beta, rc)."),
        ];
        Schema::new(DESCRIPTION)
            .attribute(
                Attribute::bool("stable_only")
                    .optional()
                    .description("Leave pre-releases out. Default `false`."),
            )
            .attribute(
                Attribute::string("min_version")
                    .optional()
                    .description("Only versions at or above this one, e.g. `1.12` or `v1.12.0`."),
            )
            .attribute(
                Attribute::string("kubernetes_version")
                    .optional()
                    .description("Only Talos versions compatible with this Kubernetes version."),
            )
            .attribute(
                Attribute::bool("include_unsupported")
                    .optional()
                    .description(
                        "Also list versions Omni marks deprecated or unsupported. Default `false`.",
                    ),
            )
            .attribute(
                Attribute::list("versions", Type::String)
                    .computed()
                    .description("The matching versions, oldest first."),
            )
            .attribute(
                Attribute::nested("talos_versions", Nesting::List, entry)
                    .computed()
                    .description("The matching versions with their details, oldest first."),
            )
            .attribute(Attribute::string("latest").computed().description(
                "Newest matching version that is stable, not deprecated and not unsupported; \
                 null when there is none.",
            ))
    }

    async fn validate(&self, _ctx: &Ctx, config: &TalosVersionsState) -> Result<()> {
        Filter::from_config(config).map(|_| ())
    }

    async fn read(&self, ctx: &Ctx, mut config: TalosVersionsState) -> Result<TalosVersionsState> {
        let filter = Filter::from_config(&config)?;
        let all = common::api::<TalosVersion>(ctx)?
            .list(&ListParams::default())
            .await
            .map_err(|e| common::omni_error("listing Talos versions", e))?;
        let models: Vec<TalosVersionModel> = all
            .into_iter()
            .map(|o| {
                // The ID is the version without `v` (omni-api.md §3.3).
                let version = o.id().trim_start_matches('v').to_string();
                TalosVersionModel {
                    prerelease: Value::Known(version.contains('-')),
                    version: Value::Known(version),
                    compatible_kubernetes_versions: Value::Known(sort_versions(
                        o.spec
                            .compatible_kubernetes_versions
                            .iter()
                            .map(|k| k.trim_start_matches('v').to_string())
                            .collect(),
                    )),
                    deprecated: Value::Known(o.spec.deprecated),
                    unsupported: Value::Known(o.spec.unsupported),
                }
            })
            .collect();
        let list = filter.apply(models);
        config.latest = latest(&list).into();
        config.versions = Value::Known(
            list.iter()
                .filter_map(|m| m.version.as_str().map(str::to_string))
                .collect(),
        );
        config.talos_versions = Value::Known(list);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: &str, ks: &[&str], deprecated: bool) -> TalosVersionModel {
        TalosVersionModel {
            version: v.into(),
            compatible_kubernetes_versions: Value::Known(
                ks.iter().map(|s| s.to_string()).collect(),
            ),
            deprecated: Value::Known(deprecated),
            unsupported: Value::Known(false),
            prerelease: Value::Known(v.contains('-')),
        }
    }

    fn config() -> TalosVersionsState {
        TalosVersionsState {
            stable_only: Value::Null,
            min_version: Value::Null,
            kubernetes_version: Value::Null,
            include_unsupported: Value::Null,
            versions: Value::Unknown,
            talos_versions: Value::Unknown,
            latest: Value::Unknown,
        }
    }

    fn catalogue() -> Vec<TalosVersionModel> {
        vec![
            m("1.10.0", &["1.32.0"], false),
            m("1.14.0-rc.1", &["1.36.3"], false),
            m("1.8.4", &["1.31.0"], true),
            m("1.9.2", &["1.31.0", "1.32.0"], false),
            m("1.13.8", &["1.36.3"], false),
        ]
    }

    fn versions(list: &[TalosVersionModel]) -> Vec<&str> {
        list.iter().filter_map(|m| m.version.as_str()).collect()
    }

    #[test]
    fn sorted_by_semver_without_deprecated_by_default() {
        let list = Filter::from_config(&config()).unwrap().apply(catalogue());
        assert_eq!(
            versions(&list),
            ["1.9.2", "1.10.0", "1.13.8", "1.14.0-rc.1"]
        );
        assert_eq!(latest(&list).as_deref(), Some("1.13.8"));
    }

    #[test]
    fn filters() {
        let mut c = config();
        c.stable_only = Value::Known(true);
        c.min_version = "v1.10".into();
        let list = Filter::from_config(&c).unwrap().apply(catalogue());
        assert_eq!(versions(&list), ["1.10.0", "1.13.8"]);

        let mut c = config();
        c.kubernetes_version = "v1.32.0".into();
        let list = Filter::from_config(&c).unwrap().apply(catalogue());
        assert_eq!(versions(&list), ["1.9.2", "1.10.0"]);

        let mut c = config();
        c.include_unsupported = Value::Known(true);
        c.min_version = "99.0".into();
        let list = Filter::from_config(&c).unwrap().apply(catalogue());
        assert!(list.is_empty());
        assert_eq!(latest(&list), None);
    }

    #[test]
    fn bad_versions_point_at_their_attribute() {
        let mut c = config();
        c.min_version = "latest".into();
        let e = Filter::from_config(&c).unwrap_err();
        assert_eq!(e.0[0].path, Some(AttributePath::new("min_version")));
        let mut c = config();
        c.kubernetes_version = "one".into();
        let e = Filter::from_config(&c).unwrap_err();
        assert_eq!(e.0[0].path, Some(AttributePath::new("kubernetes_version")));
    }
}
