# Import a schematic by its ID; the document is read back from the Image Factory.
terraform import omni_schematic.storage 613e1592b2da41ae5e265e8789429f22e121aab91cb4deb6bc3c0b6262961245
