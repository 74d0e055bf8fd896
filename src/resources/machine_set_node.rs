//! `omni_machine_set_node`: puts one machine into a machine set (`MachineSetNodes.omni.sidero.dev`,
//! ID = machine UUID; omni-api.md §3.3, §4 "MachineSetNode", §5.1).

use std::time::Duration;

use omni_client::omni_api::specs;
use omni_client::resources::{annotations, labels, MachineSet, MachineSetNode, MachineStatus};
use omni_client::{Api, Object};
use serde::{Deserialize, Serialize};
use talos_machinery::names;
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, Diagnostic, Diagnostics, PrivateState, Resource,
    Result, Schema, Value,
};

use super::machine_set::Role;
use crate::common::{self, omni_error, omni_error_at, Timeouts};

// ---- description --------------------------------------------------------------------------

const DESCRIPTION: &str = "\
Assigns one machine (by UUID) to a machine set whose machines are managed by hand, i.e. an \
`omni_machine_set` without `machine_class`.

* A machine can be in one machine set at a time, so the machine UUID is the resource ID.
* Deleting the node releases the machine: Omni resets it and returns it to the pool of \
available machines. The delete waits until that is done.
* `locked = true` (workers only) stops Omni from applying configuration changes and upgrades to \
the machine. Omni refuses to remove a locked machine: set `locked = false` and apply before \
removing it.

Import with the machine UUID: `terraform import omni_machine_set_node.w0 <uuid>`.";

const CREATE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const UPDATE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const DELETE_TIMEOUT: Duration = Duration::from_secs(20 * 60);

// ---- state ---------------------------------------------------------------------------------

/// `omni_machine_set_node` state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MachineSetNodeState {
    /// Cluster name.
    pub cluster: Value<String>,
    /// Machine set ID.
    pub machine_set: Value<String>,
    /// Machine UUID (the resource ID).
    pub machine_id: Value<String>,
    /// Locked against updates (workers only; null = false).
    pub locked: Value<bool>,
    /// Time limits.
    pub timeouts: Value<Timeouts>,
}

// ---- schema --------------------------------------------------------------------------------

fn schema() -> Schema {
    Schema::new(DESCRIPTION)
        .attribute(
            Attribute::string("cluster")
                .required()
                .requires_replace()
                .description("Name of the cluster; must be the machine set's cluster. Changing it replaces the node."),
        )
        .attribute(
            Attribute::string("machine_set")
                .required()
                .requires_replace()
                .description("ID of the machine set, e.g. `omni_machine_set.workers.id`. Changing it moves the machine (replaces the node)."),
        )
        .attribute(
            Attribute::string("machine_id")
                .required()
                .requires_replace()
                .description("UUID of the machine. Changing it replaces the node."),
        )
        .attribute(
            Attribute::bool("locked")
                .optional()
                .description("Lock the machine: Omni applies no configuration changes or upgrades to it (annotation `omni.sidero.dev/locked`). Workers only. Default `false`."),
        )
        .attribute(common::timeouts::attribute(
            CREATE_TIMEOUT,
            UPDATE_TIMEOUT,
            DELETE_TIMEOUT,
        ))
}

// ---- plan logic ----------------------------------------------------------------------------

fn at(path: &str, summary: &str, detail: impl Into<String>) -> Diagnostic {
    Diagnostic::error(summary, detail).at(AttributePath::new(path))
}

/// Machine IDs are UUIDs: `8-4-4-4-12` hex digits (Omni's templates insist on it, omni-api.md §7).
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_locked(s: &MachineSetNodeState) -> bool {
    s.locked.as_option() == Some(&true)
}

