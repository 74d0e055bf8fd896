//! `omni_machine_set`: a control-plane or worker machine set of an Omni cluster
//! (`MachineSets.omni.sidero.dev`, omni-api.md §3.3, §3.4, §4).

use std::collections::BTreeMap;
use std::time::Duration;

use omni_client::omni_api::specs::{
    self,
    machine_set_spec::{
        machine_allocation::Type as AllocationType, BootstrapSpec as WireBootstrap,
        MachineAllocation, RollingUpdateStrategyConfig, UpdateStrategy, UpdateStrategyConfig,
    },
    MachineSetPhase,
};
use omni_client::resources::{
    labels, ClusterBootstrapStatus, ClusterUuid, MachineSet, MachineSetNode, MachineSetStatus,
};
use omni_client::{Api, Error, LabelQuery, ListParams, Object};
use serde::{Deserialize, Serialize};
use talos_machinery::names;
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, Diagnostic, Diagnostics, Nesting, PathStep,
    PrivateState, Resource, Result, Schema, Type, Value,
};

use crate::common::{self, meta, omni_error, omni_error_at, wait_for, Timeouts, WaitDecision};

// ---- description --------------------------------------------------------------------------

const DESCRIPTION: &str = "\
A machine set of an Omni cluster: its control plane or a group of workers.

* The control-plane set of cluster `c` always has the ID `c-control-planes`; a cluster has \
exactly one. Worker sets are `c-workers` by default or `c-<name>` when `name` is set, the same \
IDs `omnictl cluster template` uses, so clusters move between templates and Terraform without \
being recreated.
* Machines come either from a **machine class** (`machine_class`, Omni allocates them) or are \
assigned one by one with `omni_machine_set_node`; not both.
* With `wait = true` (the default) create and update return only when Omni reports the set \
`Running` and ready with the expected number of machines, so resources that depend on it see a \
working set. Sets whose machines are assigned with `omni_machine_set_node` have nothing to wait \
for at create time.
* Deleting a set tears it down and waits until Omni has released its machines back to the pool.
* Omni's own labels and annotations (`omni.sidero.dev/*`) are managed by Omni and never show up \
as a diff.

Import with the machine set ID: `terraform import omni_machine_set.workers my-cluster-workers`.";

/// Default time limits (allocation installs Talos on real machines, which takes minutes).
const CREATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const UPDATE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// Largest snapshot name Omni accepts in a bootstrap spec (omni-api.md §4 "MachineSet").
const MAX_SNAPSHOT_BYTES: usize = 4096;

// ---- state ---------------------------------------------------------------------------------

/// `omni_machine_set` state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MachineSetState {
    /// Machine set ID (computed from `cluster`, `role` and `name`).
    pub id: Value<String>,
    /// Cluster name.
    pub cluster: Value<String>,
    /// `controlplane` or `workers`.
    pub role: Value<String>,
    /// Short worker set name; null means the default `workers`.
    pub name: Value<String>,
    /// Machine-class allocation.
    pub machine_class: Value<MachineClassAllocation>,
    /// Strategy for configuration updates (null = Omni's default, Rolling).
    pub update_strategy: Value<Strategy>,
    /// Strategy for removing machines (null = Unset).
    pub delete_strategy: Value<Strategy>,
    /// Strategy for Talos upgrades (null = Unset).
    pub upgrade_strategy: Value<Strategy>,
    /// Restore etcd from a backup on bootstrap.
    pub bootstrap_spec: Value<Bootstrap>,
    /// User labels.
    pub labels: Value<BTreeMap<String, String>>,
    /// User annotations.
    pub annotations: Value<BTreeMap<String, String>>,
    /// Wait for the set to be ready after create/update (null = true).
    pub wait: Value<bool>,
    /// Time limits.
    pub timeouts: Value<Timeouts>,
}

/// `machine_class`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MachineClassAllocation {
    /// Machine class (or machine request set) name.
    pub name: Value<String>,
    /// Number of machines (static allocation).
    pub size: Value<i64>,
    /// `static` (null) or `unlimited`.
    pub allocation_type: Value<String>,
}

/// `update_strategy`, `delete_strategy`, `upgrade_strategy`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Strategy {
    /// `rolling` or `unset`.
    #[serde(rename = "type")]
    pub kind: Value<String>,
    /// Machines handled in parallel (Rolling only; null/0 means 1).
    pub max_parallelism: Value<i64>,
}

/// `bootstrap_spec`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Bootstrap {
    /// UUID of the cluster whose backup is restored.
    pub cluster_uuid: Value<String>,
    /// Backup snapshot name.
    pub snapshot: Value<String>,
}

/// The two roles a machine set can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `controlplane`
    ControlPlane,
    /// `workers`
    Workers,
}

impl Role {
    /// Parses the `role` attribute (exact spelling, as the official provider documents it).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "controlplane" => Some(Role::ControlPlane),
            "workers" => Some(Role::Workers),
            _ => None,
        }
    }

    /// The attribute spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ControlPlane => "controlplane",
            Role::Workers => "workers",
        }
    }

    /// The role label Omni requires on the set and its nodes (omni-api.md §3.2, §4).
    pub fn label(self) -> &'static str {
        match self {
            Role::ControlPlane => labels::ROLE_CONTROLPLANE,
            Role::Workers => labels::ROLE_WORKER,
        }
    }

    /// The role read from a set's (or node's) labels.
    pub fn from_labels(l: &BTreeMap<String, String>) -> Option<Role> {
        if l.contains_key(labels::ROLE_CONTROLPLANE) {
            Some(Role::ControlPlane)
        } else if l.contains_key(labels::ROLE_WORKER) {
            Some(Role::Workers)
        } else {
            None
        }
    }
}

/// The machine set ID for a cluster, role and optional short worker name (omni-api.md §3.3, §7).
pub fn machine_set_id(cluster: &str, role: Role, name: Option<&str>) -> String {
    match role {
        Role::ControlPlane => names::control_plane_machine_set_id(cluster),
        Role::Workers => names::worker_machine_set_id(cluster, name),
    }
}

// ---- schema --------------------------------------------------------------------------------

fn strategy_attribute(name: &str, default: &str, what: &str) -> Attribute {
    Attribute::nested(
        name,
        Nesting::Single,
        vec![
            Attribute::string("type").required().description(
                "`rolling` (machines one batch at a time) or `unset` (Omni's plain behaviour). \
                 Case-insensitive, so the official provider's `Rolling`/`Unset` work too.",
            ),
            Attribute::number("max_parallelism")
                .optional()
                .description("How many machines at a time with `rolling`; omitted or `0` means 1."),
        ],
    )
    .optional_computed()
    .description(format!(
        "Strategy {what}. Default: `{{ type = \"{default}\" }}`, as Omni's templates use."
    ))
}

