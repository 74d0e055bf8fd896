//! `omni_machine_extensions`: the Talos system extensions of a cluster, a machine set or one
//! cluster machine (`ExtensionsConfigurations.omni.sidero.dev`).

use std::collections::BTreeSet;
use std::time::Duration;

use omni_client::omni_api::specs::ExtensionsConfigurationSpec;
use omni_client::resources::{labels, Cluster, ExtensionsConfiguration, TalosExtensions};
use omni_client::Object;
use serde::{Deserialize, Serialize};
use talos_machinery::names;
use tfplugin::{
    async_trait, Attribute, AttributePath, Block, BlockNesting, Ctx, Diagnostic, Diagnostics,
    NestedBlock, PrivateState, Resource, Result, Schema, Type, Value,
};

use crate::common::{self, timeouts, Timeouts};

const DESCRIPTION: &str = "\
The Talos system extensions Omni installs on the machines of a cluster, of one machine set, or \
on one cluster machine. Omni builds an Image Factory schematic from them and upgrades the \
machines to it.

The ID follows Omni's cluster templates: `schematic-<cluster>`, `schematic-<machine set ID>` \
or `schematic-<machine UUID>`. The most specific configuration wins outright (cluster machine, \
then machine set, then cluster); lists are not merged.

Names look like `siderolabs/iscsi-tools` (a name without `/` means `siderolabs/<name>`). \
Omni refuses extensions that do not exist for the cluster's Talos version; when the cluster \
already exists this is checked while planning. An empty set removes every extension.

Omni deletes a machine-set or cluster-machine configuration by itself when that machine set or \
machine leaves the cluster, and all of them when the cluster is deleted; such a configuration \
disappears from the state and is planned for creation again.";

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Omni's limit on one configuration (omni-api.md §4 "ExtensionsConfiguration").
const MAX_EXTENSIONS: usize = 256;

/// The `omni_machine_extensions` resource.
pub struct MachineExtensionsResource;

/// State of `omni_machine_extensions`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Default)]
pub struct MachineExtensionsState {
    /// `schematic-<target>`.
    pub id: Value<String>,
    /// Cluster name.
    pub cluster: Value<String>,
    /// Narrower target (at most one field set).
    pub selector: Value<ExtensionsSelector>,
    /// Extension names.
    pub extensions: Value<BTreeSet<String>>,
    /// Time limits.
    #[serde(default)]
    pub timeouts: Value<Timeouts>,
}

/// `selector` of `omni_machine_extensions`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Default)]
pub struct ExtensionsSelector {
    /// Machine set ID.
    pub machine_set: Value<String>,
    /// Machine UUID of a member of `cluster`.
    pub cluster_machine: Value<String>,
}

#[async_trait]
impl Resource for MachineExtensionsResource {
    const TYPE_NAME: &'static str = "omni_machine_extensions";
    type State = MachineExtensionsState;

    fn schema(&self) -> Schema {
        let selector = vec![
            Attribute::string("machine_set").optional().description(
                "Machine set ID, e.g. `<cluster>-workers` (the `id` of an \
                 `omni_machine_set`). Must start with `<cluster>-`.",
            ),
            Attribute::string("cluster_machine")
                .optional()
                .description("UUID of one machine of `cluster`."),
        ];
        Schema::new(DESCRIPTION)
            .attribute(
                Attribute::string("id").computed().description(
                    "Omni resource ID: `schematic-<cluster, machine set or machine>`.",
                ),
            )
            .attribute(
                Attribute::string("cluster")
                    .required()
                    .requires_replace()
                    .description("Cluster name. Changing it replaces the configuration."),
            )
            .attribute(
                Attribute::set("extensions", Type::String)
                    .required()
                    .description("Extension names, e.g. `siderolabs/iscsi-tools`."),
            )
            .attribute(timeouts::attribute(
                DEFAULT_TIMEOUT,
                DEFAULT_TIMEOUT,
                DEFAULT_TIMEOUT,
            ))
            .block(NestedBlock::new(
                "selector",
                BlockNesting::Single,
                selector.into_iter().fold(
                    Block::new(
                        "Narrows the configuration to a machine set or a cluster machine (set \
                         at most one). Without it, it applies to the whole cluster. Changing it \
                         replaces the configuration.",
                    ),
                    Block::attribute,
                ),
            ))
    }