/// Checks that need only the configuration; each error names its attribute.
pub fn validate_config(c: &MachineSetNodeState) -> Diagnostics {
    let mut diags = Diagnostics::new();
    if let Some(cluster) = c.cluster.as_str() {
        if let Err(e) = names::validate_cluster_name(cluster) {
            diags.push(at("cluster", "Invalid cluster name", e));
        }
    }
    if let Some(id) = c.machine_id.as_str() {
        if !is_uuid(id) {
            diags.push(at(
                "machine_id",
                "Invalid machine ID",
                format!(
                    "{id:?} is not a machine UUID (like `430d882a-51a8-48b3-ae00-90c5b0b5b0b0`)."
                ),
            ));
        }
    }
    if let (Some(cluster), Some(set)) = (c.cluster.as_str(), c.machine_set.as_str()) {
        if !set.starts_with(&format!("{cluster}-")) {
            diags.push(at(
                "machine_set",
                "Machine set of another cluster",
                format!(
                    "{set:?} is not a machine set ID of cluster {cluster:?} (those start with \
                     \"{cluster}-\"). Use the set's ID, e.g. `omni_machine_set.workers.id`, not \
                     its short name."
                ),
            ));
        } else if is_locked(c) && *set == names::control_plane_machine_set_id(cluster) {
            diags.push(at(
                "locked",
                "Control planes cannot be locked",
                "locking controlplanes is not allowed",
            ));
        }
    }
    if let Err(d) = Timeouts::validate(&c.timeouts) {
        diags.extend(d);
    }
    diags
}

/// Checks against Omni when the provider is configured: the set (if it exists already) belongs
/// to the cluster, is managed by hand and is not a locked control plane; the machine is not in
/// another set; an unknown machine UUID is a warning (Omni itself does not check it, §4).
async fn check_against_omni(ctx: &Ctx, plan: &MachineSetNodeState, creating: bool) -> Result<()> {
    let Ok(configured) = common::configured(ctx) else {
        return Ok(());
    };
    let client = configured.client.clone();
    let mut diags = Diagnostics::new();
    if let (Some(cluster), Some(set_id)) = (plan.cluster.as_str(), plan.machine_set.as_str()) {
        let set = Api::<MachineSet>::new(client.clone())
            .get_opt(set_id)
            .await
            .map_err(|e| omni_error(&format!("reading machine set {set_id:?}"), e))?;
        if let Some(set) = set.filter(|s| !s.is_tearing_down()) {
            if set.metadata.labels.get(labels::CLUSTER).map(String::as_str) != Some(cluster) {
                diags.push(at(
                    "machine_set",
                    "Machine set of another cluster",
                    format!("Machine set {set_id:?} does not belong to cluster {cluster:?}."),
                ));
            }
            if super::machine_set::spec_allocation(&set.spec).is_some() {
                diags.push(at(
                    "machine_set",
                    "Machine set allocates from a machine class",
                    format!(
                        "Machine set {set_id:?} gets its machines from a machine class; Omni \
                         rejects hand-assigned nodes there (the machine set is using automated \
                         machine allocation)."
                    ),
                ));
            }
            if is_locked(plan)
                && Role::from_labels(&set.metadata.labels) == Some(Role::ControlPlane)
            {
                diags.push(at(
                    "locked",
                    "Control planes cannot be locked",
                    "locking controlplanes is not allowed",
                ));
            }
        }
    }
    if let Some(machine) = plan.machine_id.as_str().filter(|m| is_uuid(m)) {
        if creating {
            let existing = Api::<MachineSetNode>::new(client.clone())
                .get_opt(machine)
                .await
                .map_err(|e| omni_error(&format!("reading machine set node {machine:?}"), e))?;
            if let Some(n) = existing.filter(|n| !n.is_tearing_down()) {
                let other = n
                    .metadata
                    .labels
                    .get(labels::MACHINE_SET)
                    .cloned()
                    .unwrap_or_default();
                diags.push(at(
                    "machine_id",
                    "Machine is already in a machine set",
                    format!(
                        "Machine {machine} is already a node of machine set {other:?}. Import it \
                         (`terraform import <address> {machine}`) or remove it there first."
                    ),
                ));
            }
        }
        let status = Api::<MachineStatus>::new(client)
            .get_opt(machine)
            .await
            .map_err(|e| omni_error(&format!("reading machine {machine:?}"), e))?;
        if status.is_none() {
            ctx.warn_at(
                AttributePath::new("machine_id"),
                "Unknown machine",
                format!(
                    "No machine {machine} is registered in Omni. The node is accepted, but the \
                     machine joins the cluster only once it connects."
                ),
            );
        }
    }
    diags.into_result()
}

