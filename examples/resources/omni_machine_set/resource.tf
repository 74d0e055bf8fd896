# The control plane: three machines allocated from a machine class.
resource "omni_machine_set" "control_planes" {
  cluster = "example"
  role    = "controlplane"

  machine_class = {
    name = "small"
    size = 3
  }
}

# The default worker set (ID "example-workers"): every machine of a class.
resource "omni_machine_set" "workers" {
  cluster = "example"
  role    = "workers"

  machine_class = {
    name            = "large"
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
  cluster = "example"
  role    = "workers"
  name    = "gpu"

  delete_strategy = {
    type = "rolling"
  }

  timeouts = {
    delete = "30m"
  }
}
