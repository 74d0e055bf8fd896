output "cluster_id" {
  description = "The cluster's ID in Omni (its name)."
  value       = omni_cluster.this.id
}

output "cluster_phase" {
  description = "Cluster phase as Omni reports it."
  value       = data.omni_cluster_status.this.phase
}

output "cluster_ready" {
  description = "Every machine set of the cluster is running and ready."
  value       = data.omni_cluster_status.this.ready
}

output "machines" {
  description = "Machine counts over all machine sets."
  value       = data.omni_cluster_status.this.machines
}

output "schematic_id" {
  description = "Image Factory schematic ID of the cluster's image."
  value       = omni_schematic.this.id
}

output "installer_image" {
  description = "Installer image for the cluster's Talos version and schematic."
  value       = omni_schematic.this.installer_image
}
