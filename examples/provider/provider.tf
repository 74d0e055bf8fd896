terraform {
  required_providers {
    omni = {
      source = "siderolabs/omni"
    }
  }
}

# Credentials come from the environment by default:
#   export OMNI_ENDPOINT=https://<account>.omni.siderolabs.io
#   export OMNI_SERVICE_ACCOUNT_KEY=$(omnictl serviceaccount create terraform)
provider "omni" {}

# Or explicitly, e.g. against a local omni-emulator:
# provider "omni" {
#   endpoint            = "http://127.0.0.1:8099"
#   service_account_key = var.omni_service_account_key
# }
