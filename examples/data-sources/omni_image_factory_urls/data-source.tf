resource "omni_schematic" "this" {
  extensions = ["siderolabs/qemu-guest-agent"]
}

# A nocloud disk image and ISO for Proxmox-style VMs.
data "omni_image_factory_urls" "nocloud" {
  talos_version = "v1.13.9"
  schematic_id  = omni_schematic.this.id
  platform      = "nocloud"
  architecture  = "amd64"
}

# The SecureBoot ISO for bare metal.
data "omni_image_factory_urls" "metal_secureboot" {
  talos_version = "v1.13.9"
  schematic_id  = omni_schematic.this.id
  secureboot    = true
}

# A Raspberry Pi disk image.
data "omni_image_factory_urls" "rpi" {
  talos_version = "v1.13.9"
  schematic_id  = omni_schematic.this.id
  sbc           = "rpi_generic"
}

output "nocloud_disk_image" {
  value = data.omni_image_factory_urls.nocloud.disk_image_url
}
