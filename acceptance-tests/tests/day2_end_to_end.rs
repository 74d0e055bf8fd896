//! The day-2 story in one configuration: pick versions and a machine from Omni's catalogue and
//! inventory, label it and give it kernel args, build a cluster on it, wait until the cluster is
//! healthy, then hand a service-account kubeconfig to a consumer without storing it.

mod oob;

use acceptance_tests::{resource_values, Omni, Workspace};
use anyhow::Result;

const CONFIG: &str = r#"
data "omni_talos_versions" "stable" {
  stable_only = true
}

data "omni_kubernetes_versions" "for_talos" {
  talos_version = data.omni_talos_versions.stable.latest
}

# Not filtered by availability: the pick must stay the same once the machine is in use.
data "omni_machines" "amd64" {
  selector = "omni.sidero.dev/arch = amd64"
}

locals {
  machine = data.omni_machines.amd64.ids[0]
}

resource "omni_machine_labels" "cp0" {
  machine_id = local.machine
  labels = {
    role = "control-plane"
  }
}

resource "omni_kernel_args" "cp0" {
  machine_id = local.machine
  args       = ["console=ttyS0"]
}

resource "omni_cluster" "lab" {
  name               = "lab"
  talos_version      = data.omni_talos_versions.stable.latest
  kubernetes_version = data.omni_kubernetes_versions.for_talos.latest
}

resource "omni_machine_set" "cp" {
  cluster = omni_cluster.lab.name
  role    = "controlplane"
  wait    = false
}

resource "omni_machine_set_node" "cp0" {
  cluster     = omni_cluster.lab.name
  machine_set = omni_machine_set.cp.id
  machine_id  = local.machine
}

data "omni_cluster_status" "lab" {
  cluster = omni_machine_set_node.cp0.cluster
  wait = {
    condition = "healthy"
    timeout   = "3m"
  }
}

ephemeral "omni_kubeconfig" "lab" {
  cluster         = data.omni_cluster_status.lab.id
  service_account = true
  user            = "ci"
  groups          = ["system:masters"]
}

resource "terraform_data" "deploy" {
  input = data.omni_cluster_status.lab.kubernetes_version
  provisioner "local-exec" {
    command = "printf '%s' \"$K8S_TOKEN\" > token.out; printf '%s' \"$K8S_HOST\" > host.out"
    environment = {
      K8S_HOST  = ephemeral.omni_kubeconfig.lab.host
      K8S_TOKEN = ephemeral.omni_kubeconfig.lab.token
    }
  }
}
"#;

#[test]
fn catalogue_inventory_cluster_wait_and_kubeconfig() -> Result<()> {
    let omni = Omni::start(2)?;
    let ws = Workspace::new(&omni)?;
    ws.write_config(CONFIG)?;
    ws.apply()?;

    let state = ws.state()?;
    let status = resource_values(&state, "data.omni_cluster_status.lab")?;
    assert_eq!(status["healthy"], true, "{status}");
    assert_eq!(status["machines"]["total"], 1);
    let machine = resource_values(&state, "omni_machine_set_node.cp0")?["machine_id"].clone();
    let labels = resource_values(&state, "omni_machine_labels.cp0")?;
    assert_eq!(labels["machine_id"], machine);

    let token = std::fs::read_to_string(ws.path().join("token.out"))?;
    assert_eq!(token.split('.').count(), 3, "the consumer got a JWT");
    assert!(
        !ws.state_file_text().contains(&token),
        "token leaked into state"
    );

    // Everything settles: the next plan is empty (the data sources read the same again).
    assert!(!ws.plan_has_changes()?, "empty re-plan");

    ws.destroy()?;
    assert_eq!(oob::cluster_ready(&omni, "lab")?, None, "cluster gone");
    Ok(())
}
