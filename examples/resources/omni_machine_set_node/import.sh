# A machine set node is imported by the machine's UUID.
terraform import omni_machine_set_node.gpu0 430d882a-51a8-48b3-ae00-90c5b0b5b0b0
