# A talosconfig for the cluster, never stored in the plan or the state.
ephemeral "omni_talosconfig" "lab" {
  cluster = "lab"
}

resource "terraform_data" "talos_health" {
  provisioner "local-exec" {
    command = "printf '%s' \"$TALOSCONFIG_DATA\" > /tmp/lab.talosconfig && talosctl --talosconfig /tmp/lab.talosconfig health && rm /tmp/lab.talosconfig"
    environment = {
      TALOSCONFIG_DATA = ephemeral.omni_talosconfig.lab.talosconfig_raw
    }
  }
}
