data "omni_image_factory_overlays" "rpi" {
  talos_version = "v1.13.9"
  name_contains = "rpi_generic"
}

resource "omni_schematic" "rpi" {
  overlay = {
    name  = data.omni_image_factory_overlays.rpi.overlays[0].name
    image = data.omni_image_factory_overlays.rpi.overlays[0].image
  }
}
