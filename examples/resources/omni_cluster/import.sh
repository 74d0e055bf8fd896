# A cluster is imported by its name.
terraform import omni_cluster.example example
