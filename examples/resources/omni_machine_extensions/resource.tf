# Extensions for every machine of the cluster (ID "schematic-lab").
resource "omni_machine_extensions" "cluster" {
  cluster    = "lab"
  extensions = ["siderolabs/iscsi-tools", "siderolabs/util-linux-tools"]
}

# The workers get a different list: the most specific configuration wins, lists are not merged
# (ID "schematic-lab-workers").
resource "omni_machine_extensions" "workers" {
  cluster = "lab"
  selector {
    machine_set = "lab-workers"
  }
  extensions = ["siderolabs/iscsi-tools", "siderolabs/gvisor"]
}