fn schema() -> Schema {
    Schema::new(DESCRIPTION)
        .attribute(
            Attribute::string("id")
                .computed()
                .description("Machine set ID: `<cluster>-control-planes`, `<cluster>-workers` or `<cluster>-<name>`. Use it as `machine_set` of `omni_machine_set_node`."),
        )
        .attribute(
            Attribute::string("cluster")
                .required()
                .requires_replace()
                .description("Name of the cluster. Changing it replaces the set."),
        )
        .attribute(
            Attribute::string("role")
                .required()
                .requires_replace()
                .description("`controlplane` or `workers`. A cluster has exactly one control-plane set. Changing it replaces the set."),
        )
        .attribute(
            Attribute::string("name")
                .optional_computed()
                .description("Short name of a worker set: the ID becomes `<cluster>-<name>`. Omitted means the default worker set `<cluster>-workers`. Not allowed for control planes. Changing it replaces the set."),
        )
        .attribute(
            Attribute::nested(
                "machine_class",
                Nesting::Single,
                vec![
                    Attribute::string("name")
                        .required()
                        .description("Name of the machine class (`omni_machine_class`) to allocate machines from."),
                    Attribute::number("size")
                        .optional()
                        .description("How many machines to allocate. Required with `static` allocation, not allowed with `unlimited`."),
                    Attribute::string("allocation_type")
                        .optional_computed()
                        .description("`static` (the default: exactly `size` machines) or `unlimited` (every matching machine). Case-insensitive."),
                ],
            )
            .optional()
            .description("Let Omni allocate machines from a machine class. Without it, assign machines with `omni_machine_set_node`; a set cannot switch between the two while it has machines."),
        )
        .attribute(strategy_attribute("update_strategy", "rolling", "for applying configuration changes to the machines"))
        .attribute(strategy_attribute("delete_strategy", "unset", "for removing machines from the set"))
        .attribute(strategy_attribute("upgrade_strategy", "unset", "for Talos upgrades of the machines"))
        .attribute(
            Attribute::nested(
                "bootstrap_spec",
                Nesting::Single,
                vec![
                    Attribute::string("cluster_uuid")
                        .required()
                        .description("UUID of the cluster whose etcd backup is restored."),
                    Attribute::string("snapshot")
                        .required()
                        .description("Name of the etcd backup snapshot to restore."),
                ],
            )
            .optional()
            .description("Restore the cluster's etcd from a backup when it is bootstrapped (control planes only). Omni does not allow changing it; a new value replaces the set. It may be removed once the cluster is bootstrapped."),
        )
        .attribute(
            Attribute::map("labels", Type::String)
                .optional()
                .description("User labels. Keys with Omni's `omni.sidero.dev/` prefix are reserved."),
        )
        .attribute(
            Attribute::map("annotations", Type::String)
                .optional()
                .description("User annotations. Keys with Omni's `omni.sidero.dev/` prefix are reserved."),
        )
        .attribute(
            Attribute::bool("wait")
                .optional_computed()
                .description("Wait after create and update until Omni reports the set `Running` and ready with the expected machine count. Default `true`."),
        )
        .attribute(common::timeouts::attribute(
            CREATE_TIMEOUT,
            UPDATE_TIMEOUT,
            DELETE_TIMEOUT,
        ))
}

// ---- plan logic ----------------------------------------------------------------------------

fn at(path: AttributePath, summary: &str, detail: impl Into<String>) -> Diagnostic {
    Diagnostic::error(summary, in_detail(&path, detail.into())).at(path)
}

/// Terraform cannot highlight a field inside an object-valued attribute (it shows the whole
/// resource block instead), so such details name the field themselves.
pub(crate) fn in_detail(path: &AttributePath, detail: String) -> String {
    let nested = path
        .0
        .iter()
        .skip(1)
        .any(|s| matches!(s, PathStep::Attribute(_)));
    if nested {
        format!("`{path}`: {detail}")
    } else {
        detail
    }
}

fn parse_allocation_type(s: &str) -> Option<AllocationType> {
    match s.to_ascii_lowercase().as_str() {
        "static" => Some(AllocationType::Static),
        "unlimited" => Some(AllocationType::Unlimited),
        _ => None,
    }
}

fn parse_strategy(s: &str) -> Option<UpdateStrategy> {
    match s.to_ascii_lowercase().as_str() {
        "rolling" => Some(UpdateStrategy::Rolling),
        "unset" => Some(UpdateStrategy::Unset),
        _ => None,
    }
}

fn check_metadata(name: &str, map: &Value<BTreeMap<String, String>>, diags: &mut Diagnostics) {
    let Some(map) = map.as_option() else { return };
    for (k, v) in map {
        let path = AttributePath::new(name).key(k.clone());
        let problem = names::validate_user_descriptor_key(k)
            .and_then(|_| names::validate_label_key(k))
            .and_then(|_| names::validate_label_value(v));
        if let Err(e) = problem {
            diags.push(at(path, &format!("Invalid {name} entry"), e));
        }
    }
}

fn check_strategy(name: &str, s: &Value<Strategy>, diags: &mut Diagnostics) {
    let Some(s) = s.as_option() else { return };
    let kind = s.kind.as_str().map(|k| (k, parse_strategy(k)));
    if let Some((k, None)) = kind {
        diags.push(at(
            AttributePath::new(name).attr("type"),
            "Invalid strategy type",
            format!("{k:?} is not a strategy: use `rolling` or `unset`."),
        ));
    }
    if let Some(&mp) = s.max_parallelism.as_option() {
        let path = AttributePath::new(name).attr("max_parallelism");
        if mp < 0 || mp > u32::MAX as i64 {
            diags.push(at(
                path,
                "Invalid max_parallelism",
                format!("{mp} is out of range (0 to {}).", u32::MAX),
            ));
        } else if mp > 0 && matches!(kind, Some((_, Some(UpdateStrategy::Unset)))) {
            diags.push(at(
                path,
                "max_parallelism needs the rolling strategy",
                "`max_parallelism` only applies to `type = \"rolling\"`.",
            ));
        }
    }
}

