# Blocks until the cluster is healthy (as `omnictl cluster template status` checks it),
# at most 20 minutes. Providers configured from the cluster can depend on it.
data "omni_cluster_status" "lab" {
  cluster = "lab"

  wait = {
    condition = "healthy"
    timeout   = "20m"
  }
}

output "lab" {
  value = {
    phase              = data.omni_cluster_status.lab.phase
    healthy_machines   = data.omni_cluster_status.lab.machines.healthy
    kubernetes_version = data.omni_cluster_status.lab.kubernetes_version
    talos_upgrade      = data.omni_cluster_status.lab.talos_upgrade.phase
  }
}
