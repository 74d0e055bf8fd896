//! Simulated Omni controllers (omni-api.md §3.4, §5).
//!
//! One reconciler task wakes on store events (and on its own timers while machines are moving
//! through stages) and runs a level-based pass over clusters, machine sets, nodes and machines.
//! Each pass changes only what differs from the desired state, so it converges; every stage
//! change of a machine waits `step_delay` after the machine's last change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use omni_api::specs;
use prost::Message;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::core::Core;
use crate::model::{Phase, Res, Time};
use crate::query::{labels_equal, Filter};
use crate::seed::labels as l;
use crate::store::{EvKind, Store, StoreError};
use crate::types::names as t;
use crate::validate::{allocation_of, spec_allocation};

/// Names of the simulated controllers (for ResourceService/Controllers).
pub const NAMES: &[&str] = &[
    CLUSTER_CTRL,
    UUID_CTRL,
    MACHINE_SET_CTRL,
    MSN_CTRL,
    CM_OWNER,
    CMS_OWNER,
    STATUS_OWNER,
    EXT_CTRL,
    SCHEMATIC_OWNER,
    KERNEL_ARGS_OWNER,
];

const CLUSTER_CTRL: &str = "ClusterController";
const UUID_CTRL: &str = "ClusterUUIDController";
const MACHINE_SET_CTRL: &str = "MachineSetController";
const MSN_CTRL: &str = "MachineSetNodeController";
/// Owner of ClusterMachines; also its finalizer on MachineSetNodes.
const CM_OWNER: &str = "MachineSetStatusController";
const CMS_OWNER: &str = "ClusterMachineStatusController";
const STATUS_OWNER: &str = "ClusterStatusController";
const EXT_CTRL: &str = "MachineExtensionsController";
const SCHEMATIC_OWNER: &str = "SchematicConfigurationController";
const KERNEL_ARGS_OWNER: &str = "KernelArgsStatusController";

/// Annotation on ClusterMachineStatus holding the hash of the config last applied (emulator
/// bookkeeping; Omni keeps this in its ClusterMachineConfigStatus resource).
const CONFIG_HASH: &str = "emulator.omni.sidero.dev/config-hash";

/// Schematic ID of a vanilla Talos image (no extensions, no extra kernel args).
pub const DEFAULT_SCHEMATIC: &str =
    "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

use specs::cluster_machine_status_spec::Stage;

/// Starts all controllers; they stop when `stop` fires.
pub fn start(core: Arc<Core>, stop: tokio::sync::watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(auto_destroy(core.clone(), stop.clone())),
        tokio::spawn(reconciler(core, stop)),
    ]
}

/// Omni's generic "Destroy[<type>]" controllers: destroy owner-less user resources that are
/// tearing down and have no finalizers left (§1.5 "Auto-destroy").
async fn auto_destroy(core: Arc<Core>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut rx = core.store.subscribe_all();
    loop {
        let ev = tokio::select! {
            e = rx.recv() => e,
            _ = stop.changed() => return,
        };
        let ev = match ev {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // Missed events: sweep every user type once.
                for info in crate::types::TYPES {
                    if !crate::types::auto_destroys(info.name) {
                        continue;
                    }
                    for r in core
                        .store
                        .list(info.namespace, info.name, &Filter::default())
                    {
                        if r.phase == Phase::TearingDown
                            && r.owner.is_empty()
                            && r.finalizers.is_empty()
                        {
                            let _ = core.store.destroy(&r.namespace, &r.typ, &r.id, "").await;
                        }
                    }
                }
                continue;
            }
            Err(_) => return,
        };
        let r = &ev.res;
        if ev.kind != EvKind::Destroyed
            && r.phase == Phase::TearingDown
            && r.owner.is_empty()
            && r.finalizers.is_empty()
            && crate::types::auto_destroys(&r.typ)
        {
            let _ = core.store.destroy(&r.namespace, &r.typ, &r.id, "").await;
        }
    }
}

/// Types whose changes can affect the simulated controllers.
fn relevant(typ: &str) -> bool {
    !matches!(
        typ,
        t::TALOS_VERSION
            | t::KUBERNETES_VERSION
            | t::TALOS_EXTENSIONS
            | t::FEATURES_CONFIG
            | t::SYS_VERSION
    )
}

async fn reconciler(core: Arc<Core>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut rx = core.store.subscribe_all();
    let mut wake: Option<tokio::time::Instant> = Some(tokio::time::Instant::now());
    loop {
        let sleep_until =
            wake.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep_until(sleep_until) => {}
            ev = rx.recv() => match ev {
                Ok(ev) if !relevant(&ev.res.typ) => continue,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            },
        }
        // Coalesce a burst of events (including our own writes) into one pass.
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = rx.try_recv() {}
        let mut ctx = Ctx {
            store: &core.store,
            factory: &core.factory,
            now: Time::now(),
            delay: core.step_delay,
            wake: None,
        };
        if let Err(e) = ctx.pass().await {
            tracing::debug!(error = %e, "controller pass failed; retrying");
            ctx.wake_in(Duration::from_millis(50));
        }
        wake = ctx.wake.map(|d| tokio::time::Instant::now() + d);
    }
}

type R = Result<(), StoreError>;

struct Ctx<'a> {
    store: &'a Store,
    factory: &'a talos_machinery::factory::Factory,
    now: Time,
    delay: Duration,
    wake: Option<Duration>,
}

fn labels_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn elapsed(now: Time, then: Time) -> Duration {
    let ns = (now.secs - then.secs) as i128 * 1_000_000_000 + (now.nanos - then.nanos) as i128;
    Duration::from_nanos(ns.max(0) as u64)
}

fn dec<M: Message + Default>(r: &Res) -> M {
    M::decode(r.spec.as_slice()).unwrap_or_default()
}

fn role_label(r: &Res) -> (&'static str, bool) {
    if r.labels.contains_key(l::ROLE_CONTROLPLANE) {
        (l::ROLE_CONTROLPLANE, true)
    } else {
        (l::ROLE_WORKER, false)
    }
}

fn vless(v: &str) -> &str {
    v.strip_prefix('v').unwrap_or(v)
}