/// Every check that needs only the configuration (values may be unknown: those are skipped).
/// Each error names its attribute (omni-api.md §4 "MachineSet", §7).
pub fn validate_config(c: &MachineSetState) -> Diagnostics {
    let mut diags = Diagnostics::new();
    if let Some(cluster) = c.cluster.as_str() {
        if let Err(e) = names::validate_cluster_name(cluster) {
            diags.push(at(AttributePath::new("cluster"), "Invalid cluster name", e));
        }
    }
    let role = match c.role.as_str() {
        Some(r) => match Role::parse(r) {
            Some(role) => Some(role),
            None => {
                diags.push(at(
                    AttributePath::new("role"),
                    "Invalid role",
                    format!("{r:?} is not a machine set role: use `controlplane` or `workers`."),
                ));
                None
            }
        },
        None => None,
    };
    if let Some(name) = c.name.as_str() {
        let path = AttributePath::new("name");
        if role == Some(Role::ControlPlane) {
            diags.push(at(
                path,
                "name is not allowed for control planes",
                format!(
                    "The control-plane set always has the ID `<cluster>-{}`; remove `name`.",
                    names::CONTROL_PLANES_SUFFIX
                ),
            ));
        } else if name.is_empty() {
            diags.push(at(
                path,
                "Invalid name",
                "`name` must not be empty; omit it for the default `workers` set.",
            ));
        } else if name == names::CONTROL_PLANES_SUFFIX {
            diags.push(at(
                path,
                "Invalid name",
                "`control-planes` is reserved for the control-plane set.",
            ));
        } else if let Some(cluster) = c.cluster.as_str() {
            let id = machine_set_id(cluster, Role::Workers, Some(name));
            if let Err(e) = names::validate_resource_id(&id)
                .and_then(|_| names::validate_machine_set_id(cluster, &id, false))
            {
                diags.push(at(path, "Invalid name", e));
            }
        }
    }
    if let Some(mc) = c.machine_class.as_option() {
        let base = AttributePath::new("machine_class");
        if mc.name.as_str() == Some("") {
            diags.push(at(
                base.clone().attr("name"),
                "Invalid machine class name",
                "machine allocation source name is not set",
            ));
        }
        let kind = match &mc.allocation_type {
            Value::Known(t) => match parse_allocation_type(t) {
                Some(k) => Some(k),
                None => {
                    diags.push(at(
                        base.clone().attr("allocation_type"),
                        "Invalid allocation type",
                        format!("{t:?} is not an allocation type: use `static` or `unlimited`."),
                    ));
                    None
                }
            },
            Value::Null => Some(AllocationType::Static),
            Value::Unknown => None,
        };
        let size_path = base.attr("size");
        match (&mc.size, kind) {
            (Value::Known(_), Some(AllocationType::Unlimited)) => diags.push(at(
                size_path,
                "size is only allowed with static allocation",
                "machine count can be set only if static allocation type is used: remove `size` \
                 or use `allocation_type = \"static\"`.",
            )),
            (Value::Null, Some(AllocationType::Static)) => diags.push(at(
                size_path,
                "size is required with static allocation",
                "Set `size` to the number of machines, or use `allocation_type = \"unlimited\"`.",
            )),
            (Value::Known(n), _) if *n < 0 || *n > u32::MAX as i64 => diags.push(at(
                size_path,
                "Invalid size",
                format!("{n} is out of range (0 to {}).", u32::MAX),
            )),
            (Value::Known(0), _) if role == Some(Role::ControlPlane) => diags.push(at(
                size_path,
                "A control plane needs at least one machine",
                "Omni marks a control-plane set without machines as Failed \
                 (\"control plane machine set must have at least one node\").",
            )),
            _ => {}
        }
    }
    check_strategy("update_strategy", &c.update_strategy, &mut diags);
    check_strategy("delete_strategy", &c.delete_strategy, &mut diags);
    check_strategy("upgrade_strategy", &c.upgrade_strategy, &mut diags);
    if let Some(b) = c.bootstrap_spec.as_option() {
        let base = AttributePath::new("bootstrap_spec");
        if role == Some(Role::Workers) {
            diags.push(at(
                base.clone(),
                "bootstrap_spec is only for control planes",
                "bootstrap spec is not allowed for worker machine sets",
            ));
        }
        if b.cluster_uuid.as_str() == Some("") {
            diags.push(at(
                base.clone().attr("cluster_uuid"),
                "Invalid cluster_uuid",
                "`cluster_uuid` must not be empty.",
            ));
        }
        if let Some(s) = b.snapshot.as_str() {
            let problem = if s.is_empty() {
                Some("`snapshot` must not be empty.".to_string())
            } else if s.len() > MAX_SNAPSHOT_BYTES {
                Some(format!(
                    "the snapshot name must be at most {MAX_SNAPSHOT_BYTES} bytes"
                ))
            } else if s.starts_with('/') || s.split('/').any(|part| part == "..") {
                Some("the snapshot must be a relative path without `..`".to_string())
            } else {
                None
            };
            if let Some(p) = problem {
                diags.push(at(base.attr("snapshot"), "Invalid snapshot", p));
            }
        }
    }
    check_metadata("labels", &c.labels, &mut diags);
    check_metadata("annotations", &c.annotations, &mut diags);
    if let Err(d) = Timeouts::validate(&c.timeouts) {
        diags.extend(d);
    }
    diags
}

/// Fills the defaults of unconfigured optional+computed attributes, so the state always shows
/// the effective value and a server-side change of a default is still drift.
fn apply_defaults(plan: &mut MachineSetState, config: &MachineSetState) {
    if let (Value::Known(p), Value::Known(c)) = (&mut plan.machine_class, &config.machine_class) {
        if c.allocation_type.is_null() {
            p.allocation_type = Value::Known("static".into());
        }
    }
    for (p, c, default) in [
        (
            &mut plan.update_strategy,
            &config.update_strategy,
            "rolling",
        ),
        (&mut plan.delete_strategy, &config.delete_strategy, "unset"),
        (
            &mut plan.upgrade_strategy,
            &config.upgrade_strategy,
            "unset",
        ),
    ] {
        if c.is_null() {
            *p = Value::Known(Strategy {
                kind: Value::Known(default.into()),
                max_parallelism: Value::Null,
            });
        }
    }
    if config.wait.is_null() {
        plan.wait = Value::Known(true);
    }
}

/// Whether Omni has bootstrapped `cluster` (its etcd is up); `None` when the provider is not
/// configured yet, so the question cannot be asked.
async fn cluster_bootstrapped(ctx: &Ctx, cluster: &str) -> Result<Option<bool>> {
    let Ok(api) = common::api::<ClusterBootstrapStatus>(ctx) else {
        return Ok(None);
    };
    let status = api
        .get_opt(cluster)
        .await
        .map_err(|e| omni_error(&format!("reading the bootstrap status of {cluster:?}"), e))?;
    Ok(Some(status.is_some_and(|s| s.spec.bootstrapped)))
}

/// Plan-time answers Omni would give at apply for a planned replacement or a removed
/// `bootstrap_spec` (omni-api.md §4 "MachineSet"): a bootstrapped cluster takes no new
/// control-plane set, so replacing it would tear the control plane down and then fail; and a
/// bootstrap spec can only be removed after bootstrap.
async fn check_update_against_omni(
    ctx: &Ctx,
    prior: &MachineSetState,
    plan: &MachineSetState,
    replacing: bool,
) -> Result<()> {
    let Some(cluster) = plan.cluster.as_str() else {
        return Ok(());
    };
    let control_plane = plan.role.as_str().and_then(Role::parse) == Some(Role::ControlPlane);
    let removes_bootstrap = !prior.bootstrap_spec.is_null() && plan.bootstrap_spec.is_null();
    if !(control_plane && (replacing || removes_bootstrap)) {
        return Ok(());
    }
    let Some(bootstrapped) = cluster_bootstrapped(ctx, cluster).await? else {
        return Ok(());
    };
    if replacing && bootstrapped {
        return Err(at(
            AttributePath::new("role"),
            "Cannot replace the control plane of a bootstrapped cluster",
            format!(
                "This change replaces machine set {:?}, but adding control plane machine set to                  an already bootstrapped cluster is not allowed: Omni would tear the control                  plane of {cluster:?} down and then refuse the new one.",
                prior.id.as_str().unwrap_or_default()
            ),
        )
        .into());
    }
    if removes_bootstrap && !replacing && !bootstrapped {
        return Err(at(
            AttributePath::new("bootstrap_spec"),
            "bootstrap_spec is still needed",
            format!(
                "bootstrap spec can only be removed after the cluster is bootstrapped, and                  {cluster:?} is not yet."
            ),
        )
        .into());
    }
    Ok(())
}

