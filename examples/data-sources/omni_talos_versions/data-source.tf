data "omni_talos_versions" "stable" {
  stable_only = true
  min_version = "1.12"
}

# The newest stable Talos and the newest Kubernetes it supports.
data "omni_kubernetes_versions" "for_latest" {
  talos_version = data.omni_talos_versions.stable.latest
}

output "versions" {
  value = {
    talos      = data.omni_talos_versions.stable.latest
    kubernetes = data.omni_kubernetes_versions.for_latest.latest
  }
}
