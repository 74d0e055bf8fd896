//! Image Factory URL builders (image-factory-and-talos.md §3.3, §4.2, §5.2). Pure string
//! building, no I/O.

use crate::versions;

/// Default public factory.
pub const DEFAULT_FACTORY_URL: &str = "https://factory.talos.dev";

/// Facts about a platform: default disk image suffix, boot methods, SecureBoot (§4.2 table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformInfo {
    /// Platform name.
    pub name: &'static str,
    /// Default disk image suffix (`None`: no disk image).
    pub disk_suffix: Option<&'static str>,
    /// Boots from a disk image.
    pub boots_disk: bool,
    /// Boots from an ISO.
    pub boots_iso: bool,
    /// Boots via PXE.
    pub boots_pxe: bool,
    /// Supports SecureBoot assets.
    pub secureboot: bool,
}

const fn p(
    name: &'static str,
    disk_suffix: Option<&'static str>,
    disk: bool,
    iso: bool,
    pxe: bool,
    secureboot: bool,
) -> PlatformInfo {
    PlatformInfo {
        name,
        disk_suffix,
        boots_disk: disk,
        boots_iso: iso,
        boots_pxe: pxe,
        secureboot,
    }
}

/// `metal` plus the cloud platforms of §4.2.
pub const PLATFORMS: &[PlatformInfo] = &[
    p("metal", Some("raw.zst"), true, true, true, true),
    p("aws", Some("raw.xz"), true, false, false, false),
    p("gcp", Some("raw.tar.gz"), true, false, false, false),
    p("equinixMetal", None, false, false, true, false),
    p("azure", Some("vhd.xz"), true, false, false, true),
    p("digital-ocean", Some("raw.gz"), true, false, false, false),
    p("nocloud", Some("raw.xz"), true, true, true, true),
    p("openstack", Some("raw.xz"), true, true, true, false),
    p("vmware", Some("ova"), true, true, false, false),
    p("akamai", Some("raw.gz"), true, false, false, false),
    p("cloudstack", Some("raw.gz"), true, false, false, true),
    p("hcloud", Some("raw.xz"), true, false, false, false),
    p("oracle", Some("qcow2"), true, false, false, false),
    p("upcloud", Some("raw.xz"), true, false, false, false),
    p("vultr", None, false, true, true, false),
    p("exoscale", Some("qcow2"), true, false, false, false),
    p("opennebula", Some("raw.zst"), true, true, false, false),
    p("scaleway", Some("raw.zst"), true, true, false, false),
    p("alibabacloud", Some("qcow2"), true, false, false, false),
];

/// Looks a platform up by name.
pub fn platform(name: &str) -> Option<&'static PlatformInfo> {
    PLATFORMS.iter().find(|p| p.name == name)
}

/// Single-board computers known to the TF data source and their overlay names (§4.2).
pub const SBCS: &[(&str, &str)] = &[
    ("rpi_generic", "rpi_generic"),
    ("rpi_5", "rpi_5"),
    ("rock4cplus", "rock4cplus"),
    ("rock5a", "rock5a"),
    ("rock5b", "rock5b"),
    ("rockpi_4", "rockpi4"),
    ("rockpi_4c", "rockpi4c"),
    ("nanopi_r4s", "nanopi-r4s"),
    ("nanopi_r5s", "nanopi-r5s"),
    ("orangepi_5", "orangepi-5"),
    ("orangepi_r1_plus_lts", "orangepi-r1-plus-lts"),
    ("turingrk1", "turingrk1"),
    ("bananapi_m64", "bananapi_m64"),
    ("pine64", "pine64"),
    ("jetson_nano", "jetson_nano"),
];

/// What the image is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `metal` or a cloud platform.
    Platform(String),
    /// A single-board computer (arm64 disk image, metal installer).
    Sbc(String),
}

