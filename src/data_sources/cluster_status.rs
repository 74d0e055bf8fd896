//! `omni_cluster_status`: a cluster's readiness (ClusterStatus, MachineSetStatuses and the
//! upgrade statuses), optionally waiting until a condition holds (omni-api.md §3.4, §5.3).

use std::time::Duration;

use omni_client::omni_api::specs;
use omni_client::resources::{
    labels as omni_labels, ClusterStatus, KubernetesUpgradeStatus, MachineSetStatus,
    TalosUpgradeStatus,
};
use omni_client::{Api, LabelQuery, ListParams, Object};
use serde::{Deserialize, Serialize};
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, DataSource, Diagnostic, Diagnostics, Nesting,
    Result, Schema, Value,
};

use crate::common::{self, timeouts, WaitDecision};

const DESCRIPTION: &str = "\
Reads the readiness of an Omni cluster: phase, readiness flags, machine counts, versions and \
the progress of Talos and Kubernetes upgrades.

With a `wait` block the read blocks until the cluster reaches a condition, which is how a \
configuration makes the Kubernetes or Helm providers wait for a usable cluster:

* `available`: a control-plane machine set has at least one machine.
* `running`: the cluster phase is `RUNNING`.
* `ready`: phase `RUNNING` and every machine set ready.
* `healthy`: what `omnictl cluster template status` checks: the cluster is `RUNNING` and \
  ready, every machine set is `Running` and ready, and both the Talos and the Kubernetes \
  upgrade are `Done`.

The wait follows Omni's watch events (no polling) and gives up after `wait.timeout`, saying what \
it waited for and what it saw last. Without `wait`, a cluster Omni does not know is an error.";

/// Default of `wait.timeout`.
const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(600);

/// Conditions `wait.condition` accepts.
const CONDITIONS: [&str; 4] = ["available", "running", "ready", "healthy"];

/// `wait` block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WaitConfig {
    /// One of [`CONDITIONS`].
    pub condition: Value<String>,
    /// Go-style duration.
    pub timeout: Value<String>,
}

/// Machine counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineCounts {
    /// Machines in the cluster.
    pub total: Value<i64>,
    /// Healthy machines.
    pub healthy: Value<i64>,
    /// Connected machines.
    pub connected: Value<i64>,
    /// Requested machines.
    pub requested: Value<i64>,
}

/// Talos or Kubernetes upgrade progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpgradeModel {
    /// Omni's phase name (`Done`, `Upgrading`, `Failed`, ...).
    pub phase: Value<String>,
    /// Error of a failed upgrade.
    pub error: Value<String>,
    /// Current step.
    pub step: Value<String>,
    /// Status text.
    pub status: Value<String>,
    /// Last version fully rolled out.
    pub last_upgrade_version: Value<String>,
    /// Version being rolled out.
    pub current_upgrade_version: Value<String>,
}

/// One machine set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineSetModel {
    /// Machine set ID.
    pub id: Value<String>,
    /// `controlplane` or `worker`.
    pub role: Value<String>,
    /// Omni's phase name (`Running`, `ScalingUp`, ...).
    pub phase: Value<String>,
    /// Ready flag.
    pub ready: Value<bool>,
    /// Error text.
    pub error: Value<String>,
    /// Machine counts.
    pub machines: Value<MachineCounts>,
}

/// `omni_cluster_status` configuration and result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterStatusState {
    /// Cluster name.
    pub cluster: Value<String>,
    /// Optional wait.
    pub wait: Value<WaitConfig>,
    /// Same as `cluster`.
    pub id: Value<String>,
    /// Phase name.
    pub phase: Value<String>,
    /// Ready.
    pub ready: Value<bool>,
    /// Available.
    pub available: Value<bool>,
    /// Kubernetes API reachable through Omni.
    pub kubernetes_api_ready: Value<bool>,
    /// Control plane ready.
    pub controlplane_ready: Value<bool>,
    /// Some control plane connected.
    pub has_connected_control_planes: Value<bool>,
    /// The `healthy` condition.
    pub healthy: Value<bool>,
    /// Machine counts.
    pub machines: Value<MachineCounts>,
    /// Talos version.
    pub talos_version: Value<String>,
    /// Kubernetes version.
    pub kubernetes_version: Value<String>,
    /// Talos version the cluster was created with.
    pub initial_talos_version: Value<String>,
    /// Talos upgrade progress.
    pub talos_upgrade: Value<UpgradeModel>,
    /// Kubernetes upgrade progress.
    pub kubernetes_upgrade: Value<UpgradeModel>,
    /// Machine sets.
    pub machine_sets: Value<Vec<MachineSetModel>>,
}

