//! `omni_config_patch`: a Talos machine config patch (`ConfigPatches.omni.sidero.dev`) scoped to
//! a cluster, a machine set, a cluster machine or a bare machine.

use std::time::Duration;

use omni_client::omni_api::specs::ConfigPatchSpec;
use omni_client::resources::{annotations, labels, ConfigPatch};
use omni_client::Object;
use serde::{Deserialize, Serialize};
use talos_machinery::patch;
use tfplugin::{
    async_trait, Attribute, AttributePath, Block, BlockNesting, Ctx, Diagnostic, Diagnostics,
    NestedBlock, PrivateState, Resource, Result, Schema, Value,
};

use crate::common::{self, timeouts, Timeouts};

const DESCRIPTION: &str = "\
A Talos machine configuration patch applied by Omni to the machines of a cluster, a machine set, \
one cluster machine or one machine.

The ID follows Omni's cluster templates (`omnictl cluster template`), so a patch can move \
between a template and Terraform without being re-created:

| scope | `selector` | ID | default `weight` |
| --- | --- | --- | --- |
| cluster | none | `NNN-cluster-<cluster>-<name>` | 200 |
| machine set | `machine_set` | `NNN-<machine set ID>-<name>` | 400 |
| cluster machine | `cluster_machine` | `NNN-cm-<machine UUID>-<name>` | 400 |
| machine | `machine` | `NNN-machine-<machine UUID>-<name>` | 400 |

`NNN` is the weight, zero-padded to three digits. Within one scope Omni applies patches in ID \
order, so a lower weight is applied first. `id_override` replaces the computed ID.

`data` is checked while planning with the rules Omni applies on create (the YAML must load as a \
Talos config patch; cluster secrets, `machine.token`, `machine.install.disk` and similar fields, \
and documents such as `KubeClusterConfig`, are refused). It is compared by meaning: a \
re-ordered, re-indented or commented copy of the same patch is not a change.

Omni deletes a machine-set or cluster-machine patch by itself when that machine set or machine \
leaves the cluster, and every patch of a cluster when the cluster is deleted; such a patch \
simply disappears from the state and is planned for creation again.";

const DEFAULT_DELETE: Duration = Duration::from_secs(5 * 60);

/// Template base weights (omni-api.md §7: `PatchBaseWeightCluster=200`,
/// `PatchBaseWeightMachineSet=400`, `PatchBaseWeightClusterMachine=400`).
const CLUSTER_WEIGHT: i64 = 200;
const MACHINE_WEIGHT: i64 = 400;

/// The `omni_config_patch` resource.
pub struct ConfigPatchResource;

/// State of `omni_config_patch`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Default)]
pub struct ConfigPatchState {
    /// Omni resource ID (computed, or `id_override`).
    pub id: Value<String>,
    /// Human name; part of the ID and the `name` annotation.
    pub name: Value<String>,
    /// Order prefix of the ID (0–999).
    pub weight: Value<i64>,
    /// Cluster the patch belongs to.
    pub cluster: Value<String>,
    /// Narrower target inside the cluster (at most one field set).
    pub selector: Value<PatchSelector>,
    /// The patch YAML.
    pub data: Value<String>,
    /// Use this ID instead of the computed one.
    pub id_override: Value<String>,
    /// Time limits.
    #[serde(default)]
    pub timeouts: Value<Timeouts>,
}

/// `selector` of `omni_config_patch`.
#[derive(Serialize, Deserialize, Clone, PartialEq, Default)]
pub struct PatchSelector {
    /// Machine set ID (`<cluster>-workers`, `<cluster>-control-planes`, ...).
    pub machine_set: Value<String>,
    /// Machine UUID, as a member of `cluster`.
    pub cluster_machine: Value<String>,
    /// Machine UUID, wherever the machine is.
    pub machine: Value<String>,
}

#[async_trait]
impl Resource for ConfigPatchResource {
    const TYPE_NAME: &'static str = "omni_config_patch";
    type State = ConfigPatchState;

