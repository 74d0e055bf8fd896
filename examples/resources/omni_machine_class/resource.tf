# Machines with at least 4 cores and 16 GiB of memory, or any arm64 machine in zone "a".
resource "omni_machine_class" "big" {
  name = "big"
  match_labels = [
    "omni.sidero.dev/cores >= 4, omni.sidero.dev/mem >= 16GiB",
    "omni.sidero.dev/arch = arm64, omni.sidero.dev/zone = a",
  ]
}

# Machines created on demand by an infrastructure provider.
resource "omni_machine_class" "cloud" {
  name = "cloud"
  auto_provision {
    provider_id   = "kubevirt"
    kernel_args   = ["console=ttyS0"]
    provider_data = yamlencode({ cores = 4, memory = 8192 })
    grpc_tunnel   = "enabled"
  }
}