    async fn validate(&self, _ctx: &Ctx, config: &MachineExtensionsState) -> Result<()> {
        let mut diags = Diagnostics::new();
        Timeouts::validate(&config.timeouts).unwrap_or_else(|d| diags.extend(d));
        if config.cluster.as_str() == Some("") {
            diags.push(
                Diagnostic::error("Empty cluster", "`cluster` must not be empty.")
                    .at(AttributePath::new("cluster")),
            );
        }
        check_selector(config, &mut diags);
        if let Value::Known(list) = &config.extensions {
            check_names(list, &mut diags);
        }
        diags.into_result()
    }

    async fn read(
        &self,
        ctx: &Ctx,
        state: MachineExtensionsState,
        _private: &mut PrivateState,
    ) -> Result<Option<MachineExtensionsState>> {
        let Some(id) = state.id.as_str() else {
            return Ok(None);
        };
        let api = common::api::<ExtensionsConfiguration>(ctx)?;
        let obj = common::get_for_read(ctx, &api, id).await.map_err(|e| {
            common::omni_error(&format!("reading extensions configuration {id:?}"), e)
        })?;
        Ok(match obj {
            // Gone, or being removed by Omni's cascade (omni-api.md §5.1).
            None => None,
            Some(o) if o.is_tearing_down() => None,
            Some(o) => Some(state_from_object(&o, state)),
        })
    }

    async fn plan_create(
        &self,
        ctx: &Ctx,
        mut plan: MachineExtensionsState,
        _config: &MachineExtensionsState,
        _private: &mut PrivateState,
    ) -> Result<MachineExtensionsState> {
        plan.id = Target::of(&plan)
            .map(|t| Value::Known(t.id()))
            .unwrap_or(Value::Unknown);
        check_catalogue(ctx, &plan).await?;
        Ok(plan)
    }

    async fn plan_update(
        &self,
        ctx: &Ctx,
        prior: &MachineExtensionsState,
        mut plan: MachineExtensionsState,
        _config: &MachineExtensionsState,
        _private: &mut PrivateState,
        requires_replace: &mut Vec<AttributePath>,
    ) -> Result<MachineExtensionsState> {
        // A block, so the framework's attribute-level replace check does not cover it.
        if prior.selector != plan.selector {
            requires_replace.push(AttributePath::new("selector"));
        }
        plan.id = Target::of(&plan)
            .map(|t| Value::Known(t.id()))
            .unwrap_or(Value::Unknown);
        if plan.extensions != prior.extensions {
            check_catalogue(ctx, &plan).await?;
        }
        Ok(plan)
    }

    async fn create(
        &self,
        ctx: &Ctx,
        mut plan: MachineExtensionsState,
        _config: &MachineExtensionsState,
        _private: &mut PrivateState,
    ) -> Result<MachineExtensionsState> {
        let target = Target::of(&plan).ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Incomplete configuration",
                "Cannot create the extensions configuration: its cluster or selector is unknown.",
            ))
        })?;
        let id = target.id();
        let mut obj = Object::<ExtensionsConfiguration>::new(
            id.clone(),
            ExtensionsConfigurationSpec {
                extensions: extension_list(&plan),
            },
        );
        for (k, v) in target.labels() {
            obj = obj.with_label(k, v);
        }
        let api = common::api::<ExtensionsConfiguration>(ctx)?;
        let timeout = Timeouts::get(&plan.timeouts, "create", DEFAULT_TIMEOUT);
        common::create_replacing_dying(ctx, &api, obj, timeout, "extensions configuration")
            .await
            .map_err(|e| error_diag(&format!("creating extensions configuration {id:?}"), e))?;
        plan.id = Value::Known(id);
        Ok(plan)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _prior: MachineExtensionsState,
        plan: MachineExtensionsState,
        _config: &MachineExtensionsState,
        _private: &mut PrivateState,
    ) -> Result<MachineExtensionsState> {
        let id = plan.id.as_str().unwrap_or_default().to_string();
        let list = extension_list(&plan);
        let api = common::api::<ExtensionsConfiguration>(ctx)?;
        api.update(&id, |o| {
            // Order carries no meaning to Omni; only rewrite when the set differs.
            let now: BTreeSet<&String> = o.spec.extensions.iter().collect();
            let want: BTreeSet<&String> = list.iter().collect();
            if now != want {
                o.spec.extensions = list.clone();
            }
        })
        .await
        .map_err(|e| error_diag(&format!("updating extensions configuration {id:?}"), e))?;
        Ok(plan)
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        prior: MachineExtensionsState,
        _private: &PrivateState,
    ) -> Result<()> {
        let Some(id) = prior.id.as_str() else {
            return Ok(());
        };
        let api = common::api::<ExtensionsConfiguration>(ctx)?;
        let timeout = Timeouts::get(&prior.timeouts, "delete", DEFAULT_TIMEOUT);
        common::teardown_and_wait(
            ctx,
            &api,
            id,
            timeout,
            &format!("extensions configuration {id:?}"),
        )
        .await
    }

    async fn import(&self, _ctx: &Ctx, id: &str) -> Result<MachineExtensionsState> {
        // Read fills cluster, selector and extensions from the labels and spec.
        Ok(MachineExtensionsState {
            id: id.into(),
            ..Default::default()
        })
    }
}

