# Import by machine UUID.
terraform import omni_kernel_args.serial_console 5c0e8a0c-6b1f-4f0e-9a4e-2d6c1f3b7a10
