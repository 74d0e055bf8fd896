//! Out-of-band helpers for acceptance tests: change Omni directly (as a person with `omnictl`
//! would), outside Terraform, to set up preconditions and to make drift.

#![allow(dead_code)] // each test binary uses a different subset

use acceptance_tests::oob::OutOfBand;
use acceptance_tests::Omni;
use anyhow::{Context, Result};
use omni_client::omni_api::specs;
use omni_client::resources::{
    labels, Cluster, MachineSet, MachineSetNode, MachineStatus, TalosVersion,
};
use omni_client::{Api, ListParams, Object, ResourceKind};

/// Runs `f` with a typed API of the harness's shared out-of-band client.
pub fn with_api<K: ResourceKind, T, F, Fut>(omni: &Omni, f: F) -> Result<T>
where
    F: FnOnce(Api<K>) -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let oob = OutOfBand::new(omni)?;
    oob.run(f(oob.api::<K>()))
}

/// IDs of every machine, sorted.
pub fn machine_ids(omni: &Omni) -> Result<Vec<String>> {
    with_api::<MachineStatus, _, _, _>(omni, |api| async move {
        let list = api.list(&ListParams::default()).await?;
        Ok(list.into_iter().map(|m| m.metadata.id).collect())
    })
}

/// The Talos version the machines run (without `v`) and a Kubernetes version it accepts.
pub fn versions(omni: &Omni) -> Result<(String, String)> {
    let oob = OutOfBand::new(omni)?;
    let (talos, tv) = oob.run(async {
        let first = oob
            .api::<MachineStatus>()
            .list(&ListParams::default())
            .await?
            .into_iter()
            .next()
            .context("no machines")?;
        let talos = first.spec.talos_version.trim_start_matches('v').to_string();
        let tv = oob.api::<TalosVersion>().get(&talos).await?;
        anyhow::Ok((talos, tv))
    })?;
    let k8s = tv
        .spec
        .compatible_kubernetes_versions
        .last()
        .context("no compatible Kubernetes version")?
        .clone();
    Ok((talos, k8s))
}

/// Creates cluster `name` with a control-plane set holding `control_planes` (machine UUIDs),
/// the way `omnictl cluster template sync` would (omni-api.md §7). An empty list leaves the
/// control-plane set without nodes, which Omni reports as Failed (never ready).
pub fn create_cluster(omni: &Omni, name: &str, control_planes: &[String]) -> Result<()> {
    let (talos, k8s) = versions(omni)?;
    let oob = OutOfBand::new(omni)?;
    oob.run(async {
        let c = oob.api::<Cluster>();
        c.create(Object::new(
            name,
            specs::ClusterSpec {
                kubernetes_version: k8s,
                talos_version: talos,
                ..Default::default()
            },
        ))
        .await?;
        let set_id = format!("{name}-control-planes");
        oob.api::<MachineSet>()
            .create(
                Object::new(
                    set_id.clone(),
                    specs::MachineSetSpec {
                        update_strategy: specs::machine_set_spec::UpdateStrategy::Rolling as i32,
                        ..Default::default()
                    },
                )
                .with_label(labels::CLUSTER, name)
                .with_label(labels::ROLE_CONTROLPLANE, ""),
            )
            .await?;
        for m in control_planes {
            oob.api::<MachineSetNode>()
                .create(
                    Object::new(m.clone(), Default::default())
                        .with_label(labels::CLUSTER, name)
                        .with_label(labels::MACHINE_SET, set_id.clone())
                        .with_label(labels::ROLE_CONTROLPLANE, ""),
                )
                .await?;
        }
        anyhow::Ok(())
    })
}

/// `ready` of the cluster's ClusterStatus, `None` when Omni has no status yet.
pub fn cluster_ready(omni: &Omni, name: &str) -> Result<Option<bool>> {
    use omni_client::resources::ClusterStatus;
    with_api::<ClusterStatus, _, _, _>(omni, |api| async move {
        Ok(api.get_opt(name).await?.map(|s| s.spec.ready))
    })
}