    fn schema(&self) -> Schema {
        let selector = vec![
            Attribute::string("machine_set").optional().description(
                "Machine set ID, e.g. `<cluster>-workers` or `<cluster>-control-planes` \
                 (the `id` of an `omni_machine_set`). Must start with `<cluster>-`.",
            ),
            Attribute::string("cluster_machine")
                .optional()
                .description("UUID of one machine of `cluster`."),
            Attribute::string("machine").optional().description(
                "UUID of one machine; the patch follows the machine, with or without a \
                 cluster (`cluster` is then optional).",
            ),
        ];
        Schema::new(DESCRIPTION)
            .attribute(
                Attribute::string("id")
                    .computed()
                    .description("Omni resource ID of the patch (see the table above)."),
            )
            .attribute(Attribute::string("name").required().description(
                "Name of the patch: part of the ID, and shown in Omni (annotation `name`). \
                     Changing it replaces the patch when it changes the ID (always, unless \
                     `id_override` is set).",
            ))
            .attribute(Attribute::number("weight").optional_computed().description(
                "Order of the patch within its scope, 0–999 (the `NNN` of the ID). Default \
                     200 for cluster patches, 400 otherwise. Changing it replaces the patch \
                     unless `id_override` is set.",
            ))
            .attribute(
                Attribute::string("cluster")
                    .optional()
                    .requires_replace()
                    .description(
                        "Cluster name. Required unless `selector.machine` is set. Changing it \
                         replaces the patch.",
                    ),
            )
            .attribute(Attribute::string("data").required().description(
                "The patch: Talos machine configuration YAML, one or more documents \
                 (strategic merge; `$patch: delete` allowed). Compared by meaning, not by text.",
            ))
            .attribute(Attribute::string("id_override").optional().description(
                "Use this resource ID instead of the computed one (like `idOverride` in \
                         cluster templates). Changing the resulting ID replaces the patch; \
                         spelling out the ID the patch already has does not.",
            ))
            .attribute(timeouts::attribute(
                DEFAULT_DELETE,
                DEFAULT_DELETE,
                DEFAULT_DELETE,
            ))
            .block(NestedBlock::new(
                "selector",
                BlockNesting::Single,
                selector.into_iter().fold(
                    Block::new(
                        "Narrows the patch to a machine set, a cluster machine or a machine (set \
                         at most one). Without it the patch applies to the whole cluster. \
                         Changing it replaces the patch.",
                    ),
                    Block::attribute,
                ),
            ))
    }

    async fn validate(&self, _ctx: &Ctx, config: &ConfigPatchState) -> Result<()> {
        let mut diags = Diagnostics::new();
        Timeouts::validate(&config.timeouts).unwrap_or_else(|d| diags.extend(d));
        if let Some(data) = config.data.as_str() {
            if let Err(d) = validate_data(data) {
                diags.push(d);
            }
        }
        if let Some(name) = config.name.as_str() {
            if let Err(e) = validate_name(name) {
                diags.push(
                    Diagnostic::error("Invalid patch name", e).at(AttributePath::new("name")),
                );
            }
        }
        if let Some(w) = config.weight.as_option() {
            if !(0..=999).contains(w) {
                diags.push(
                    Diagnostic::error(
                        "Invalid weight",
                        format!(
                            "weight {w} is out of range: it is the three-digit prefix of the \
                             patch ID, so it must be between 0 and 999."
                        ),
                    )
                    .at(AttributePath::new("weight")),
                );
            }
        }
        if let Some(id) = config.id_override.as_str() {
            if let Err(e) = talos_machinery::names::validate_resource_id(id) {
                diags.push(
                    Diagnostic::error("Invalid id_override", e)
                        .at(AttributePath::new("id_override")),
                );
            }
        }
        check_scope(config, &mut diags);
        diags.into_result()
    }

    async fn read(
        &self,
        ctx: &Ctx,
        state: ConfigPatchState,
        _private: &mut PrivateState,
    ) -> Result<Option<ConfigPatchState>> {
        let Some(id) = state.id.as_str() else {
            return Ok(None);
        };
        let api = common::api::<ConfigPatch>(ctx)?;
        let obj = common::get_for_read(ctx, &api, id)
            .await
            .map_err(|e| common::omni_error(&format!("reading config patch {id:?}"), e))?;
        match obj {
            // Gone, or on its way out (e.g. Omni's cascade after its cluster or machine set was
            // deleted, omni-api.md §5.1): plan a new one rather than fail.
            None => Ok(None),
            Some(o) if o.is_tearing_down() => Ok(None),
            Some(o) => Ok(Some(state_from_object(&o, state))),
        }
    }

    async fn plan_create(
        &self,
        _ctx: &Ctx,
        mut plan: ConfigPatchState,
        config: &ConfigPatchState,
        _private: &mut PrivateState,
    ) -> Result<ConfigPatchState> {
        fill_planned(&mut plan, config);
        Ok(plan)
    }

    async fn plan_update(
        &self,
        _ctx: &Ctx,
        prior: &ConfigPatchState,
        mut plan: ConfigPatchState,
        config: &ConfigPatchState,
        _private: &mut PrivateState,
        requires_replace: &mut Vec<AttributePath>,
    ) -> Result<ConfigPatchState> {
        fill_planned(&mut plan, config);
        requires_replace.extend(replace_paths(prior, &plan));
        Ok(plan)
    }

