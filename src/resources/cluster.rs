//! `omni_cluster`: an Omni `Clusters.omni.sidero.dev` resource (omni-api.md §3.3, §3.4).
//!
//! Attribute names follow the official provider (omni-api.md §8) so configurations move over;
//! `labels`, `annotations`, the two extra features and `timeouts` are additions.

use std::collections::BTreeMap;
use std::time::Duration;

use omni_client::omni_api::specs::{
    self, kubernetes_upgrade_status_spec::Phase as K8sPhase,
    talos_upgrade_status_spec::Phase as TalosPhase, ClusterSpec, EtcdBackupConf,
};
use omni_client::resources::{
    annotations as omni_annotations, ids, Cluster, ClusterConfigVersion, ClusterStatus,
    ClusterUuid, FeaturesConfig, KubernetesUpgradeStatus, TalosUpgradeStatus, TalosVersion,
};
use omni_client::{Api, Error as ClientError, Object};
use serde::{Deserialize, Serialize};
use talos_machinery::{names, versions};
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, Diagnostic, Diagnostics, Nesting, PrivateState,
    Resource, Result, Schema, Type, Value,
};

use crate::common::{
    self, meta, omni_error, omni_error_at, timeouts, wait_for, Timeouts, WaitDecision,
};

// ---------------------------------------------------------------------------------------------
// Description
// ---------------------------------------------------------------------------------------------

const DESCRIPTION: &str = "\
An Omni cluster: its Talos and Kubernetes versions, cluster features and etcd backup interval. \
Machines join it through `omni_machine_set` resources.

**What apply waits for.** Create returns once Omni has accepted the cluster (its cluster UUID \
exists). It does **not** wait for the cluster to become ready: a cluster without machine sets \
never does. Put the wait on the machine sets (`omni_machine_set` waits by default).

**Upgrades.** Changing `talos_version` or `kubernetes_version` of a cluster that has machines \
runs Omni's Kubernetes upgrade pre-checks first (for Kubernetes changes), then changes the \
versions and waits, within `timeouts.update`, until Omni reports the upgrade `Done` with the \
new version. Progress (`2/5 machines upgraded`) is logged at INFO. If Omni reports the upgrade \
`Failed` or `Reverting`, apply fails with Omni's error text. Kubernetes may move to a newer \
patch of the same minor or to the next minor only, and Talos cannot go below the minor the \
cluster was created with; both are checked at plan time.

**Deletion** tears the cluster down and waits until it is gone (`timeouts.delete`). Omni \
removes the cluster's machine sets, config patches and extension configurations with it and \
returns its machines to the pool.

Versions are accepted with or without a leading `v` (`v1.13.8` and `1.13.8` are the same; \
Omni stores them without it).";

/// Default time limits: create waits only for acceptance; upgrades roll machine by machine;
/// deletion resets every machine of the cluster.
const CREATE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const UPDATE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// The `omni_cluster` resource.
pub struct ClusterResource;

/// Configuration, plan and state of `omni_cluster`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Same as `name`.
    pub id: Value<String>,
    /// Cluster name (resource ID in Omni).
    pub name: Value<String>,
    /// Kubernetes version, spelled as configured (with or without `v`).
    pub kubernetes_version: Value<String>,
    /// Talos version, spelled as configured (with or without `v`).
    pub talos_version: Value<String>,
    /// Cluster features.
    pub features: Value<ClusterFeatures>,
    /// Etcd backup interval (Go duration); null disables backups.
    pub backup_interval: Value<String>,
    /// User labels.
    pub labels: Value<BTreeMap<String, String>>,
    /// User annotations.
    pub annotations: Value<BTreeMap<String, String>>,
    /// Time limits.
    pub timeouts: Value<Timeouts>,
}

/// `features` (ClusterSpec.Features, omni-api.md §3.4).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterFeatures {
    /// Encrypt machine disks with keys held by Omni.
    pub disk_encryption: Value<bool>,
    /// Expose services through Omni's workload proxy.
    pub enable_workload_proxy: Value<bool>,
    /// Use Omni's embedded discovery service.
    pub use_embedded_discovery_service: Value<bool>,
    /// Do not register with the public discovery service.
    pub disable_public_discovery_service: Value<bool>,
    /// Skip node audit.
    pub enable_node_audit_skip: Value<bool>,
}

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

fn feature(name: &str, text: &str) -> Attribute {
    Attribute::bool(name)
        .optional_computed()
        .description(format!("{text} Defaults to `false`."))
}

fn schema() -> Schema {
    Schema::new(DESCRIPTION)
        .attribute(
            Attribute::string("id")
                .computed()
                .description("The cluster name (Omni's resource ID)."),
        )
        .attribute(
            Attribute::string("name")
                .required()
                .requires_replace()
                .description(
                    "Cluster name: Unicode letters, digits, `-` and `_`. Changing it replaces \
                     the cluster.",
                ),
        )
        .attribute(
            Attribute::string("kubernetes_version")
                .required()
                .description(
                    "Kubernetes version, e.g. `1.36.3` or `v1.36.3`. Must be one Omni lists as \
             compatible with `talos_version`. On a running cluster it may move to another \
             patch of the same minor or to the next minor.",
                ),
        )
        .attribute(Attribute::string("talos_version").required().description(
            "Talos version, e.g. `1.13.8` or `v1.13.8`. Must be in Omni's version catalogue. \
             It cannot go below the minor version the cluster was created with.",
        ))
        .attribute(
            Attribute::nested(
                "features",
                Nesting::Single,
                vec![
                    feature(
                        "disk_encryption",
                        "Encrypt the machines' disks with keys managed by Omni (needs Talos \
                         1.5 or newer). Cannot be changed after creation.",
                    ),
                    feature(
                        "enable_workload_proxy",
                        "Let Omni proxy HTTP services of the cluster (workload proxy).",
                    ),
                    feature(
                        "use_embedded_discovery_service",
                        "Use Omni's embedded discovery service (must be enabled on the Omni \
                         instance).",
                    ),
                    feature(
                        "disable_public_discovery_service",
                        "Do not use the public discovery service. Needs \
                         `use_embedded_discovery_service` and Talos 1.14 or newer.",
                    ),
                    feature("enable_node_audit_skip", "Skip Omni's node audit."),
                ],
            )
            .optional_computed()
            .description("Cluster features. Unset features are off."),
        )
        .attribute(Attribute::string("backup_interval").optional().description(
            "Interval of automatic etcd backups, as a duration such as `1h` or `6h30m`. It \
             must lie within the limits of the Omni instance (by default 1h to 24h). Unset \
             disables automatic backups.",
        ))
        .attribute(
            Attribute::map("labels", Type::String)
                .optional()
                .description(
                    "Labels of the cluster. Omni's own labels (`omni.sidero.dev/*`) are not \
                     shown and never cause a diff.",
                ),
        )
        .attribute(
            Attribute::map("annotations", Type::String)
                .optional()
                .description(
                    "Annotations of the cluster. Omni's own annotations (`omni.sidero.dev/*`) \
                     are not shown and never cause a diff.",
                ),
        )
        .attribute(timeouts::attribute(
            CREATE_TIMEOUT,
            UPDATE_TIMEOUT,
            DELETE_TIMEOUT,
        ))
}

// ---------------------------------------------------------------------------------------------
// Plan logic: defaults, spelling, validation
// ---------------------------------------------------------------------------------------------

fn path(name: &str) -> AttributePath {
    AttributePath::new(name)
}

/// Known features with every unset flag at its default (`false`).
fn features_with_defaults(configured: &Value<ClusterFeatures>) -> ClusterFeatures {
    let f = configured.as_option().cloned().unwrap_or_default();
    let flag = |v: Value<bool>| match v {
        Value::Known(b) => Value::Known(b),
        // A flag that depends on another resource stays unknown until apply.
        Value::Unknown => Value::Unknown,
        Value::Null => Value::Known(false),
    };
    ClusterFeatures {
        disk_encryption: flag(f.disk_encryption),
        enable_workload_proxy: flag(f.enable_workload_proxy),
        use_embedded_discovery_service: flag(f.use_embedded_discovery_service),
        disable_public_discovery_service: flag(f.disable_public_discovery_service),
        enable_node_audit_skip: flag(f.enable_node_audit_skip),
    }
}