/// Where a configuration applies (omni-api.md §3.5 "Extensions", §7 template mapping).
#[derive(Clone, Debug, PartialEq)]
enum Target {
    Cluster(String),
    MachineSet { cluster: String, set: String },
    ClusterMachine { cluster: String, machine: String },
}

impl Target {
    fn of(s: &MachineExtensionsState) -> Option<Target> {
        let cluster = s.cluster.clone().known()?;
        let (set, cm) = match &s.selector {
            Value::Null => (Value::Null, Value::Null),
            Value::Unknown => return None,
            Value::Known(sel) => (sel.machine_set.clone(), sel.cluster_machine.clone()),
        };
        if set.is_unknown() || cm.is_unknown() {
            return None;
        }
        match (set.known(), cm.known()) {
            (None, None) => Some(Target::Cluster(cluster)),
            (Some(set), None) => Some(Target::MachineSet { cluster, set }),
            (None, Some(machine)) => Some(Target::ClusterMachine { cluster, machine }),
            (Some(_), Some(_)) => None,
        }
    }

    fn from_object(o: &Object<ExtensionsConfiguration>) -> Option<Target> {
        let l = &o.metadata.labels;
        let cluster = l.get(labels::CLUSTER)?.clone();
        if let Some(machine) = l.get(labels::CLUSTER_MACHINE) {
            return Some(Target::ClusterMachine {
                cluster,
                machine: machine.clone(),
            });
        }
        if let Some(set) = l.get(labels::MACHINE_SET) {
            return Some(Target::MachineSet {
                cluster,
                set: set.clone(),
            });
        }
        Some(Target::Cluster(cluster))
    }

    /// `schematic-<cluster | machine set ID | machine UUID>` (omni-api.md §3.3, §7).
    fn id(&self) -> String {
        match self {
            Target::Cluster(c) => format!("schematic-{c}"),
            Target::MachineSet { set, .. } => format!("schematic-{set}"),
            Target::ClusterMachine { machine, .. } => format!("schematic-{machine}"),
        }
    }

    /// The cluster label always; a cluster-level configuration must carry no other scope
    /// label (omni-api.md §3.5).
    fn labels(&self) -> Vec<(&'static str, String)> {
        match self {
            Target::Cluster(c) => vec![(labels::CLUSTER, c.clone())],
            Target::MachineSet { cluster, set } => vec![
                (labels::CLUSTER, cluster.clone()),
                (labels::MACHINE_SET, set.clone()),
            ],
            Target::ClusterMachine { cluster, machine } => vec![
                (labels::CLUSTER, cluster.clone()),
                (labels::CLUSTER_MACHINE, machine.clone()),
            ],
        }
    }

    fn cluster(&self) -> &str {
        match self {
            Target::Cluster(c)
            | Target::MachineSet { cluster: c, .. }
            | Target::ClusterMachine { cluster: c, .. } => c,
        }
    }

    fn selector(&self) -> Value<ExtensionsSelector> {
        match self {
            Target::Cluster(_) => Value::Null,
            Target::MachineSet { set, .. } => Value::Known(ExtensionsSelector {
                machine_set: Value::Known(set.clone()),
                cluster_machine: Value::Null,
            }),
            Target::ClusterMachine { machine, .. } => Value::Known(ExtensionsSelector {
                machine_set: Value::Null,
                cluster_machine: Value::Known(machine.clone()),
            }),
        }
    }
}

fn extension_list(s: &MachineExtensionsState) -> Vec<String> {
    s.extensions
        .as_option()
        .map(|set| set.iter().cloned().collect())
        .unwrap_or_default()
}

