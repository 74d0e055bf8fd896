data "omni_image_factory_extensions" "storage" {
  talos_version = "v1.13.9"
  name_regex    = "^siderolabs/(iscsi|util-linux)-tools$"
}

resource "omni_schematic" "storage" {
  extensions = data.omni_image_factory_extensions.storage.extensions[*].name
}
