data "omni_image_factory_versions" "stable" {
  stable_only = true
}

output "latest_talos" {
  value = data.omni_image_factory_versions.stable.latest
}
