data "omni_machines" "free" {
  selector  = "omni.sidero.dev/arch = amd64"
  available = true
}

# Label the first free machine; machine classes can then select it by `role = database`.
resource "omni_machine_labels" "db" {
  machine_id = data.omni_machines.free.ids[0]

  labels = {
    role = "database"
    tier = "gold"
  }
}
