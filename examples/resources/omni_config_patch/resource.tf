# A patch for every machine of the cluster (ID "200-cluster-lab-ntp").
resource "omni_config_patch" "ntp" {
  name    = "ntp"
  cluster = "lab"
  data    = <<-EOT
    machine:
      time:
        servers:
          - time.cloudflare.com
  EOT
}

# A patch for the workers only (ID "400-lab-workers-sysctls"); applied after cluster patches.
resource "omni_config_patch" "worker_sysctls" {
  name    = "sysctls"
  cluster = "lab"
  selector {
    machine_set = "lab-workers"
  }
  data = yamlencode({
    machine = {
      sysctls = {
        "net.core.somaxconn" = "65535"
      }
    }
  })
}

# A patch that follows one machine, in whatever cluster it is
# (ID "410-machine-5b1c7bd4-3f0e-4d43-9b5c-0d7d2b2a9f01-hostname").
resource "omni_config_patch" "hostname" {
  name   = "hostname"
  weight = 410
  selector {
    machine = "5b1c7bd4-3f0e-4d43-9b5c-0d7d2b2a9f01"
  }
  data = <<-EOT
    apiVersion: v1alpha1
    kind: HostnameConfig
    hostname: edge-01
    auto: off
  EOT
}
