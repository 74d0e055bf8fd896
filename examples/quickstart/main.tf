# One small cluster: machines are picked by machine classes (label selectors over the machines
# Omni knows), the cluster gets a schematic with the configured extensions, and the apply only
# returns once Omni reports every machine set ready.

resource "omni_machine_class" "control_plane" {
  name         = "${var.cluster_name}-control-plane"
  match_labels = ["omni.sidero.dev/arch = amd64"]
}

resource "omni_machine_class" "worker" {
  name         = "${var.cluster_name}-worker"
  match_labels = ["omni.sidero.dev/arch = amd64"]
}

# The image the machines install, with the extensions baked in; its ID is known at plan time.
resource "omni_schematic" "this" {
  extensions    = var.extensions
  talos_version = var.talos_version
}

resource "omni_cluster" "this" {
  name               = var.cluster_name
  talos_version      = var.talos_version
  kubernetes_version = var.kubernetes_version

  labels = {
    environment = "quickstart"
  }
}

# Omni installs the same extensions on the cluster's machines.
resource "omni_machine_extensions" "this" {
  cluster    = omni_cluster.this.name
  extensions = var.extensions
}

resource "omni_config_patch" "time" {
  cluster = omni_cluster.this.name
  name    = "ntp"
  data = yamlencode({
    machine = {
      time = {
        servers = ["time.cloudflare.com"]
      }
    }
  })
}

resource "omni_machine_set" "control_plane" {
  cluster = omni_cluster.this.name
  role    = "controlplane"

  machine_class = {
    name = omni_machine_class.control_plane.name
    size = var.control_planes
  }
}

resource "omni_machine_set" "workers" {
  cluster = omni_cluster.this.name
  role    = "workers"

  machine_class = {
    name = omni_machine_class.worker.name
    size = var.workers
  }

  # Workers join once the control plane is up.
  depends_on = [omni_machine_set.control_plane]
}

# Read after the machine sets exist; on later plans it confirms the cluster is still ready.
data "omni_cluster_status" "this" {
  cluster = omni_cluster.this.name

  wait = {
    condition = "ready"
    timeout   = "10m"
  }

  depends_on = [omni_machine_set.control_plane, omni_machine_set.workers]
}