/// The planned ID, when cluster, role and name are known.
fn planned_id(plan: &MachineSetState) -> Value<String> {
    let (Some(cluster), Some(role)) = (plan.cluster.as_str(), plan.role.as_str()) else {
        return Value::Unknown;
    };
    let Some(role) = Role::parse(role) else {
        return Value::Unknown;
    };
    match &plan.name {
        Value::Unknown => Value::Unknown,
        name => Value::Known(machine_set_id(cluster, role, name.as_str())),
    }
}

/// Checks against what already exists in Omni (only when the provider is configured and the
/// values are known): one control-plane set per cluster, no control plane added to a
/// bootstrapped cluster, no ID clash, and a restorable `cluster_uuid` (omni-api.md §4).
async fn check_against_omni(ctx: &Ctx, plan: &MachineSetState) -> Result<()> {
    let Ok(configured) = common::configured(ctx) else {
        return Ok(());
    };
    let client = configured.client.clone();
    let (Some(cluster), Some(role), Some(id)) = (
        plan.cluster.as_str(),
        plan.role.as_str().and_then(Role::parse),
        plan.id.as_str(),
    ) else {
        return Ok(());
    };
    let sets: Api<MachineSet> = Api::new(client.clone());
    let mut diags = Diagnostics::new();
    if role == Role::ControlPlane {
        let existing = sets
            .list(
                &ListParams::default().labels(
                    LabelQuery::new()
                        .equal(labels::CLUSTER, cluster)
                        .exists(labels::ROLE_CONTROLPLANE),
                ),
            )
            .await
            .map_err(|e| omni_error(&format!("listing machine sets of cluster {cluster:?}"), e))?;
        if let Some(other) = existing.iter().find(|s| !s.is_tearing_down()) {
            diags.push(at(
                AttributePath::new("role"),
                "Cluster already has a control-plane machine set",
                format!(
                    "Cluster {cluster:?} already has the control-plane machine set {:?} in Omni, \
                     and a cluster has exactly one. Import it (`terraform import <address> {}`) \
                     instead of creating another.",
                    other.id(),
                    other.id()
                ),
            ));
        } else {
            if cluster_bootstrapped(ctx, cluster).await? == Some(true) {
                diags.push(at(
                    AttributePath::new("role"),
                    "Cluster is already bootstrapped",
                    format!(
                        "adding control plane machine set to an already bootstrapped cluster is \
                         not allowed (cluster {cluster:?})"
                    ),
                ));
            }
        }
    } else if let Some(existing) = sets
        .get_opt(id)
        .await
        .map_err(|e| omni_error(&format!("reading machine set {id:?}"), e))?
    {
        if !existing.is_tearing_down() {
            diags.push(at(
                AttributePath::new("name"),
                "Machine set already exists",
                format!(
                    "Machine set {id:?} already exists in Omni. Import it \
                     (`terraform import <address> {id}`) or choose another `name`."
                ),
            ));
        }
    }
    if let Some(uuid) = plan
        .bootstrap_spec
        .as_option()
        .and_then(|b| b.cluster_uuid.as_str())
        .filter(|u| !u.is_empty())
    {
        let found = Api::<ClusterUuid>::new(client)
            .list(
                &ListParams::default().labels(LabelQuery::new().equal(labels::CLUSTER_UUID, uuid)),
            )
            .await
            .map_err(|e| omni_error("listing cluster UUIDs", e))?;
        if found.len() != 1 {
            diags.push(at(
                AttributePath::new("bootstrap_spec").attr("cluster_uuid"),
                "Unknown cluster UUID",
                format!(
                    "invalid cluster UUID {uuid:?}: no cluster with this UUID has backups in Omni"
                ),
            ));
        }
    }
    diags.into_result()
}

// ---- conversions ---------------------------------------------------------------------------

/// The wire form of a strategy: (type, max_parallelism); a missing config means 0.
type WireStrategy = (i32, u32);

fn strategy_to_wire(s: &Value<Strategy>, default: UpdateStrategy) -> WireStrategy {
    match s.as_option() {
        None => (default as i32, 0),
        Some(s) => (
            s.kind.as_str().and_then(parse_strategy).unwrap_or(default) as i32,
            s.max_parallelism
                .clone()
                .unwrap_or(0)
                .clamp(0, u32::MAX as i64) as u32,
        ),
    }
}

fn wire_config(mp: u32) -> Option<UpdateStrategyConfig> {
    (mp > 0).then_some(UpdateStrategyConfig {
        rolling: Some(RollingUpdateStrategyConfig {
            max_parallelism: mp,
        }),
    })
}

fn config_mp(c: &Option<UpdateStrategyConfig>) -> u32 {
    c.as_ref()
        .and_then(|c| c.rolling.as_ref())
        .map_or(0, |r| r.max_parallelism)
}

fn strategy_from_wire(w: WireStrategy) -> Value<Strategy> {
    let kind = if w.0 == UpdateStrategy::Rolling as i32 {
        "rolling"
    } else {
        "unset"
    };
    Value::Known(Strategy {
        kind: Value::Known(kind.into()),
        max_parallelism: if w.1 == 0 {
            Value::Null
        } else {
            Value::Known(w.1 as i64)
        },
    })
}

/// Keeps the prior value when it means the same on the wire (the user's spelling), otherwise the
/// canonical form of what the server has: no diff for `Rolling` vs `rolling`, a real diff for a
/// real change. An import (null prior) gets the canonical form.
fn keep_if_same<T: Clone, W: PartialEq>(
    prior: &Value<T>,
    server: W,
    to_wire: impl Fn(&Value<T>) -> W,
    canonical: impl FnOnce(W) -> Value<T>,
) -> Value<T> {
    if prior.is_known() && to_wire(prior) == server {
        prior.clone()
    } else {
        canonical(server)
    }
}

fn allocation_to_wire(mc: &Value<MachineClassAllocation>) -> Option<MachineAllocation> {
    let mc = mc.as_option()?;
    let kind = mc
        .allocation_type
        .as_str()
        .and_then(parse_allocation_type)
        .unwrap_or(AllocationType::Static);
    Some(MachineAllocation {
        name: mc.name.as_str().unwrap_or_default().to_string(),
        machine_count: if kind == AllocationType::Static {
            mc.size.clone().unwrap_or(0).clamp(0, u32::MAX as i64) as u32
        } else {
            0
        },
        allocation_type: kind as i32,
    })
}

fn allocation_from_wire(a: Option<MachineAllocation>) -> Value<MachineClassAllocation> {
    let Some(a) = a else { return Value::Null };
    let unlimited = a.allocation_type == AllocationType::Unlimited as i32;
    Value::Known(MachineClassAllocation {
        name: Value::Known(a.name),
        size: if unlimited {
            Value::Null
        } else {
            Value::Known(a.machine_count as i64)
        },
        allocation_type: Value::Known(if unlimited { "unlimited" } else { "static" }.into()),
    })
}

/// The allocation a spec asks for: the deprecated `machine_class` field is still read first
/// when set (omni-api.md §3.4).
pub(crate) fn spec_allocation(spec: &specs::MachineSetSpec) -> Option<MachineAllocation> {
    #[allow(deprecated)]
    let old = spec.machine_class.clone();
    old.or_else(|| spec.machine_allocation.clone())
}

fn bootstrap_to_wire(b: &Value<Bootstrap>) -> Option<WireBootstrap> {
    b.as_option().map(|b| WireBootstrap {
        cluster_uuid: b.cluster_uuid.as_str().unwrap_or_default().to_string(),
        snapshot: b.snapshot.as_str().unwrap_or_default().to_string(),
    })
}

