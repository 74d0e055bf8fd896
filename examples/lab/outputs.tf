output "clusters" {
  description = "Both lab clusters: ID, status, machine sets, schematic and installer image."
  value = {
    for name, c in { blue = module.blue, green = module.green } : name => {
      cluster_id          = c.cluster_id
      status              = c.status
      machine_set_ids     = c.machine_set_ids
      schematic_id        = c.schematic_id
      installer_image     = c.installer_image
    }
  }
}