impl Ctx<'_> {
    fn wake_in(&mut self, d: Duration) {
        self.wake = Some(self.wake.map_or(d, |w| w.min(d)));
    }

    /// Whether `step_delay` has passed since `r` last changed; otherwise schedules a wake-up.
    fn due(&mut self, r: &Res) -> bool {
        let e = elapsed(self.now, r.updated);
        if e >= self.delay {
            true
        } else {
            self.wake_in(self.delay - e + Duration::from_millis(1));
            false
        }
    }

    fn get(&self, typ: &str, id: &str) -> Option<Arc<Res>> {
        self.store.get("default", typ, id)
    }

    fn list(&self, typ: &str, f: &Filter) -> Vec<Arc<Res>> {
        self.store.list("default", typ, f)
    }

    fn by_label(&self, typ: &str, pairs: &[(&str, &str)]) -> Vec<Arc<Res>> {
        self.list(typ, &labels_equal(pairs))
    }

    /// Creates or updates a controller output.
    async fn put<M: Message>(
        &self,
        typ: &str,
        id: &str,
        owner: &str,
        spec: &M,
        labels: BTreeMap<String, String>,
    ) -> Result<Arc<Res>, StoreError> {
        let bytes = spec.encode_to_vec();
        loop {
            match self.get(typ, id) {
                None => {
                    let mut r = Res::new("default", typ, id, bytes.clone());
                    r.labels = labels.clone();
                    match self.store.create(r, owner).await {
                        Err(StoreError::AlreadyExists(_)) => continue,
                        other => return other,
                    }
                }
                Some(cur) => {
                    if cur.spec == bytes && cur.labels == labels {
                        return Ok(cur);
                    }
                    let mut r = (*cur).clone();
                    r.spec = bytes.clone();
                    r.labels = labels.clone();
                    let owner = cur.owner.clone();
                    match self.store.update(r, &owner, None).await {
                        Err(StoreError::VersionConflict { .. }) => continue,
                        other => return other,
                    }
                }
            }
        }
    }

    async fn remove(&self, typ: &str, id: &str) -> R {
        if let Some(cur) = self.get(typ, id) {
            match self
                .store
                .destroy("default", typ, id, &cur.owner.clone())
                .await
            {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn teardown(&self, r: &Res) -> R {
        if r.phase == Phase::TearingDown {
            return Ok(());
        }
        match self
            .store
            .teardown(&r.namespace, &r.typ, &r.id, &r.owner)
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn finalizer(&self, r: &Res, f: &str, present: bool) -> R {
        if r.has_finalizer(f) == present {
            return Ok(());
        }
        self.store
            .modify(&r.namespace, &r.typ, &r.id, |x| {
                if present {
                    if x.has_finalizer(f) || x.phase == Phase::TearingDown {
                        return false;
                    }
                    x.finalizers.push(f.to_string());
                } else {
                    if !x.has_finalizer(f) {
                        return false;
                    }
                    x.finalizers.retain(|y| y != f);
                }
                true
            })
            .await
            .map(|_| ())
    }

    async fn pass(&mut self) -> R {
        for c in self.list(t::CLUSTER, &Filter::default()) {
            self.cluster(&c).await?;
        }
        for ms in self.list(t::MACHINE_SET, &Filter::default()) {
            self.machine_set(&ms).await?;
        }
        for ms in self.list(t::MACHINE_SET, &Filter::default()) {
            self.allocate(&ms).await?;
        }
        for n in self.list(t::MACHINE_SET_NODE, &Filter::default()) {
            self.node(&n).await?;
        }
        for cm in self.list(t::CLUSTER_MACHINE, &Filter::default()) {
            self.cluster_machine(&cm).await?;
        }
        for c in self.list(t::CLUSTER, &Filter::default()) {
            self.upgrades(&c).await?;
        }
        for ec in self.list(t::EXTENSIONS_CONFIGURATION, &Filter::default()) {
            let used = ec.phase == Phase::Running && ec.label(l::CLUSTER).is_some();
            self.finalizer(&ec, EXT_CTRL, used).await?;
        }
        for cm in self.list(t::CLUSTER_MACHINE, &Filter::default()) {
            self.extensions(&cm).await?;
        }
        self.kernel_args().await?;
        self.machine_labels().await?;
        for ms in self.list(t::MACHINE_SET, &Filter::default()) {
            self.machine_set_status(&ms).await?;
        }
        for c in self.list(t::CLUSTER, &Filter::default()) {
            self.cluster_status(&c).await?;
        }
        self.orphans().await
    }

    async fn cluster(&mut self, c: &Res) -> R {
        let spec: specs::ClusterSpec = dec(c);
        if c.phase == Phase::Running {
            self.finalizer(c, CLUSTER_CTRL, true).await?;
            if self.get(t::CLUSTER_UUID, &c.id).is_none() {
                let uuid = crate::seed::machine_uuid(rand::random(), 0);
                self.put(
                    t::CLUSTER_UUID,
                    &c.id,
                    UUID_CTRL,
                    &specs::ClusterUuid { uuid: uuid.clone() },
                    labels_of(&[(l::CLUSTER_UUID, &uuid)]),
                )
                .await?;
            }
            if self.get(t::CLUSTER_CONFIG_VERSION, &c.id).is_none() {
                let v = specs::ClusterConfigVersionSpec {
                    version: spec.talos_version.clone(),
                };
                self.put(
                    t::CLUSTER_CONFIG_VERSION,
                    &c.id,
                    CLUSTER_CTRL,
                    &v,
                    labels_of(&[(l::CLUSTER, &c.id)]),
                )
                .await?;
            }
            let cms = self.by_label(t::CLUSTER_MACHINE_STATUS, &[(l::CLUSTER, &c.id)]);
            let already = self
                .get(t::CLUSTER_BOOTSTRAP_STATUS, &c.id)
                .map(|b| dec::<specs::ClusterBootstrapStatusSpec>(&b).bootstrapped)
                .unwrap_or(false);
            let bootstrapped = already
                || cms.iter().any(|s| {
                    s.labels.contains_key(l::ROLE_CONTROLPLANE)
                        && dec::<specs::ClusterMachineStatusSpec>(s).stage == Stage::Running as i32
                });
            self.put(
                t::CLUSTER_BOOTSTRAP_STATUS,
                &c.id,
                CLUSTER_CTRL,
                &specs::ClusterBootstrapStatusSpec { bootstrapped },
                labels_of(&[(l::CLUSTER, &c.id)]),
            )
            .await?;
            let addrs: Vec<String> = cms
                .iter()
                .filter(|s| s.labels.contains_key(l::ROLE_CONTROLPLANE))
                .map(|s| dec::<specs::ClusterMachineStatusSpec>(s).management_address)
                .collect();
            self.put(
                t::CLUSTER_ENDPOINT,
                &c.id,
                CLUSTER_CTRL,
                &specs::ClusterEndpointSpec {
                    management_addresses: addrs,
                },
                labels_of(&[(l::CLUSTER, &c.id)]),
            )
            .await?;
            return Ok(());
        }
        // Teardown cascade (§5.1), one step after another.
        let sets: Vec<_> = self
            .by_label(t::MACHINE_SET, &[(l::CLUSTER, &c.id)])
            .into_iter()
            .filter(|s| s.owner.is_empty())
            .collect();
        let machines = self.by_label(t::CLUSTER_MACHINE, &[(l::CLUSTER, &c.id)]);
        let phase = format!(
            "Destroying: {} machine sets, {} machines",
            sets.len(),
            machines.len()
        );
        self.put(
            t::CLUSTER_DESTROY_STATUS,
            &c.id,
            CLUSTER_CTRL,
            &specs::DestroyStatusSpec { phase },
            labels_of(&[(l::CLUSTER, &c.id)]),
        )
        .await?;
        let workers: Vec<_> = sets
            .iter()
            .filter(|s| !s.labels.contains_key(l::ROLE_CONTROLPLANE))
            .collect();
        let step: Vec<_> = if workers.is_empty() {
            sets.iter().collect()
        } else {
            workers
        };
        if !step.is_empty() {
            for s in step {
                self.teardown(s).await?;
            }
            return Ok(());
        }
        let mut pending = false;
        for typ in [
            t::CONFIG_PATCH,
            t::KUBERNETES_MANIFEST_GROUP,
            t::EXTENSIONS_CONFIGURATION,
            t::KUBERNETES_HEALTH_CHECK,
        ] {
            for r in self.by_label(typ, &[(l::CLUSTER, &c.id)]) {
                if r.owner.is_empty() {
                    self.teardown(&r).await?;
                    pending = true;
                }
            }
        }
        if pending || !machines.is_empty() {
            return Ok(());
        }
        for typ in [
            t::CLUSTER_UUID,
            t::CLUSTER_CONFIG_VERSION,
            t::CLUSTER_BOOTSTRAP_STATUS,
            t::CLUSTER_ENDPOINT,
            t::LOAD_BALANCER_STATUS,
            t::KUBERNETES_UPGRADE_STATUS,
            t::TALOS_UPGRADE_STATUS,
            t::CLUSTER_DESTROY_STATUS,
            t::CLUSTER_STATUS,
        ] {
            self.remove(typ, &c.id).await?;
        }
        self.finalizer(c, CLUSTER_CTRL, false).await
    }

    async fn machine_set(&mut self, ms: &Res) -> R {
        let cluster = ms.label(l::CLUSTER).and_then(|c| self.get(t::CLUSTER, c));
        if ms.phase == Phase::Running {
            if cluster.is_some() {
                self.finalizer(ms, MACHINE_SET_CTRL, true).await?;
            }
            return Ok(());
        }
        let nodes = self.by_label(t::MACHINE_SET_NODE, &[(l::MACHINE_SET, &ms.id)]);
        for n in &nodes {
            self.teardown(n).await?;
        }
        if let Some(c) = ms.label(l::CLUSTER) {
            for typ in [t::EXTENSIONS_CONFIGURATION, t::CONFIG_PATCH] {
                for r in self.by_label(typ, &[(l::CLUSTER, c), (l::MACHINE_SET, &ms.id)]) {
                    if r.owner.is_empty() {
                        self.teardown(&r).await?;
                    }
                }
            }
        }
        let machines = self.by_label(t::CLUSTER_MACHINE, &[(l::MACHINE_SET, &ms.id)]);
        if !nodes.is_empty() || !machines.is_empty() {
            return Ok(());
        }
        self.remove(t::MACHINE_SET_STATUS, &ms.id).await?;
        self.remove(t::CONTROL_PLANE_STATUS, &ms.id).await?;
        self.finalizer(ms, MACHINE_SET_CTRL, false).await
    }

    /// MachineSetNodeController: machine-class allocation (Static / Unlimited).
    async fn allocate(&mut self, ms: &Res) -> R {
        let Some(alloc) = allocation_of(ms) else {
            return Ok(());
        };
        let Some(cluster_id) = ms.label(l::CLUSTER) else {
            return Ok(());
        };
        let Some(cluster) = self.get(t::CLUSTER, cluster_id) else {
            return Ok(());
        };
        if ms.phase != Phase::Running || cluster.phase != Phase::Running {
            return Ok(());
        }
        let Some(class) = self.get(t::MACHINE_CLASS, &alloc.name) else {
            return Ok(());
        };
        let cspec: specs::MachineClassSpec = dec(&class);
        let Ok(selectors) =
            talos_machinery::selector::parse_machine_class_selectors(&cspec.match_labels)
        else {
            return Ok(());
        };
        let current: Vec<_> = self
            .by_label(t::MACHINE_SET_NODE, &[(l::MACHINE_SET, &ms.id)])
            .into_iter()
            .filter(|n| n.owner == MSN_CTRL && n.phase == Phase::Running)
            .collect();
        let unlimited = alloc.allocation_type
            == specs::machine_set_spec::machine_allocation::Type::Unlimited as i32;
        let (role, _) = role_label(ms);
        if !unlimited && current.len() > alloc.machine_count as usize {
            for n in current
                .iter()
                .rev()
                .take(current.len() - alloc.machine_count as usize)
            {
                self.teardown(n).await?;
            }
            return Ok(());
        }
        let want = if unlimited {
            usize::MAX
        } else {
            alloc.machine_count as usize - current.len()
        };
        if want == 0 {
            return Ok(());
        }
        let taken: std::collections::HashSet<String> = self
            .list(t::MACHINE_SET_NODE, &Filter::default())
            .iter()
            .map(|n| n.id.clone())
            .collect();
        let candidates: Vec<_> = self
            .list(t::MACHINE_STATUS, &Filter::default())
            .into_iter()
            .filter(|m| m.labels.contains_key(l::AVAILABLE) && !taken.contains(&m.id))
            .filter(|m| talos_machinery::selector::matches_any(&selectors, &m.labels))
            .take(want)
            .collect();
        for m in candidates {
            let mut labels = labels_of(&[
                (l::CLUSTER, cluster_id),
                (l::MACHINE_SET, &ms.id),
                (role, ""),
            ]);
            labels.insert(l::MANAGED_BY_MSN_CONTROLLER.into(), String::new());
            self.put(
                t::MACHINE_SET_NODE,
                &m.id,
                MSN_CTRL,
                &specs::MachineSetNodeSpec {},
                labels,
            )
            .await?;
        }
        Ok(())
    }

    async fn node(&mut self, n: &Res) -> R {
        let cm = self.get(t::CLUSTER_MACHINE, &n.id);
        let set = n
            .label(l::MACHINE_SET)
            .and_then(|s| self.get(t::MACHINE_SET, s));
        let cluster = n.label(l::CLUSTER).and_then(|c| self.get(t::CLUSTER, c));
        if n.phase == Phase::TearingDown {
            if let Some(cm) = cm {
                return self.teardown(&cm).await;
            }
            self.finalizer(n, CM_OWNER, false).await?;
            if n.owner == MSN_CTRL && n.finalizers.iter().all(|f| f == CM_OWNER) {
                self.remove(t::MACHINE_SET_NODE, &n.id).await?;
            }
            return Ok(());
        }
        let (Some(set), Some(cluster)) = (set, cluster) else {
            return Ok(());
        };
        if set.phase != Phase::Running || cluster.phase != Phase::Running || cm.is_some() {
            return Ok(());
        }
        let Some(machine) = self.get(t::MACHINE_STATUS, &n.id) else {
            return Ok(());
        };
        if !machine.labels.contains_key(l::AVAILABLE) {
            return Ok(()); // allocated elsewhere; wait until it is free
        }
        let cspec: specs::ClusterSpec = dec(&cluster);
        let (role, cp) = role_label(&set);
        self.finalizer(n, CM_OWNER, true).await?;
        let labels = labels_of(&[
            (l::CLUSTER, &cluster.id),
            (l::MACHINE_SET, &set.id),
            (role, ""),
        ]);
        self.put(
            t::CLUSTER_MACHINE,
            &n.id,
            CM_OWNER,
            &specs::ClusterMachineSpec {
                kubernetes_version: cspec.kubernetes_version.clone(),
            },
            labels.clone(),
        )
        .await?;
        let mspec: specs::MachineStatusSpec = dec(&machine);
        let hostname = mspec
            .network
            .as_ref()
            .map(|x| x.hostname.clone())
            .unwrap_or_default();
        let mut cms_labels = labels;
        cms_labels.insert(l::NODE_NAME.into(), hostname.clone());
        cms_labels.insert(l::HOSTNAME.into(), hostname);
        cms_labels.insert(l::CONNECTED.into(), String::new());
        let cms = specs::ClusterMachineStatusSpec {
            stage: Stage::Booting as i32,
            management_address: mspec.management_address.clone(),
            config_apply_status: specs::ConfigApplyStatus::Pending as i32,
            ..Default::default()
        };
        self.put(
            t::CLUSTER_MACHINE_STATUS,
            &n.id,
            CMS_OWNER,
            &cms,
            cms_labels,
        )
        .await?;
        let cluster_id = cluster.id.clone();
        self.store
            .modify("default", t::MACHINE_STATUS, &n.id, |m| {
                m.labels.remove(l::AVAILABLE);
                m.labels.remove(l::READY_TO_USE);
                m.labels.insert(l::CLUSTER.into(), cluster_id.clone());
                m.labels.insert(role.into(), String::new());
                let mut s: specs::MachineStatusSpec = dec(m);
                s.cluster = cluster_id.clone();
                s.role = if cp {
                    specs::machine_status_spec::Role::ControlPlane as i32
                } else {
                    specs::machine_status_spec::Role::Worker as i32
                };
                m.spec = s.encode_to_vec();
                true
            })
            .await?;
        Ok(())
    }

    async fn cluster_machine(&mut self, cm: &Res) -> R {
        let Some(status) = self.get(t::CLUSTER_MACHINE_STATUS, &cm.id) else {
            if cm.phase == Phase::TearingDown {
                return self.wipe(cm).await;
            }
            return Ok(());
        };
        let mut s: specs::ClusterMachineStatusSpec = dec(&status);
        let node_gone = self
            .get(t::MACHINE_SET_NODE, &cm.id)
            .is_none_or(|n| n.phase == Phase::TearingDown);
        if cm.phase == Phase::Running && node_gone {
            return self.teardown(cm).await;
        }
        if cm.phase == Phase::TearingDown {
            if s.stage != Stage::Destroying as i32 {
                self.set_cms_stage(&cm.id, s, Stage::Destroying, false, &status)
                    .await?;
                self.wake_in(self.delay);
                return Ok(());
            }
            if !self.due(&status) {
                return Ok(());
            }
            return self.wipe(cm).await;
        }
        let hash = self.config_hash(cm);
        let applied = status
            .annotations
            .get(CONFIG_HASH)
            .cloned()
            .unwrap_or_default();
        if s.stage == Stage::Running as i32 && applied != hash {
            // A config patch of this machine changed: apply it (Reconfiguring, §3.4).
            s.stage = Stage::Configuring as i32;
            s.ready = false;
            s.config_up_to_date = false;
            s.config_apply_status = specs::ConfigApplyStatus::Pending as i32;
            self.put_cms(&cm.id, &s, &status, &hash).await?;
            self.wake_in(self.delay);
            return Ok(());
        }
        let next = match Stage::try_from(s.stage).unwrap_or(Stage::Unknown) {
            Stage::Unknown | Stage::Booting => Stage::Installing,
            Stage::Installing => Stage::Configuring,
            Stage::Configuring => Stage::Running,
            _ => return Ok(()),
        };
        if !self.due(&status) {
            return Ok(());
        }
        if next == Stage::Configuring {
            // Installation writes the cluster's Talos version to disk.
            let talos = cm
                .label(l::CLUSTER)
                .and_then(|c| self.get(t::CLUSTER, c))
                .map(|c| dec::<specs::ClusterSpec>(&c).talos_version)
                .unwrap_or_default();
            self.store
                .modify("default", t::MACHINE_STATUS, &cm.id, |m| {
                    let mut ms: specs::MachineStatusSpec = dec(m);
                    ms.maintenance = false;
                    if !talos.is_empty() {
                        ms.talos_version = format!("v{talos}");
                        m.labels
                            .insert(l::TALOS_VERSION.into(), format!("v{talos}"));
                    }
                    m.labels.insert(l::INSTALLED.into(), String::new());
                    m.spec = ms.encode_to_vec();
                    true
                })
                .await?;
        }
        s.stage = next as i32;
        if next == Stage::Running {
            s.ready = true;
            s.config_up_to_date = true;
            s.config_apply_status = specs::ConfigApplyStatus::Applied as i32;
        }
        // The configuration applied on the way to RUNNING is the current one.
        self.put_cms(&cm.id, &s, &status, &hash).await?;
        if next != Stage::Running {
            self.wake_in(self.delay);
        }
        Ok(())
    }

    /// Hash of the config patches that apply to a cluster machine, in Omni's order (§3.5):
    /// cluster, machine set, cluster machine, machine level; ID order inside a level; disabled
    /// and tearing-down patches skipped.
    fn config_hash(&self, cm: &Res) -> String {
        use sha2::{Digest, Sha256};
        let cluster = cm.label(l::CLUSTER).unwrap_or_default();
        let set = cm.label(l::MACHINE_SET).unwrap_or_default();
        let live = |r: &Arc<Res>| r.phase == Phase::Running && !r.labels.contains_key(l::DISABLED);
        let in_cluster: Vec<_> = self
            .by_label(t::CONFIG_PATCH, &[(l::CLUSTER, cluster)])
            .into_iter()
            .filter(|r| live(r) && !r.labels.contains_key(l::MACHINE))
            .collect();
        let levels = [
            in_cluster
                .iter()
                .filter(|r| {
                    !r.labels.contains_key(l::MACHINE_SET)
                        && !r.labels.contains_key(l::CLUSTER_MACHINE)
                })
                .cloned()
                .collect::<Vec<_>>(),
            in_cluster
                .iter()
                .filter(|r| r.label(l::MACHINE_SET) == Some(set))
                .cloned()
                .collect(),
            in_cluster
                .iter()
                .filter(|r| r.label(l::CLUSTER_MACHINE) == Some(&cm.id))
                .cloned()
                .collect(),
            self.by_label(t::CONFIG_PATCH, &[(l::MACHINE, &cm.id)])
                .into_iter()
                .filter(live)
                .collect(),
        ];
        let mut h = Sha256::new();
        for level in levels {
            for p in level {
                h.update(p.id.as_bytes());
                h.update([0]);
                h.update(&p.spec);
                h.update([0]);
            }
            h.update([1]);
        }
        hex::encode(h.finalize())
    }

    async fn put_cms(
        &self,
        id: &str,
        s: &specs::ClusterMachineStatusSpec,
        cur: &Res,
        hash: &str,
    ) -> R {
        let bytes = s.encode_to_vec();
        if cur.spec == bytes && cur.annotations.get(CONFIG_HASH).map(String::as_str) == Some(hash) {
            return Ok(());
        }
        self.store
            .modify("default", t::CLUSTER_MACHINE_STATUS, id, |x| {
                x.spec = bytes.clone();
                x.annotations.insert(CONFIG_HASH.into(), hash.to_string());
                true
            })
            .await
            .map(|_| ())
    }

    /// Moves the ClusterMachineStatus `id` (currently `cur`) to `stage`, ready or not, keeping
    /// its labels (§3.4 stages).
    async fn set_cms_stage(
        &self,
        id: &str,
        mut s: specs::ClusterMachineStatusSpec,
        stage: Stage,
        ready: bool,
        cur: &Res,
    ) -> R {
        s.stage = stage as i32;
        s.ready = ready;
        self.put(
            t::CLUSTER_MACHINE_STATUS,
            id,
            CMS_OWNER,
            &s,
            cur.labels.clone(),
        )
        .await
        .map(|_| ())
    }

    /// Resets a machine that left its cluster and returns it to the pool (§5.1).
    async fn wipe(&mut self, cm: &Res) -> R {
        if let Some(c) = cm.label(l::CLUSTER) {
            for typ in [t::CONFIG_PATCH, t::EXTENSIONS_CONFIGURATION] {
                for r in self.by_label(typ, &[(l::CLUSTER, c), (l::CLUSTER_MACHINE, &cm.id)]) {
                    if r.owner.is_empty() {
                        self.teardown(&r).await?;
                    }
                }
            }
        }
        for typ in [
            t::CLUSTER_MACHINE_STATUS,
            t::MACHINE_EXTENSIONS,
            t::MACHINE_EXTENSIONS_STATUS,
            t::SCHEMATIC_CONFIGURATION,
            t::MACHINE_UPGRADE_STATUS,
        ] {
            self.remove(typ, &cm.id).await?;
        }
        self.store
            .modify("default", t::MACHINE_STATUS, &cm.id, |m| {
                for k in [
                    l::CLUSTER,
                    l::ROLE_CONTROLPLANE,
                    l::ROLE_WORKER,
                    l::INSTALLED,
                ] {
                    m.labels.remove(k);
                }
                m.labels.insert(l::AVAILABLE.into(), String::new());
                m.labels.insert(l::READY_TO_USE.into(), String::new());
                let mut s: specs::MachineStatusSpec = dec(m);
                s.cluster.clear();
                s.role = specs::machine_status_spec::Role::None as i32;
                s.maintenance = true;
                m.spec = s.encode_to_vec();
                true
            })
            .await?;
        self.remove(t::CLUSTER_MACHINE, &cm.id).await
    }

    async fn upgrades(&mut self, c: &Res) -> R {
        if c.phase != Phase::Running {
            return Ok(());
        }
        let spec: specs::ClusterSpec = dec(c);
        let machines = self.by_label(t::CLUSTER_MACHINE, &[(l::CLUSTER, &c.id)]);
        let mut installed = Vec::new();
        for cm in &machines {
            let Some(st) = self.get(t::CLUSTER_MACHINE_STATUS, &cm.id) else {
                continue;
            };
            let s: specs::ClusterMachineStatusSpec = dec(&st);
            if s.stage == Stage::Running as i32 || s.stage == Stage::Upgrading as i32 {
                installed.push((cm.clone(), st, s));
            }
        }
        // Control planes first, then workers, each in ID order.
        installed.sort_by_key(|(cm, _, _)| {
            (!cm.labels.contains_key(l::ROLE_CONTROLPLANE), cm.id.clone())
        });
        let cl = labels_of(&[(l::CLUSTER, &c.id)]);

        // Talos: one machine at a time goes UPGRADING, then comes back on the new version.
        use specs::talos_upgrade_status_spec::Phase as TP;
        let target = spec.talos_version.clone();
        let prev = self
            .get(t::TALOS_UPGRADE_STATUS, &c.id)
            .map(|r| dec::<specs::TalosUpgradeStatusSpec>(&r));
        let mut talos_busy = false;
        let version_of = |ctx: &Self, id: &str| {
            ctx.get(t::MACHINE_STATUS, id)
                .map(|m| vless(&dec::<specs::MachineStatusSpec>(&m).talos_version).to_string())
                .unwrap_or_default()
        };
        let upgrading = installed
            .iter()
            .find(|(_, _, s)| s.stage == Stage::Upgrading as i32);
        let stale: Vec<_> = installed
            .iter()
            .filter(|(cm, _, _)| version_of(self, &cm.id) != target)
            .collect();
        if let Some((cm, st, s)) = upgrading {
            talos_busy = true;
            if self.due(st) {
                let v = format!("v{target}");
                self.store
                    .modify("default", t::MACHINE_STATUS, &cm.id, |m| {
                        let mut ms: specs::MachineStatusSpec = dec(m);
                        ms.talos_version = v.clone();
                        m.labels.insert(l::TALOS_VERSION.into(), v.clone());
                        m.spec = ms.encode_to_vec();
                        true
                    })
                    .await?;
                self.set_cms_stage(&cm.id, s.clone(), Stage::Running, true, st)
                    .await?;
            }
        } else if let Some((cm, st, s)) = stale.first() {
            talos_busy = true;
            if self.due(st) {
                self.set_cms_stage(&cm.id, s.clone(), Stage::Upgrading, false, st)
                    .await?;
                self.wake_in(self.delay);
            }
        }
        let tus = if talos_busy {
            specs::TalosUpgradeStatusSpec {
                phase: TP::Upgrading as i32,
                step: "upgrading machines".into(),
                status: format!("{} machines left", stale.len().max(1)),
                last_upgrade_version: prev
                    .as_ref()
                    .map(|p| p.last_upgrade_version.clone())
                    .unwrap_or_default(),
                current_upgrade_version: target.clone(),
                upgrade_versions: prev.map(|p| p.upgrade_versions).unwrap_or_default(),
                ..Default::default()
            }
        } else {
            let upgradable: Vec<String> = self
                .list(t::TALOS_VERSION, &Filter::default())
                .iter()
                .map(|r| r.id.clone())
                .filter(|v| {
                    matches!((talos_machinery::versions::parse_version(v), talos_machinery::versions::parse_version(&target)), (Ok(a), Ok(b)) if a > b)
                })
                .collect();
            specs::TalosUpgradeStatusSpec {
                phase: TP::Done as i32,
                last_upgrade_version: target.clone(),
                upgrade_versions: upgradable,
                ..Default::default()
            }
        };
        self.put(
            t::TALOS_UPGRADE_STATUS,
            &c.id,
            CLUSTER_CTRL,
            &tus,
            cl.clone(),
        )
        .await?;

        // Kubernetes: rolled out machine by machine once Talos is settled.
        use specs::kubernetes_upgrade_status_spec::Phase as KP;
        let k8s = spec.kubernetes_version.clone();
        let kus_res = self.get(t::KUBERNETES_UPGRADE_STATUS, &c.id);
        let kprev = kus_res
            .as_ref()
            .map(|r| dec::<specs::KubernetesUpgradeStatusSpec>(r));
        let kstale: Vec<_> = installed
            .iter()
            .filter(|(cm, _, _)| dec::<specs::ClusterMachineSpec>(cm).kubernetes_version != k8s)
            .collect();
        let kus = if kstale.is_empty() {
            specs::KubernetesUpgradeStatusSpec {
                phase: KP::Done as i32,
                last_upgrade_version: k8s.clone(),
                upgrade_versions: self
                    .get(t::TALOS_VERSION, &spec.talos_version)
                    .map(|tv| dec::<specs::TalosVersionSpec>(&tv).compatible_kubernetes_versions)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|v| {
                        talos_machinery::versions::kubernetes_upgrade_allowed(&k8s, v) && *v != k8s
                    })
                    .collect(),
                ..Default::default()
            }
        } else {
            let ready = kus_res.as_ref().is_none_or(|r| self.due(r));
            if !talos_busy
                && ready
                && kprev
                    .as_ref()
                    .is_some_and(|p| p.phase == KP::Upgrading as i32)
            {
                let (cm, _, _) = kstale[0];
                let k = k8s.clone();
                self.store
                    .modify("default", t::CLUSTER_MACHINE, &cm.id, |x| {
                        x.spec = specs::ClusterMachineSpec {
                            kubernetes_version: k.clone(),
                        }
                        .encode_to_vec();
                        true
                    })
                    .await?;
            }
            self.wake_in(self.delay);
            specs::KubernetesUpgradeStatusSpec {
                phase: KP::Upgrading as i32,
                step: "updating control plane and kubelets".into(),
                status: format!("{} nodes left", kstale.len()),
                last_upgrade_version: kprev
                    .as_ref()
                    .map(|p| p.last_upgrade_version.clone())
                    .unwrap_or_default(),
                current_upgrade_version: k8s.clone(),
                ..Default::default()
            }
        };
        let mut kus = kus;
        if kus.phase == KP::Upgrading as i32 {
            // Keep the timestamp moving only when the status text changes.
            if let Some(p) = &kprev {
                if p.phase == KP::Upgrading as i32
                    && p.current_upgrade_version == kus.current_upgrade_version
                {
                    kus.upgrade_versions = p.upgrade_versions.clone();
                }
            }
        }
        self.put(t::KUBERNETES_UPGRADE_STATUS, &c.id, CLUSTER_CTRL, &kus, cl)
            .await?;
        Ok(())
    }

    /// ExtensionsConfiguration → MachineExtensions → SchematicConfiguration (§3.5).
    async fn extensions(&mut self, cm: &Res) -> R {
        if cm.phase != Phase::Running {
            return Ok(());
        }
        let Some(cluster_id) = cm.label(l::CLUSTER) else {
            return Ok(());
        };
        let set_id = cm.label(l::MACHINE_SET).unwrap_or_default();
        let configs: Vec<_> = self
            .by_label(t::EXTENSIONS_CONFIGURATION, &[(l::CLUSTER, cluster_id)])
            .into_iter()
            .filter(|r| r.phase == Phase::Running)
            .collect();
        // Most specific level wins outright; within a level the highest ID wins.
        let pick = |f: &dyn Fn(&Res) -> bool| {
            configs
                .iter()
                .filter(|r| f(r))
                .max_by(|a, b| a.id.cmp(&b.id))
                .cloned()
        };
        let chosen = pick(&|r| r.label(l::CLUSTER_MACHINE) == Some(&cm.id))
            .or_else(|| {
                pick(&|r| {
                    r.label(l::MACHINE_SET) == Some(set_id) && r.label(l::CLUSTER_MACHINE).is_none()
                })
            })
            .or_else(|| {
                pick(&|r| {
                    r.label(l::MACHINE_SET).is_none() && r.label(l::CLUSTER_MACHINE).is_none()
                })
            });
        let talos = self
            .get(t::CLUSTER, cluster_id)
            .map(|c| dec::<specs::ClusterSpec>(&c).talos_version)
            .unwrap_or_default();
        let mut extensions: Vec<String> = Vec::new();
        match &chosen {
            Some(ec) => {
                extensions = dec::<specs::ExtensionsConfigurationSpec>(ec)
                    .extensions
                    .iter()
                    .map(|e| talos_machinery::names::extension_lookup_name(e))
                    .collect();
                extensions.sort();
                extensions.dedup();
                let labels =
                    labels_of(&[(l::CLUSTER, cluster_id), (l::ROOT_CONFIGURATION, &ec.id)]);
                self.put(
                    t::MACHINE_EXTENSIONS,
                    &cm.id,
                    EXT_CTRL,
                    &specs::MachineExtensionsSpec {
                        extensions: extensions.clone(),
                    },
                    labels,
                )
                .await?;
            }
            None => self.remove(t::MACHINE_EXTENSIONS, &cm.id).await?,
        }
        let status = specs::MachineExtensionsStatusSpec {
            extensions: extensions
                .iter()
                .map(|e| specs::machine_extensions_status_spec::Item {
                    name: e.clone(),
                    immutable: false,
                    phase: 0,
                })
                .collect(),
            talos_version: format!("v{talos}"),
        };
        self.put(
            t::MACHINE_EXTENSIONS_STATUS,
            &cm.id,
            EXT_CTRL,
            &status,
            labels_of(&[(l::CLUSTER, cluster_id)]),
        )
        .await?;
        let args = self
            .get(t::KERNEL_ARGS, &cm.id)
            .filter(|k| k.phase == Phase::Running)
            .map(|k| dec::<specs::KernelArgsSpec>(&k).args)
            .unwrap_or_default();
        let schematic = talos_machinery::schematic::SchematicBuilder::new()
            .extensions(extensions)
            .extra_kernel_args(args)
            .build();
        let Ok(schematic) = schematic else {
            return Ok(());
        };
        let id = schematic.id();
        let _ = self
            .factory
            .handle("POST", "/schematics", schematic.canonical_yaml().as_bytes());
        let sc = specs::SchematicConfigurationSpec {
            schematic_id: id,
            talos_version: talos,
        };
        self.put(
            t::SCHEMATIC_CONFIGURATION,
            &cm.id,
            SCHEMATIC_OWNER,
            &sc,
            labels_of(&[(l::CLUSTER, cluster_id)]),
        )
        .await?;
        Ok(())
    }

    async fn kernel_args(&mut self) -> R {
        for ka in self.list(t::KERNEL_ARGS, &Filter::default()) {
            if ka.phase == Phase::TearingDown {
                self.remove(t::KERNEL_ARGS_STATUS, &ka.id).await?;
                continue;
            }
            let args = dec::<specs::KernelArgsSpec>(&ka).args;
            let base = self
                .get(t::MACHINE_STATUS, &ka.id)
                .map(|m| dec::<specs::MachineStatusSpec>(&m).kernel_cmdline)
                .unwrap_or_default();
            let mut cmdline = base;
            for a in &args {
                cmdline.push(' ');
                cmdline.push_str(a);
            }
            let st = specs::KernelArgsStatusSpec {
                args: args.clone(),
                current_args: args,
                unmet_conditions: vec![],
                current_cmdline: cmdline.trim().to_string(),
            };
            self.put(
                t::KERNEL_ARGS_STATUS,
                &ka.id,
                KERNEL_ARGS_OWNER,
                &st,
                BTreeMap::new(),
            )
            .await?;
        }
        for st in self.list(t::KERNEL_ARGS_STATUS, &Filter::default()) {
            if self.get(t::KERNEL_ARGS, &st.id).is_none() {
                self.remove(t::KERNEL_ARGS_STATUS, &st.id).await?;
            }
        }
        Ok(())
    }

    /// User labels of a machine come from its MachineLabels resource (§3.2); system labels keep
    /// the reserved prefix.
    async fn machine_labels(&mut self) -> R {
        for m in self.list(t::MACHINE_STATUS, &Filter::default()) {
            let user = self
                .get(t::MACHINE_LABELS, &m.id)
                .filter(|ml| ml.phase == Phase::Running)
                .map(|ml| ml.labels.clone())
                .unwrap_or_default();
            let mut want: BTreeMap<String, String> = m
                .labels
                .iter()
                .filter(|(k, _)| k.starts_with(talos_machinery::names::RESERVED_PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (k, v) in user {
                want.entry(k).or_insert(v);
            }
            if want != m.labels {
                self.store
                    .modify("default", t::MACHINE_STATUS, &m.id, |x| {
                        let system: BTreeMap<String, String> = x
                            .labels
                            .iter()
                            .filter(|(k, _)| k.starts_with(talos_machinery::names::RESERVED_PREFIX))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        let mut next = system;
                        for (k, v) in &want {
                            next.entry(k.clone()).or_insert(v.clone());
                        }
                        if next == x.labels {
                            return false;
                        }
                        x.labels = next;
                        true
                    })
                    .await?;
            }
        }
        Ok(())
    }

    async fn machine_set_status(&mut self, ms: &Res) -> R {
        use specs::MachineSetPhase as P;
        let spec: specs::MachineSetSpec = dec(ms);
        let alloc = spec_allocation(&spec);
        let nodes = self.by_label(t::MACHINE_SET_NODE, &[(l::MACHINE_SET, &ms.id)]);
        let machines = self.by_label(t::CLUSTER_MACHINE, &[(l::MACHINE_SET, &ms.id)]);
        let statuses: Vec<specs::ClusterMachineStatusSpec> = machines
            .iter()
            .filter_map(|m| self.get(t::CLUSTER_MACHINE_STATUS, &m.id))
            .map(|s| dec(&s))
            .collect();
        let static_count = alloc
            .as_ref()
            .filter(|a| {
                a.allocation_type
                    == specs::machine_set_spec::machine_allocation::Type::Static as i32
            })
            .map(|a| a.machine_count);
        let requested = static_count
            .unwrap_or_else(|| nodes.iter().filter(|n| n.phase == Phase::Running).count() as u32);
        let total = machines
            .iter()
            .filter(|m| m.phase == Phase::Running)
            .count() as u32;
        let healthy = statuses
            .iter()
            .filter(|s| s.stage == Stage::Running as i32 && s.ready)
            .count() as u32;
        let (_, cp) = role_label(ms);
        let upgrading = statuses.iter().any(|s| s.stage == Stage::Upgrading as i32);
        let configuring = statuses
            .iter()
            .any(|s| s.stage == Stage::Configuring as i32);
        let mut error = String::new();
        let phase = if ms.phase == Phase::TearingDown {
            P::Destroying
        } else if cp && requested == 0 && nodes.is_empty() {
            error = "control plane machine set must have at least one node".into();
            P::Failed
        } else if total < requested {
            P::ScalingUp
        } else if (total as usize) < machines.len() || total > requested {
            P::ScalingDown
        } else if upgrading {
            P::Upgrading
        } else if configuring {
            P::Reconfiguring
        } else {
            P::Running
        };
        let ready = phase == P::Running && healthy == total && statuses.len() as u32 == total;
        let st = specs::MachineSetStatusSpec {
            phase: phase as i32,
            ready,
            error,
            machines: Some(specs::Machines {
                total,
                healthy,
                connected: total,
                requested,
            }),
            config_hash: {
                use sha2::{Digest, Sha256};
                let mut hashes: Vec<String> = machines
                    .iter()
                    .filter_map(|m| self.get(t::CLUSTER_MACHINE_STATUS, &m.id))
                    .filter_map(|s| s.annotations.get(CONFIG_HASH).cloned())
                    .collect();
                hashes.sort();
                hex::encode(Sha256::digest(hashes.join(",").as_bytes()))
            },
            machine_allocation: alloc,
            locked_updates: 0,
        };
        self.put(
            t::MACHINE_SET_STATUS,
            &ms.id,
            STATUS_OWNER,
            &st,
            ms.labels.clone(),
        )
        .await?;
        if cp {
            use specs::control_plane_status_spec::condition::{Severity, Status};
            let all_running = total > 0 && healthy == total;
            let cond = |ty: specs::ConditionType, reason: &str| {
                specs::control_plane_status_spec::Condition {
                    r#type: ty as i32,
                    reason: if all_running {
                        String::new()
                    } else {
                        reason.to_string()
                    },
                    status: if all_running {
                        Status::Ready as i32
                    } else {
                        Status::NotReady as i32
                    },
                    severity: if all_running {
                        Severity::Info as i32
                    } else {
                        Severity::Warning as i32
                    },
                }
            };
            let cps = specs::ControlPlaneStatusSpec {
                conditions: vec![
                    cond(
                        specs::ConditionType::Etcd,
                        "etcd is not healthy on all control plane nodes",
                    ),
                    cond(
                        specs::ConditionType::WireguardConnection,
                        "not all control plane nodes are connected",
                    ),
                ],
            };
            if ms.phase == Phase::Running {
                self.put(
                    t::CONTROL_PLANE_STATUS,
                    &ms.id,
                    STATUS_OWNER,
                    &cps,
                    ms.labels.clone(),
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn cluster_status(&mut self, c: &Res) -> R {
        use specs::cluster_status_spec::Phase as CP;
        use specs::MachineSetPhase as P;
        let spec: specs::ClusterSpec = dec(c);
        let sets = self.by_label(t::MACHINE_SET_STATUS, &[(l::CLUSTER, &c.id)]);
        let mut machines = specs::Machines::default();
        let any = |p: P| {
            sets.iter()
                .any(|s| dec::<specs::MachineSetStatusSpec>(s).phase == p as i32)
        };
        let phase = if c.phase == Phase::TearingDown {
            CP::Destroying
        } else if any(P::ScalingUp) {
            CP::ScalingUp
        } else if any(P::ScalingDown) || any(P::Destroying) {
            CP::ScalingDown
        } else if any(P::Running) || any(P::Reconfiguring) || any(P::Upgrading) {
            CP::Running
        } else {
            CP::Unknown
        };
        let mut all_ready = true;
        let mut cp_ready = false;
        let mut available = false;
        for s in &sets {
            let st: specs::MachineSetStatusSpec = dec(s);
            let m = st.machines.unwrap_or_default();
            let zero_and_leaving = m.total == 0
                && (st.phase == P::Destroying as i32 || st.phase == P::ScalingDown as i32);
            if !zero_and_leaving {
                machines.total += m.total;
                machines.healthy += m.healthy;
                machines.connected += m.connected;
                machines.requested += m.requested;
            }
            all_ready &= st.ready;
            if s.labels.contains_key(l::ROLE_CONTROLPLANE) {
                available |= m.total >= 1;
                cp_ready = st.phase == P::Running as i32 && st.ready;
                if let Some(cps) = self.get(t::CONTROL_PLANE_STATUS, &s.id) {
                    let cps: specs::ControlPlaneStatusSpec = dec(&cps);
                    cp_ready &= cps.conditions.iter().all(|c| {
                        c.status
                            == specs::control_plane_status_spec::condition::Status::Ready as i32
                    });
                }
            }
        }
        let cp_running = self
            .by_label(t::CLUSTER_MACHINE_STATUS, &[(l::CLUSTER, &c.id)])
            .iter()
            .any(|s| {
                s.labels.contains_key(l::ROLE_CONTROLPLANE)
                    && dec::<specs::ClusterMachineStatusSpec>(s).stage == Stage::Running as i32
            });
        if c.phase == Phase::Running {
            let lb = specs::LoadBalancerStatusSpec {
                healthy: cp_running,
                stopped: false,
            };
            self.put(
                t::LOAD_BALANCER_STATUS,
                &c.id,
                STATUS_OWNER,
                &lb,
                labels_of(&[(l::CLUSTER, &c.id)]),
            )
            .await?;
        }
        let features = spec.features.unwrap_or_default();
        let initial = self
            .get(t::CLUSTER_CONFIG_VERSION, &c.id)
            .map(|r| dec::<specs::ClusterConfigVersionSpec>(&r).version)
            .unwrap_or_default();
        let st = specs::ClusterStatusSpec {
            available,
            machines: Some(machines),
            phase: phase as i32,
            ready: all_ready && phase == CP::Running,
            kubernetes_api_ready: cp_running,
            controlplane_ready: cp_ready,
            has_connected_control_planes: available,
            use_embedded_discovery_service: features.use_embedded_discovery_service,
            talos_version: spec.talos_version.clone(),
            kubernetes_version: spec.kubernetes_version.clone(),
            disable_public_discovery_service: features.disable_public_discovery_service,
            initial_talos_version: initial,
        };
        let mut labels = c.labels.clone();
        labels.insert(l::CLUSTER.into(), c.id.clone());
        if c.phase == Phase::TearingDown && self.get(t::CLUSTER_STATUS, &c.id).is_none() {
            return Ok(());
        }
        self.put(t::CLUSTER_STATUS, &c.id, STATUS_OWNER, &st, labels)
            .await?;
        Ok(())
    }

    /// Removes outputs whose input vanished (e.g. a status of a destroyed machine set).
    async fn orphans(&mut self) -> R {
        for typ in [t::MACHINE_SET_STATUS, t::CONTROL_PLANE_STATUS] {
            for s in self.list(typ, &Filter::default()) {
                if self.get(t::MACHINE_SET, &s.id).is_none() {
                    self.remove(typ, &s.id).await?;
                }
            }
        }
        for typ in [
            t::CLUSTER_STATUS,
            t::CLUSTER_UUID,
            t::LOAD_BALANCER_STATUS,
            t::TALOS_UPGRADE_STATUS,
            t::KUBERNETES_UPGRADE_STATUS,
            t::CLUSTER_BOOTSTRAP_STATUS,
            t::CLUSTER_CONFIG_VERSION,
            t::CLUSTER_ENDPOINT,
            t::CLUSTER_DESTROY_STATUS,
        ] {
            for s in self.list(typ, &Filter::default()) {
                if self.get(t::CLUSTER, &s.id).is_none() {
                    self.remove(typ, &s.id).await?;
                }
            }
        }
        for typ in [
            t::MACHINE_EXTENSIONS,
            t::MACHINE_EXTENSIONS_STATUS,
            t::SCHEMATIC_CONFIGURATION,
        ] {
            for s in self.list(typ, &Filter::default()) {
                if self.get(t::CLUSTER_MACHINE, &s.id).is_none() {
                    self.remove(typ, &s.id).await?;
                }
            }
        }
        Ok(())
    }
}
