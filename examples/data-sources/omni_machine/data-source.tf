data "omni_machine" "first" {
  id = "5c0e8a0c-6b1f-4f0e-9a4e-2d6c1f3b7a10"
}

output "first_machine" {
  value = {
    hostname  = data.omni_machine.first.hostname
    addresses = data.omni_machine.first.addresses
    cores     = data.omni_machine.first.cores
    memory    = data.omni_machine.first.memory
    cluster   = data.omni_machine.first.cluster
  }
}