/// Whether two version spellings mean the same version (`v1.13.8` = `1.13.8`).
fn same_version(a: &str, b: &str) -> bool {
    match (
        versions::normalize_version(a),
        versions::normalize_version(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Whether two duration spellings mean the same interval (`1h` = `60m`).
fn same_duration(a: &str, b: &str) -> bool {
    match (parse_interval(a), parse_interval(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Parses `backup_interval`. `0s` is allowed and means "disabled", like the official provider.
fn parse_interval(text: &str) -> std::result::Result<Duration, String> {
    if text
        .trim()
        .chars()
        .all(|c| c == '0' || c.is_ascii_alphabetic())
        && text.contains('0')
    {
        // `0`, `0s`, `0h0m`: zero, which `parse_duration` refuses for timeouts.
        return Ok(Duration::ZERO);
    }
    timeouts::parse_duration(text)
}

/// Keeps the prior spelling of a string attribute when the new one means the same thing, so
/// `v1.13.8` versus `1.13.8` (or `60m` versus `1h`) is never a diff. Terraform accepts a
/// planned value equal to the prior value in place of an equivalent configured one.
fn keep_equivalent(
    planned: &mut Value<String>,
    prior: &Value<String>,
    same: fn(&str, &str) -> bool,
) {
    if let (Value::Known(new), Value::Known(old)) = (&*planned, prior) {
        if new != old && same(new, old) {
            *planned = prior.clone();
        }
    }
}

/// Checks that need no Omni: name rules, version syntax, Kubernetes/Talos compatibility from
/// Talos' own table, feature prerequisites, the interval syntax, metadata keys, timeouts.
fn validate_offline(config: &ClusterState) -> Diagnostics {
    let mut diags = Diagnostics::new();
    if let Value::Known(name) = &config.name {
        // omni-api.md §4 "Cluster" create: the name rules.
        if let Err(e) = names::validate_cluster_name(name) {
            diags.error_at(path("name"), "Invalid cluster name", e);
        } else if let Err(e) = names::validate_resource_id(name) {
            diags.error_at(path("name"), "Invalid cluster name", e);
        }
    }
    let talos = match &config.talos_version {
        Value::Known(v) => match versions::normalize_version(v) {
            Ok(n) => Some(n),
            Err(e) => {
                diags.error_at(
                    path("talos_version"),
                    "Invalid Talos version",
                    format!("{v:?}: {e}. Use a version such as \"1.13.8\" or \"v1.13.8\"."),
                );
                None
            }
        },
        _ => None,
    };
    let k8s = match &config.kubernetes_version {
        Value::Known(v) => match versions::normalize_version(v) {
            Ok(n) => Some(n),
            Err(e) => {
                diags.error_at(
                    path("kubernetes_version"),
                    "Invalid Kubernetes version",
                    format!("{v:?}: {e}. Use a version such as \"1.36.3\" or \"v1.36.3\"."),
                );
                None
            }
        },
        _ => None,
    };
    if let Some(t) = &talos {
        if versions::is_talos_denied(t) {
            // image-factory-and-talos.md §7.1: Omni's denylist.
            diags.error_at(
                path("talos_version"),
                "Talos version not allowed",
                format!("Omni does not allow Talos {t}: pick another patch release."),
            );
        }
    }
    if let (Some(t), Some(k)) = (&talos, &k8s) {
        // Talos' compatibility table (image-factory-and-talos.md §7.2) is a fact of Talos
        // itself; Talos minors it does not know are left to Omni's catalogue at plan time.
        if let Some((lo, hi)) = versions::kubernetes_minor_range(t) {
            if !versions::kubernetes_supported_by_talos(t, k) {
                diags.error_at(
                    path("kubernetes_version"),
                    "Kubernetes version not compatible with Talos",
                    format!(
                        "Kubernetes {k} is not compatible with Talos {t}: Talos {t} supports \
                         Kubernetes 1.{lo} to 1.{hi}."
                    ),
                );
            }
        }
    }
    let features = features_with_defaults(&config.features);
    let fpath = |n: &str| AttributePath::new("features").attr(n);
    if let (Value::Known(true), Some(t)) = (&features.disk_encryption, &talos) {
        // omni-api.md §4: disk encryption requires Talos ≥ 1.5.0.
        if version_below(t, 1, 5) {
            diags.error_at(
                fpath("disk_encryption"),
                "Disk encryption needs Talos 1.5 or newer",
                format!("Talos {t} cannot encrypt disks with Omni-managed keys."),
            );
        }
    }
    if features.disable_public_discovery_service == Value::Known(true) {
        // omni-api.md §4: needs the embedded discovery service and Talos ≥ 1.14.
        if features.use_embedded_discovery_service == Value::Known(false) {
            diags.error_at(
                fpath("disable_public_discovery_service"),
                "Public discovery can only be disabled with the embedded discovery service",
                "Set `use_embedded_discovery_service = true` as well.",
            );
        }
        if let Some(t) = &talos {
            if version_below(t, 1, 14) {
                diags.error_at(
                    fpath("disable_public_discovery_service"),
                    "Disabling the public discovery service needs Talos 1.14 or newer",
                    format!("The cluster runs Talos {t}."),
                );
            }
        }
    }
    if let Value::Known(text) = &config.backup_interval {
        if let Err(e) = parse_interval(text) {
            diags.error_at(path("backup_interval"), "Invalid backup interval", e);
        }
    }
    for (attr, map) in [
        ("labels", &config.labels),
        ("annotations", &config.annotations),
    ] {
        let Value::Known(map) = map else { continue };
        for key in map.keys() {
            // Omni's own keys are hidden on read, so managing one would be a perpetual diff
            // (omni-api.md §3.2: templates refuse them too).
            if let Err(e) = names::validate_user_descriptor_key(key) {
                diags.error_at(
                    path(attr).key(key.clone()),
                    "Reserved key",
                    format!("{e}: Omni manages these keys itself."),
                );
            }
        }
        let what = if attr == "labels" {
            "label"
        } else {
            "annotation"
        };
        if let Err(e) = names::validate_metadata_map(what, map, None) {
            diags.error_at(path(attr), format!("Invalid {attr}"), e);
        }
    }
    if let Err(e) = Timeouts::validate(&config.timeouts) {
        diags.extend(e);
    }
    diags
}

/// Whether `version` (normalised) is below `major.minor`.
fn version_below(version: &str, major: u64, minor: u64) -> bool {
    versions::parse_tolerant(version).is_ok_and(|v| (v.major, v.minor) < (major, minor))
}

/// What plan-time checks against Omni need to know about an existing cluster.
#[derive(Debug, Default, Clone, PartialEq)]
struct LiveFacts {
    /// Talos version the cluster was created with (ClusterConfigVersion, omni-api.md §3.3).
    initial_talos: Option<String>,
    /// A Kubernetes upgrade in flight: the version it started from, which Omni lets a user
    /// go back to (aborting the upgrade, omni-api.md §4).
    k8s_upgrade_from: Option<String>,
}

/// Plan-time checks against Omni's catalogue and the running cluster (omni-api.md §4).
/// `prior` is `None` on create. Only called when both versions are known.
#[allow(clippy::too_many_arguments)]
fn validate_against_omni(
    talos: &str,
    k8s: &str,
    talos_version: Option<&specs::TalosVersionSpec>,
    prior: Option<(&str, &str)>,
    prior_talos_deprecated: bool,
    live: &LiveFacts,
    features: &ClusterFeatures,
    prior_features: Option<&ClusterFeatures>,
    instance: Option<&specs::FeaturesConfigSpec>,
    backup: Option<Duration>,
    catalogue: &[String],
) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let talos_changed = prior.is_none_or(|(t, _)| t != talos);
    let k8s_changed = prior.is_none_or(|(_, k)| k != k8s);
    match talos_version {
        None => {
            if talos_changed {
                diags.error_at(
                    path("talos_version"),
                    "Unknown Talos version",
                    format!(
                        "Talos {talos} is not in this Omni's version catalogue.{}",
                        nearby_versions(talos, catalogue)
                    ),
                );
            }
        }
        Some(spec) => {
            if talos_changed && spec.unsupported {
                diags.error_at(
                    path("talos_version"),
                    "Talos version not supported",
                    format!("Talos {talos} is not supported by this Omni release."),
                );
            } else if talos_changed && spec.deprecated && !prior_talos_deprecated {
                diags.error_at(
                    path("talos_version"),
                    "Talos version no longer supported",
                    format!(
                        "Talos {talos} is deprecated in Omni and can no longer be selected.{}",
                        nearby_versions(talos, catalogue)
                    ),
                );
            } else if (talos_changed || k8s_changed)
                && !spec.compatible_kubernetes_versions.iter().any(|k| k == k8s)
            {
                // The version must be listed exactly (omni-api.md §4).
                let listed = &spec.compatible_kubernetes_versions;
                let newest: Vec<&str> = listed.iter().rev().take(5).map(String::as_str).collect();
                diags.error_at(
                    path("kubernetes_version"),
                    "Kubernetes version not compatible with Talos",
                    format!(
                        "Kubernetes {k8s} is not compatible with Talos {talos} in this Omni. \
                         Newest compatible versions: {}.",
                        if newest.is_empty() {
                            "none".to_string()
                        } else {
                            newest.join(", ")
                        }
                    ),
                );
            }
        }
    }
    if let Some((prior_talos, prior_k8s)) = prior {
        if k8s_changed
            && !versions::kubernetes_upgrade_allowed(prior_k8s, k8s)
            && live.k8s_upgrade_from.as_deref() != Some(k8s)
        {
            diags.error_at(
                path("kubernetes_version"),
                "Unsupported Kubernetes upgrade",
                format!(
                    "Kubernetes can move from {prior_k8s} only to another {} patch or to the \
                     next minor version, not to {k8s}. Upgrade one minor version at a time.",
                    minor_of(prior_k8s)
                ),
            );
        }
        if talos_changed {
            let initial = live.initial_talos.as_deref().unwrap_or(prior_talos);
            if let (Ok(new), Ok(init)) = (
                versions::parse_tolerant(talos),
                versions::parse_tolerant(initial),
            ) {
                if (new.major, new.minor) < (init.major, init.minor) {
                    diags.error_at(
                        path("talos_version"),
                        "Talos downgrade not supported",
                        format!(
                            "The cluster was created with Talos {initial}; it cannot go below \
                             Talos {}.{}.",
                            init.major, init.minor
                        ),
                    );
                }
            }
        }
        if let (Some(Value::Known(old)), Value::Known(new)) = (
            prior_features.map(|f| &f.disk_encryption),
            &features.disk_encryption,
        ) {
            if old != new {
                diags.error_at(
                    AttributePath::new("features").attr("disk_encryption"),
                    "Disk encryption cannot be changed",
                    "Omni does not allow changing disk encryption after the cluster was \
                     created. To change it, replace the cluster (`terraform apply \
                     -replace=...`), which wipes its machines.",
                );
            }
        }
    }
    if let Some(instance) = instance {
        if features.use_embedded_discovery_service == Value::Known(true)
            && !instance.embedded_discovery_service
            && prior_features.is_none_or(|f| f.use_embedded_discovery_service != Value::Known(true))
        {
            diags.error_at(
                AttributePath::new("features").attr("use_embedded_discovery_service"),
                "Embedded discovery service not enabled",
                "This Omni instance does not run the embedded discovery service.",
            );
        }
        if let Some(backup) = backup.filter(|d| !d.is_zero()) {
            let settings = instance.etcd_backup_settings.as_ref();
            let min = settings
                .and_then(|s| s.min_interval.as_ref())
                .map(|d| duration_from_proto(d.seconds, d.nanos))
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(3600));
            let max = settings
                .and_then(|s| s.max_interval.as_ref())
                .map(|d| duration_from_proto(d.seconds, d.nanos))
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(24 * 3600));
            if backup < min || backup > max {
                diags.error_at(
                    path("backup_interval"),
                    "Backup interval out of range",
                    format!(
                        "This Omni instance accepts backup intervals from {} to {}.",
                        timeouts::format_duration(min),
                        timeouts::format_duration(max)
                    ),
                );
            }
        }
    }
    diags
}

/// A protobuf duration as a std one (negative counts as zero).
fn duration_from_proto(seconds: i64, nanos: i32) -> Duration {
    if seconds < 0 || nanos < 0 {
        return Duration::ZERO;
    }
    Duration::new(seconds as u64, nanos as u32)
}

/// `"1.33"` for `"1.33.2"`.
fn minor_of(version: &str) -> String {
    versions::parse_tolerant(version)
        .map(|v| format!("{}.{}", v.major, v.minor))
        .unwrap_or_else(|_| version.to_string())
}

/// A hint listing catalogue versions of the same minor (or the newest ones).
fn nearby_versions(version: &str, catalogue: &[String]) -> String {
    let minor = minor_of(version);
    let mut same: Vec<&str> = catalogue
        .iter()
        .filter(|v| minor_of(v) == minor)
        .map(String::as_str)
        .collect();
    if same.is_empty() {
        same = catalogue.iter().rev().take(5).map(String::as_str).collect();
        same.reverse();
        if same.is_empty() {
            return String::new();
        }
        return format!(" Newest available: {}.", same.join(", "));
    }
    format!(" Available {minor} releases: {}.", same.join(", "))
}

/// Reads what the plan-time checks need from Omni and runs them.
async fn check_with_omni(
    ctx: &Ctx,
    plan: &ClusterState,
    prior: Option<&ClusterState>,
) -> Result<()> {
    let (Value::Known(talos), Value::Known(k8s)) = (&plan.talos_version, &plan.kubernetes_version)
    else {
        return Ok(());
    };
    let (Ok(talos), Ok(k8s)) = (
        versions::normalize_version(talos),
        versions::normalize_version(k8s),
    ) else {
        return Ok(()); // reported by validate
    };
    let client = common::client(ctx)?;
    let prior_versions = prior.and_then(|p| {
        let t = versions::normalize_version(p.talos_version.as_str()?).ok()?;
        let k = versions::normalize_version(p.kubernetes_version.as_str()?).ok()?;
        Some((t, k))
    });
    let name = plan.name.as_str().unwrap_or_default().to_string();

    let talos_api = Api::<TalosVersion>::new(client.clone());
    let talos_spec = talos_api
        .get_opt(&talos)
        .await
        .map_err(|e| omni_error("reading Omni's Talos version catalogue", e))?
        .map(|o| o.spec);
    let catalogue: Vec<String> = if talos_spec.is_none()
        || talos_spec
            .as_ref()
            .is_some_and(|s| s.deprecated || s.unsupported)
    {
        let mut all: Vec<(versions::Version, String)> = talos_api
            .list(&Default::default())
            .await
            .map_err(|e| omni_error("listing Omni's Talos versions", e))?
            .into_iter()
            .filter(|o| !o.spec.deprecated && !o.spec.unsupported)
            .filter_map(|o| Some((versions::parse_version(o.id()).ok()?, o.id().to_string())))
            .collect();
        all.sort();
        all.into_iter().map(|(_, id)| id).collect()
    } else {
        Vec::new()
    };
    let mut prior_deprecated = false;
    let mut live = LiveFacts::default();
    if let Some((prior_talos, _)) = &prior_versions {
        if prior_talos != &talos {
            prior_deprecated = talos_api
                .get_opt(prior_talos)
                .await
                .map_err(|e| omni_error("reading Omni's Talos version catalogue", e))?
                .is_some_and(|o| o.spec.deprecated);
            live.initial_talos = Api::<ClusterConfigVersion>::new(client.clone())
                .get_opt(&name)
                .await
                .map_err(|e| omni_error(&format!("reading the initial version of {name:?}"), e))?
                .map(|o| o.spec.version)
                .filter(|v| !v.is_empty());
        }
        live.k8s_upgrade_from = Api::<KubernetesUpgradeStatus>::new(client.clone())
            .get_opt(&name)
            .await
            .map_err(|e| omni_error(&format!("reading the upgrade status of {name:?}"), e))?
            .filter(|o| o.spec.phase() == K8sPhase::Upgrading)
            .map(|o| o.spec.last_upgrade_version)
            .filter(|v| !v.is_empty());
    }
    let instance = Api::<FeaturesConfig>::new(client.clone())
        .get_opt(ids::FEATURES_CONFIG)
        .await
        .map_err(|e| omni_error("reading Omni's instance features", e))?
        .map(|o| o.spec);
    let backup = plan
        .backup_interval
        .as_str()
        .and_then(|t| parse_interval(t).ok());
    let features = features_with_defaults(&plan.features);
    let prior_features = prior.map(|p| features_with_defaults(&p.features));
    validate_against_omni(
        &talos,
        &k8s,
        talos_spec.as_ref(),
        prior_versions
            .as_ref()
            .map(|(t, k)| (t.as_str(), k.as_str())),
        prior_deprecated,
        &live,
        &features,
        prior_features.as_ref(),
        instance.as_ref(),
        backup,
        &catalogue,
    )
    .into_result()
}

// ---------------------------------------------------------------------------------------------
// Resource
// ---------------------------------------------------------------------------------------------

#[async_trait]
impl Resource for ClusterResource {
    const TYPE_NAME: &'static str = "omni_cluster";
    type State = ClusterState;

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, ctx: &Ctx, config: &ClusterState) -> Result<()> {
        let mut diags = validate_offline(config);
        // Without a configured provider (e.g. `terraform validate`), the Talos/Kubernetes
        // catalogue that ships with the provider stands in for Omni's; it is consulted only
        // for versions it lists, since an Omni may know newer ones.
        if common::configured(ctx).is_err() {
            diags.extend(validate_with_builtin_catalogue(config));
        }
        diags.into_result()
    }

    async fn read(
        &self,
        ctx: &Ctx,
        state: ClusterState,
        _private: &mut PrivateState,
    ) -> Result<Option<ClusterState>> {
        let name = state_name(&state)?;
        let api = common::api::<Cluster>(ctx)?;
        let found = api
            .get_opt(&name)
            .await
            .map_err(|e| omni_error(&format!("reading cluster {name:?}"), e))?;
        Ok(found.map(|obj| state_from_object(&obj, &state)))
    }

    async fn plan_create(
        &self,
        ctx: &Ctx,
        mut plan: ClusterState,
        _config: &ClusterState,
        _private: &mut PrivateState,
    ) -> Result<ClusterState> {
        plan.id = plan.name.clone();
        plan.features = Value::Known(features_with_defaults(&plan.features));
        validate_offline(&plan).into_result()?;
        if let Value::Known(name) = &plan.name {
            // Knowable now: a cluster of that name already exists (the create would fail).
            let existing = common::api::<Cluster>(ctx)?
                .get_opt(name)
                .await
                .map_err(|e| omni_error(&format!("reading cluster {name:?}"), e))?;
            if existing.is_some() {
                return Err(Diagnostic::error(
                    "Cluster already exists",
                    format!(
                        "Omni already has a cluster named {name:?}. Import it to manage it \
                         here (`terraform import <address> {name}` or an `import` block), or \
                         pick another name."
                    ),
                )
                .at(path("name"))
                .into());
            }
        }
        check_with_omni(ctx, &plan, None).await?;
        Ok(plan)
    }

    async fn plan_update(
        &self,
        ctx: &Ctx,
        prior: &ClusterState,
        mut plan: ClusterState,
        _config: &ClusterState,
        _private: &mut PrivateState,
        _requires_replace: &mut Vec<AttributePath>,
    ) -> Result<ClusterState> {
        plan.features = Value::Known(features_with_defaults(&plan.features));
        keep_equivalent(&mut plan.talos_version, &prior.talos_version, same_version);
        keep_equivalent(
            &mut plan.kubernetes_version,
            &prior.kubernetes_version,
            same_version,
        );
        keep_equivalent(
            &mut plan.backup_interval,
            &prior.backup_interval,
            same_duration,
        );
        validate_offline(&plan).into_result()?;
        if plan.name != prior.name {
            // A rename replaces the cluster: check the new one as a create.
            plan.id = plan.name.clone();
            check_with_omni(ctx, &plan, None).await?;
        } else {
            plan.id = prior.id.clone();
            check_with_omni(ctx, &plan, Some(prior)).await?;
        }
        Ok(plan)
    }

    async fn create(
        &self,
        ctx: &Ctx,
        plan: ClusterState,
        _config: &ClusterState,
        _private: &mut PrivateState,
    ) -> Result<ClusterState> {
        let name = state_name(&plan)?;
        let (spec, labels, annotations) = desired(&plan)?;
        let api = common::api::<Cluster>(ctx)?;
        let mut obj = Object::<Cluster>::new(name.clone(), spec);
        obj.metadata.labels = labels;
        obj.metadata.annotations = annotations;
        let created = api
            .create(obj)
            .await
            .map_err(|e| client_error(&format!("creating cluster {name:?}"), e))?;
        // Omni accepted the cluster once its controllers gave it a UUID (omni-api.md §3.3);
        // readiness needs machines, which the machine sets bring and wait for.
        let timeout = Timeouts::get(&plan.timeouts, "create", CREATE_TIMEOUT);
        let uuids = common::api::<ClusterUuid>(ctx)?;
        wait_for(
            ctx,
            &uuids,
            &name,
            timeout,
            &format!("Omni to accept cluster {name:?} (its cluster UUID)"),
            |o| match o {
                Some(o) if !o.spec.uuid.is_empty() => WaitDecision::Done,
                _ => WaitDecision::Pending,
            },
            |o| match o {
                Some(_) => "cluster UUID being assigned".to_string(),
                None => "no cluster UUID yet".to_string(),
            },
        )
        .await?;
        let mut state = state_from_object(&created, &plan);
        state.timeouts = plan.timeouts.clone();
        Ok(state)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: ClusterState,
        plan: ClusterState,
        _config: &ClusterState,
        _private: &mut PrivateState,
    ) -> Result<ClusterState> {
        let name = state_name(&prior)?;
        let (spec, labels, annotations) = desired(&plan)?;
        let client = common::client(ctx)?;
        let api = Api::<Cluster>::new(client.clone());
        let current = api
            .get(&name)
            .await
            .map_err(|e| omni_error(&format!("reading cluster {name:?}"), e))?;
        let talos_changed = current.spec.talos_version != spec.talos_version;
        let k8s_changed = current.spec.kubernetes_version != spec.kubernetes_version;
        let timeout = Timeouts::get(&plan.timeouts, "update", UPDATE_TIMEOUT);
        let deadline = tokio::time::Instant::now() + timeout;

        // Upgrades matter only for a cluster with machines: without any, Omni just records
        // the versions and machines join with them (omni-api.md §3.4 ClusterStatus.machines).
        let live = (talos_changed || k8s_changed)
            && Api::<ClusterStatus>::new(client.clone())
                .get_opt(&name)
                .await
                .map_err(|e| omni_error(&format!("reading the status of cluster {name:?}"), e))?
                .and_then(|o| o.spec.machines)
                .is_some_and(|m| m.total > 0);
        if live && k8s_changed {
            run_kubernetes_pre_checks(&client, &name, &spec.kubernetes_version).await?;
        }

        let updated = api
            .update(&name, |obj| {
                obj.spec = spec.clone();
                meta::merge_user_entries(&mut obj.metadata.labels, &labels);
                meta::merge_user_entries(&mut obj.metadata.annotations, &annotations);
            })
            .await
            .map_err(|e| client_error(&format!("updating cluster {name:?}"), e))?;

        if live && talos_changed {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            wait_for_talos_upgrade(ctx, &client, &name, &spec.talos_version, left).await?;
        }
        if live && k8s_changed {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            wait_for_kubernetes_upgrade(ctx, &client, &name, &spec.kubernetes_version, left)
                .await?;
        }
        let mut state = state_from_object(&updated, &plan);
        state.timeouts = plan.timeouts.clone();
        Ok(state)
    }

    async fn delete(&self, ctx: &Ctx, prior: ClusterState, _private: &PrivateState) -> Result<()> {
        let name = state_name(&prior)?;
        let api = common::api::<Cluster>(ctx)?;
        let timeout = Timeouts::get(&prior.timeouts, "delete", DELETE_TIMEOUT);
        let deadline = tokio::time::Instant::now() + timeout;
        match api.teardown(&name).await {
            Ok(_) => {}
            Err(ClientError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(omni_error(&format!("deleting cluster {name:?}"), e)),
        }
        // Omni's cleanup controllers hold finalizers while they remove machine sets, patches
        // and machines (omni-api.md §5.1); the generic destroy controller then removes the
        // cluster. If it is only waiting for a Destroy, send it, as omnictl does (§5.2).
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let last = wait_for(
                ctx,
                &api,
                &name,
                left,
                &format!("cluster {name:?} to be deleted"),
                |o| match o {
                    None => WaitDecision::Done,
                    Some(o) if o.is_tearing_down() && o.metadata.finalizers.is_empty() => {
                        WaitDecision::Done
                    }
                    Some(_) => WaitDecision::Pending,
                },
                describe_teardown,
            )
            .await?;
            if last.is_none() {
                return Ok(());
            }
            match api.destroy(&name).await {
                Ok(()) | Err(ClientError::NotFound(_)) => return Ok(()),
                // A finalizer came back (or the destroy controller raced us): wait again.
                Err(ClientError::Conflict(_)) => continue,
                Err(e) => return Err(omni_error(&format!("deleting cluster {name:?}"), e)),
            }
        }
    }

    async fn import(&self, _ctx: &Ctx, id: &str) -> Result<ClusterState> {
        if let Err(e) = names::validate_cluster_name(id) {
            return Err(Diagnostic::error(
                "Invalid import ID",
                format!("Import omni_cluster by its cluster name: {e}."),
            )
            .into());
        }
        Ok(ClusterState {
            id: Value::Known(id.to_string()),
            name: Value::Known(id.to_string()),
            ..Default::default()
        })
    }
}

/// The cluster name of a state (import fills only `id`/`name`).
fn state_name(state: &ClusterState) -> Result<String> {
    state
        .name
        .as_str()
        .or(state.id.as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            Diagnostic::error(
                "Missing cluster name",
                "The state has no cluster name. This is a bug in the provider.",
            )
            .into()
        })
}

/// Offline checks that use the provider's built-in catalogue (a stand-in for Omni's when the
/// provider is not configured). Only versions the catalogue lists are judged.
fn validate_with_builtin_catalogue(config: &ClusterState) -> Diagnostics {
    let mut diags = Diagnostics::new();
    let (Some(t), Some(k)) = (
        config
            .talos_version
            .as_str()
            .and_then(|v| versions::normalize_version(v).ok()),
        config
            .kubernetes_version
            .as_str()
            .and_then(|v| versions::normalize_version(v).ok()),
    ) else {
        return diags;
    };
    if let Some(release) = versions::talos_releases()
        .into_iter()
        .find(|r| r.version == t)
    {
        let known_k8s = versions::kubernetes_releases().contains(&k);
        if known_k8s && !release.compatible_kubernetes.contains(&k) {
            diags.error_at(
                path("kubernetes_version"),
                "Kubernetes version not compatible with Talos",
                format!("Kubernetes {k} is not compatible with Talos {t}."),
            );
        }
    }
    diags
}

/// Points a client error at the attribute Omni's validation message is about.
fn client_error(action: &str, err: ClientError) -> Diagnostics {
    let attr = match &err {
        ClientError::Validation(msg) => attribute_for_message(msg),
        _ => None,
    };
    match attr {
        Some(p) => omni_error_at(action, err, p),
        None => omni_error(action, err),
    }
}

/// The attribute an Omni cluster validation message (omni-api.md §4) is about.
fn attribute_for_message(msg: &str) -> Option<AttributePath> {
    let m = msg.to_lowercase();
    let f = |n: &str| Some(AttributePath::new("features").attr(n));
    if m.contains("kubernetes version") {
        Some(path("kubernetes_version"))
    } else if m.contains("talos version") || m.contains("downgrading") {
        Some(path("talos_version"))
    } else if m.contains("backup interval") {
        Some(path("backup_interval"))
    } else if m.contains("disk encryption") {
        f("disk_encryption")
    } else if m.contains("public discovery") {
        f("disable_public_discovery_service")
    } else if m.contains("embedded discovery") {
        f("use_embedded_discovery_service")
    } else if m.contains("name") {
        Some(path("name"))
    } else {
        None
    }
}

/// Runs `KubernetesUpgradePreChecks` (omni-api.md §6). A refusal fails with Omni's reason at
/// `kubernetes_version`; "current version unknown" (FailedPrecondition: Kubernetes is not up
/// yet) skips the checks, as there is nothing running to check.
async fn run_kubernetes_pre_checks(
    client: &omni_client::Client,
    cluster: &str,
    version: &str,
) -> Result<()> {
    match client.kubernetes_upgrade_pre_checks(cluster, version).await {
        Ok(check) if check.ok => Ok(()),
        Ok(check) => Err(Diagnostic::error(
            "Kubernetes upgrade pre-checks failed",
            format!(
                "Omni's pre-checks refused the upgrade of cluster {cluster:?} to Kubernetes \
                 {version}: {}",
                check.reason
            ),
        )
        .at(path("kubernetes_version"))
        .into()),
        Err(ClientError::Conflict(reason)) => {
            tracing::info!(
                target: "omni",
                cluster,
                reason = reason.as_str(),
                "Kubernetes upgrade pre-checks skipped: Omni does not know the running version yet"
            );
            Ok(())
        }
        Err(e) => Err(omni_error_at(
            &format!("running the Kubernetes upgrade pre-checks of {cluster:?}"),
            e,
            path("kubernetes_version"),
        )),
    }
}

/// Decides a Talos upgrade wait (omni-api.md §5.3): `Done` with the new version.
fn talos_upgrade_decision(spec: &specs::TalosUpgradeStatusSpec, target: &str) -> WaitDecision {
    match spec.phase() {
        TalosPhase::Done if spec.last_upgrade_version == target => WaitDecision::Done,
        TalosPhase::Failed | TalosPhase::Reverting => WaitDecision::Failed(format!(
            "Omni reports the Talos upgrade to {target} as {}: {}",
            spec.phase().as_str_name(),
            nonempty(&spec.error, &spec.status)
        )),
        _ => WaitDecision::Pending,
    }
}

/// Decides a Kubernetes upgrade wait (omni-api.md §5.3): `Done` with the new version.
fn kubernetes_upgrade_decision(
    spec: &specs::KubernetesUpgradeStatusSpec,
    target: &str,
) -> WaitDecision {
    match spec.phase() {
        K8sPhase::Done if spec.last_upgrade_version == target => WaitDecision::Done,
        K8sPhase::Failed | K8sPhase::Reverting => WaitDecision::Failed(format!(
            "Omni reports the Kubernetes upgrade to {target} as {}: {}",
            spec.phase().as_str_name(),
            nonempty(&spec.error, &spec.step)
        )),
        _ => WaitDecision::Pending,
    }
}

fn nonempty<'a>(first: &'a str, second: &'a str) -> &'a str {
    if !first.is_empty() {
        first
    } else if !second.is_empty() {
        second
    } else {
        "no reason given"
    }
}

/// Omni's Talos upgrade status says `updating machines N/M` while machine N of M is being
/// upgraded; turn it into how many are done.
fn machines_upgraded(status: &str) -> Option<String> {
    let rest = status
        .strip_prefix("updating machines ")
        .or_else(|| status.strip_prefix("reverting update "))?;
    let (n, m) = rest.trim().split_once('/')?;
    let (n, m): (u64, u64) = (n.trim().parse().ok()?, m.trim().parse().ok()?);
    Some(format!("{}/{m} machines upgraded", n.saturating_sub(1)))
}

fn describe_talos(spec: &specs::TalosUpgradeStatusSpec) -> String {
    let mut parts = vec![format!("phase {}", spec.phase().as_str_name())];
    if let Some(p) = machines_upgraded(&spec.status) {
        parts.push(p);
    } else if !spec.status.is_empty() {
        parts.push(spec.status.clone());
    }
    if !spec.step.is_empty() {
        parts.push(spec.step.clone());
    }
    if !spec.last_upgrade_version.is_empty() {
        parts.push(format!("last upgraded to {}", spec.last_upgrade_version));
    }
    if !spec.error.is_empty() {
        parts.push(format!("error: {}", spec.error));
    }
    parts.join(", ")
}

fn describe_kubernetes(spec: &specs::KubernetesUpgradeStatusSpec) -> String {
    let mut parts = vec![format!("phase {}", spec.phase().as_str_name())];
    for text in [&spec.step, &spec.status] {
        if !text.is_empty() {
            parts.push(text.clone());
        }
    }
    if !spec.last_upgrade_version.is_empty() {
        parts.push(format!("last upgraded to {}", spec.last_upgrade_version));
    }
    if !spec.error.is_empty() {
        parts.push(format!("error: {}", spec.error));
    }
    parts.join(", ")
}

fn describe_teardown(o: Option<&Object<Cluster>>) -> String {
    match o {
        None => "gone".to_string(),
        Some(o) if o.metadata.finalizers.is_empty() => {
            format!("phase {}, no finalizers left", o.metadata.phase.as_str())
        }
        Some(o) => format!(
            "phase {}, Omni still cleaning up ({})",
            o.metadata.phase.as_str(),
            o.metadata.finalizers.join(", ")
        ),
    }
}

async fn wait_for_talos_upgrade(
    ctx: &Ctx,
    client: &omni_client::Client,
    cluster: &str,
    target: &str,
    timeout: Duration,
) -> Result<()> {
    let api = Api::<TalosUpgradeStatus>::new(client.clone());
    wait_for(
        ctx,
        &api,
        cluster,
        timeout,
        &format!("the Talos upgrade of cluster {cluster:?} to {target}"),
        |o| match o {
            Some(o) => talos_upgrade_decision(&o.spec, target),
            None => WaitDecision::Pending,
        },
        |o| match o {
            Some(o) => describe_talos(&o.spec),
            None => "no Talos upgrade status yet".to_string(),
        },
    )
    .await
    .map(|_| ())
    .map_err(|d| at_attribute(d, "talos_version"))
}

async fn wait_for_kubernetes_upgrade(
    ctx: &Ctx,
    client: &omni_client::Client,
    cluster: &str,
    target: &str,
    timeout: Duration,
) -> Result<()> {
    let api = Api::<KubernetesUpgradeStatus>::new(client.clone());
    wait_for(
        ctx,
        &api,
        cluster,
        timeout,
        &format!("the Kubernetes upgrade of cluster {cluster:?} to {target}"),
        |o| match o {
            Some(o) => kubernetes_upgrade_decision(&o.spec, target),
            None => WaitDecision::Pending,
        },
        |o| match o {
            Some(o) => describe_kubernetes(&o.spec),
            None => "no Kubernetes upgrade status yet".to_string(),
        },
    )
    .await
    .map(|_| ())
    .map_err(|d| at_attribute(d, "kubernetes_version"))
}

/// Points diagnostics without a path at `attr`.
fn at_attribute(mut diags: Diagnostics, attr: &str) -> Diagnostics {
    for d in diags.0.iter_mut() {
        if d.path.is_none() {
            d.path = Some(path(attr));
        }
    }
    diags
}

// ---------------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------------

/// User labels or annotations.
type UserMap = BTreeMap<String, String>;

/// The Omni spec, user labels and user annotations a plan asks for.
fn desired(plan: &ClusterState) -> Result<(ClusterSpec, UserMap, UserMap)> {
    let version = |v: &Value<String>, attr: &str| -> Result<String> {
        let text = v.as_str().ok_or_else(|| {
            Diagnostics::from(
                Diagnostic::error("Missing value", format!("`{attr}` has no known value."))
                    .at(path(attr)),
            )
        })?;
        // Omni stores versions without the `v` (image-factory-and-talos.md §7.1).
        versions::normalize_version(text).map_err(|e| {
            Diagnostic::error("Invalid version", format!("{text:?}: {e}"))
                .at(path(attr))
                .into()
        })
    };
    let features = features_with_defaults(&plan.features);
    let flag = |v: &Value<bool>| v.as_option().copied().unwrap_or(false);
    let backup_configuration = match plan.backup_interval.as_str() {
        None => None,
        Some(text) => {
            let d = parse_interval(text).map_err(|e| {
                Diagnostics::from(
                    Diagnostic::error("Invalid backup interval", e).at(path("backup_interval")),
                )
            })?;
            backup_conf(d)
        }
    };
    let spec = ClusterSpec {
        kubernetes_version: version(&plan.kubernetes_version, "kubernetes_version")?,
        talos_version: version(&plan.talos_version, "talos_version")?,
        features: Some(specs::cluster_spec::Features {
            enable_workload_proxy: flag(&features.enable_workload_proxy),
            disk_encryption: flag(&features.disk_encryption),
            use_embedded_discovery_service: flag(&features.use_embedded_discovery_service),
            enable_node_audit_skip: flag(&features.enable_node_audit_skip),
            disable_public_discovery_service: flag(&features.disable_public_discovery_service),
        }),
        backup_configuration,
    };
    Ok((
        spec,
        plan.labels.as_option().cloned().unwrap_or_default(),
        plan.annotations.as_option().cloned().unwrap_or_default(),
    ))
}

/// `backup_interval` → EtcdBackupConf: a positive interval enables backups, zero disables
/// them (omni-api.md §3.4, as cluster templates and the official provider do).
fn backup_conf(interval: Duration) -> Option<EtcdBackupConf> {
    if interval.is_zero() {
        return None;
    }
    let mut conf = EtcdBackupConf {
        interval: Some(Default::default()),
        enabled: true,
    };
    if let Some(d) = conf.interval.as_mut() {
        d.seconds = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX);
        d.nanos = i32::try_from(interval.subsec_nanos()).unwrap_or(0);
    }
    Some(conf)
}

