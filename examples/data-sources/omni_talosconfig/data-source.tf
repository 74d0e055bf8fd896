# Less safe: the talosconfig is written to the state. With Terraform 1.10 or newer use
# `ephemeral "omni_talosconfig"` instead.
data "omni_talosconfig" "lab" {
  cluster = "lab"
}

output "talos_endpoints" {
  value     = data.omni_talosconfig.lab.endpoints
  sensitive = true
}
