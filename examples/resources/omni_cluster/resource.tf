resource "omni_cluster" "example" {
  name               = "example"
  talos_version      = "v1.13.8"
  kubernetes_version = "1.36.3"

  features = {
    enable_workload_proxy = true
    disk_encryption       = false
  }

  # Automatic etcd backups every 6 hours (leave unset to disable them).
  backup_interval = "6h"

  labels = {
    environment = "staging"
  }

  annotations = {
    owner = "platform-team"
  }

  # Create only waits until Omni accepts the cluster; upgrades and deletion wait longer.
  timeouts = {
    update = "90m"
    delete = "45m"
  }
}
