//! The lab: a whole cluster from Terraform, as issue 5 describes it. Three control planes and
//! two worker sets allocated from machine classes, config patches at all four scopes,
//! extensions; apply waits for ready; the re-plan is empty; a Kubernetes upgrade completes;
//! destroy returns every machine to the pool.

use std::time::Duration;

use acceptance_tests::oob::OutOfBand;
use acceptance_tests::{resource_values, Omni, Workspace};
use anyhow::{anyhow, ensure, Context, Result};
use omni_client::omni_api::specs::{
    self, cluster_status_spec::Phase as ClusterPhase,
    kubernetes_upgrade_status_spec::Phase as K8sPhase, MachineSetPhase,
};
use omni_client::resources::{
    labels, Cluster, ClusterMachine, ClusterStatus, ConfigPatch, ExtensionsConfiguration,
    KubernetesUpgradeStatus, MachineSet, MachineSetStatus, TalosVersion,
};
use omni_client::{ListParams, WatchParams};

/// 3 control planes + 2 + 1 workers, and two machines that stay in the pool.
const MACHINES: u32 = 8;

/// The cluster's Talos version (the one the machines run) and two Kubernetes versions it
/// supports where the second is an allowed upgrade of the first (same or next minor).
fn versions(ctl: &OutOfBand) -> Result<(String, String, String)> {
    let (talos, newest) = ctl.latest_versions()?;
    let tv = ctl
        .get::<TalosVersion>(&talos)?
        .context("the chosen Talos version exists")?;
    let new = semver::Version::parse(&newest)?;
    let older = tv
        .spec
        .compatible_kubernetes_versions
        .iter()
        .filter_map(|v| semver::Version::parse(v).ok())
        .filter(|v| v.pre.is_empty() && v < &new)
        .filter(|v| v.major == new.major && (v.minor == new.minor || v.minor + 1 == new.minor))
        .max()
        .ok_or_else(|| anyhow!("no Kubernetes version to upgrade from to {newest}"))?;
    Ok((talos, older.to_string(), newest))
}

fn config(talos: &str, k8s: &str, machine_patches: Option<&str>) -> String {
    let per_machine = machine_patches
        .map(|uuid| {
            format!(
                r#"
# Cluster-machine scope: one machine of the cluster.
resource "omni_config_patch" "one_node" {{
  name    = "node-labels"
  cluster = omni_cluster.lab.name
  selector {{
    cluster_machine = "{uuid}"
  }}
  data = yamlencode({{ machine = {{ nodeLabels = {{ lab = "special" }} }} }})
}}

# Machine scope: follows the machine, cluster or not.
resource "omni_config_patch" "machine" {{
  name = "motd"
  selector {{
    machine = "{uuid}"
  }}
  data = <<-EOT
    machine:
      env:
        LAB_NODE: "true"
  EOT
}}
"#
            )
        })
        .unwrap_or_default();
    format!(
        r#"
resource "omni_cluster" "lab" {{
  name               = "lab"
  talos_version      = "v{talos}"
  kubernetes_version = "{k8s}"
}}

resource "omni_machine_class" "cp" {{
  name         = "lab-cp"
  match_labels = ["omni.sidero.dev/arch = amd64"]
}}

resource "omni_machine_class" "workers" {{
  name         = "lab-workers"
  match_labels = ["omni.sidero.dev/arch = amd64, omni.sidero.dev/platform = metal"]
}}

# Cluster scope.
resource "omni_config_patch" "ntp" {{
  name    = "ntp"
  cluster = omni_cluster.lab.name
  data    = <<-EOT
    machine:
      time:
        servers:
          - time.cloudflare.com
  EOT
}}

# Machine set scope.
resource "omni_config_patch" "worker_sysctls" {{
  name    = "sysctls"
  cluster = omni_cluster.lab.name
  selector {{
    machine_set = "lab-workers"
  }}
  data = yamlencode({{ machine = {{ sysctls = {{ "net.core.somaxconn" = "65535" }} }} }})
}}

resource "omni_machine_extensions" "lab" {{
  cluster    = omni_cluster.lab.name
  extensions = ["siderolabs/iscsi-tools"]
}}

# Machines are configured and get their schematic before they are allocated, so the sets'
# readiness wait covers everything.
resource "omni_machine_set" "cp" {{
  cluster = omni_cluster.lab.name
  role    = "controlplane"
  machine_class = {{
    name = omni_machine_class.cp.name
    size = 3
  }}
  depends_on = [omni_config_patch.ntp, omni_machine_extensions.lab]
}}

resource "omni_machine_set" "workers" {{
  cluster = omni_cluster.lab.name
  role    = "workers"
  machine_class = {{
    name = omni_machine_class.workers.name
    size = 2
  }}
  depends_on = [omni_config_patch.ntp, omni_config_patch.worker_sysctls, omni_machine_extensions.lab]
}}

resource "omni_machine_set" "edge" {{
  cluster = omni_cluster.lab.name
  role    = "workers"
  name    = "edge"
  machine_class = {{
    name = omni_machine_class.workers.name
    size = 1
  }}
  depends_on = [omni_config_patch.ntp, omni_machine_extensions.lab]
}}
{per_machine}"#
    )
}

/// Every machine set of the cluster is Running and ready right now.
fn sets_ready(ctl: &OutOfBand) -> Result<()> {
    let statuses = ctl.of_cluster::<MachineSetStatus>("lab")?;
    ensure!(statuses.len() == 3, "machine set statuses: {statuses:?}");
    for s in &statuses {
        ensure!(
            s.spec.phase == MachineSetPhase::Running as i32 && s.spec.ready,
            "{} is not ready: {:?}",
            s.id(),
            s.spec
        );
    }
    Ok(())
}

