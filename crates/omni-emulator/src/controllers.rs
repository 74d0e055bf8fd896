//! Simulated Omni controllers (omni-api.md §5), driven by store events.

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::core::Core;
use crate::model::Phase;
use crate::store::EvKind;

/// Schematic ID of a vanilla Talos image (no extensions, no extra kernel args).
pub const DEFAULT_SCHEMATIC: &str =
    "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

/// Names of the simulated controllers (for ResourceService/Controllers).
pub const NAMES: &[&str] = &[
    "ClusterController",
    "ClusterUUIDController",
    "MachineSetController",
    "MachineSetNodeController",
    "ClusterMachineController",
    "ClusterMachineStatusController",
    "MachineSetStatusController",
    "ClusterStatusController",
    "ControlPlaneStatusController",
    "LoadBalancerStatusController",
    "KubernetesUpgradeStatusController",
    "TalosUpgradeStatusController",
    "MachineExtensionsController",
    "SchematicConfigurationController",
    "KernelArgsStatusController",
];

/// Starts all controllers; they stop when `stop` fires.
pub fn start(core: Arc<Core>, stop: tokio::sync::watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    vec![tokio::spawn(auto_destroy(core, stop))]
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
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
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
