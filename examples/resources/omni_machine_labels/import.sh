# Import by machine UUID; every user label the machine has becomes managed.
terraform import omni_machine_labels.db 5c0e8a0c-6b1f-4f0e-9a4e-2d6c1f3b7a10