/// Waits (event-driven, bounded) for ClusterStatus RUNNING + ready with `machines` healthy.
fn wait_cluster_ready(ctl: &OutOfBand, machines: u32) -> Result<specs::ClusterStatusSpec> {
    let api = ctl.api::<ClusterStatus>();
    ctl.run(async {
        use futures::StreamExt;
        let mut events = api.watch(WatchParams::single("lab"));
        let mut last = None;
        let wait = async {
            while let Some(ev) = events.next().await {
                if let omni_client::WatchEvent::Created(s)
                | omni_client::WatchEvent::Updated { new: s, .. } = ev?
                {
                    let m = s.spec.machines.unwrap_or_default();
                    let done = s.spec.phase == ClusterPhase::Running as i32
                        && s.spec.ready
                        && m.healthy == machines
                        && m.total == machines;
                    last = Some(s.spec.clone());
                    if done {
                        return Ok(s.spec);
                    }
                }
            }
            Err(anyhow!("watch ended"))
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .map_err(|_| anyhow!("cluster not ready within 60s, last: {last:?}"))?
    })
}

#[test]
fn lab_cluster_from_machine_classes() -> Result<()> {
    // Slowed steps, so an apply that did not wait for readiness would be caught.
    let omni = Omni::start_with(&[
        "--machines".to_string(),
        MACHINES.to_string(),
        "--step-delay-ms".to_string(),
        "200".to_string(),
    ])?;
    let ctl = OutOfBand::new(&omni)?;
    let (talos, k8s_old, k8s_new) = versions(&ctl)?;
    let ws = Workspace::new(&omni)?;

    // 1. Apply: returns once every machine set is Running and ready.
    ws.write_config(&config(&talos, &k8s_old, None))?;
    ws.apply()?;
    sets_ready(&ctl)?;
    let status = wait_cluster_ready(&ctl, 6)?;
    ensure!(status.kubernetes_version == k8s_old, "{status:?}");
    ensure!(
        ctl.available_machines()?.len() == 2,
        "two machines stay in the pool"
    );
    ensure!(
        !ws.plan_has_changes()?,
        "re-plan after the first apply is not empty"
    );

    // 2. Patches for one machine (cluster-machine and machine scope), once we know a machine.
    let machines = ctl.of_cluster::<ClusterMachine>("lab")?;
    ensure!(machines.len() == 6, "cluster machines: {}", machines.len());
    let worker = machines
        .iter()
        .find(|m| {
            m.metadata
                .labels
                .get(labels::MACHINE_SET)
                .map(String::as_str)
                == Some("lab-workers")
        })
        .context("a worker machine")?
        .id()
        .to_string();
    ws.write_config(&config(&talos, &k8s_old, Some(&worker)))?;
    ws.apply()?;
    ensure!(
        !ws.plan_has_changes()?,
        "re-plan after adding machine patches is not empty"
    );
    let state = ws.state()?;
    let expect_ids = [
        ("omni_config_patch.ntp", "200-cluster-lab-ntp".to_string()),
        (
            "omni_config_patch.worker_sysctls",
            "400-lab-workers-sysctls".to_string(),
        ),
        (
            "omni_config_patch.one_node",
            format!("400-cm-{worker}-node-labels"),
        ),
        (
            "omni_config_patch.machine",
            format!("400-machine-{worker}-motd"),
        ),
    ];
    for (addr, id) in &expect_ids {
        let v = resource_values(&state, addr)?;
        ensure!(v["id"] == id.as_str(), "{addr}: {v}");
        ensure!(
            ctl.get::<ConfigPatch>(id)?.is_some(),
            "{id} missing in Omni"
        );
    }
    ensure!(ctl
        .get::<ExtensionsConfiguration>("schematic-lab")?
        .is_some());

    // 3. Kubernetes upgrade: apply returns when Omni reports it done.
    ws.write_config(&config(&talos, &k8s_new, Some(&worker)))?;
    ws.apply()?;
    let up = ctl
        .get::<KubernetesUpgradeStatus>("lab")?
        .context("upgrade status")?
        .spec;
    ensure!(
        up.phase == K8sPhase::Done as i32 && up.last_upgrade_version == k8s_new,
        "upgrade not done when apply returned: {up:?}"
    );
    ensure!(
        ctl.get::<Cluster>("lab")?
            .context("cluster")?
            .spec
            .kubernetes_version
            == k8s_new
    );
    wait_cluster_ready(&ctl, 6)?;
    ensure!(
        !ws.plan_has_changes()?,
        "re-plan after the upgrade is not empty"
    );

    // 4. Destroy: nothing of ours is left and every machine is back in the pool.
    ws.destroy()?;
    ensure!(
        ctl.get::<Cluster>("lab")?.is_none(),
        "cluster left after destroy"
    );
    ensure!(ctl.of_cluster::<MachineSet>("lab")?.is_empty());
    ensure!(ctl.of_cluster::<ConfigPatch>("lab")?.is_empty());
    let leftovers = ctl.run(ctl.api::<ConfigPatch>().list(&ListParams::default()))?;
    ensure!(
        !leftovers.iter().any(|p| p.id().contains(&worker)),
        "machine patches left: {leftovers:?}"
    );
    ctl.wait_all_available(Duration::from_secs(60))?;
    Ok(())
}