fn state_from_object(
    o: &Object<ExtensionsConfiguration>,
    prior: MachineExtensionsState,
) -> MachineExtensionsState {
    let mut s = prior;
    s.id = Value::Known(o.id().to_string());
    if let Some(t) = Target::from_object(o) {
        s.cluster = Value::Known(t.cluster().to_string());
        s.selector = t.selector();
    }
    s.extensions = Value::Known(o.spec.extensions.iter().cloned().collect());
    s
}

/// A well-formed extension name: `owner/name` (or a bare `name`, read as `siderolabs/name`),
/// each part letters, digits, `.`, `_` or `-`.
fn check_name(name: &str) -> std::result::Result<(), String> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    };
    let ok = match name.split_once('/') {
        Some((owner, rest)) => part_ok(owner) && part_ok(rest),
        None => part_ok(name),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not an extension name: use the catalogue name, e.g. \
             \"siderolabs/iscsi-tools\""
        ))
    }
}

fn check_names(list: &BTreeSet<String>, diags: &mut Diagnostics) {
    let path = || AttributePath::new("extensions");
    if list.len() > MAX_EXTENSIONS {
        diags.push(
            Diagnostic::error(
                "Too many extensions",
                format!(
                    "{} extensions listed; Omni accepts at most {MAX_EXTENSIONS}.",
                    list.len()
                ),
            )
            .at(path()),
        );
    }
    let mut seen = BTreeSet::new();
    for name in list {
        if let Err(e) = check_name(name) {
            diags.push(Diagnostic::error("Invalid extension name", e).at(path()));
            continue;
        }
        let full = names::extension_lookup_name(name);
        if !seen.insert(full.clone()) {
            diags.push(
                Diagnostic::error(
                    "Duplicate extension",
                    format!("{full:?} is listed twice (once without the \"siderolabs/\" prefix)."),
                )
                .at(path()),
            );
        }
    }
}

fn check_selector(config: &MachineExtensionsState, diags: &mut Diagnostics) {
    let Value::Known(sel) = &config.selector else {
        return;
    };
    if sel.machine_set.is_null() && sel.cluster_machine.is_null() {
        // An empty block would read back as no block at all: a diff on every plan.
        diags.push(
            Diagnostic::error(
                "Empty selector",
                "A selector block needs machine_set or cluster_machine; leave the block out \
                 for the whole cluster.",
            )
            .at(AttributePath::new("selector")),
        );
    }
    if !sel.machine_set.is_null() && !sel.cluster_machine.is_null() {
        diags.push(
            Diagnostic::error(
                "Conflicting selectors",
                "Set at most one of selector.machine_set and selector.cluster_machine.",
            )
            // A block: Terraform can only place the diagnostic on one of its attributes.
            .at(AttributePath::new("selector").attr("cluster_machine")),
        );
    }
    for (field, v) in [
        ("machine_set", &sel.machine_set),
        ("cluster_machine", &sel.cluster_machine),
    ] {
        if v.as_str() == Some("") {
            diags.push(
                Diagnostic::error(
                    "Empty selector",
                    format!("selector.{field} must not be empty."),
                )
                .at(AttributePath::new("selector").attr(field)),
            );
        }
    }
    if let (Some(set), Some(cluster)) = (sel.machine_set.as_str(), config.cluster.as_str()) {
        if !set.is_empty() && !set.starts_with(&format!("{cluster}-")) {
            diags.push(
                Diagnostic::error(
                    "Machine set of another cluster",
                    format!(
                        "Machine set IDs of cluster {cluster:?} start with \"{cluster}-\"; \
                         {set:?} does not."
                    ),
                )
                .at(AttributePath::new("selector").attr("machine_set")),
            );
        }
    }
}