    async fn create(
        &self,
        ctx: &Ctx,
        mut plan: ConfigPatchState,
        config: &ConfigPatchState,
        _private: &mut PrivateState,
    ) -> Result<ConfigPatchState> {
        fill_planned(&mut plan, config);
        let scope = Scope::of(&plan).ok_or_else(|| incomplete("create"))?;
        let id = plan
            .id
            .as_str()
            .ok_or_else(|| incomplete("create"))?
            .to_string();
        let name = plan.name.as_str().unwrap_or_default().to_string();
        let data = plan.data.as_str().unwrap_or_default().to_string();
        let mut obj = Object::<ConfigPatch>::new(
            id.clone(),
            ConfigPatchSpec {
                data,
                ..Default::default()
            },
        )
        .with_annotation(annotations::NAME, name);
        for (k, v) in scope.labels() {
            obj = obj.with_label(k, v);
        }
        let api = common::api::<ConfigPatch>(ctx)?;
        let timeout = Timeouts::get(&plan.timeouts, "create", DEFAULT_DELETE);
        common::create_replacing_dying(ctx, &api, obj, timeout, "config patch")
            .await
            .map_err(|e| {
                let path = error_path_for(&scope, &e);
                common::omni_error_at(&format!("creating config patch {id:?}"), e, path)
            })?;
        Ok(plan)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _prior: ConfigPatchState,
        plan: ConfigPatchState,
        _config: &ConfigPatchState,
        _private: &mut PrivateState,
    ) -> Result<ConfigPatchState> {
        let id = plan
            .id
            .as_str()
            .ok_or_else(|| incomplete("update"))?
            .to_string();
        let data = plan.data.as_str().unwrap_or_default().to_string();
        let name = plan.name.as_str().unwrap_or_default().to_string();
        let api = common::api::<ConfigPatch>(ctx)?;
        api.update(&id, |o| {
            // With `id_override` the name is only the annotation.
            o.metadata
                .annotations
                .insert(annotations::NAME.to_string(), name.clone());
            // Only `data` updates in place; the client always writes it uncompressed
            // (omni-api.md §1.11 "A Rust client may always write uncompressed data").
            if !patch::semantically_equal(&o.spec.data, &data) || !o.spec.compressed_data.is_empty()
            {
                o.spec.data = data.clone();
                o.spec.compressed_data.clear();
            }
        })
        .await
        .map_err(|e| {
            common::omni_error_at(
                &format!("updating config patch {id:?}"),
                e,
                AttributePath::new("data"),
            )
        })?;
        Ok(plan)
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        prior: ConfigPatchState,
        _private: &PrivateState,
    ) -> Result<()> {
        let Some(id) = prior.id.as_str() else {
            return Ok(());
        };
        let api = common::api::<ConfigPatch>(ctx)?;
        let timeout = Timeouts::get(&prior.timeouts, "delete", DEFAULT_DELETE);
        common::teardown_and_wait(ctx, &api, id, timeout, &format!("config patch {id:?}")).await
    }

    async fn import(&self, ctx: &Ctx, id: &str) -> Result<ConfigPatchState> {
        let api = common::api::<ConfigPatch>(ctx)?;
        let obj = api
            .get_opt(id)
            .await
            .map_err(|e| common::omni_error(&format!("importing config patch {id:?}"), e))?
            .ok_or_else(|| {
                Diagnostics::from(Diagnostic::error(
                    "Config patch not found",
                    format!("Omni has no ConfigPatches resource with ID {id:?}."),
                ))
            })?;
        Ok(imported_state(&obj))
    }
}

/// Where a patch applies (omni-api.md §3.5 "Config patches").
#[derive(Clone, Debug, PartialEq)]
enum Scope {
    Cluster(String),
    MachineSet {
        cluster: String,
        set: String,
    },
    ClusterMachine {
        cluster: String,
        machine: String,
    },
    Machine {
        cluster: Option<String>,
        machine: String,
    },
}