/// The interval of an enabled backup configuration.
fn backup_interval_of(spec: &ClusterSpec) -> Option<Duration> {
    let conf = spec.backup_configuration.as_ref().filter(|c| c.enabled)?;
    let d = conf.interval.as_ref()?;
    Some(duration_from_proto(d.seconds, d.nanos)).filter(|d| !d.is_zero())
}

/// The state Omni's object describes. `prior` supplies spellings that mean the same as
/// Omni's values (`v` prefixes, duration forms, null versus empty maps) and the timeouts.
fn state_from_object(obj: &Object<Cluster>, prior: &ClusterState) -> ClusterState {
    let spec = &obj.spec;
    let keep = |prior: &Value<String>, server: &str| match prior {
        Value::Known(p) if same_version(p, server) => prior.clone(),
        _ => Value::Known(server.to_string()),
    };
    let f = spec.features.unwrap_or_default();
    let backup_interval = match (backup_interval_of(spec), &prior.backup_interval) {
        (Some(d), Value::Known(p)) if parse_interval(p).ok() == Some(d) => {
            prior.backup_interval.clone()
        }
        (Some(d), _) => Value::Known(timeouts::format_duration(d)),
        // Disabled: a configured zero stays as written.
        (None, Value::Known(p)) if parse_interval(p).ok() == Some(Duration::ZERO) => {
            prior.backup_interval.clone()
        }
        (None, _) => Value::Null,
    };
    let user_map = |all: &BTreeMap<String, String>, prior: &Value<BTreeMap<String, String>>| {
        let mine = meta::user_entries(all);
        if mine.is_empty() && !matches!(prior, Value::Known(_)) {
            Value::Null
        } else {
            Value::Known(mine)
        }
    };
    let mut annotations = obj.metadata.annotations.clone();
    // Stamped on every write by the client; Omni-owned (prefix), so never the user's.
    annotations.remove(omni_annotations::MANAGED_BY_GITOPS_TOOLS);
    ClusterState {
        id: Value::Known(obj.id().to_string()),
        name: Value::Known(obj.id().to_string()),
        kubernetes_version: keep(&prior.kubernetes_version, &spec.kubernetes_version),
        talos_version: keep(&prior.talos_version, &spec.talos_version),
        features: Value::Known(ClusterFeatures {
            disk_encryption: Value::Known(f.disk_encryption),
            enable_workload_proxy: Value::Known(f.enable_workload_proxy),
            use_embedded_discovery_service: Value::Known(f.use_embedded_discovery_service),
            disable_public_discovery_service: Value::Known(f.disable_public_discovery_service),
            enable_node_audit_skip: Value::Known(f.enable_node_audit_skip),
        }),
        backup_interval,
        labels: user_map(&obj.metadata.labels, &prior.labels),
        annotations: user_map(&annotations, &prior.annotations),
        timeouts: prior.timeouts.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, talos: &str, k8s: &str) -> ClusterState {
        ClusterState {
            name: name.into(),
            talos_version: talos.into(),
            kubernetes_version: k8s.into(),
            ..Default::default()
        }
    }

    fn paths(d: &Diagnostics) -> Vec<AttributePath> {
        d.iter().filter_map(|d| d.path.clone()).collect()
    }

    fn object(spec: ClusterSpec) -> Object<Cluster> {
        Object::<Cluster>::new("lab", spec)
    }

    fn feature_path(n: &str) -> AttributePath {
        AttributePath::new("features").attr(n)
    }

    #[test]
    fn v_prefix_is_the_same_version_and_keeps_the_prior_spelling() {
        assert!(same_version("v1.13.8", "1.13.8"));
        assert!(!same_version("v1.13.8", "1.13.9"));
        let mut planned: Value<String> = "1.13.8".into();
        keep_equivalent(&mut planned, &"v1.13.8".into(), same_version);
        assert_eq!(planned, Value::Known("v1.13.8".to_string()));
        let mut planned: Value<String> = "1.13.9".into();
        keep_equivalent(&mut planned, &"v1.13.8".into(), same_version);
        assert_eq!(planned, Value::Known("1.13.9".to_string()));
        let mut planned: Value<String> = "60m".into();
        keep_equivalent(&mut planned, &"1h".into(), same_duration);
        assert_eq!(planned, Value::Known("1h".to_string()));
    }

    #[test]
    fn intervals_parse_with_zero_meaning_disabled() {
        assert_eq!(parse_interval("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_interval("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_interval("0").unwrap(), Duration::ZERO);
        assert!(parse_interval("soon").is_err());
        assert!(parse_interval("10").is_err());
        assert!(backup_conf(Duration::ZERO).is_none());
        let conf = backup_conf(Duration::from_secs(7200)).unwrap();
        assert!(conf.enabled);
        assert_eq!(conf.interval.unwrap().seconds, 7200);
    }

    #[test]
    fn desired_spec_strips_v_and_fills_feature_defaults() {
        let mut plan = config("lab", "v1.13.8", "v1.36.3");
        plan.backup_interval = "6h".into();
        plan.features = Value::Known(ClusterFeatures {
            enable_workload_proxy: true.into(),
            ..Default::default()
        });
        plan.labels = Value::Known(BTreeMap::from([("team".into(), "infra".into())]));
        let (spec, labels, annotations) = desired(&plan).unwrap();
        assert_eq!(spec.talos_version, "1.13.8");
        assert_eq!(spec.kubernetes_version, "1.36.3");
        let f = spec.features.unwrap();
        assert!(f.enable_workload_proxy);
        assert!(!f.disk_encryption && !f.use_embedded_discovery_service);
        assert_eq!(
            backup_interval_of(&spec),
            Some(Duration::from_secs(6 * 3600))
        );
        assert_eq!(labels["team"], "infra");
        assert!(annotations.is_empty());

        plan.backup_interval = Value::Null;
        assert!(desired(&plan).unwrap().0.backup_configuration.is_none());
    }

    #[test]
    fn read_keeps_equivalent_spellings_and_hides_omni_metadata() {
        let (spec, _, _) = desired(&config("lab", "1.13.8", "1.36.3")).unwrap();
        let mut spec = spec;
        spec.backup_configuration = backup_conf(Duration::from_secs(3600));
        let mut obj = object(spec);
        obj.metadata
            .labels
            .insert("omni.sidero.dev/x".into(), "y".into());
        obj.metadata.annotations.insert(
            omni_annotations::MANAGED_BY_GITOPS_TOOLS.into(),
            "Terraform".into(),
        );
        let mut prior = config("lab", "v1.13.8", "v1.36.3");
        prior.backup_interval = "60m".into();
        prior.timeouts = Value::Known(Timeouts {
            delete: "1m".into(),
            ..Default::default()
        });
        let state = state_from_object(&obj, &prior);
        assert_eq!(state.talos_version, prior.talos_version);
        assert_eq!(state.kubernetes_version, prior.kubernetes_version);
        assert_eq!(state.backup_interval, prior.backup_interval);
        assert_eq!(
            state.labels,
            Value::Null,
            "Omni's labels are not the user's"
        );
        assert_eq!(state.annotations, Value::Null);
        assert_eq!(state.timeouts, prior.timeouts);
        assert_eq!(state.id, Value::Known("lab".to_string()));

        // Imported (no prior spelling): Omni's forms, and an empty map stays as configured.
        let imported = ClusterState {
            labels: Value::Known(BTreeMap::new()),
            ..Default::default()
        };
        let state = state_from_object(&obj, &imported);
        assert_eq!(state.talos_version, Value::Known("1.13.8".to_string()));
        assert_eq!(state.backup_interval, Value::Known("1h".to_string()));
        assert_eq!(state.labels, Value::Known(BTreeMap::new()));
        let f = state.features.as_option().unwrap();
        assert_eq!(f.disk_encryption, Value::Known(false));
    }

    #[test]
    fn out_of_band_changes_show_up_on_read() {
        let (mut spec, _, _) = desired(&config("lab", "1.13.8", "1.36.3")).unwrap();
        spec.kubernetes_version = "1.36.2".into();
        spec.features.as_mut().unwrap().enable_workload_proxy = true;
        let mut obj = object(spec);
        obj.metadata.labels.insert("team".into(), "other".into());
        let state = state_from_object(&obj, &config("lab", "v1.13.8", "v1.36.3"));
        assert_eq!(state.kubernetes_version, Value::Known("1.36.2".to_string()));
        assert_eq!(
            state.features.as_option().unwrap().enable_workload_proxy,
            Value::Known(true)
        );
        assert_eq!(
            state.labels,
            Value::Known(BTreeMap::from([("team".into(), "other".into())]))
        );
    }

    #[test]
    fn offline_checks_name_the_attribute() {
        let d = validate_offline(&config("bad name!", "1.13.8", "1.36.3"));
        assert_eq!(paths(&d), vec![path("name")]);
        assert!(
            d.0[0].detail.contains("letters, digits"),
            "{}",
            d.0[0].detail
        );

        let d = validate_offline(&config("lab", "one.two", "1.36.3"));
        assert_eq!(paths(&d), vec![path("talos_version")]);

        // Talos 1.13 supports Kubernetes 1.31 to 1.36 (image-factory-and-talos.md §7.2).
        let d = validate_offline(&config("lab", "1.13.8", "1.30.1"));
        assert_eq!(paths(&d), vec![path("kubernetes_version")]);
        assert!(d.0[0].detail.contains("1.31 to 1.36"), "{}", d.0[0].detail);
        assert!(validate_offline(&config("lab", "v1.13.8", "v1.31.0")).is_empty());

        // A Talos minor Talos' table does not know is left to Omni.
        assert!(validate_offline(&config("lab", "1.99.0", "1.40.0")).is_empty());

        let d = validate_offline(&config("lab", "1.13.1", "1.36.3"));
        assert_eq!(paths(&d), vec![path("talos_version")]);

        let mut c = config("lab", "1.13.8", "1.36.3");
        c.features = Value::Known(ClusterFeatures {
            disable_public_discovery_service: true.into(),
            ..Default::default()
        });
        c.labels = Value::Known(BTreeMap::from([("omni.sidero.dev/x".into(), "".into())]));
        c.backup_interval = "daily".into();
        c.timeouts = Value::Known(Timeouts {
            update: "forever".into(),
            ..Default::default()
        });
        let d = validate_offline(&c);
        let p = paths(&d);
        assert!(p.contains(&feature_path("disable_public_discovery_service")));
        assert!(p.contains(&path("labels").key("omni.sidero.dev/x")));
        assert!(p.contains(&path("backup_interval")));
        assert!(p.contains(&AttributePath::new("timeouts").attr("update")));
        // Both prerequisites of disabling public discovery fail here (Talos 1.13 < 1.14).
        assert_eq!(p.len(), 5, "{d:?}");

        let mut c = config("lab", "1.4.0", "1.27.0");
        c.features = Value::Known(ClusterFeatures {
            disk_encryption: true.into(),
            ..Default::default()
        });
        assert_eq!(
            paths(&validate_offline(&c)),
            vec![feature_path("disk_encryption")]
        );
    }

    #[test]
    fn unknown_values_are_not_judged() {
        let mut c = config("lab", "1.13.8", "1.36.3");
        c.talos_version = Value::Unknown;
        c.features = Value::Known(ClusterFeatures {
            disk_encryption: Value::Unknown,
            ..Default::default()
        });
        assert!(validate_offline(&c).is_empty());
        assert_eq!(
            features_with_defaults(&c.features).disk_encryption,
            Value::Unknown
        );
    }

    fn talos_spec(version: &str, k8s: &[&str]) -> specs::TalosVersionSpec {
        specs::TalosVersionSpec {
            version: version.into(),
            compatible_kubernetes_versions: k8s.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn omni_check(
        talos: &str,
        k8s: &str,
        spec: Option<&specs::TalosVersionSpec>,
        prior: Option<(&str, &str)>,
        live: &LiveFacts,
    ) -> Diagnostics {
        let f = features_with_defaults(&Value::Null);
        validate_against_omni(
            talos,
            k8s,
            spec,
            prior,
            false,
            live,
            &f,
            prior.map(|_| &f),
            None,
            None,
            &["1.12.11".to_string(), "1.13.7".into(), "1.13.8".into()],
        )
    }

    #[test]
    fn omni_catalogue_decides_version_existence_and_compatibility() {
        let live = LiveFacts::default();
        let d = omni_check("1.13.99", "1.36.3", None, None, &live);
        assert_eq!(paths(&d), vec![path("talos_version")]);
        assert!(
            d.0[0].detail.contains("1.13.7, 1.13.8"),
            "{}",
            d.0[0].detail
        );

        let spec = talos_spec("1.13.8", &["1.35.0", "1.36.3"]);
        assert!(omni_check("1.13.8", "1.36.3", Some(&spec), None, &live).is_empty());
        let d = omni_check("1.13.8", "1.36.2", Some(&spec), None, &live);
        assert_eq!(paths(&d), vec![path("kubernetes_version")]);
        assert!(
            d.0[0].detail.contains("1.36.3, 1.35.0"),
            "{}",
            d.0[0].detail
        );

        let mut deprecated = spec.clone();
        deprecated.deprecated = true;
        let d = omni_check("1.13.8", "1.36.3", Some(&deprecated), None, &live);
        assert_eq!(paths(&d), vec![path("talos_version")]);
        let mut unsupported = spec;
        unsupported.unsupported = true;
        let d = omni_check("1.13.8", "1.36.3", Some(&unsupported), None, &live);
        assert!(d.0[0].detail.contains("not supported by this Omni"));
    }

    #[test]
    fn upgrade_paths_are_checked_against_the_running_cluster() {
        let spec = talos_spec("1.13.8", &["1.34.0", "1.35.0", "1.36.3"]);
        let live = LiveFacts::default();
        let prior = Some(("1.13.8", "1.34.0"));
        assert!(omni_check("1.13.8", "1.35.0", Some(&spec), prior, &live).is_empty());
        let d = omni_check("1.13.8", "1.36.3", Some(&spec), prior, &live);
        assert_eq!(paths(&d), vec![path("kubernetes_version")]);
        assert!(d.0[0].detail.contains("one minor version at a time"));

        // Going back to where an in-flight upgrade started aborts it: allowed (§4).
        let aborting = LiveFacts {
            k8s_upgrade_from: Some("1.34.0".into()),
            ..Default::default()
        };
        assert!(omni_check(
            "1.13.8",
            "1.34.0",
            Some(&spec),
            Some(("1.13.8", "1.36.3")),
            &aborting
        )
        .is_empty());

        // No Talos minor below the initial one, even if the current one is higher.
        let old = talos_spec("1.12.11", &["1.34.0"]);
        let created_on_113 = LiveFacts {
            initial_talos: Some("1.13.2".into()),
            ..Default::default()
        };
        let d = omni_check("1.12.11", "1.34.0", Some(&old), prior, &created_on_113);
        assert_eq!(paths(&d), vec![path("talos_version")]);
        assert!(d.0[0].detail.contains("1.13.2"), "{}", d.0[0].detail);
        let created_on_112 = LiveFacts {
            initial_talos: Some("1.12.0".into()),
            ..Default::default()
        };
        assert!(omni_check("1.12.11", "1.34.0", Some(&old), prior, &created_on_112).is_empty());
    }

    #[test]
    fn disk_encryption_and_instance_limits_are_checked() {
        let spec = talos_spec("1.13.8", &["1.36.3"]);
        let on = ClusterFeatures {
            disk_encryption: true.into(),
            use_embedded_discovery_service: true.into(),
            ..features_with_defaults(&Value::Null)
        };
        let off = features_with_defaults(&Value::Null);
        let settings = specs::EtcdBackupSettings {
            max_interval: backup_conf(Duration::from_secs(12 * 3600))
                .unwrap()
                .interval,
            ..Default::default()
        };
        let instance = specs::FeaturesConfigSpec {
            etcd_backup_settings: Some(settings),
            ..Default::default()
        };
        let d = validate_against_omni(
            "1.13.8",
            "1.36.3",
            Some(&spec),
            Some(("1.13.8", "1.36.3")),
            false,
            &LiveFacts::default(),
            &on,
            Some(&off),
            Some(&instance),
            Some(Duration::from_secs(13 * 3600)),
            &[],
        );
        let p = paths(&d);
        assert!(p.contains(&feature_path("disk_encryption")), "{d:?}");
        assert!(
            p.contains(&feature_path("use_embedded_discovery_service")),
            "{d:?}"
        );
        assert!(p.contains(&path("backup_interval")), "{d:?}");
        assert!(
            d.iter().any(|d| d.detail.contains("from 1h to 12h")),
            "{d:?}"
        );
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn upgrade_waits_end_on_done_with_the_new_version_or_on_omnis_error() {
        let mut t = specs::TalosUpgradeStatusSpec {
            last_upgrade_version: "1.13.7".into(),
            ..Default::default()
        };
        t.set_phase(TalosPhase::Done);
        assert_eq!(talos_upgrade_decision(&t, "1.13.8"), WaitDecision::Pending);
        t.last_upgrade_version = "1.13.8".into();
        assert_eq!(talos_upgrade_decision(&t, "1.13.8"), WaitDecision::Done);
        t.set_phase(TalosPhase::Failed);
        t.error = "machine abc: install failed".into();
        match talos_upgrade_decision(&t, "1.13.8") {
            WaitDecision::Failed(text) => assert!(text.contains("install failed"), "{text}"),
            other => panic!("{other:?}"),
        }

        let mut k = specs::KubernetesUpgradeStatusSpec {
            last_upgrade_version: "1.36.2".into(),
            step: "updating kubelet".into(),
            ..Default::default()
        };
        k.set_phase(K8sPhase::Upgrading);
        assert_eq!(
            kubernetes_upgrade_decision(&k, "1.36.3"),
            WaitDecision::Pending
        );
        assert!(describe_kubernetes(&k).contains("updating kubelet"));
        k.set_phase(K8sPhase::Reverting);
        assert!(matches!(
            kubernetes_upgrade_decision(&k, "1.36.3"),
            WaitDecision::Failed(_)
        ));
        k.set_phase(K8sPhase::Done);
        k.last_upgrade_version = "1.36.3".into();
        assert_eq!(
            kubernetes_upgrade_decision(&k, "1.36.3"),
            WaitDecision::Done
        );
    }

    #[test]
    fn talos_progress_counts_upgraded_machines() {
        assert_eq!(
            machines_upgraded("updating machines 3/5").as_deref(),
            Some("2/5 machines upgraded")
        );
        assert_eq!(
            machines_upgraded("waiting for the cluster to be ready"),
            None
        );
        let mut t = specs::TalosUpgradeStatusSpec {
            status: "updating machines 1/2".into(),
            step: "current machine cp-1".into(),
            ..Default::default()
        };
        t.set_phase(TalosPhase::Upgrading);
        assert_eq!(
            describe_talos(&t),
            "phase Upgrading, 0/2 machines upgraded, current machine cp-1"
        );
    }

    #[test]
    fn omni_validation_messages_point_at_attributes() {
        assert_eq!(
            attribute_for_message("invalid kubernetes version \"1.2\": not compatible"),
            Some(path("kubernetes_version"))
        );
        assert_eq!(
            attribute_for_message("downgrading from version 1.13 is not supported"),
            Some(path("talos_version"))
        );
        assert_eq!(
            attribute_for_message("updating disk encryption settings is not allowed"),
            Some(feature_path("disk_encryption"))
        );
        assert_eq!(attribute_for_message("something else"), None);
    }

    #[test]
    fn builtin_catalogue_judges_only_versions_it_lists() {
        let d = validate_with_builtin_catalogue(&config("lab", "1.13.8", "1.36.3"));
        assert!(d.is_empty());
        let d = validate_with_builtin_catalogue(&config("lab", "v1.13.8", "1.30.0"));
        assert_eq!(paths(&d), vec![path("kubernetes_version")]);
        // Versions the catalogue does not list are left to Omni.
        assert!(validate_with_builtin_catalogue(&config("lab", "1.13.99", "1.30.0")).is_empty());
        assert!(validate_with_builtin_catalogue(&config("lab", "1.13.8", "1.36.99")).is_empty());
    }

    #[test]
    fn schema_documents_every_attribute_and_replaces_on_rename() {
        let s = schema();
        for a in &s.block.attributes {
            assert!(!a.description.is_empty(), "{} has no description", a.name);
        }
        assert!(s.attr("name").unwrap().requires_replace);
        assert!(s.attr("id").unwrap().computed);
        assert!(s.attr("features").unwrap().computed);
        assert!(
            !s.attr("labels").unwrap().computed,
            "drift on labels must show"
        );
    }
}
