variable "talos_version" {
  description = "Talos version of both clusters."
  type        = string
  default     = "1.13.9"
}

variable "kubernetes_version" {
  description = "Kubernetes version of both clusters."
  type        = string
  default     = "1.36.3"
}

variable "image_factory_url" {
  description = "Talos Image Factory that builds the installer images."
  type        = string
  default     = "https://factory.talos.dev"
}
