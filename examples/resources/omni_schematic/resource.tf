# Extensions for iSCSI storage (e.g. Longhorn), with the installer for Talos v1.13.9.
resource "omni_schematic" "storage" {
  extensions = [
    "siderolabs/iscsi-tools",
    "siderolabs/util-linux-tools",
  ]
  extra_kernel_args = ["console=ttyS0"]
  talos_version     = "v1.13.9"
}

# A Raspberry Pi image with an overlay option and a static IP in META key 10.
resource "omni_schematic" "rpi" {
  overlay = {
    name    = "rpi_generic"
    image   = "siderolabs/sbc-raspberrypi"
    options = yamlencode({ configTxtAppend = "dtoverlay=disable-bt" })
  }
  meta = {
    "10" = jsonencode({ externalIPs = ["192.168.1.10"] })
  }
  talos_version = "v1.13.9"
  platform      = "metal"
  architecture  = "arm64"
}

# The same schematic document a `talosctl`/UI user would POST, kept in a file.
resource "omni_schematic" "from_file" {
  schematic = file("${path.module}/schematic.yaml")
}

# The ID is known at plan time, so VM definitions depending on it plan with the final value.
output "installer_image" {
  value = omni_schematic.storage.installer_image
}

output "iso_url" {
  value = omni_schematic.storage.iso_url
}
