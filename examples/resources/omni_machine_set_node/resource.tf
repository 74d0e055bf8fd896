resource "omni_machine_set" "gpu" {
  cluster = "example"
  role    = "workers"
  name    = "gpu"
}

# Put a specific machine into the set (by its UUID), locked against config changes and upgrades.
resource "omni_machine_set_node" "gpu0" {
  cluster     = "example"
  machine_set = omni_machine_set.gpu.id
  machine_id  = "430d882a-51a8-48b3-ae00-90c5b0b5b0b0"
  locked      = true
}
