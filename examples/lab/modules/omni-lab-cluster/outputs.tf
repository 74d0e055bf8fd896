output "cluster_id" {
  description = "The cluster's ID in Omni."
  value       = omni_cluster.this.id
}

output "status" {
  description = "Phase, readiness and machine counts of the cluster."
  value = {
    phase    = data.omni_cluster_status.this.phase
    ready    = data.omni_cluster_status.this.ready
    machines = data.omni_cluster_status.this.machines
  }
}

output "machine_set_ids" {
  description = "Machine set IDs by pool name (`control_plane` for the control plane)."
  value = merge(
    { control_plane = omni_machine_set.control_plane.id },
    { for k, s in omni_machine_set.pool : k => s.id },
  )
}

output "schematic_id" {
  description = "Image Factory schematic ID of the cluster's machines."
  value       = omni_schematic.this.id
}

output "installer_image" {
  description = "Installer image for the cluster's Talos version and schematic."
  value       = omni_schematic.this.installer_image
}
