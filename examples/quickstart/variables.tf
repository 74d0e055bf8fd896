variable "cluster_name" {
  description = "Name of the cluster in Omni."
  type        = string
  default     = "quickstart"
}

variable "talos_version" {
  description = "Talos version of the cluster's machines."
  type        = string
  default     = "1.13.9"
}

variable "kubernetes_version" {
  description = "Kubernetes version; must be compatible with talos_version."
  type        = string
  default     = "1.36.3"
}

variable "control_planes" {
  description = "Number of control-plane machines (1, 3 or 5 for a healthy etcd)."
  type        = number
  default     = 1
}

variable "workers" {
  description = "Number of worker machines."
  type        = number
  default     = 2
}

variable "extensions" {
  description = "Official Talos system extensions installed on every machine of the cluster."
  type        = list(string)
  default     = ["siderolabs/qemu-guest-agent"]
}

variable "image_factory_url" {
  description = "Talos Image Factory that builds the cluster's installer image."
  type        = string
  default     = "https://factory.talos.dev"
}
