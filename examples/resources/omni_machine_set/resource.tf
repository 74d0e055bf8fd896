# The control plane: three machines allocated from a machine class.
resource "omni_machine_set" "control_planes" {
  cluster = omni_cluster.example.name
  role    = "controlplane"

  machine_class = {
    name = omni_machine_class.small.name
    size = 3
  }
}

# The default worker set (ID "example-workers"): every machine of a class.
resource "omni_machine_set" "workers" {
  cluster = omni_cluster.example.name
  role    = "workers"

  machine_class = {
    name            = omni_machine_class.large.name
    allocation_type = "unlimited"
  }

  update_strategy = {
    type            = "rolling"
    max_parallelism = 2
  }

  labels = {
    team = "platform"
  }
}

# A named worker set (ID "example-gpu") whose machines are assigned one by one with
# omni_machine_set_node. Apply returns without waiting: its nodes come after it.
resource "omni_machine_set" "gpu" {
  cluster = omni_cluster.example.name
  role    = "workers"
  name    = "gpu"

  delete_strategy = {
    type = "rolling"
  }

  timeouts = {
    delete = "30m"
  }
}
