//! Image Factory URL builders (image-factory-and-talos.md §3.3, §4.2).

/// Installer image reference.
pub fn installer_image(
    factory_host: &str,
    platform: &str,
    schematic_id: &str,
    talos_version: &str,
    secureboot: bool,
) -> String {
    let _ = (
        factory_host,
        platform,
        schematic_id,
        talos_version,
        secureboot,
    );
    String::new()
}
