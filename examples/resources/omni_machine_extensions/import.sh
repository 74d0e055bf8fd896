# Import by the Omni ExtensionsConfiguration ID: schematic-<cluster | machine set ID | machine UUID>.
terraform import omni_machine_extensions.workers schematic-lab-workers
