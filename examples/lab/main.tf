# Two lab clusters side by side from one module: "blue" runs the current release with two
# worker pools, "green" a single pool and an extra extension to try changes on.

module "blue" {
  source = "./modules/omni-lab-cluster"

  cluster_name       = "lab-blue"
  talos_version      = var.talos_version
  kubernetes_version = var.kubernetes_version

  worker_pools = {
    general = {
      selectors = ["omni.sidero.dev/arch = amd64"]
      size      = 1
    }
    large = {
      selectors = ["omni.sidero.dev/arch = amd64, omni.sidero.dev/cores >= 2"]
      size      = 1
    }
  }

  patches = {
    ntp = yamlencode({
      machine = { time = { servers = ["time.cloudflare.com"] } }
    })
  }

  extensions = ["siderolabs/qemu-guest-agent"]
  labels     = { lab = "blue" }
}

module "green" {
  source = "./modules/omni-lab-cluster"

  cluster_name       = "lab-green"
  talos_version      = var.talos_version
  kubernetes_version = var.kubernetes_version

  worker_pools = {
    general = {
      selectors = ["omni.sidero.dev/arch = amd64"]
      size      = 1
    }
  }

  patches = {
    sysctls = yamlencode({
      machine = { sysctls = { "vm.max_map_count" = "262144" } }
    })
  }

  extensions = ["siderolabs/qemu-guest-agent", "siderolabs/iscsi-tools"]
  labels     = { lab = "green" }
}
