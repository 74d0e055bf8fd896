locals {
  schematic = yamlencode({
    customization = {
      systemExtensions = {
        officialExtensions = [
          "siderolabs/iscsi-tools",
          "siderolabs/util-linux-tools",
        ]
      }
    }
  })
}

# 613e1592b2da41ae5e265e8789429f22e121aab91cb4deb6bc3c0b6262961245, computed offline.
output "schematic_id" {
  value = provider::omni::schematic_id(local.schematic)
}