impl Scope {
    /// The scope of a planned state; `None` while something is unknown or invalid.
    fn of(s: &ConfigPatchState) -> Option<Scope> {
        let cluster = match &s.cluster {
            Value::Known(c) => Some(c.clone()),
            Value::Null => None,
            Value::Unknown => return None,
        };
        let (set, cm, m) = match &s.selector {
            Value::Null => (Value::Null, Value::Null, Value::Null),
            Value::Unknown => return None,
            Value::Known(sel) => (
                sel.machine_set.clone(),
                sel.cluster_machine.clone(),
                sel.machine.clone(),
            ),
        };
        if set.is_unknown() || cm.is_unknown() || m.is_unknown() {
            return None;
        }
        match (set.known(), cm.known(), m.known()) {
            (None, None, None) => cluster.map(Scope::Cluster),
            (Some(set), None, None) => Some(Scope::MachineSet {
                cluster: cluster?,
                set,
            }),
            (None, Some(machine), None) => Some(Scope::ClusterMachine {
                cluster: cluster?,
                machine,
            }),
            (None, None, Some(machine)) => Some(Scope::Machine { cluster, machine }),
            _ => None,
        }
    }

    /// The scope Omni sees in a patch's labels (the machine label wins, §3.5).
    fn from_labels(o: &Object<ConfigPatch>) -> Option<Scope> {
        let l = &o.metadata.labels;
        let cluster = l.get(labels::CLUSTER).cloned();
        if let Some(machine) = l.get(labels::MACHINE) {
            return Some(Scope::Machine {
                cluster,
                machine: machine.clone(),
            });
        }
        let cluster = cluster?;
        if let Some(machine) = l.get(labels::CLUSTER_MACHINE) {
            return Some(Scope::ClusterMachine {
                cluster,
                machine: machine.clone(),
            });
        }
        if let Some(set) = l.get(labels::MACHINE_SET) {
            return Some(Scope::MachineSet {
                cluster,
                set: set.clone(),
            });
        }
        Some(Scope::Cluster(cluster))
    }

    /// The middle part of a template-style ID (omni-api.md §7).
    fn id_part(&self) -> String {
        match self {
            Scope::Cluster(c) => format!("cluster-{c}"),
            Scope::MachineSet { set, .. } => set.clone(),
            Scope::ClusterMachine { machine, .. } => format!("cm-{machine}"),
            Scope::Machine { machine, .. } => format!("machine-{machine}"),
        }
    }

    fn default_weight(&self) -> i64 {
        match self {
            Scope::Cluster(_) => CLUSTER_WEIGHT,
            _ => MACHINE_WEIGHT,
        }
    }

    /// Labels Omni uses to find the patch (omni-api.md §3.2, §3.5).
    fn labels(&self) -> Vec<(&'static str, String)> {
        match self {
            Scope::Cluster(c) => vec![(labels::CLUSTER, c.clone())],
            Scope::MachineSet { cluster, set } => vec![
                (labels::CLUSTER, cluster.clone()),
                (labels::MACHINE_SET, set.clone()),
            ],
            Scope::ClusterMachine { cluster, machine } => vec![
                (labels::CLUSTER, cluster.clone()),
                (labels::CLUSTER_MACHINE, machine.clone()),
            ],
            Scope::Machine { cluster, machine } => {
                let mut v = vec![(labels::MACHINE, machine.clone())];
                if let Some(c) = cluster {
                    v.push((labels::CLUSTER, c.clone()));
                }
                v
            }
        }
    }

    fn cluster(&self) -> Option<&str> {
        match self {
            Scope::Cluster(c)
            | Scope::MachineSet { cluster: c, .. }
            | Scope::ClusterMachine { cluster: c, .. } => Some(c),
            Scope::Machine { cluster, .. } => cluster.as_deref(),
        }
    }

    fn selector(&self) -> Value<PatchSelector> {
        let sel = |set: Option<&String>, cm: Option<&String>, m: Option<&String>| {
            Value::Known(PatchSelector {
                machine_set: set.cloned().into(),
                cluster_machine: cm.cloned().into(),
                machine: m.cloned().into(),
            })
        };
        match self {
            Scope::Cluster(_) => Value::Null,
            Scope::MachineSet { set, .. } => sel(Some(set), None, None),
            Scope::ClusterMachine { machine, .. } => sel(None, Some(machine), None),
            Scope::Machine { machine, .. } => sel(None, None, Some(machine)),
        }
    }
}

/// `NNN-<scope>-<name>`, the ID cluster templates give the same patch (omni-api.md §7).
fn template_id(weight: i64, scope: &Scope, name: &str) -> String {
    format!("{weight:03}-{}-{name}", scope.id_part())
}

