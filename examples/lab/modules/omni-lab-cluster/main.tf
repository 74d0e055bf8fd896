# One Omni cluster built from machine classes: a control-plane set, one worker set per pool,
# cluster-wide patches and extensions, and the Image Factory schematic of its machines.

resource "omni_cluster" "this" {
  name               = var.cluster_name
  talos_version      = var.talos_version
  kubernetes_version = var.kubernetes_version
  labels             = var.labels
}

resource "omni_machine_class" "control_plane" {
  name         = "${var.cluster_name}-control-plane"
  match_labels = var.control_plane_selectors
}

resource "omni_machine_class" "pool" {
  for_each = var.worker_pools

  name         = "${var.cluster_name}-${each.key}"
  match_labels = each.value.selectors
}

resource "omni_config_patch" "this" {
  for_each = var.patches

  cluster = omni_cluster.this.name
  name    = each.key
  data    = each.value
}

resource "omni_machine_extensions" "this" {
  count = length(var.extensions) > 0 ? 1 : 0

  cluster    = omni_cluster.this.name
  extensions = var.extensions
}

resource "omni_schematic" "this" {
  extensions    = var.extensions
  talos_version = var.talos_version
}

resource "omni_machine_set" "control_plane" {
  cluster = omni_cluster.this.name
  role    = "controlplane"

  machine_class = {
    name = omni_machine_class.control_plane.name
    size = var.control_plane_count
  }

  # Machines boot with the patches and extensions already in place.
  depends_on = [omni_config_patch.this, omni_machine_extensions.this]
}

resource "omni_machine_set" "pool" {
  for_each = var.worker_pools

  cluster = omni_cluster.this.name
  role    = "workers"
  name    = each.key

  machine_class = {
    name = omni_machine_class.pool[each.key].name
    size = each.value.size
  }

  depends_on = [omni_machine_set.control_plane]
}

data "omni_cluster_status" "this" {
  cluster = omni_cluster.this.name

  wait = {
    condition = "ready"
    timeout   = var.wait_timeout
  }

  depends_on = [omni_machine_set.control_plane, omni_machine_set.pool]
}