fn counts_attributes() -> Vec<Attribute> {
    vec![
        Attribute::number("total")
            .computed()
            .description("Machines in the cluster."),
        Attribute::number("healthy")
            .computed()
            .description("Machines that are running and ready."),
        Attribute::number("connected")
            .computed()
            .description("Machines connected to Omni."),
        Attribute::number("requested")
            .computed()
            .description("Machines requested by the machine sets."),
    ]
}

fn upgrade_attributes() -> Vec<Attribute> {
    vec![
        Attribute::string("phase")
            .computed()
            .description("`Unknown`, `Upgrading`, `Done`, `Failed`, `Reverting` (Talos also `UpdatingMachineSchematics`)."),
        Attribute::string("error")
            .computed()
            .description("Why the upgrade failed, when it did."),
        Attribute::string("step").computed().description("Current step."),
        Attribute::string("status").computed().description("Status text."),
        Attribute::string("last_upgrade_version")
            .computed()
            .description("Last version fully rolled out."),
        Attribute::string("current_upgrade_version")
            .computed()
            .description("Version being rolled out."),
    ]
}

// ------------------------------------------------------------------------------------------
// What was read, and the conditions over it
// ------------------------------------------------------------------------------------------

/// Everything the data source reports, as read from Omni.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// ClusterStatus (None = not there yet).
    pub cluster: Option<specs::ClusterStatusSpec>,
    /// MachineSetStatuses of the cluster, by ID.
    pub machine_sets: Vec<Object<MachineSetStatus>>,
    /// TalosUpgradeStatus.
    pub talos_upgrade: Option<specs::TalosUpgradeStatusSpec>,
    /// KubernetesUpgradeStatus.
    pub kubernetes_upgrade: Option<specs::KubernetesUpgradeStatusSpec>,
}

/// The first part of the `healthy` condition that does not hold (omni-api.md §5.3).
#[derive(Clone, Debug, PartialEq)]
pub enum Unmet {
    /// ClusterStatus is not RUNNING + ready.
    Cluster,
    /// This machine set is not Running + ready.
    MachineSet(String),
    /// TalosUpgradeStatus is not Done.
    TalosUpgrade,
    /// KubernetesUpgradeStatus is not Done.
    KubernetesUpgrade,
}

fn cluster_phase(s: &specs::ClusterStatusSpec) -> specs::cluster_status_spec::Phase {
    specs::cluster_status_spec::Phase::try_from(s.phase).unwrap_or_default()
}

/// Whether ClusterStatus satisfies `condition` (the cluster-level part of each condition).
pub fn cluster_condition_holds(condition: &str, s: &specs::ClusterStatusSpec) -> bool {
    use specs::cluster_status_spec::Phase;
    let running = cluster_phase(s) == Phase::Running;
    match condition {
        "available" => s.available,
        "running" => running,
        // `ready` is computed by Omni as "every machine set ready and phase RUNNING" (§3.4).
        _ => running && s.ready,
    }
}

fn machine_set_healthy(s: &specs::MachineSetStatusSpec) -> bool {
    s.phase == specs::MachineSetPhase::Running as i32 && s.ready
}

