# A machine set is imported by its ID: <cluster>-control-planes, <cluster>-workers or
# <cluster>-<name>.
terraform import omni_machine_set.workers example-workers