/// Fills the planned weight default and the ID when everything they depend on is known.
fn fill_planned(plan: &mut ConfigPatchState, config: &ConfigPatchState) {
    let scope = Scope::of(plan);
    if config.weight.is_null() {
        plan.weight = match &scope {
            Some(s) => Value::Known(s.default_weight()),
            None => Value::Unknown,
        };
    }
    plan.id = match (&plan.id_override, &scope, &plan.weight, &plan.name) {
        (Value::Known(id), _, _, _) => Value::Known(id.clone()),
        (Value::Unknown, _, _, _) => Value::Unknown,
        (Value::Null, Some(s), Value::Known(w), Value::Known(n)) => {
            Value::Known(template_id(*w, s, n))
        }
        _ => Value::Unknown,
    };
}

/// What forces a new object: the target (labels select it, omni-api.md §3.5) or a new ID. Name,
/// weight and `id_override` only matter through the ID they produce, so an `id_override` equal
/// to the current ID (e.g. after an import) or a new name behind an `id_override` is an update.
fn replace_paths(prior: &ConfigPatchState, plan: &ConfigPatchState) -> Vec<AttributePath> {
    let mut out = Vec::new();
    // A block, so the framework's attribute-level replace check does not cover it.
    if prior.selector != plan.selector {
        out.push(AttributePath::new("selector"));
    }
    let same_id = matches!((&prior.id, &plan.id), (Value::Known(a), Value::Known(b)) if a == b);
    if !same_id {
        for (attr, changed) in [
            ("name", prior.name != plan.name),
            ("weight", prior.weight != plan.weight),
            ("id_override", prior.id_override != plan.id_override),
        ] {
            if changed {
                out.push(AttributePath::new(attr));
            }
        }
    }
    out
}

/// Refreshes `prior` from the server object.
fn state_from_object(o: &Object<ConfigPatch>, prior: ConfigPatchState) -> ConfigPatchState {
    let mut s = prior;
    s.id = Value::Known(o.id().to_string());
    if let Some(scope) = Scope::from_labels(o) {
        s.cluster = scope.cluster().map(str::to_string).into();
        s.selector = scope.selector();
    } else {
        s.cluster = Value::Null;
        s.selector = Value::Null;
    }
    if let Some(name) = o.metadata.annotations.get(annotations::NAME) {
        s.name = Value::Known(name.clone());
    }
    // The client has already decompressed `compressed_data` (omni-api.md §1.11). Keep the
    // user's text when the server's means the same, so formatting is never drift.
    let server = &o.spec.data;
    let keep = matches!(&s.data, Value::Known(mine) if patch::semantically_equal(mine, server));
    if !keep {
        s.data = Value::Known(server.clone());
    }
    if s.weight.is_null() || s.weight.is_unknown() {
        s.weight = Value::Known(weight_of(o.id()).unwrap_or_else(|| {
            Scope::from_labels(o)
                .map(|sc| sc.default_weight())
                .unwrap_or(MACHINE_WEIGHT)
        }));
    }
    s
}

/// State for an imported patch: `weight`, `name` and `id_override` are chosen so that the
/// configuration that created this ID (template-style or overridden) plans no change.
fn imported_state(o: &Object<ConfigPatch>) -> ConfigPatchState {
    let id = o.id().to_string();
    let scope = Scope::from_labels(o);
    let weight = weight_of(&id)
        .or_else(|| scope.as_ref().map(Scope::default_weight))
        .unwrap_or(MACHINE_WEIGHT);
    let name = o
        .metadata
        .annotations
        .get(annotations::NAME)
        .cloned()
        .or_else(|| {
            let prefix = format!("{weight:03}-{}-", scope.as_ref()?.id_part());
            id.strip_prefix(&prefix).map(str::to_string)
        })
        .unwrap_or_else(|| id.clone());
    let computed = scope.as_ref().map(|s| template_id(weight, s, &name));
    let id_override = if computed.as_deref() == Some(id.as_str()) {
        Value::Null
    } else {
        Value::Known(id.clone())
    };
    let base = ConfigPatchState {
        id: Value::Known(id),
        name: Value::Known(name),
        weight: Value::Known(weight),
        id_override,
        ..Default::default()
    };
    state_from_object(o, base)
}

/// The three-digit weight prefix of a template-style ID.
fn weight_of(id: &str) -> Option<i64> {
    let (prefix, rest) = id.split_at_checked(3)?;
    if !rest.starts_with('-') || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    prefix.parse().ok()
}

/// Plan-time check of `data` with Omni's own rules (image-factory-and-talos.md §6.2–§6.3).
fn validate_data(data: &str) -> std::result::Result<(), Diagnostic> {
    patch::validate_config_patch(data).map_err(|e| {
        let summary = if e.load_error {
            "Invalid config patch"
        } else {
            "Config patch not allowed by Omni"
        };
        Diagnostic::error(
            summary,
            format!("Omni would refuse this patch: {}", e.to_string().trim_end()),
        )
        .at(AttributePath::new("data"))
    })
}

