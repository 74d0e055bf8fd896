terraform {
  required_version = ">= 1.10"
  required_providers {
    omni = {
      source = "siderolabs/omni"
    }
  }
}