impl Snapshot {
    /// The first unmet part of `healthy`, `None` when the cluster is healthy.
    pub fn unmet_for_healthy(&self) -> Option<Unmet> {
        use specs::kubernetes_upgrade_status_spec::Phase as KPhase;
        use specs::talos_upgrade_status_spec::Phase as TPhase;
        match &self.cluster {
            Some(c) if cluster_condition_holds("healthy", c) => {}
            _ => return Some(Unmet::Cluster),
        }
        if let Some(ms) = self
            .machine_sets
            .iter()
            .find(|m| !machine_set_healthy(&m.spec))
        {
            return Some(Unmet::MachineSet(ms.id().to_string()));
        }
        if self
            .talos_upgrade
            .as_ref()
            .is_none_or(|t| t.phase != TPhase::Done as i32)
        {
            return Some(Unmet::TalosUpgrade);
        }
        if self
            .kubernetes_upgrade
            .as_ref()
            .is_none_or(|k| k.phase != KPhase::Done as i32)
        {
            return Some(Unmet::KubernetesUpgrade);
        }
        None
    }

    /// Whether `condition` holds.
    pub fn holds(&self, condition: &str) -> bool {
        match condition {
            "healthy" => self.unmet_for_healthy().is_none(),
            c => self
                .cluster
                .as_ref()
                .is_some_and(|s| cluster_condition_holds(c, s)),
        }
    }

    /// One line saying what the cluster looks like (progress logs and timeout messages).
    pub fn describe(&self) -> String {
        let Some(c) = &self.cluster else {
            return "the cluster has no status in Omni yet (it may not exist)".to_string();
        };
        let m = c.machines.unwrap_or_default();
        let mut out = format!(
            "phase {}, ready {}, available {}, machines {}/{} healthy",
            cluster_phase(c).as_str_name(),
            c.ready,
            c.available,
            m.healthy,
            m.total
        );
        for ms in &self.machine_sets {
            out.push_str(&format!(
                "; machine set {} {}{}",
                ms.id(),
                specs::MachineSetPhase::try_from(ms.spec.phase)
                    .unwrap_or_default()
                    .as_str_name(),
                if ms.spec.ready {
                    " ready"
                } else {
                    " not ready"
                }
            ));
            if !ms.spec.error.is_empty() {
                out.push_str(&format!(" ({})", ms.spec.error));
            }
        }
        if let Some(t) = &self.talos_upgrade {
            out.push_str(&format!(
                "; Talos upgrade {}",
                specs::talos_upgrade_status_spec::Phase::try_from(t.phase)
                    .unwrap_or_default()
                    .as_str_name()
            ));
            if !t.error.is_empty() {
                out.push_str(&format!(" ({})", t.error));
            }
        }
        if let Some(k) = &self.kubernetes_upgrade {
            out.push_str(&format!(
                "; Kubernetes upgrade {}",
                specs::kubernetes_upgrade_status_spec::Phase::try_from(k.phase)
                    .unwrap_or_default()
                    .as_str_name()
            ));
            if !k.error.is_empty() {
                out.push_str(&format!(" ({})", k.error));
            }
        }
        out
    }
}

/// What each condition means, for messages.
fn condition_text(condition: &str) -> &'static str {
    match condition {
        "available" => "available (a control-plane machine set has a machine)",
        "running" => "running (phase RUNNING)",
        "ready" => "ready (phase RUNNING and every machine set ready)",
        _ => {
            "healthy (cluster RUNNING and ready, every machine set Running and ready, Talos and \
             Kubernetes upgrades Done)"
        }
    }
}

fn none_if_empty(s: &str) -> Value<String> {
    if s.is_empty() {
        Value::Null
    } else {
        Value::Known(s.to_string())
    }
}

fn counts(m: Option<&specs::Machines>) -> Value<MachineCounts> {
    let m = m.cloned().unwrap_or_default();
    Value::Known(MachineCounts {
        total: Value::Known(i64::from(m.total)),
        healthy: Value::Known(i64::from(m.healthy)),
        connected: Value::Known(i64::from(m.connected)),
        requested: Value::Known(i64::from(m.requested)),
    })
}