/// The URL set of the TF `talos_image_factory_urls` data source (§4.2); unavailable ones are
/// `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageUrls {
    /// Installer image reference.
    pub installer: Option<String>,
    /// SecureBoot installer image reference.
    pub installer_secureboot: Option<String>,
    /// ISO URL.
    pub iso: Option<String>,
    /// SecureBoot ISO URL.
    pub iso_secureboot: Option<String>,
    /// Disk image URL.
    pub disk_image: Option<String>,
    /// SecureBoot disk image URL.
    pub disk_image_secureboot: Option<String>,
    /// PXE script URL.
    pub pxe: Option<String>,
    /// Kernel URL.
    pub kernel: Option<String>,
    /// Kernel command line URL.
    pub kernel_command_line: Option<String>,
    /// Initramfs URL.
    pub initramfs: Option<String>,
    /// UKI URL.
    pub uki: Option<String>,
}

/// Splits a factory URL into `(scheme, host[:port])`; a bare host is taken as https.
pub fn split_factory_url(factory_url: &str) -> (String, String) {
    let u = factory_url.trim().trim_end_matches('/');
    match u.split_once("://") {
        Some((scheme, rest)) => (
            scheme.to_string(),
            rest.split('/').next().unwrap_or(rest).to_string(),
        ),
        None => (
            "https".to_string(),
            u.split('/').next().unwrap_or(u).to_string(),
        ),
    }
}

/// Normalised `v`-prefixed version, validated as tolerant semver (§4.2).
pub fn normalize_talos_version(v: &str) -> Result<String, String> {
    let trimmed = v.trim();
    versions::parse_tolerant(trimmed).map_err(|_| "talos_version is not valid".to_string())?;
    Ok(versions::with_v(trimmed))
}

fn check_arch(arch: &str) -> Result<(), String> {
    match arch {
        "amd64" | "arm64" => Ok(()),
        _ => Err(format!("architecture must be amd64 or arm64, got {arch:?}")),
    }
}

/// `<host>/<platform>-installer[-secureboot]/<id>:<v>` — the unified installer form (Talos ≥
/// 1.10; the TF data source always uses it, §4.2).
pub fn installer_image(
    factory_url: &str,
    platform: &str,
    schematic_id: &str,
    talos_version: &str,
    secureboot: bool,
) -> String {
    let (_, host) = split_factory_url(factory_url);
    let sb = secureboot_suffix(secureboot);
    format!(
        "{host}/{platform}-installer{sb}/{schematic_id}:{}",
        versions::with_v(talos_version.trim())
    )
}

/// The installer reference Omni uses (§5.2): unified form for Talos ≥ 1.10, otherwise the
/// legacy `<host>/installer[-secureboot]/<id>:<v>`.
pub fn omni_installer_image(
    factory_url: &str,
    platform: &str,
    schematic_id: &str,
    talos_version: &str,
    secureboot: bool,
) -> String {
    let unified = versions::parse_tolerant(talos_version)
        .map(|v| (v.major, v.minor) >= (1, 10))
        .unwrap_or(true);
    if unified {
        return installer_image(
            factory_url,
            platform,
            schematic_id,
            talos_version,
            secureboot,
        );
    }
    let (_, host) = split_factory_url(factory_url);
    let sb = secureboot_suffix(secureboot);
    format!(
        "{host}/installer{sb}/{schematic_id}:{}",
        versions::with_v(talos_version.trim())
    )
}

/// The `-secureboot` part of an asset or installer name (§3.3).
fn secureboot_suffix(secureboot: bool) -> &'static str {
    if secureboot {
        "-secureboot"
    } else {
        ""
    }
}

fn asset_base(factory_url: &str, schematic_id: &str, v: &str) -> String {
    let (scheme, host) = split_factory_url(factory_url);
    format!("{scheme}://{host}/image/{schematic_id}/{v}")
}

/// ISO URL `…/image/<id>/<v>/<platform>-<arch>[-secureboot].iso`: a disk image whose suffix is
/// `iso`.
pub fn iso_url(
    factory_url: &str,
    schematic_id: &str,
    talos_version: &str,
    platform: &str,
    arch: &str,
    secureboot: bool,
) -> String {
    disk_image_url(
        factory_url,
        schematic_id,
        talos_version,
        platform,
        arch,
        secureboot,
        "iso",
    )
}