fn bootstrap_from_wire(b: Option<WireBootstrap>) -> Value<Bootstrap> {
    b.map(|b| Bootstrap {
        cluster_uuid: Value::Known(b.cluster_uuid),
        snapshot: Value::Known(b.snapshot),
    })
    .into()
}

/// Writes everything Terraform manages into `spec`, leaving the rest as it is.
/// `bootstrap_spec` is only written on create (Omni keeps it immutable) or cleared.
fn write_spec(spec: &mut specs::MachineSetSpec, plan: &MachineSetState, creating: bool) {
    let (t, mp) = strategy_to_wire(&plan.update_strategy, UpdateStrategy::Rolling);
    spec.update_strategy = t;
    spec.update_strategy_config = wire_config(mp);
    let (t, mp) = strategy_to_wire(&plan.delete_strategy, UpdateStrategy::Unset);
    spec.delete_strategy = t;
    spec.delete_strategy_config = wire_config(mp);
    let (t, mp) = strategy_to_wire(&plan.upgrade_strategy, UpdateStrategy::Unset);
    spec.upgrade_strategy = t;
    spec.upgrade_strategy_config = wire_config(mp);
    #[allow(deprecated)]
    {
        spec.machine_class = None;
    }
    spec.machine_allocation = allocation_to_wire(&plan.machine_class);
    if creating || plan.bootstrap_spec.is_null() {
        spec.bootstrap_spec = bootstrap_to_wire(&plan.bootstrap_spec);
    }
}

/// Sets the user's labels and annotations plus the cluster and role labels Omni requires.
fn write_metadata(obj: &mut Object<MachineSet>, plan: &MachineSetState, cluster: &str, role: Role) {
    let md = &mut obj.metadata;
    meta::merge_user_entries(&mut md.labels, &plan.labels.clone().unwrap_or_default());
    meta::merge_user_entries(
        &mut md.annotations,
        &plan.annotations.clone().unwrap_or_default(),
    );
    md.labels.insert(labels::CLUSTER.into(), cluster.into());
    md.labels.insert(role.label().into(), String::new());
}

fn user_map(
    prior: &Value<BTreeMap<String, String>>,
    server: &BTreeMap<String, String>,
) -> Value<BTreeMap<String, String>> {
    let user = meta::user_entries(server);
    if user.is_empty() && !matches!(prior, Value::Known(m) if m.is_empty()) {
        Value::Null
    } else {
        Value::Known(user)
    }
}

/// Fills `state` from the server object, keeping the user's spelling where it means the same.
fn state_from_object(prior: &MachineSetState, obj: &Object<MachineSet>) -> Result<MachineSetState> {
    let l = &obj.metadata.labels;
    let cluster = l
        .get(labels::CLUSTER)
        .cloned()
        .or_else(|| prior.cluster.clone().known())
        .ok_or_else(|| {
            Diagnostic::error(
                "Not a cluster machine set",
                format!(
                    "Machine set {:?} has no {} label, so it belongs to no cluster.",
                    obj.id(),
                    labels::CLUSTER
                ),
            )
        })?;
    let role = Role::from_labels(l)
        .or_else(|| prior.role.as_str().and_then(Role::parse))
        .ok_or_else(|| {
            Diagnostic::error(
                "Machine set without a role",
                format!(
                    "Machine set {:?} has neither the {} nor the {} label.",
                    obj.id(),
                    labels::ROLE_CONTROLPLANE,
                    labels::ROLE_WORKER
                ),
            )
        })?;
    // The short name round-trips exactly as written: null stays null for `<cluster>-workers`,
    // `workers` stays `workers`; only an import derives it from the ID (the official provider
    // wrote the full ID back here, causing a perpetual diff: omni-api.md §8).
    let name = match role {
        Role::ControlPlane => Value::Null,
        Role::Workers => {
            let prefix = format!("{cluster}-");
            let short = obj.id().strip_prefix(&prefix).unwrap_or(obj.id());
            let imported = prior.cluster.is_null();
            match &prior.name {
                Value::Known(n) if n == short => prior.name.clone(),
                Value::Null if !imported && short == "workers" => Value::Null,
                _ => Value::Known(short.to_string()),
            }
        }
    };
    let spec = &obj.spec;
    Ok(MachineSetState {
        id: Value::Known(obj.id().to_string()),
        cluster: Value::Known(cluster),
        role: keep_if_same(
            &prior.role,
            Some(role),
            |r| r.as_str().and_then(Role::parse),
            |r| Value::Known(r.map_or("", Role::as_str).to_string()),
        ),
        name,
        machine_class: keep_if_same(
            &prior.machine_class,
            spec_allocation(spec),
            allocation_to_wire,
            allocation_from_wire,
        ),
        update_strategy: keep_if_same(
            &prior.update_strategy,
            (
                spec.update_strategy,
                config_mp(&spec.update_strategy_config),
            ),
            |s| strategy_to_wire(s, UpdateStrategy::Rolling),
            strategy_from_wire,
        ),
        delete_strategy: keep_if_same(
            &prior.delete_strategy,
            (
                spec.delete_strategy,
                config_mp(&spec.delete_strategy_config),
            ),
            |s| strategy_to_wire(s, UpdateStrategy::Unset),
            strategy_from_wire,
        ),
        upgrade_strategy: keep_if_same(
            &prior.upgrade_strategy,
            (
                spec.upgrade_strategy,
                config_mp(&spec.upgrade_strategy_config),
            ),
            |s| strategy_to_wire(s, UpdateStrategy::Unset),
            strategy_from_wire,
        ),
        bootstrap_spec: keep_if_same(
            &prior.bootstrap_spec,
            spec.bootstrap_spec.clone(),
            bootstrap_to_wire,
            bootstrap_from_wire,
        ),
        labels: user_map(&prior.labels, &obj.metadata.labels),
        annotations: user_map(&prior.annotations, &obj.metadata.annotations),
        wait: prior.wait.clone().or_default_value(true),
        timeouts: prior.timeouts.clone(),
    })
}

// ---- waits ---------------------------------------------------------------------------------

/// What "ready" means for one apply: the allocation the status must have been computed for and
/// the machine count to reach (`None` = whatever was requested, e.g. unlimited allocation).
#[derive(Clone, Debug, PartialEq)]
struct Expectation {
    allocation: Option<MachineAllocation>,
    count: Option<u32>,
}

/// Done when the status belongs to the current allocation, is Running and ready, and has the
/// expected number of machines (omni-api.md §3.4 MachineSetStatus, §5.3).
fn readiness(status: Option<&Object<MachineSetStatus>>, want: &Expectation) -> WaitDecision {
    let Some(status) = status else {
        return WaitDecision::Pending;
    };
    let s = &status.spec;
    if want.allocation.is_some() && s.machine_allocation != want.allocation {
        return WaitDecision::Pending; // still computed for the previous allocation
    }
    let m = s.machines.unwrap_or_default();
    let count_ok = match want.count {
        Some(n) => m.total == n && m.requested == n,
        None => m.total == m.requested,
    };
    if s.phase == MachineSetPhase::Running as i32 && s.ready && count_ok {
        WaitDecision::Done
    } else {
        WaitDecision::Pending
    }
}

