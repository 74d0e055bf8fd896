# Wait for a usable cluster, then fetch a short-lived service-account kubeconfig that is
# never stored in the plan or the state.
data "omni_cluster_status" "lab" {
  cluster = "lab"
  wait = {
    condition = "healthy"
  }
}

ephemeral "omni_kubeconfig" "lab" {
  cluster         = data.omni_cluster_status.lab.id
  service_account = true
  user            = "terraform"
  groups          = ["system:masters"]
  ttl             = "1h"
}

# Configure the Kubernetes and Helm providers from it:
#
# provider "kubernetes" {
#   host                   = ephemeral.omni_kubeconfig.lab.host
#   cluster_ca_certificate = ephemeral.omni_kubeconfig.lab.cluster_ca_certificate
#   token                  = ephemeral.omni_kubeconfig.lab.token
# }
#
# provider "helm" {
#   kubernetes = {
#     host  = ephemeral.omni_kubeconfig.lab.host
#     token = ephemeral.omni_kubeconfig.lab.token
#   }
# }

# Or hand it to a command, which Terraform also allows for ephemeral values.
resource "terraform_data" "apply_manifests" {
  provisioner "local-exec" {
    command = "printf '%s' \"$KUBECONFIG_DATA\" > /tmp/lab.kubeconfig && kubectl --kubeconfig /tmp/lab.kubeconfig apply -f manifests/ && rm /tmp/lab.kubeconfig"
    environment = {
      KUBECONFIG_DATA = ephemeral.omni_kubeconfig.lab.kubeconfig_raw
    }
  }
}
