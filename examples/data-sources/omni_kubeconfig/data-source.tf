# Less safe: the kubeconfig and its token are written to the state. With Terraform 1.10 or
# newer use `ephemeral "omni_kubeconfig"` instead.
data "omni_kubeconfig" "lab" {
  cluster         = "lab"
  service_account = true
  user            = "terraform"
  groups          = ["system:masters"]
  ttl             = "1h"
}

output "kubernetes_host" {
  value     = data.omni_kubeconfig.lab.host
  sensitive = true
}