fn describe_status(status: Option<&Object<MachineSetStatus>>) -> String {
    let Some(status) = status else {
        return "no machine set status yet".into();
    };
    let s = &status.spec;
    let m = s.machines.unwrap_or_default();
    let phase = MachineSetPhase::try_from(s.phase)
        .map(|p| p.as_str_name().to_string())
        .unwrap_or_else(|_| s.phase.to_string());
    let mut text = format!(
        "phase {phase}, ready {}, {}/{} machines (healthy {}, connected {})",
        s.ready, m.total, m.requested, m.healthy, m.connected
    );
    if !s.error.is_empty() {
        text.push_str(&format!(", error: {}", s.error));
    }
    text
}

async fn wait_ready(
    ctx: &Ctx,
    id: &str,
    plan: &MachineSetState,
    timeout: Duration,
    creating: bool,
) -> Result<()> {
    if plan.wait.as_option() == Some(&false) {
        return Ok(());
    }
    let allocation = allocation_to_wire(&plan.machine_class);
    let want = match &allocation {
        Some(a) if a.allocation_type == AllocationType::Static as i32 => Expectation {
            count: Some(a.machine_count),
            allocation: allocation.clone(),
        },
        Some(_) => Expectation {
            count: None,
            allocation: allocation.clone(),
        },
        None => {
            // Machines are assigned by omni_machine_set_node resources that are created after
            // the set: at create time there is nothing to wait for (a control plane without
            // nodes even reports Failed). On update, wait for the nodes it already has.
            if creating {
                return Ok(());
            }
            let nodes = common::api::<MachineSetNode>(ctx)?
                .list(
                    &ListParams::default().labels(LabelQuery::new().equal(labels::MACHINE_SET, id)),
                )
                .await
                .map_err(|e| omni_error(&format!("listing the nodes of machine set {id:?}"), e))?;
            if nodes.is_empty() {
                return Ok(());
            }
            Expectation {
                count: Some(nodes.len() as u32),
                allocation: None,
            }
        }
    };
    let api = common::api::<MachineSetStatus>(ctx)?;
    wait_for(
        ctx,
        &api,
        id,
        timeout,
        &format!("machine set {id:?} to be ready"),
        |s| readiness(s, &want),
        describe_status,
    )
    .await?;
    Ok(())
}

// ---- the resource --------------------------------------------------------------------------

/// `omni_machine_set`.
pub struct MachineSetResource;

fn known_role(plan: &MachineSetState) -> Result<Role> {
    plan.role.as_str().and_then(Role::parse).ok_or_else(|| {
        at(
            AttributePath::new("role"),
            "Invalid role",
            "`role` must be `controlplane` or `workers`.",
        )
        .into()
    })
}

