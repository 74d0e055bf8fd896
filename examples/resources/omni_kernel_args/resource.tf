resource "omni_kernel_args" "serial_console" {
  machine_id = "5c0e8a0c-6b1f-4f0e-9a4e-2d6c1f3b7a10"

  args = [
    "console=ttyS0,115200",
    "net.ifnames=0",
  ]
}