impl ClusterStatusState {
    /// Fills every computed attribute from a snapshot that has a ClusterStatus.
    fn fill(&mut self, name: &str, snap: &Snapshot) {
        let c = snap.cluster.clone().unwrap_or_default();
        self.id = Value::Known(name.to_string());
        self.phase = Value::Known(cluster_phase(&c).as_str_name().to_string());
        self.ready = Value::Known(c.ready);
        self.available = Value::Known(c.available);
        self.kubernetes_api_ready = Value::Known(c.kubernetes_api_ready);
        self.controlplane_ready = Value::Known(c.controlplane_ready);
        self.has_connected_control_planes = Value::Known(c.has_connected_control_planes);
        self.healthy = Value::Known(snap.holds("healthy"));
        self.machines = counts(c.machines.as_ref());
        self.talos_version = none_if_empty(&c.talos_version);
        self.kubernetes_version = none_if_empty(&c.kubernetes_version);
        self.initial_talos_version = none_if_empty(&c.initial_talos_version);
        self.talos_upgrade = Value::Known(match &snap.talos_upgrade {
            Some(t) => UpgradeModel {
                phase: Value::Known(
                    specs::talos_upgrade_status_spec::Phase::try_from(t.phase)
                        .unwrap_or_default()
                        .as_str_name()
                        .to_string(),
                ),
                error: none_if_empty(&t.error),
                step: none_if_empty(&t.step),
                status: none_if_empty(&t.status),
                last_upgrade_version: none_if_empty(&t.last_upgrade_version),
                current_upgrade_version: none_if_empty(&t.current_upgrade_version),
            },
            None => UpgradeModel::unknown_phase(),
        });
        self.kubernetes_upgrade = Value::Known(match &snap.kubernetes_upgrade {
            Some(k) => UpgradeModel {
                phase: Value::Known(
                    specs::kubernetes_upgrade_status_spec::Phase::try_from(k.phase)
                        .unwrap_or_default()
                        .as_str_name()
                        .to_string(),
                ),
                error: none_if_empty(&k.error),
                step: none_if_empty(&k.step),
                status: none_if_empty(&k.status),
                last_upgrade_version: none_if_empty(&k.last_upgrade_version),
                current_upgrade_version: none_if_empty(&k.current_upgrade_version),
            },
            None => UpgradeModel::unknown_phase(),
        });
        self.machine_sets = Value::Known(
            snap.machine_sets
                .iter()
                .map(|ms| MachineSetModel {
                    id: Value::Known(ms.id().to_string()),
                    role: if ms
                        .metadata
                        .labels
                        .contains_key(omni_labels::ROLE_CONTROLPLANE)
                    {
                        Value::Known("controlplane".into())
                    } else {
                        Value::Known("worker".into())
                    },
                    phase: Value::Known(
                        specs::MachineSetPhase::try_from(ms.spec.phase)
                            .unwrap_or_default()
                            .as_str_name()
                            .to_string(),
                    ),
                    ready: Value::Known(ms.spec.ready),
                    error: none_if_empty(&ms.spec.error),
                    machines: counts(ms.spec.machines.as_ref()),
                })
                .collect(),
        );
    }
}

impl UpgradeModel {
    /// No status resource yet: phase `Unknown`, everything else null.
    fn unknown_phase() -> Self {
        UpgradeModel {
            phase: Value::Known("Unknown".into()),
            error: Value::Null,
            step: Value::Null,
            status: Value::Null,
            last_upgrade_version: Value::Null,
            current_upgrade_version: Value::Null,
        }
    }
}

// ------------------------------------------------------------------------------------------
// Reading and waiting
// ------------------------------------------------------------------------------------------

async fn snapshot(ctx: &Ctx, name: &str) -> Result<Snapshot> {
    let err = |what: &str| {
        let what = format!("reading {what} of cluster {name:?}");
        move |e| common::omni_error(&what, e)
    };
    let cluster = common::api::<ClusterStatus>(ctx)?
        .get_opt(name)
        .await
        .map_err(err("the status"))?
        .map(|o| o.spec);
    let machine_sets = common::api::<MachineSetStatus>(ctx)?
        .list(&ListParams::default().labels(LabelQuery::new().equal(omni_labels::CLUSTER, name)))
        .await
        .map_err(err("the machine set statuses"))?;
    let talos_upgrade = common::api::<TalosUpgradeStatus>(ctx)?
        .get_opt(name)
        .await
        .map_err(err("the Talos upgrade status"))?
        .map(|o| o.spec);
    let kubernetes_upgrade = common::api::<KubernetesUpgradeStatus>(ctx)?
        .get_opt(name)
        .await
        .map_err(err("the Kubernetes upgrade status"))?
        .map(|o| o.spec);
    Ok(Snapshot {
        cluster,
        machine_sets,
        talos_upgrade,
        kubernetes_upgrade,
    })
}

