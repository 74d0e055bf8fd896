variable "cluster_name" {
  description = "Name of the cluster in Omni; also the prefix of its machine classes."
  type        = string
}

variable "talos_version" {
  description = "Talos version of the cluster."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes version; must be compatible with talos_version."
  type        = string
}

variable "control_plane_count" {
  description = "Number of control-plane machines (1, 3 or 5)."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 3, 5], var.control_plane_count)
    error_message = "control_plane_count must be 1, 3 or 5: etcd needs an odd number of members."
  }
}

variable "control_plane_selectors" {
  description = "Machine-class label selectors (ORed) for the control-plane machines."
  type        = list(string)
  default     = ["omni.sidero.dev/arch = amd64"]
}

variable "worker_pools" {
  description = <<-EOT
    Worker pools by short name. Each pool becomes a machine class `<cluster>-<pool>` with the
    given label selectors (ORed) and a machine set `<cluster>-<pool>` of `size` machines.
  EOT
  type = map(object({
    selectors = list(string)
    size      = number
  }))
  default = {}

  validation {
    condition     = alltrue([for p in values(var.worker_pools) : p.size >= 0 && length(p.selectors) > 0])
    error_message = "Every worker pool needs at least one selector and a size of 0 or more."
  }
}

variable "patches" {
  description = "Cluster-wide Talos config patches by name (YAML text, e.g. from yamlencode())."
  type        = map(string)
  default     = {}
}

variable "extensions" {
  description = "Official Talos system extensions for every machine of the cluster."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels of the cluster."
  type        = map(string)
  default     = {}
}

variable "wait_timeout" {
  description = "How long apply waits for the cluster to report ready."
  type        = string
  default     = "15m"
}