fn locked_error(action: &str) -> Diagnostics {
    at(
        "locked",
        "Locked machines cannot be removed",
        format!("Omni refuses to {action} a locked machine. Set `locked = false` and apply first."),
    )
    .into()
}

// ---- conversions ---------------------------------------------------------------------------

fn state_from_object(
    prior: &MachineSetNodeState,
    obj: &Object<MachineSetNode>,
) -> MachineSetNodeState {
    let l = &obj.metadata.labels;
    let locked = obj.metadata.annotations.contains_key(annotations::LOCKED);
    MachineSetNodeState {
        cluster: l
            .get(labels::CLUSTER)
            .cloned()
            .map(Value::Known)
            .unwrap_or_else(|| prior.cluster.clone()),
        machine_set: l
            .get(labels::MACHINE_SET)
            .cloned()
            .map(Value::Known)
            .unwrap_or_else(|| prior.machine_set.clone()),
        machine_id: Value::Known(obj.id().to_string()),
        // Null and false mean the same: keep what the user wrote.
        locked: match (&prior.locked, locked) {
            (_, true) => Value::Known(true),
            (Value::Known(false), false) => Value::Known(false),
            _ => Value::Null,
        },
        timeouts: prior.timeouts.clone(),
    }
}

fn set_lock(obj: &mut Object<MachineSetNode>, locked: bool) {
    if locked {
        obj.metadata
            .annotations
            .insert(annotations::LOCKED.into(), String::new());
    } else {
        obj.metadata.annotations.remove(annotations::LOCKED);
    }
}

// ---- the resource --------------------------------------------------------------------------

/// `omni_machine_set_node`.
pub struct MachineSetNodeResource;

