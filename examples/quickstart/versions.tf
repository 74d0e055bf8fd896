terraform {
  required_version = ">= 1.10"
  required_providers {
    omni = {
      source = "siderolabs/omni"
    }
  }
}

# Endpoint and key come from OMNI_ENDPOINT and OMNI_SERVICE_ACCOUNT_KEY.
provider "omni" {
  image_factory_url = var.image_factory_url
}