#[async_trait]
impl Resource for MachineSetResource {
    const TYPE_NAME: &'static str = "omni_machine_set";
    type State = MachineSetState;

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, _ctx: &Ctx, config: &MachineSetState) -> Result<()> {
        validate_config(config).into_result()
    }

    async fn read(
        &self,
        ctx: &Ctx,
        state: MachineSetState,
        _private: &mut PrivateState,
    ) -> Result<Option<MachineSetState>> {
        let id = match state.id.as_str() {
            Some(id) => id.to_string(),
            None => match planned_id(&state).known() {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        let api = common::api::<MachineSet>(ctx)?;
        let obj = api
            .get_opt(&id)
            .await
            .map_err(|e| omni_error(&format!("reading machine set {id:?}"), e))?;
        match obj {
            // Tearing down (by hand or by a cluster's cascade) means it is going away.
            None => Ok(None),
            Some(o) if o.is_tearing_down() => Ok(None),
            Some(o) => state_from_object(&state, &o).map(Some),
        }
    }

    async fn plan_create(
        &self,
        ctx: &Ctx,
        mut plan: MachineSetState,
        config: &MachineSetState,
        _private: &mut PrivateState,
    ) -> Result<MachineSetState> {
        validate_config(config).into_result()?;
        // Keep exactly what the user wrote: an omitted name stays null.
        plan.name = config.name.clone();
        apply_defaults(&mut plan, config);
        plan.id = planned_id(&plan);
        check_against_omni(ctx, &plan).await?;
        Ok(plan)
    }

    async fn plan_update(
        &self,
        ctx: &Ctx,
        prior: &MachineSetState,
        mut plan: MachineSetState,
        config: &MachineSetState,
        _private: &mut PrivateState,
        requires_replace: &mut Vec<AttributePath>,
    ) -> Result<MachineSetState> {
        validate_config(config).into_result()?;
        apply_defaults(&mut plan, config);
        // `name` is computed only so an import can fill it in: an omitted name means the
        // default set, unless the prior name already names that same set.
        if config.name.is_null() {
            plan.name = Value::Null;
            if planned_id(&plan) == prior.id {
                plan.name = prior.name.clone();
            }
        }
        plan.id = planned_id(&plan);
        if plan.id != prior.id {
            requires_replace.push(AttributePath::new("name"));
        }
        // Omni keeps bootstrap_spec immutable; removing it is allowed once bootstrapped.
        if !plan.bootstrap_spec.is_null()
            && bootstrap_to_wire(&plan.bootstrap_spec) != bootstrap_to_wire(&prior.bootstrap_spec)
        {
            requires_replace.push(AttributePath::new("bootstrap_spec"));
        }
        // `cluster` and `role` are declared requires_replace; the framework adds them later.
        let replacing = !requires_replace.is_empty()
            || plan.cluster != prior.cluster
            || plan.role != prior.role;
        check_update_against_omni(ctx, prior, &plan, replacing).await?;
        Ok(plan)
    }

    async fn create(
        &self,
        ctx: &Ctx,
        mut plan: MachineSetState,
        _config: &MachineSetState,
        _private: &mut PrivateState,
    ) -> Result<MachineSetState> {
        let role = known_role(&plan)?;
        let cluster = plan.cluster.as_str().unwrap_or_default().to_string();
        let id = machine_set_id(&cluster, role, plan.name.as_str());
        let timeout = Timeouts::get(&plan.timeouts, "create", CREATE_TIMEOUT);
        let mut obj = Object::<MachineSet>::new(id.clone(), specs::MachineSetSpec::default());
        write_spec(&mut obj.spec, &plan, true);
        write_metadata(&mut obj, &plan, &cluster, role);
        let api = common::api::<MachineSet>(ctx)?;
        // A set with this ID that is still being torn down (e.g. just replaced) is waited out.
        common::create_replacing_dying(ctx, &api, obj, timeout, "machine set")
            .await
            .map_err(|e| {
                let path = match (&e, role) {
                    (Error::AlreadyExists(_), Role::ControlPlane) => AttributePath::new("role"),
                    (Error::AlreadyExists(_), Role::Workers) => AttributePath::new("name"),
                    _ => AttributePath::new("cluster"),
                };
                omni_error_at(&format!("creating machine set {id:?}"), e, path)
            })?;
        plan.id = Value::Known(id.clone());
        wait_ready(ctx, &id, &plan, timeout, true).await?;
        Ok(plan)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _prior: MachineSetState,
        mut plan: MachineSetState,
        _config: &MachineSetState,
        _private: &mut PrivateState,
    ) -> Result<MachineSetState> {
        let role = known_role(&plan)?;
        let cluster = plan.cluster.as_str().unwrap_or_default().to_string();
        let id = machine_set_id(&cluster, role, plan.name.as_str());
        let api = common::api::<MachineSet>(ctx)?;
        api.update(&id, |obj| {
            write_spec(&mut obj.spec, &plan, false);
            write_metadata(obj, &plan, &cluster, role);
        })
        .await
        .map_err(|e| omni_error(&format!("updating machine set {id:?}"), e))?;
        plan.id = Value::Known(id.clone());
        let timeout = Timeouts::get(&plan.timeouts, "update", UPDATE_TIMEOUT);
        wait_ready(ctx, &id, &plan, timeout, false).await?;
        Ok(plan)
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        prior: MachineSetState,
        _private: &PrivateState,
    ) -> Result<()> {
        let Some(id) = prior.id.as_str() else {
            return Ok(());
        };
        let timeout = Timeouts::get(&prior.timeouts, "delete", DELETE_TIMEOUT);
        let api = common::api::<MachineSet>(ctx)?;
        common::teardown_and_wait(ctx, &api, id, timeout, &format!("machine set {id:?}")).await
    }

    async fn import(&self, _ctx: &Ctx, id: &str) -> Result<MachineSetState> {
        if id.is_empty() {
            return Err(Diagnostic::error(
                "Invalid import ID",
                "Import a machine set by its ID, e.g. `my-cluster-workers`.",
            )
            .into());
        }
        // `cluster` stays null: read takes it from the set's labels and knows it is an import.
        Ok(MachineSetState {
            id: Value::Known(id.to_string()),
            cluster: Value::Null,
            role: Value::Null,
            name: Value::Null,
            machine_class: Value::Null,
            update_strategy: Value::Null,
            delete_strategy: Value::Null,
            upgrade_strategy: Value::Null,
            bootstrap_spec: Value::Null,
            labels: Value::Null,
            annotations: Value::Null,
            wait: Value::Null,
            timeouts: Value::Null,
        })
    }
}

// ---- tests ---------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use omni_client::resources::annotations;

    fn state(cluster: &str, role: &str) -> MachineSetState {
        MachineSetState {
            id: Value::Unknown,
            cluster: cluster.into(),
            role: role.into(),
            name: Value::Null,
            machine_class: Value::Null,
            update_strategy: Value::Null,
            delete_strategy: Value::Null,
            upgrade_strategy: Value::Null,
            bootstrap_spec: Value::Null,
            labels: Value::Null,
            annotations: Value::Null,
            wait: Value::Null,
            timeouts: Value::Null,
        }
    }

    fn class(name: &str, size: Value<i64>, kind: Value<String>) -> Value<MachineClassAllocation> {
        Value::Known(MachineClassAllocation {
            name: name.into(),
            size,
            allocation_type: kind,
        })
    }

    fn paths(d: &Diagnostics) -> Vec<String> {
        d.iter()
            .map(|d| d.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn ids_follow_omni_templates() {
        assert_eq!(
            machine_set_id("c", Role::ControlPlane, None),
            "c-control-planes"
        );
        assert_eq!(machine_set_id("c", Role::Workers, None), "c-workers");
        assert_eq!(machine_set_id("c", Role::Workers, Some("gpu")), "c-gpu");
        let mut s = state("c", "workers");
        assert_eq!(planned_id(&s), Value::Known("c-workers".into()));
        s.name = "gpu".into();
        assert_eq!(planned_id(&s), Value::Known("c-gpu".into()));
        s.name = Value::Unknown;
        assert_eq!(planned_id(&s), Value::Unknown);
    }

    #[test]
    fn bad_inputs_name_their_attribute() {
        let mut s = state("c", "leader");
        assert_eq!(paths(&validate_config(&s)), vec!["role"]);

        s = state("c", "controlplane");
        s.name = "x".into();
        assert_eq!(paths(&validate_config(&s)), vec!["name"]);

        s = state("c", "workers");
        s.name = "control-planes".into();
        assert_eq!(paths(&validate_config(&s)), vec!["name"]);

        s = state("c", "workers");
        s.machine_class = class("m", Value::Known(2), "unlimited".into());
        assert_eq!(paths(&validate_config(&s)), vec!["machine_class.size"]);
        // Terraform shows the resource block for nested fields: the detail names the field.
        assert!(validate_config(&s).0[0]
            .detail
            .starts_with("`machine_class.size`: "));

        s.machine_class = class("m", Value::Null, Value::Null);
        assert_eq!(paths(&validate_config(&s)), vec!["machine_class.size"]);

        s.machine_class = class("m", Value::Known(1), "sometimes".into());
        assert_eq!(
            paths(&validate_config(&s)),
            vec!["machine_class.allocation_type"]
        );

        s = state("c", "controlplane");
        s.machine_class = class("m", Value::Known(0), Value::Null);
        assert_eq!(paths(&validate_config(&s)), vec!["machine_class.size"]);

        s = state("c d", "workers");
        assert_eq!(paths(&validate_config(&s)), vec!["cluster"]);

        s = state("c", "workers");
        s.bootstrap_spec = Value::Known(Bootstrap {
            cluster_uuid: "u".into(),
            snapshot: "../x".into(),
        });
        assert_eq!(
            paths(&validate_config(&s)),
            vec!["bootstrap_spec", "bootstrap_spec.snapshot"]
        );

        s = state("c", "workers");
        s.update_strategy = Value::Known(Strategy {
            kind: "unset".into(),
            max_parallelism: Value::Known(3),
        });
        s.delete_strategy = Value::Known(Strategy {
            kind: "fast".into(),
            max_parallelism: Value::Null,
        });
        assert_eq!(
            paths(&validate_config(&s)),
            vec!["update_strategy.max_parallelism", "delete_strategy.type"]
        );

        s = state("c", "workers");
        s.labels = Value::Known(BTreeMap::from([(
            "omni.sidero.dev/cluster".to_string(),
            "x".to_string(),
        )]));
        assert_eq!(
            paths(&validate_config(&s)),
            vec!["labels[\"omni.sidero.dev/cluster\"]"]
        );
    }

    #[test]
    fn good_inputs_pass_and_unknowns_are_skipped() {
        let mut s = state("c", "workers");
        s.name = "gpu".into();
        s.machine_class = class("m", Value::Known(3), "Static".into());
        s.update_strategy = Value::Known(Strategy {
            kind: "Rolling".into(),
            max_parallelism: Value::Known(2),
        });
        assert!(validate_config(&s).is_empty());
        s.machine_class = class("m", Value::Unknown, "unlimited".into());
        s.cluster = Value::Unknown;
        s.role = Value::Unknown;
        assert!(validate_config(&s).is_empty());
        s.machine_class = class("m", Value::Null, "unlimited".into());
        assert!(validate_config(&s).is_empty());
    }

    fn object(
        id: &str,
        cluster: &str,
        role: Role,
        spec: specs::MachineSetSpec,
    ) -> Object<MachineSet> {
        Object::<MachineSet>::new(id, spec)
            .with_label(labels::CLUSTER, cluster)
            .with_label(role.label(), "")
            .with_label("team", "a")
            .with_annotation(annotations::MANAGED_BY_GITOPS_TOOLS, "Terraform")
    }

    #[test]
    fn round_trip_keeps_what_the_user_wrote() {
        let mut plan = state("c", "workers");
        plan.id = "c-workers".into();
        plan.machine_class = class("m", Value::Known(3), "Static".into());
        plan.update_strategy = Value::Known(Strategy {
            kind: "Rolling".into(),
            max_parallelism: Value::Null,
        });
        plan.delete_strategy = Value::Known(Strategy {
            kind: "rolling".into(),
            max_parallelism: Value::Known(2),
        });
        plan.labels = Value::Known(BTreeMap::from([("team".to_string(), "a".to_string())]));
        let config = plan.clone();
        apply_defaults(&mut plan, &config);
        assert_eq!(plan.wait, Value::Known(true));
        assert_eq!(
            plan.upgrade_strategy,
            Value::Known(Strategy {
                kind: "unset".into(),
                max_parallelism: Value::Null
            })
        );
        let mut spec = specs::MachineSetSpec::default();
        write_spec(&mut spec, &plan, true);
        assert_eq!(spec.update_strategy, UpdateStrategy::Rolling as i32);
        assert_eq!(spec.update_strategy_config, None);
        assert_eq!(config_mp(&spec.delete_strategy_config), 2);
        assert_eq!(
            spec.machine_allocation,
            Some(MachineAllocation {
                name: "m".into(),
                machine_count: 3,
                allocation_type: AllocationType::Static as i32
            })
        );
        let obj = object("c-workers", "c", Role::Workers, spec);
        let read = state_from_object(&plan, &obj).unwrap();
        assert_eq!(read, plan);
    }

    #[test]
    fn server_changes_show_up_in_canonical_form() {
        let mut prior = state("c", "workers");
        prior.id = "c-gpu".into();
        prior.name = "gpu".into();
        prior.machine_class = class("m", Value::Known(3), Value::Null);
        let spec = specs::MachineSetSpec {
            update_strategy: UpdateStrategy::Unset as i32,
            machine_allocation: Some(MachineAllocation {
                name: "m".into(),
                machine_count: 0,
                allocation_type: AllocationType::Unlimited as i32,
            }),
            ..Default::default()
        };
        let read = state_from_object(&prior, &object("c-gpu", "c", Role::Workers, spec)).unwrap();
        assert_eq!(read.name, Value::Known("gpu".into()));
        assert_eq!(
            read.machine_class,
            class("m", Value::Null, "unlimited".into())
        );
        assert_eq!(
            read.update_strategy,
            Value::Known(Strategy {
                kind: "unset".into(),
                max_parallelism: Value::Null
            })
        );
        assert_eq!(
            read.delete_strategy,
            Value::Known(Strategy {
                kind: "unset".into(),
                max_parallelism: Value::Null
            })
        );
        assert_eq!(
            read.labels,
            Value::Known(BTreeMap::from([("team".to_string(), "a".to_string())]))
        );
        assert_eq!(read.annotations, Value::Null);
    }

    #[test]
    fn import_derives_cluster_role_and_short_name() {
        // What `import` returns: only the ID.
        let prior = MachineSetState {
            id: "c-workers".into(),
            cluster: Value::Null,
            role: Value::Null,
            ..state("", "")
        };
        let spec = specs::MachineSetSpec {
            update_strategy: UpdateStrategy::Rolling as i32,
            ..Default::default()
        };
        let read = state_from_object(
            &prior,
            &object("c-workers", "c", Role::Workers, spec.clone()),
        )
        .unwrap();
        assert_eq!(read.cluster, Value::Known("c".into()));
        assert_eq!(read.role, Value::Known("workers".into()));
        // After an import the default set's name is explicit, which matches both an omitted
        // and an explicit `name = "workers"` (name is optional+computed).
        assert_eq!(read.name, Value::Known("workers".into()));
        assert_eq!(
            read.update_strategy,
            Value::Known(Strategy {
                kind: "rolling".into(),
                max_parallelism: Value::Null
            })
        );
        assert_eq!(read.wait, Value::Known(true));
        let cp = state_from_object(
            &prior,
            &object("c-control-planes", "c", Role::ControlPlane, spec.clone()),
        )
        .unwrap();
        assert_eq!(cp.name, Value::Null);
        assert_eq!(cp.role, Value::Known("controlplane".into()));
        // A managed default set with an omitted name keeps it omitted.
        let mut managed = state("c", "workers");
        managed.id = "c-workers".into();
        let read =
            state_from_object(&managed, &object("c-workers", "c", Role::Workers, spec)).unwrap();
        assert_eq!(read.name, Value::Null);
    }

    #[test]
    fn deprecated_machine_class_field_is_read_first() {
        #[allow(deprecated)]
        let spec = specs::MachineSetSpec {
            machine_class: Some(MachineAllocation {
                name: "old".into(),
                machine_count: 1,
                allocation_type: 0,
            }),
            machine_allocation: Some(MachineAllocation {
                name: "new".into(),
                machine_count: 2,
                allocation_type: 0,
            }),
            ..Default::default()
        };
        assert_eq!(spec_allocation(&spec).unwrap().name, "old");
        let mut s = specs::MachineSetSpec { ..spec };
        let mut plan = state("c", "workers");
        plan.machine_class = class("m", Value::Known(1), Value::Null);
        write_spec(&mut s, &plan, false);
        assert_eq!(spec_allocation(&s).unwrap().name, "m");
    }

    fn status(
        phase: MachineSetPhase,
        ready: bool,
        total: u32,
        requested: u32,
        alloc: Option<MachineAllocation>,
    ) -> Object<MachineSetStatus> {
        Object::new(
            "c-workers",
            specs::MachineSetStatusSpec {
                phase: phase as i32,
                ready,
                machines: Some(specs::Machines {
                    total,
                    healthy: total,
                    connected: total,
                    requested,
                }),
                machine_allocation: alloc,
                ..Default::default()
            },
        )
    }

    #[test]
    fn readiness_needs_running_ready_and_the_expected_count() {
        let alloc = MachineAllocation {
            name: "m".into(),
            machine_count: 2,
            allocation_type: 0,
        };
        let want = Expectation {
            allocation: Some(alloc.clone()),
            count: Some(2),
        };
        assert_eq!(readiness(None, &want), WaitDecision::Pending);
        let s = status(MachineSetPhase::ScalingUp, false, 1, 2, Some(alloc.clone()));
        assert_eq!(readiness(Some(&s), &want), WaitDecision::Pending);
        // A stale status computed for the previous allocation is not the answer.
        let mut old = alloc.clone();
        old.machine_count = 1;
        let s = status(MachineSetPhase::Running, true, 1, 1, Some(old));
        assert_eq!(readiness(Some(&s), &want), WaitDecision::Pending);
        let s = status(MachineSetPhase::Running, true, 2, 2, Some(alloc.clone()));
        assert_eq!(readiness(Some(&s), &want), WaitDecision::Done);
        assert!(describe_status(Some(&s)).contains("2/2 machines"));
        let unlimited = Expectation {
            allocation: None,
            count: None,
        };
        let s = status(MachineSetPhase::Running, true, 4, 4, None);
        assert_eq!(readiness(Some(&s), &unlimited), WaitDecision::Done);
    }
}