/// When the cluster already exists, checks the names against Omni's extension catalogue for
/// its Talos version, as Omni will on apply (omni-api.md §4 "ExtensionsConfiguration"). Any
/// failure to look things up leaves the check to apply time.
async fn check_catalogue(ctx: &Ctx, plan: &MachineExtensionsState) -> Result<()> {
    let (Some(cluster), Value::Known(list)) = (plan.cluster.as_str(), &plan.extensions) else {
        return Ok(());
    };
    if list.is_empty() {
        return Ok(());
    }
    let Ok(clusters) = common::api::<Cluster>(ctx) else {
        return Ok(());
    };
    let Ok(Some(c)) = clusters.get_opt(cluster).await else {
        return Ok(());
    };
    let version = c.spec.talos_version.clone();
    let Ok(catalogue) = common::api::<TalosExtensions>(ctx) else {
        return Ok(());
    };
    let Ok(Some(cat)) = catalogue.get_opt(&version).await else {
        return Ok(());
    };
    let available: BTreeSet<&str> = cat.spec.items.iter().map(|i| i.name.as_str()).collect();
    let missing: Vec<&String> = list
        .iter()
        .filter(|n| !available.contains(names::extension_lookup_name(n).as_str()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Diagnostic::error(
        "Extension not available",
        format!(
            "Not available for Talos {version} (the version of cluster {cluster:?}): {}. \
             Omni would refuse this configuration.",
            missing
                .iter()
                .map(|m| format!("{m:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .at(AttributePath::new("extensions"))
    .into())
}

/// Omni's refusals are about the list (unknown extension, duplicates, too many) or a missing
/// cluster: point at the attribute.
fn error_diag(action: &str, err: omni_client::Error) -> Diagnostics {
    let text = err.to_string();
    if text.contains("cluster") && !text.contains("extension") {
        common::omni_error_at(action, err, AttributePath::new("cluster"))
    } else if matches!(err, omni_client::Error::Validation(_)) {
        common::omni_error_at(action, err, AttributePath::new("extensions"))
    } else {
        common::omni_error(action, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(sel: Option<(Option<&str>, Option<&str>)>) -> MachineExtensionsState {
        MachineExtensionsState {
            cluster: "lab".into(),
            selector: sel
                .map(|(s, m)| ExtensionsSelector {
                    machine_set: s.map(str::to_string).into(),
                    cluster_machine: m.map(str::to_string).into(),
                })
                .into(),
            extensions: Value::Known(BTreeSet::from(["siderolabs/iscsi-tools".to_string()])),
            ..Default::default()
        }
    }

    #[test]
    fn ids_and_labels_match_templates() {
        let t = Target::of(&state(None)).unwrap();
        assert_eq!(t.id(), "schematic-lab");
        assert_eq!(t.labels(), vec![(labels::CLUSTER, "lab".to_string())]);
        let t = Target::of(&state(Some((Some("lab-workers"), None)))).unwrap();
        assert_eq!(t.id(), "schematic-lab-workers");
        assert_eq!(
            t.labels()[1],
            (labels::MACHINE_SET, "lab-workers".to_string())
        );
        let t = Target::of(&state(Some((None, Some("uuid-1"))))).unwrap();
        assert_eq!(t.id(), "schematic-uuid-1");
        assert_eq!(
            t.labels()[1],
            (labels::CLUSTER_MACHINE, "uuid-1".to_string())
        );
    }

    #[test]
    fn read_round_trips_the_target() {
        let s = state(Some((Some("lab-w"), None)));
        let t = Target::of(&s).unwrap();
        let mut o = Object::<ExtensionsConfiguration>::new(
            t.id(),
            ExtensionsConfigurationSpec {
                extensions: vec!["siderolabs/gvisor".into(), "siderolabs/iscsi-tools".into()],
            },
        );
        for (k, v) in t.labels() {
            o = o.with_label(k, v);
        }
        let back = state_from_object(&o, MachineExtensionsState::default());
        assert_eq!(back.id.as_str(), Some("schematic-lab-w"));
        assert_eq!(back.cluster.as_str(), Some("lab"));
        assert!(back.selector == s.selector);
        assert_eq!(back.extensions.known().unwrap().len(), 2);
    }

    fn paths(s: &MachineExtensionsState) -> Vec<String> {
        let mut diags = Diagnostics::new();
        check_selector(s, &mut diags);
        if let Value::Known(l) = &s.extensions {
            check_names(l, &mut diags);
        }
        diags
            .iter()
            .map(|d| d.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn plan_time_checks() {
        assert!(paths(&state(None)).is_empty());
        assert_eq!(paths(&state(Some((None, None)))), vec!["selector"]);
        assert_eq!(
            paths(&state(Some((Some("lab-w"), Some("u"))))),
            vec!["selector.cluster_machine"]
        );
        assert_eq!(
            paths(&state(Some((Some("x-w"), None)))),
            vec!["selector.machine_set"]
        );
        let mut s = state(None);
        s.extensions = Value::Known(BTreeSet::from([
            "iscsi-tools".to_string(),
            "siderolabs/iscsi-tools".to_string(),
            "bad name".to_string(),
            "a/b/c".to_string(),
        ]));
        assert_eq!(paths(&s), vec!["extensions"; 3]);
    }
}