fn validate_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("the patch name must not be empty".into());
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{name:?} contains control characters"));
    }
    Ok(())
}

/// The scope rules that do not need Omni: at most one selector, a cluster unless the patch
/// follows a machine, and a machine set of that cluster (omni-api.md §3.5, §4 "MachineSet").
fn check_scope(config: &ConfigPatchState, diags: &mut Diagnostics) {
    let sel_path = |f: &str| AttributePath::new("selector").attr(f);
    let mut set_fields = Vec::new();
    let mut machine_known = false;
    let mut machine_unknown = false;
    if let Value::Known(sel) = &config.selector {
        for (field, v) in [
            ("machine_set", &sel.machine_set),
            ("cluster_machine", &sel.cluster_machine),
            ("machine", &sel.machine),
        ] {
            if !v.is_null() {
                set_fields.push(field);
            }
            if let Value::Known(text) = v {
                if text.is_empty() {
                    diags.push(
                        Diagnostic::error(
                            "Empty selector",
                            format!("selector.{field} must not be empty."),
                        )
                        .at(sel_path(field)),
                    );
                }
            }
        }
        machine_known = sel.machine.is_known();
        machine_unknown = sel.machine.is_unknown();
        if set_fields.is_empty() {
            // An empty block would read back as no block at all: a diff on every plan.
            diags.push(
                Diagnostic::error(
                    "Empty selector",
                    "A selector block needs one of machine_set, cluster_machine or machine; \
                     leave the block out to patch the whole cluster.",
                )
                .at(AttributePath::new("selector")),
            );
        }
        if set_fields.len() > 1 {
            diags.push(
                Diagnostic::error(
                    "Conflicting selectors",
                    format!(
                        "Set at most one of selector.machine_set, selector.cluster_machine and \
                         selector.machine; got {}.",
                        set_fields.join(", ")
                    ),
                )
                // `selector` is a block: Terraform can only place a diagnostic on one of its
                // attributes, so point at the second one set.
                .at(sel_path(set_fields[1])),
            );
        }
        if let (Value::Known(set), Value::Known(cluster)) = (&sel.machine_set, &config.cluster) {
            if !set.is_empty() && !set.starts_with(&format!("{cluster}-")) {
                diags.push(
                    Diagnostic::error(
                        "Machine set of another cluster",
                        format!(
                            "Machine set IDs of cluster {cluster:?} start with \"{cluster}-\" \
                             (e.g. \"{cluster}-workers\"); {set:?} does not. Use the `id` of \
                             an omni_machine_set of this cluster."
                        ),
                    )
                    .at(sel_path("machine_set")),
                );
            }
        }
    }
    if config.cluster.is_null()
        && !machine_known
        && !machine_unknown
        && !config.selector.is_unknown()
    {
        diags.push(
            Diagnostic::error(
                "Missing cluster",
                "`cluster` is required unless the patch targets a single machine with \
                 selector.machine.",
            )
            .at(AttributePath::new("cluster")),
        );
    }
    if let Value::Known(c) = &config.cluster {
        if c.is_empty() {
            diags.push(
                Diagnostic::error("Empty cluster", "`cluster` must not be empty.")
                    .at(AttributePath::new("cluster")),
            );
        }
    }
}

/// Which attribute an Omni refusal on create concerns: creation checks only whether the
/// target is tearing down, and the data (omni-api.md §4 "ConfigPatch").
fn error_path_for(scope: &Scope, err: &omni_client::Error) -> AttributePath {
    let text = err.to_string();
    if text.contains("tearing down") {
        if text.contains("machine set") && matches!(scope, Scope::MachineSet { .. }) {
            return AttributePath::new("selector").attr("machine_set");
        }
        return AttributePath::new("cluster");
    }
    AttributePath::new("data")
}

