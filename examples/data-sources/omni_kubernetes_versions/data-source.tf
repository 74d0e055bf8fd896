# Kubernetes versions Omni accepts together with Talos 1.13.8, from 1.34 on.
data "omni_kubernetes_versions" "for_talos" {
  talos_version = "1.13.8"
  min_version   = "1.34"
}

output "kubernetes_versions" {
  value = data.omni_kubernetes_versions.for_talos.versions
}