/// Disk image URL `…/<platform>-<arch>[-secureboot].<suffix>`.
pub fn disk_image_url(
    factory_url: &str,
    schematic_id: &str,
    talos_version: &str,
    platform: &str,
    arch: &str,
    secureboot: bool,
    suffix: &str,
) -> String {
    let sb = secureboot_suffix(secureboot);
    format!(
        "{}/{platform}-{arch}{sb}.{suffix}",
        asset_base(
            factory_url,
            schematic_id,
            &versions::with_v(talos_version.trim())
        )
    )
}

/// PXE URL `<scheme>://pxe.<host>/pxe/<id>/<v>/<platform>-<arch>[-secureboot]` (the PXE host
/// is `pxe.` + the factory host, §3).
pub fn pxe_url(
    factory_url: &str,
    schematic_id: &str,
    talos_version: &str,
    platform: &str,
    arch: &str,
    secureboot: bool,
) -> String {
    let (scheme, host) = split_factory_url(factory_url);
    let sb = secureboot_suffix(secureboot);
    format!(
        "{scheme}://pxe.{host}/pxe/{schematic_id}/{}/{platform}-{arch}{sb}",
        versions::with_v(talos_version.trim())
    )
}

/// All URLs for a target, following the TF data source rules (§4.2).
pub fn image_urls(
    factory_url: &str,
    schematic_id: &str,
    talos_version: &str,
    arch: &str,
    target: &Target,
) -> Result<ImageUrls, String> {
    let v = normalize_talos_version(talos_version)?;
    let base = asset_base(factory_url, schematic_id, &v);
    match target {
        Target::Sbc(name) => {
            if !SBCS.iter().any(|(s, _)| s == name) {
                return Err(format!("unknown SBC {name:?}"));
            }
            // Architecture is ignored: SBC images are arm64 metal disk images.
            Ok(ImageUrls {
                installer: Some(installer_image(
                    factory_url,
                    "metal",
                    schematic_id,
                    &v,
                    false,
                )),
                disk_image: Some(format!("{base}/metal-arm64.raw.xz")),
                ..ImageUrls::default()
            })
        }
        Target::Platform(name) => {
            check_arch(arch)?;
            let info = platform(name).ok_or_else(|| format!("unknown platform {name:?}"))?;
            // Each asset comes plain and, where the platform supports it, for SecureBoot.
            let both = |url: &dyn Fn(bool) -> String| {
                (Some(url(false)), info.secureboot.then(|| url(true)))
            };
            let mut u = ImageUrls::default();
            (u.installer, u.installer_secureboot) =
                both(&|sb| installer_image(factory_url, name, schematic_id, &v, sb));
            if info.boots_iso {
                (u.iso, u.iso_secureboot) =
                    both(&|sb| iso_url(factory_url, schematic_id, &v, name, arch, sb));
            }
            if let (true, Some(sfx)) = (info.boots_disk, info.disk_suffix) {
                (u.disk_image, u.disk_image_secureboot) =
                    both(&|sb| disk_image_url(factory_url, schematic_id, &v, name, arch, sb, sfx));
            }
            if info.boots_pxe {
                u.pxe = Some(pxe_url(factory_url, schematic_id, &v, name, arch, false));
            }
            if name == "metal" {
                u.kernel = Some(format!("{base}/kernel-{arch}"));
                u.kernel_command_line = Some(format!("{base}/cmdline-metal-{arch}"));
                u.initramfs = Some(format!("{base}/initramfs-{arch}.xz"));
                u.uki = Some(format!("{base}/metal-{arch}-secureboot-uki.efi"));
            }
            Ok(u)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

    #[test]
    fn installer_forms() {
        // §3.3 example.
        assert_eq!(
            installer_image(DEFAULT_FACTORY_URL, "metal", ID, "v1.7.5", false),
            format!("factory.talos.dev/metal-installer/{ID}:v1.7.5")
        );
        assert_eq!(
            omni_installer_image(DEFAULT_FACTORY_URL, "metal", ID, "1.9.2", true),
            format!("factory.talos.dev/installer-secureboot/{ID}:v1.9.2")
        );
        assert_eq!(
            omni_installer_image("http://127.0.0.1:8080/", "aws", ID, "1.13.8", false),
            format!("127.0.0.1:8080/aws-installer/{ID}:v1.13.8")
        );
    }

    #[test]
    fn metal_urls() {
        let u = image_urls(
            DEFAULT_FACTORY_URL,
            ID,
            "1.13.8",
            "amd64",
            &Target::Platform("metal".into()),
        )
        .unwrap();
        let base = format!("https://factory.talos.dev/image/{ID}/v1.13.8");
        assert_eq!(u.iso.unwrap(), format!("{base}/metal-amd64.iso"));
        assert_eq!(
            u.iso_secureboot.unwrap(),
            format!("{base}/metal-amd64-secureboot.iso")
        );
        assert_eq!(u.disk_image.unwrap(), format!("{base}/metal-amd64.raw.zst"));
        assert_eq!(
            u.disk_image_secureboot.unwrap(),
            format!("{base}/metal-amd64-secureboot.raw.zst")
        );
        assert_eq!(
            u.pxe.unwrap(),
            format!("https://pxe.factory.talos.dev/pxe/{ID}/v1.13.8/metal-amd64")
        );
        assert_eq!(u.kernel.unwrap(), format!("{base}/kernel-amd64"));
        assert_eq!(
            u.kernel_command_line.unwrap(),
            format!("{base}/cmdline-metal-amd64")
        );
        assert_eq!(u.initramfs.unwrap(), format!("{base}/initramfs-amd64.xz"));
        assert_eq!(
            u.uki.unwrap(),
            format!("{base}/metal-amd64-secureboot-uki.efi")
        );
        assert_eq!(
            u.installer_secureboot.unwrap(),
            format!("factory.talos.dev/metal-installer-secureboot/{ID}:v1.13.8")
        );
    }

    #[test]
    fn cloud_and_sbc_urls() {
        let aws = image_urls(
            DEFAULT_FACTORY_URL,
            ID,
            "v1.13.8",
            "arm64",
            &Target::Platform("aws".into()),
        )
        .unwrap();
        assert!(aws.installer.is_some() && aws.installer_secureboot.is_none());
        assert!(aws.iso.is_none() && aws.pxe.is_none() && aws.kernel.is_none());
        assert!(aws.disk_image.unwrap().ends_with("/aws-arm64.raw.xz"));
        let vultr = image_urls(
            DEFAULT_FACTORY_URL,
            ID,
            "1.13.8",
            "amd64",
            &Target::Platform("vultr".into()),
        )
        .unwrap();
        assert!(vultr.disk_image.is_none() && vultr.iso.is_some() && vultr.pxe.is_some());
        let azure = image_urls(
            DEFAULT_FACTORY_URL,
            ID,
            "1.13.8",
            "amd64",
            &Target::Platform("azure".into()),
        )
        .unwrap();
        assert!(azure
            .disk_image_secureboot
            .unwrap()
            .ends_with("azure-amd64-secureboot.vhd.xz"));
        let sbc = image_urls(
            DEFAULT_FACTORY_URL,
            ID,
            "1.13.8",
            "amd64",
            &Target::Sbc("rpi_generic".into()),
        )
        .unwrap();
        assert_eq!(
            sbc.installer.unwrap(),
            format!("factory.talos.dev/metal-installer/{ID}:v1.13.8")
        );
        assert!(sbc.disk_image.unwrap().ends_with("/metal-arm64.raw.xz"));
        assert!(sbc.iso.is_none());
        assert_eq!(
            image_urls(
                DEFAULT_FACTORY_URL,
                ID,
                "latest",
                "amd64",
                &Target::Platform("metal".into())
            )
            .unwrap_err(),
            "talos_version is not valid"
        );
        assert!(image_urls(
            DEFAULT_FACTORY_URL,
            ID,
            "1.13.8",
            "riscv",
            &Target::Platform("metal".into())
        )
        .is_err());
        assert!(image_urls(
            DEFAULT_FACTORY_URL,
            ID,
            "1.13.8",
            "amd64",
            &Target::Platform("nope".into())
        )
        .is_err());
    }
}