#[async_trait]
impl Resource for MachineSetNodeResource {
    const TYPE_NAME: &'static str = "omni_machine_set_node";
    type State = MachineSetNodeState;

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, _ctx: &Ctx, config: &MachineSetNodeState) -> Result<()> {
        validate_config(config).into_result()
    }

    async fn read(
        &self,
        ctx: &Ctx,
        state: MachineSetNodeState,
        _private: &mut PrivateState,
    ) -> Result<Option<MachineSetNodeState>> {
        let Some(id) = state.machine_id.as_str() else {
            return Ok(None);
        };
        let obj = common::api::<MachineSetNode>(ctx)?
            .get_opt(id)
            .await
            .map_err(|e| omni_error(&format!("reading machine set node {id:?}"), e))?;
        match obj {
            None => Ok(None),
            // Going away (deleted by hand, or its set/cluster is being torn down).
            Some(o) if o.is_tearing_down() => Ok(None),
            Some(o) if state.cluster.is_null() && !o.metadata.owner.is_empty() => {
                Err(Diagnostic::error(
                    "Node managed by Omni",
                    format!(
                        "Machine set node {id:?} was created by Omni ({}) for a machine-class \
                         allocation; manage it through the machine set's `machine_class`.",
                        o.metadata.owner
                    ),
                )
                .into())
            }
            Some(o) => Ok(Some(state_from_object(&state, &o))),
        }
    }

    async fn plan_create(
        &self,
        ctx: &Ctx,
        plan: MachineSetNodeState,
        config: &MachineSetNodeState,
        _private: &mut PrivateState,
    ) -> Result<MachineSetNodeState> {
        validate_config(config).into_result()?;
        check_against_omni(ctx, &plan, true).await?;
        Ok(plan)
    }

    async fn plan_update(
        &self,
        ctx: &Ctx,
        prior: &MachineSetNodeState,
        plan: MachineSetNodeState,
        config: &MachineSetNodeState,
        _private: &mut PrivateState,
        _requires_replace: &mut Vec<AttributePath>,
    ) -> Result<MachineSetNodeState> {
        validate_config(config).into_result()?;
        let replaced = prior.cluster != plan.cluster
            || prior.machine_set != plan.machine_set
            || prior.machine_id != plan.machine_id;
        if replaced && is_locked(prior) {
            return Err(locked_error("move or replace"));
        }
        if is_locked(&plan) && !is_locked(prior) {
            check_against_omni(ctx, &plan, false).await?;
        }
        Ok(plan)
    }

    async fn plan_destroy(
        &self,
        _ctx: &Ctx,
        prior: &MachineSetNodeState,
        _private: &mut PrivateState,
    ) -> Result<()> {
        // omni-api.md §4: "Delete is rejected if the node is locked".
        if is_locked(prior) {
            return Err(locked_error("remove"));
        }
        Ok(())
    }

    async fn create(
        &self,
        ctx: &Ctx,
        plan: MachineSetNodeState,
        _config: &MachineSetNodeState,
        _private: &mut PrivateState,
    ) -> Result<MachineSetNodeState> {
        let id = plan.machine_id.as_str().unwrap_or_default().to_string();
        let cluster = plan.cluster.as_str().unwrap_or_default().to_string();
        let set_id = plan.machine_set.as_str().unwrap_or_default().to_string();
        let timeout = Timeouts::get(&plan.timeouts, "create", CREATE_TIMEOUT);
        // The role label is copied from the set (omni-api.md §3.3), so the set must exist.
        let set = common::api::<MachineSet>(ctx)?
            .get_opt(&set_id)
            .await
            .map_err(|e| omni_error(&format!("reading machine set {set_id:?}"), e))?
            .filter(|s| !s.is_tearing_down())
            .ok_or_else(|| {
                Diagnostics::from(at(
                    "machine_set",
                    "Machine set not found",
                    format!("Machine set {set_id:?} does not exist in Omni (or is being deleted)."),
                ))
            })?;
        if set.metadata.labels.get(labels::CLUSTER) != Some(&cluster) {
            return Err(at(
                "machine_set",
                "Machine set of another cluster",
                format!("Machine set {set_id:?} does not belong to cluster {cluster:?}."),
            )
            .into());
        }
        let role = Role::from_labels(&set.metadata.labels).ok_or_else(|| {
            Diagnostics::from(at(
                "machine_set",
                "Machine set without a role",
                format!("Machine set {set_id:?} carries no role label."),
            ))
        })?;
        let mut obj = Object::<MachineSetNode>::new(id.clone(), specs::MachineSetNodeSpec {})
            .with_label(labels::CLUSTER, cluster)
            .with_label(labels::MACHINE_SET, set_id)
            .with_label(role.label(), "");
        set_lock(&mut obj, is_locked(&plan));
        let api = common::api::<MachineSetNode>(ctx)?;
        // The machine's previous node may still be on its way out (e.g. a move between sets).
        common::create_replacing_dying(ctx, &api, obj, timeout, "machine set node")
            .await
            .map_err(|e| {
                omni_error_at(
                    &format!("adding machine {id} to the machine set"),
                    e,
                    AttributePath::new("machine_id"),
                )
            })?;
        Ok(plan)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _prior: MachineSetNodeState,
        plan: MachineSetNodeState,
        _config: &MachineSetNodeState,
        _private: &mut PrivateState,
    ) -> Result<MachineSetNodeState> {
        let id = plan.machine_id.as_str().unwrap_or_default().to_string();
        let locked = is_locked(&plan);
        common::api::<MachineSetNode>(ctx)?
            .update(&id, |o| set_lock(o, locked))
            .await
            .map_err(|e| {
                omni_error_at(
                    &format!("updating machine set node {id}"),
                    e,
                    AttributePath::new("locked"),
                )
            })?;
        Ok(plan)
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        prior: MachineSetNodeState,
        _private: &PrivateState,
    ) -> Result<()> {
        let Some(id) = prior.machine_id.as_str() else {
            return Ok(());
        };
        let timeout = Timeouts::get(&prior.timeouts, "delete", DELETE_TIMEOUT);
        let api = common::api::<MachineSetNode>(ctx)?;
        common::teardown_and_wait(ctx, &api, id, timeout, &format!("machine set node {id}")).await
    }

    async fn import(&self, _ctx: &Ctx, id: &str) -> Result<MachineSetNodeState> {
        if !is_uuid(id) {
            return Err(Diagnostic::error(
                "Invalid import ID",
                format!("Import a machine set node by its machine UUID; {id:?} is not a UUID."),
            )
            .into());
        }
        Ok(MachineSetNodeState {
            cluster: Value::Null,
            machine_set: Value::Null,
            machine_id: Value::Known(id.to_string()),
            locked: Value::Null,
            timeouts: Value::Null,
        })
    }
}

