terraform {
  required_version = ">= 1.10"
  required_providers {
    omni = {
      source = "siderolabs/omni"
    }
  }
}

provider "omni" {
  image_factory_url = var.image_factory_url
}
