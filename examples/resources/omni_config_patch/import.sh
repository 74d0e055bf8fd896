# Import by the Omni ConfigPatch ID; template-style IDs ("NNN-<scope>-<name>") map back to
# name, weight and selector, any other ID to id_override.
terraform import omni_config_patch.ntp 200-cluster-lab-ntp