// ---- tests ---------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "430d882a-51a8-48b3-ae00-90c5b0b5b0b0";

    fn node(cluster: &str, set: &str, id: &str, locked: Value<bool>) -> MachineSetNodeState {
        MachineSetNodeState {
            cluster: cluster.into(),
            machine_set: set.into(),
            machine_id: id.into(),
            locked,
            timeouts: Value::Null,
        }
    }

    fn paths(d: &Diagnostics) -> Vec<String> {
        d.iter()
            .map(|d| d.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn uuids() {
        assert!(is_uuid(UUID));
        assert!(is_uuid("430D882A-51A8-48B3-AE00-90C5B0B5B0B0"));
        assert!(!is_uuid("430d882a51a848b3ae0090c5b0b5b0b0"));
        assert!(!is_uuid("430d882a-51a8-48b3-ae00-90c5b0b5b0bz"));
        assert!(!is_uuid(""));
    }

    #[test]
    fn bad_inputs_name_their_attribute() {
        assert!(validate_config(&node("c", "c-workers", UUID, Value::Known(true))).is_empty());
        assert_eq!(
            paths(&validate_config(&node("c", "c-workers", "m1", Value::Null))),
            vec!["machine_id"]
        );
        assert_eq!(
            paths(&validate_config(&node("c", "workers", UUID, Value::Null))),
            vec!["machine_set"]
        );
        assert_eq!(
            paths(&validate_config(&node(
                "c",
                "c-control-planes",
                UUID,
                Value::Known(true)
            ))),
            vec!["locked"]
        );
        let mut unknown = node("c", "c-workers", UUID, Value::Null);
        unknown.machine_set = Value::Unknown;
        unknown.machine_id = Value::Unknown;
        assert!(validate_config(&unknown).is_empty());
    }

    #[test]
    fn read_reflects_labels_and_the_lock() {
        let obj = Object::<MachineSetNode>::new(UUID, specs::MachineSetNodeSpec {})
            .with_label(labels::CLUSTER, "c")
            .with_label(labels::MACHINE_SET, "c-gpu")
            .with_label(labels::ROLE_WORKER, "")
            .with_annotation(annotations::LOCKED, "");
        let imported = node("", "", UUID, Value::Null);
        let imported = MachineSetNodeState {
            cluster: Value::Null,
            machine_set: Value::Null,
            ..imported
        };
        let read = state_from_object(&imported, &obj);
        assert_eq!(read, node("c", "c-gpu", UUID, Value::Known(true)));
        let mut unlocked = obj.clone();
        set_lock(&mut unlocked, false);
        assert_eq!(
            state_from_object(&node("c", "c-gpu", UUID, Value::Known(false)), &unlocked).locked,
            Value::Known(false)
        );
        assert_eq!(
            state_from_object(&node("c", "c-gpu", UUID, Value::Known(true)), &unlocked).locked,
            Value::Null
        );
    }
}