/// Upper bound of each inner `wait_for`; the overall deadline is enforced around them so the
/// timeout message can describe the whole cluster and name `wait.timeout`.
const INNER_BOUND: Duration = Duration::from_secs(24 * 3600);

/// Waits, event by event, until the one resource behind `unmet` satisfies its part.
async fn wait_for_part(ctx: &Ctx, name: &str, condition: &str, unmet: Unmet) -> Result<()> {
    use specs::kubernetes_upgrade_status_spec::Phase as KPhase;
    use specs::talos_upgrade_status_spec::Phase as TPhase;
    let what = format!("cluster {name:?} to be {condition}");
    match unmet {
        Unmet::Cluster => {
            let cond = condition.to_string();
            common::wait_for(
                ctx,
                &common::api::<ClusterStatus>(ctx)?,
                name,
                INNER_BOUND,
                &what,
                move |o| match o {
                    Some(o) if cluster_condition_holds(&cond, &o.spec) => WaitDecision::Done,
                    _ => WaitDecision::Pending,
                },
                |o| {
                    Snapshot {
                        cluster: o.map(|o| o.spec.clone()),
                        ..Default::default()
                    }
                    .describe()
                },
            )
            .await?;
        }
        Unmet::MachineSet(id) => {
            let api: Api<MachineSetStatus> = common::api(ctx)?;
            common::wait_for(
                ctx,
                &api,
                &id,
                INNER_BOUND,
                &format!("{what}: machine set {id:?} Running and ready"),
                // A machine set that disappeared no longer blocks `healthy`.
                |o| match o {
                    Some(o) if !machine_set_healthy(&o.spec) => WaitDecision::Pending,
                    _ => WaitDecision::Done,
                },
                |o| match o {
                    Some(o) => format!(
                        "{} ready {}",
                        specs::MachineSetPhase::try_from(o.spec.phase)
                            .unwrap_or_default()
                            .as_str_name(),
                        o.spec.ready
                    ),
                    None => "gone".into(),
                },
            )
            .await?;
        }
        Unmet::TalosUpgrade => {
            common::wait_for(
                ctx,
                &common::api::<TalosUpgradeStatus>(ctx)?,
                name,
                INNER_BOUND,
                &format!("{what}: Talos upgrade Done"),
                |o| match o {
                    Some(o) if o.spec.phase == TPhase::Done as i32 => WaitDecision::Done,
                    _ => WaitDecision::Pending,
                },
                |o| {
                    o.map(|o| {
                        TPhase::try_from(o.spec.phase)
                            .unwrap_or_default()
                            .as_str_name()
                            .to_string()
                    })
                    .unwrap_or_else(|| "no status".into())
                },
            )
            .await?;
        }
        Unmet::KubernetesUpgrade => {
            common::wait_for(
                ctx,
                &common::api::<KubernetesUpgradeStatus>(ctx)?,
                name,
                INNER_BOUND,
                &format!("{what}: Kubernetes upgrade Done"),
                |o| match o {
                    Some(o) if o.spec.phase == KPhase::Done as i32 => WaitDecision::Done,
                    _ => WaitDecision::Pending,
                },
                |o| {
                    o.map(|o| {
                        KPhase::try_from(o.spec.phase)
                            .unwrap_or_default()
                            .as_str_name()
                            .to_string()
                    })
                    .unwrap_or_else(|| "no status".into())
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// Waits until `condition` holds for the whole cluster: each round waits (Watch-driven) on the
/// first part that does not hold, then re-reads everything, until one read shows all parts.
async fn wait_until(ctx: &Ctx, name: &str, condition: &str) -> Result<Snapshot> {
    loop {
        let snap = snapshot(ctx, name).await?;
        let unmet = if condition == "healthy" {
            snap.unmet_for_healthy()
        } else if snap.holds(condition) {
            None
        } else {
            Some(Unmet::Cluster)
        };
        match unmet {
            None => return Ok(snap),
            Some(part) => wait_for_part(ctx, name, condition, part).await?,
        }
    }
}

fn wait_settings(wait: &Value<WaitConfig>) -> Result<Option<(String, Duration)>> {
    let Value::Known(w) = wait else {
        return Ok(None);
    };
    let condition = match w.condition.as_str() {
        Some(c) if CONDITIONS.contains(&c) => c.to_string(),
        Some(c) => {
            return Err(Diagnostic::error(
                "Invalid wait condition",
                format!(
                    "{c:?} is not a condition: use one of {}.",
                    CONDITIONS.join(", ")
                ),
            )
            .at(AttributePath::new("wait").attr("condition"))
            .into())
        }
        None => return Ok(None),
    };
    let timeout = match w.timeout.as_str() {
        Some(t) => timeouts::parse_duration(t).map_err(|e| {
            Diagnostics::from(
                Diagnostic::error("Invalid wait timeout", e)
                    .at(AttributePath::new("wait").attr("timeout")),
            )
        })?,
        None => DEFAULT_WAIT_TIMEOUT,
    };
    Ok(Some((condition, timeout)))
}

/// The `omni_cluster_status` data source.
pub struct ClusterStatusDataSource;

#[async_trait]
impl DataSource for ClusterStatusDataSource {
    const TYPE_NAME: &'static str = "omni_cluster_status";
    type State = ClusterStatusState;

    fn schema(&self) -> Schema {
        let set = vec![
            Attribute::string("id")
                .computed()
                .description("Machine set ID."),
            Attribute::string("role")
                .computed()
                .description("`controlplane` or `worker`."),
            Attribute::string("phase").computed().description(
                "`Unknown`, `ScalingUp`, `ScalingDown`, `Running`, `Destroying`, `Failed`, \
                 `Reconfiguring` or `Upgrading`.",
            ),
            Attribute::bool("ready")
                .computed()
                .description("Every machine of the set is running and ready."),
            Attribute::string("error")
                .computed()
                .description("Error reported for the set."),
            Attribute::nested("machines", Nesting::Single, counts_attributes())
                .computed()
                .description("Machine counts of the set."),
        ];
        Schema::new(DESCRIPTION)
            .attribute(
                Attribute::string("cluster")
                    .required()
                    .description("Cluster name."),
            )
            .attribute(
                Attribute::nested(
                    "wait",
                    Nesting::Single,
                    vec![
                        Attribute::string("condition").required().description(
                            "`available`, `running`, `ready` or `healthy` (see above).",
                        ),
                        Attribute::string("timeout").optional().description(format!(
                            "How long to wait, e.g. `90s`, `10m`. Default `{}`.",
                            timeouts::format_duration(DEFAULT_WAIT_TIMEOUT)
                        )),
                    ],
                )
                .optional()
                .description("Block until the cluster reaches `condition`, at most `timeout`."),
            )
            .attribute(Attribute::string("id").computed().description("Same as `cluster`."))
            .attribute(Attribute::string("phase").computed().description(
                "`UNKNOWN`, `SCALING_UP`, `SCALING_DOWN`, `RUNNING` or `DESTROYING`.",
            ))
            .attribute(
                Attribute::bool("ready")
                    .computed()
                    .description("Phase `RUNNING` and every machine set ready."),
            )
            .attribute(Attribute::bool("available").computed().description(
                "A control-plane machine set has at least one machine (nothing more).",
            ))
            .attribute(Attribute::bool("kubernetes_api_ready").computed().description(
                "Omni's load balancer reaches kube-apiserver.",
            ))
            .attribute(Attribute::bool("controlplane_ready").computed().description(
                "etcd and WireGuard conditions are ready and the control-plane set is running and ready.",
            ))
            .attribute(
                Attribute::bool("has_connected_control_planes")
                    .computed()
                    .description("At least one control-plane machine is connected."),
            )
            .attribute(Attribute::bool("healthy").computed().description(
                "The `healthy` condition: cluster `RUNNING` and ready, every machine set \
                 `Running` and ready, Talos and Kubernetes upgrades `Done`.",
            ))
            .attribute(
                Attribute::nested("machines", Nesting::Single, counts_attributes())
                    .computed()
                    .description("Machine counts over all machine sets."),
            )
            .attribute(
                Attribute::string("talos_version")
                    .computed()
                    .description("Talos version of the cluster, without `v`."),
            )
            .attribute(
                Attribute::string("kubernetes_version")
                    .computed()
                    .description("Kubernetes version of the cluster, without `v`."),
            )
            .attribute(
                Attribute::string("initial_talos_version")
                    .computed()
                    .description("Talos version the cluster was created with."),
            )
            .attribute(
                Attribute::nested("talos_upgrade", Nesting::Single, upgrade_attributes())
                    .computed()
                    .description("Progress of the Talos upgrade."),
            )
            .attribute(
                Attribute::nested("kubernetes_upgrade", Nesting::Single, upgrade_attributes())
                    .computed()
                    .description("Progress of the Kubernetes upgrade."),
            )
            .attribute(
                Attribute::nested("machine_sets", Nesting::List, set)
                    .computed()
                    .description("Every machine set of the cluster, sorted by ID."),
            )
    }

    async fn validate(&self, _ctx: &Ctx, config: &ClusterStatusState) -> Result<()> {
        wait_settings(&config.wait).map(|_| ())
    }

    async fn read(&self, ctx: &Ctx, mut config: ClusterStatusState) -> Result<ClusterStatusState> {
        let name = config.cluster.as_str().unwrap_or_default().to_string();
        let snap = match wait_settings(&config.wait)? {
            None => snapshot(ctx, &name).await?,
            Some((condition, timeout)) => {
                match tokio::time::timeout(timeout, wait_until(ctx, &name, &condition)).await {
                    Ok(res) => res?,
                    Err(_) => {
                        // Read everything once more so the message shows the whole cluster.
                        let last = snapshot(ctx, &name)
                            .await
                            .map(|s| s.describe())
                            .unwrap_or_else(|_| "Omni could not be read".to_string());
                        return Err(Diagnostic::error(
                            format!("Timed out waiting for cluster {name:?} to be {condition}"),
                            format!(
                                "Gave up after {} waiting for cluster {name:?} to be {}. \
                                 Last seen: {last}. Raise `wait.timeout` if this is expected \
                                 to take longer.",
                                timeouts::format_duration(timeout),
                                condition_text(&condition)
                            ),
                        )
                        .at(AttributePath::new("wait").attr("timeout"))
                        .into());
                    }
                }
            }
        };
        if snap.cluster.is_none() {
            return Err(Diagnostic::error(
                "Cluster not found",
                format!(
                    "Omni has no status for cluster {name:?}: the cluster does not exist (yet). \
                     Add a `wait` block to wait for it."
                ),
            )
            .at(AttributePath::new("cluster"))
            .into());
        }
        config.fill(&name, &snap);
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use specs::cluster_status_spec::Phase;

    fn cluster(phase: Phase, ready: bool, available: bool) -> specs::ClusterStatusSpec {
        specs::ClusterStatusSpec {
            phase: phase as i32,
            ready,
            available,
            machines: Some(specs::Machines {
                total: 3,
                healthy: 2,
                connected: 3,
                requested: 3,
            }),
            ..Default::default()
        }
    }

    fn set(id: &str, phase: specs::MachineSetPhase, ready: bool) -> Object<MachineSetStatus> {
        Object::new(
            id,
            specs::MachineSetStatusSpec {
                phase: phase as i32,
                ready,
                ..Default::default()
            },
        )
    }

    fn healthy_snapshot() -> Snapshot {
        Snapshot {
            cluster: Some(cluster(Phase::Running, true, true)),
            machine_sets: vec![
                set("c-control-planes", specs::MachineSetPhase::Running, true),
                set("c-workers", specs::MachineSetPhase::Running, true),
            ],
            talos_upgrade: Some(specs::TalosUpgradeStatusSpec {
                phase: specs::talos_upgrade_status_spec::Phase::Done as i32,
                ..Default::default()
            }),
            kubernetes_upgrade: Some(specs::KubernetesUpgradeStatusSpec {
                phase: specs::kubernetes_upgrade_status_spec::Phase::Done as i32,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn conditions_follow_omnis_definitions() {
        let scaling = cluster(Phase::ScalingUp, false, true);
        assert!(cluster_condition_holds("available", &scaling));
        assert!(!cluster_condition_holds("running", &scaling));
        assert!(!cluster_condition_holds("ready", &scaling));
        let running = cluster(Phase::Running, false, true);
        assert!(cluster_condition_holds("running", &running));
        assert!(!cluster_condition_holds("ready", &running));
        // `ready` alone is not enough: the phase must be RUNNING too (§5.3).
        let odd = cluster(Phase::ScalingDown, true, true);
        assert!(!cluster_condition_holds("ready", &odd));
    }

    #[test]
    fn healthy_needs_every_part() {
        let s = healthy_snapshot();
        assert_eq!(s.unmet_for_healthy(), None);
        assert!(s.holds("healthy") && s.holds("ready"));

        let mut s = healthy_snapshot();
        s.machine_sets[1].spec.ready = false;
        assert_eq!(
            s.unmet_for_healthy(),
            Some(Unmet::MachineSet("c-workers".into()))
        );

        let mut s = healthy_snapshot();
        s.talos_upgrade.as_mut().unwrap().phase =
            specs::talos_upgrade_status_spec::Phase::Upgrading as i32;
        assert_eq!(s.unmet_for_healthy(), Some(Unmet::TalosUpgrade));
        assert!(s.holds("ready"), "ready ignores upgrades");

        let mut s = healthy_snapshot();
        s.kubernetes_upgrade = None;
        assert_eq!(s.unmet_for_healthy(), Some(Unmet::KubernetesUpgrade));

        let s = Snapshot::default();
        assert_eq!(s.unmet_for_healthy(), Some(Unmet::Cluster));
        assert!(!s.holds("available"));
    }

    #[test]
    fn description_names_what_is_not_there_yet() {
        let mut s = healthy_snapshot();
        s.machine_sets[1].spec.phase = specs::MachineSetPhase::ScalingUp as i32;
        s.machine_sets[1].spec.ready = false;
        let text = s.describe();
        assert!(text.contains("phase RUNNING"), "{text}");
        assert!(
            text.contains("machine set c-workers ScalingUp not ready"),
            "{text}"
        );
        assert!(Snapshot::default().describe().contains("no status"));
    }

    #[test]
    fn wait_settings_are_checked_at_the_attribute() {
        let w = |c: &str, t: Option<&str>| {
            Value::Known(WaitConfig {
                condition: c.into(),
                timeout: t.map(str::to_string).into(),
            })
        };
        let (c, t) = wait_settings(&w("healthy", None)).unwrap().unwrap();
        assert_eq!((c.as_str(), t), ("healthy", DEFAULT_WAIT_TIMEOUT));
        let (_, t) = wait_settings(&w("ready", Some("90s"))).unwrap().unwrap();
        assert_eq!(t, Duration::from_secs(90));
        let e = wait_settings(&w("green", None)).unwrap_err();
        assert_eq!(
            e.0[0].path,
            Some(AttributePath::new("wait").attr("condition"))
        );
        let e = wait_settings(&w("ready", Some("soon"))).unwrap_err();
        assert_eq!(
            e.0[0].path,
            Some(AttributePath::new("wait").attr("timeout"))
        );
        assert_eq!(wait_settings(&Value::Null).unwrap(), None);
    }
}
