# Import by class name.
terraform import omni_machine_class.big big