fn incomplete(op: &str) -> Diagnostics {
    Diagnostic::error(
        "Incomplete configuration",
        format!("Cannot {op} the config patch: its cluster, selector, name or weight is unknown."),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(cluster: Option<&str>, sel: Option<PatchSelector>) -> ConfigPatchState {
        ConfigPatchState {
            name: "ntp".into(),
            cluster: cluster.map(str::to_string).into(),
            selector: sel.into(),
            data: "machine:\n  network:\n    hostname: a\n".into(),
            ..Default::default()
        }
    }

    fn sel(set: Option<&str>, cm: Option<&str>, m: Option<&str>) -> PatchSelector {
        PatchSelector {
            machine_set: set.map(str::to_string).into(),
            cluster_machine: cm.map(str::to_string).into(),
            machine: m.map(str::to_string).into(),
        }
    }

    fn planned(s: ConfigPatchState) -> ConfigPatchState {
        let config = s.clone();
        let mut plan = s;
        plan.id = Value::Unknown;
        fill_planned(&mut plan, &config);
        plan
    }

    #[test]
    fn ids_match_cluster_templates() {
        let p = planned(state(Some("lab"), None));
        assert_eq!(p.id.as_str(), Some("200-cluster-lab-ntp"));
        assert_eq!(p.weight, Value::Known(200));
        let p = planned(state(
            Some("lab"),
            Some(sel(Some("lab-workers"), None, None)),
        ));
        assert_eq!(p.id.as_str(), Some("400-lab-workers-ntp"));
        let p = planned(state(Some("lab"), Some(sel(None, Some("u-1"), None))));
        assert_eq!(p.id.as_str(), Some("400-cm-u-1-ntp"));
        let p = planned(state(None, Some(sel(None, None, Some("u-2")))));
        assert_eq!(p.id.as_str(), Some("400-machine-u-2-ntp"));
        // Same as talos-machinery's template rule for the first cluster patch.
        assert_eq!(
            talos_machinery::names::template_patch_id(200, 0, "cluster-lab", "ntp"),
            "200-cluster-lab-ntp"
        );
    }

    #[test]
    fn explicit_weight_and_override() {
        let mut s = state(Some("lab"), None);
        s.weight = Value::Known(7);
        assert_eq!(planned(s.clone()).id.as_str(), Some("007-cluster-lab-ntp"));
        s.id_override = "my-patch".into();
        assert_eq!(planned(s).id.as_str(), Some("my-patch"));
    }

    #[test]
    fn unknown_inputs_leave_the_id_unknown() {
        let mut s = state(Some("lab"), None);
        s.cluster = Value::Unknown;
        let p = planned(s);
        assert!(p.id.is_unknown());
        assert!(p.weight.is_unknown());
    }

    #[test]
    fn labels_per_scope() {
        let scope = Scope::of(&state(Some("lab"), Some(sel(Some("lab-w"), None, None)))).unwrap();
        assert_eq!(
            scope.labels(),
            vec![
                (labels::CLUSTER, "lab".to_string()),
                (labels::MACHINE_SET, "lab-w".to_string())
            ]
        );
        let scope = Scope::of(&state(None, Some(sel(None, None, Some("m"))))).unwrap();
        assert_eq!(scope.labels(), vec![(labels::MACHINE, "m".to_string())]);
    }

    fn object(id: &str, l: &[(&str, &str)], name: Option<&str>, data: &str) -> Object<ConfigPatch> {
        let mut o = Object::<ConfigPatch>::new(
            id,
            ConfigPatchSpec {
                data: data.into(),
                ..Default::default()
            },
        );
        for (k, v) in l {
            o = o.with_label(*k, *v);
        }
        if let Some(n) = name {
            o = o.with_annotation(annotations::NAME, n);
        }
        o
    }

    #[test]
    fn import_round_trips_template_ids_and_overrides() {
        let o = object(
            "401-lab-workers-ntp",
            &[
                (labels::CLUSTER, "lab"),
                (labels::MACHINE_SET, "lab-workers"),
            ],
            Some("ntp"),
            "machine: {}\n",
        );
        let s = imported_state(&o);
        assert_eq!(s.weight, Value::Known(401));
        assert!(s.id_override.is_null());
        assert_eq!(s.name.as_str(), Some("ntp"));
        assert_eq!(s.cluster.as_str(), Some("lab"));
        assert_eq!(
            s.selector.as_option().unwrap().machine_set.as_str(),
            Some("lab-workers")
        );
        // Without the name annotation the name comes from the ID.
        let o = object(
            "200-cluster-lab-dns",
            &[(labels::CLUSTER, "lab")],
            None,
            "x: 1\n",
        );
        let s = imported_state(&o);
        assert_eq!(s.name.as_str(), Some("dns"));
        assert!(s.id_override.is_null());
        // A free-form ID becomes id_override.
        let o = object("custom", &[(labels::CLUSTER, "lab")], Some("n"), "x: 1\n");
        let s = imported_state(&o);
        assert_eq!(s.id_override.as_str(), Some("custom"));
        assert_eq!(s.weight, Value::Known(200));
    }

    #[test]
    fn read_keeps_equal_text_and_takes_changed_text() {
        let mine = "machine:\n  network:\n    hostname: a  # mine\n  kubelet: {}\n";
        let mut prior = state(Some("lab"), None);
        prior.id = "200-cluster-lab-ntp".into();
        prior.weight = Value::Known(200);
        prior.data = mine.into();
        let reordered = "machine:\n    kubelet: {}\n    network: {hostname: a}\n";
        let o = object(
            &prior.id.clone().unwrap_or_default(),
            &[(labels::CLUSTER, "lab")],
            Some("ntp"),
            reordered,
        );
        let s = state_from_object(&o, prior.clone());
        assert_eq!(s.data.as_str(), Some(mine));
        let changed = "machine:\n  network:\n    hostname: b\n";
        let o = object(
            "200-cluster-lab-ntp",
            &[(labels::CLUSTER, "lab")],
            Some("ntp"),
            changed,
        );
        let s = state_from_object(&o, prior);
        assert_eq!(s.data.as_str(), Some(changed));
    }

    fn validation_paths(s: &ConfigPatchState) -> Vec<(String, String)> {
        let mut diags = Diagnostics::new();
        if let Some(d) = s.data.as_str() {
            if let Err(e) = validate_data(d) {
                diags.push(e);
            }
        }
        check_scope(s, &mut diags);
        diags
            .iter()
            .map(|d| {
                (
                    d.path.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                    d.detail.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn plan_time_checks_name_the_attribute() {
        let mut s = state(Some("lab"), None);
        s.data = "machine:\n  token: abc\n".into();
        let d = validation_paths(&s);
        assert_eq!(d[0].0, "data");
        assert!(
            d[0].1
                .contains("overriding \"machine.token\" is not allowed"),
            "{}",
            d[0].1
        );

        s.data = "apiVersion: v1alpha1\nkind: KubeClusterConfig\n".into();
        let d = validation_paths(&s);
        assert!(
            d[0].1
                .contains("\"KubeClusterConfig\" document is not allowed"),
            "{}",
            d[0].1
        );

        s.data = "machine: [unclosed\n".into();
        assert_eq!(validation_paths(&s)[0].0, "data");

        let s = state(Some("lab"), Some(sel(Some("lab-w"), None, Some("m"))));
        let d = validation_paths(&s);
        assert_eq!(d[0].0, "selector.machine");

        let s = state(Some("lab"), Some(sel(Some("other-w"), None, None)));
        assert_eq!(validation_paths(&s)[0].0, "selector.machine_set");

        let s = state(None, None);
        assert_eq!(validation_paths(&s)[0].0, "cluster");
        let s = state(Some("lab"), Some(sel(None, None, None)));
        assert_eq!(validation_paths(&s)[0].0, "selector");
        let s = state(None, Some(sel(None, None, Some("m"))));
        assert!(validation_paths(&s).is_empty());
    }

    #[test]
    fn replacement_follows_the_id() {
        let mut prior = planned(state(Some("lab"), None));
        prior.id_override = Value::Null;
        // Spelling out the current ID as id_override: same object.
        let mut plan = prior.clone();
        plan.id_override = "200-cluster-lab-ntp".into();
        let config = plan.clone();
        fill_planned(&mut plan, &config);
        assert!(replace_paths(&prior, &plan).is_empty());
        // A new name behind an id_override: same object, annotation updated.
        let mut prior2 = plan.clone();
        prior2.id = "200-cluster-lab-ntp".into();
        let mut plan2 = prior2.clone();
        plan2.name = "chrony".into();
        let config = plan2.clone();
        fill_planned(&mut plan2, &config);
        assert!(replace_paths(&prior2, &plan2).is_empty());
        // A new name without an override: new ID, new object.
        let mut plan3 = prior.clone();
        plan3.name = "chrony".into();
        let config = plan3.clone();
        fill_planned(&mut plan3, &config);
        assert_eq!(
            replace_paths(&prior, &plan3),
            vec![AttributePath::new("name")]
        );
        // A new weight: new ID.
        let mut plan4 = prior.clone();
        plan4.weight = Value::Known(210);
        let config = plan4.clone();
        fill_planned(&mut plan4, &config);
        assert_eq!(
            replace_paths(&prior, &plan4),
            vec![AttributePath::new("weight")]
        );
    }

    #[test]
    fn weight_prefix_parsing() {
        assert_eq!(weight_of("007-x"), Some(7));
        assert_eq!(weight_of("abc-x"), None);
        assert_eq!(weight_of("12"), None);
        assert_eq!(weight_of("1234-x"), None);
        assert_eq!(weight_of("é1-x"), None);
    }
}
