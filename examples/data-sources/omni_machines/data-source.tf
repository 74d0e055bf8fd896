# Free amd64 machines with at least 8 cores and 32 GiB of memory.
data "omni_machines" "workers" {
  selector  = "omni.sidero.dev/arch = amd64, omni.sidero.dev/cores >= 8, omni.sidero.dev/mem >= 32GiB"
  available = true
  connected = true
}

# Machines labelled by omni_machine_labels.
data "omni_machines" "database" {
  selector = "role = database, zone in (eu-west-1a, eu-west-1b)"
}

# Everything in one cluster.
data "omni_machines" "lab" {
  cluster = "lab"
}

output "worker_ids" {
  value = data.omni_machines.workers.ids
}

output "lab_hostnames" {
  value = [for m in data.omni_machines.lab.machines : m.hostname]
}
