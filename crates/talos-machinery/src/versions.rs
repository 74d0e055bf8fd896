//! Talos and Kubernetes versions (image-factory-and-talos.md §7, omni-api.md §4 "Cluster"),
//! plus a seeded release catalogue and the official extension/overlay catalogue for the
//! emulator and plan-time checks.
//!
//! Catalogue provenance: the spec fixes the heads of the 1.12 (1.12.11) and 1.13 (1.13.9)
//! lines, the newest pre-release (1.14.0-rc.1), Kubernetes 1.36.3 as the newest stable and
//! 1.35.4 as a released patch. The last patch of the other lines is a seed assumption chosen
//! for the emulator, marked in [`TALOS_LINES`] and [`KUBERNETES_LINES`]; nothing in Omni's
//! rules depends on those exact heads.

use serde::Serialize;
use sha2::Digest;

/// Omni's default Talos version for new clusters (§7.1).
pub const DEFAULT_TALOS_VERSION: &str = "1.13.8";
/// Omni's default Kubernetes version for new clusters (§7.1).
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.36.3";
/// Talos below this is "deprecated" in Omni (§7.1).
pub const MIN_TALOS_VERSION: &str = "1.9.0";
/// Newest Talos minor Omni supports; stable releases of later minors are "unsupported" (§7.1).
pub const LATEST_SUPPORTED_TALOS_MINOR: (u64, u64) = (1, 13);
/// Talos versions Omni refuses outright (§7.1).
pub const DENIED_TALOS_VERSIONS: &[&str] = &["1.13.1"];
/// The factory's default minimum version for `/versions` (§3.2).
pub const FACTORY_MIN_TALOS_VERSION: &str = "1.2.0";

/// A Talos release with the Kubernetes versions it supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TalosRelease {
    /// Version without `v`.
    pub version: String,
    /// Compatible Kubernetes versions without `v`, ascending.
    pub compatible_kubernetes: Vec<String>,
}

/// An official system extension in the catalogue (factory `GET /version/{v}/extensions/official`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extension {
    /// `siderolabs/<name>`.
    pub name: String,
    /// Image reference `ghcr.io/siderolabs/<name>:<tag>` (the factory calls it `ref`).
    #[serde(rename = "ref")]
    pub image: String,
    /// **Synthetic** `sha256:` digest: SHA-256 of `<name>@<talos version>`, so it is stable
    /// per version but is not the digest of any real image.
    pub digest: String,
    /// Author.
    pub author: String,
    /// Description.
    pub description: String,
}

/// An official overlay in the catalogue (factory `GET /version/{v}/overlays/official`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverlayInfo {
    /// Overlay name, e.g. `rpi_generic`.
    pub name: String,
    /// Overlay image, e.g. `siderolabs/sbc-raspberrypi`.
    pub image: String,
    /// Image reference with tag.
    #[serde(rename = "ref")]
    pub reference: String,
    /// **Synthetic** digest (see [`Extension::digest`]).
    pub digest: String,
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// A parsed Talos or Kubernetes version (stored without `v`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub semver::Version);

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Parses a version the way Omni does for Cluster specs and templates: tolerant semver with
/// an optional leading `v` (see [`parse_tolerant`]). Errors carry Omni's gist
/// (`version should be in semver format`).
pub fn parse_version(s: &str) -> Result<Version, String> {
    parse_tolerant(s).map(Version)
}

/// Parses a full semantic version (`MAJOR.MINOR.PATCH[-pre][+build]`), accepting a leading `v`.
/// This is what the factory path `{v}` requires (§7.1: `1.7` is refused).
pub fn parse_full_version(s: &str) -> Result<semver::Version, String> {
    let t = s.strip_prefix('v').unwrap_or(s);
    semver::Version::parse(t).map_err(|e| format!("version should be in semver format: {e}"))
}

/// Go `semver.ParseTolerant`: trims spaces and a leading `v`, pads `1.2` to `1.2.0`, drops
/// leading zeros. Omni uses it for Cluster versions and templates (§7.1).
pub fn parse_tolerant(s: &str) -> Result<semver::Version, String> {
    let t = s.trim();
    let t = t.strip_prefix('v').unwrap_or(t);
    let mut parts: Vec<String> = t.splitn(3, '.').map(str::to_string).collect();
    if parts.len() < 3 {
        if parts.last().is_some_and(|p| p.contains(['+', '-'])) {
            return Err(
                "version should be in semver format: short version cannot contain PreRelease/Build meta data"
                    .into(),
            );
        }
        while parts.len() < 3 {
            parts.push("0".into());
        }
    }
    for p in parts.iter_mut().take(2) {
        if p.len() > 1 {
            let trimmed = p.trim_start_matches('0');
            *p = if trimmed.is_empty() || !trimmed.starts_with(|c: char| c.is_ascii_digit()) {
                format!("0{trimmed}")
            } else {
                trimmed.to_string()
            };
        }
    }
    // The patch part may carry `-pre+build`: only its numeric head loses leading zeros.
    if let Some(p) = parts.get_mut(2) {
        let end = p.find(['-', '+']).unwrap_or(p.len());
        let (num, rest) = p.split_at(end);
        if num.len() > 1 {
            let trimmed = num.trim_start_matches('0');
            let num = if trimmed.is_empty() { "0" } else { trimmed };
            *p = format!("{num}{rest}");
        }
    }
    semver::Version::parse(&parts.join("."))
        .map_err(|e| format!("version should be in semver format: {e}"))
}

/// The version without a leading `v` (how Omni stores it, §7.1). Tolerant.
pub fn normalize_version(s: &str) -> Result<String, String> {
    parse_tolerant(s).map(|v| v.to_string())
}

/// The version with a leading `v` (factory paths, installer tags, templates, §7.1).
pub fn with_v(s: &str) -> String {
    if s.starts_with('v') {
        s.to_string()
    } else {
        format!("v{s}")
    }
}

/// Omni cluster templates require the Talos version to start with `v` (omni-api.md §7).
pub fn validate_template_talos_version(s: &str) -> Result<(), String> {
    if !s.starts_with('v') {
        return Err("version should start with 'v'".into());
    }
    parse_tolerant(s).map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// Compatibility
// ---------------------------------------------------------------------------------------------

/// Kubernetes minors accepted by each Talos minor (§7.2): `(talos minor, k8s min minor,
/// k8s max minor)`, all with major 1. The max is inclusive here (Talos writes `1.y.99`).
const K8S_SUPPORT: &[(u64, u64, u64)] = &[
    (2, 23, 25),
    (3, 24, 26),
    (4, 25, 27),
    (5, 26, 28),
    (6, 24, 29),
    (7, 25, 30),
    (8, 26, 31),
    (9, 27, 32),
    (10, 28, 33),
    (11, 29, 34),
    (12, 30, 35),
    (13, 31, 36),
    (14, 32, 37),
    (15, 33, 38),
];

/// Range of Kubernetes minors (inclusive) a Talos version supports, or `None` when Talos has
/// no compatibility data for it (`compatibility with version … is not supported`).
pub fn kubernetes_minor_range(talos: &str) -> Option<(u64, u64)> {
    let t = parse_tolerant(talos).ok()?;
    if t.major != 1 {
        return None;
    }
    K8S_SUPPORT
        .iter()
        .find(|(m, _, _)| *m == t.minor)
        .map(|(_, lo, hi)| (*lo, *hi))
}

/// Whether Talos `talos` accepts Kubernetes `k8s` (§7.2): `min ≤ K < 1.<max>.99` on
/// major.minor.patch, pre-release ignored.
pub fn kubernetes_supported_by_talos(talos: &str, k8s: &str) -> bool {
    let (Some((lo, hi)), Ok(k)) = (kubernetes_minor_range(talos), parse_tolerant(k8s)) else {
        return false;
    };
    // Upper bound is 1.<hi>.99 exclusive: patch 99 and above fall outside.
    k.major == 1 && k.minor >= lo && k.minor <= hi && !(k.minor == hi && k.patch >= 99)
}

/// Whether a Kubernetes change from `from` to `to` is a supported path: same minor (any patch,
/// either direction) or the next minor (omni-api.md §4 "Cluster" update).
pub fn kubernetes_upgrade_allowed(from: &str, to: &str) -> bool {
    let (Ok(f), Ok(t)) = (parse_tolerant(from), parse_tolerant(to)) else {
        return false;
    };
    f.major == t.major && (t.minor == f.minor || t.minor == f.minor + 1)
}

/// Oldest Talos minor a host can upgrade from to reach `to_minor` (§7.2 upgrade windows).
pub fn talos_upgrade_min_from_minor(to_minor: u64) -> Option<u64> {
    match to_minor {
        10..=15 => Some(to_minor - 2),
        _ => None,
    }
}

/// Below [`MIN_TALOS_VERSION`]: Omni marks it deprecated (§7.1).
pub fn is_talos_deprecated(version: &str) -> bool {
    match (parse_tolerant(version), parse_tolerant(MIN_TALOS_VERSION)) {
        (Ok(v), Ok(min)) => strip_pre(&v) < min,
        _ => false,
    }
}

/// Stable releases of minors above [`LATEST_SUPPORTED_TALOS_MINOR`] are "unsupported" by this
/// Omni release; their pre-releases are offered only with pre-releases enabled (§7.1).
pub fn is_talos_unsupported(version: &str) -> bool {
    match parse_tolerant(version) {
        Ok(v) => (v.major, v.minor) > LATEST_SUPPORTED_TALOS_MINOR && v.pre.is_empty(),
        Err(_) => true,
    }
}

/// Pre-release of Talos in the forms Omni and the factory keep (`alpha.N`, `beta.N`, `rc.N`).
pub fn is_allowed_prerelease(version: &str) -> bool {
    let Ok(v) = parse_tolerant(version) else {
        return false;
    };
    let pre = v.pre.as_str();
    ["alpha.", "beta.", "rc."].iter().any(|p| {
        pre.strip_prefix(p)
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    })
}

/// On Omni's denylist (§7.1).
pub fn is_talos_denied(version: &str) -> bool {
    normalize_version(version).is_ok_and(|v| DENIED_TALOS_VERSIONS.contains(&v.as_str()))
}

fn strip_pre(v: &semver::Version) -> semver::Version {
    semver::Version::new(v.major, v.minor, v.patch)
}

// ---------------------------------------------------------------------------------------------
// Catalogue
// ---------------------------------------------------------------------------------------------

/// Talos lines in the seed catalogue: `(minor, last patch, from spec?)`.
pub const TALOS_LINES: &[(u64, u64, bool)] = &[
    (2, 9, false),
    (3, 7, false),
    (4, 8, false),
    (5, 5, false),
    (6, 7, false),
    (7, 7, false),
    (8, 4, false),
    (9, 6, false),
    (10, 8, false),
    (11, 6, false),
    (12, 11, true),
    (13, 9, true),
];

/// Newest Talos pre-release (§7.3).
pub const TALOS_PRERELEASE: &str = "1.14.0-rc.1";

/// Kubernetes lines in the seed catalogue: `(minor, last patch, from spec?)`.
pub const KUBERNETES_LINES: &[(u64, u64, bool)] = &[
    (23, 17, false),
    (24, 17, false),
    (25, 16, false),
    (26, 15, false),
    (27, 16, false),
    (28, 15, false),
    (29, 15, false),
    (30, 14, false),
    (31, 14, false),
    (32, 12, false),
    (33, 10, false),
    (34, 8, false),
    (35, 6, false),
    (36, 3, true),
];

fn all_talos_versions() -> Vec<String> {
    let mut out = Vec::new();
    for (minor, last, _) in TALOS_LINES {
        for patch in 0..=*last {
            out.push(format!("1.{minor}.{patch}"));
        }
    }
    out.push(TALOS_PRERELEASE.to_string());
    out
}

/// Every Talos release of the minors Omni supports (1.9 … 1.13, i.e. from
/// [`MIN_TALOS_VERSION`]) plus the newest pre-release, each with the Kubernetes versions of
/// [`kubernetes_releases`] it accepts (§7.2). Ascending. Omni's denylisted 1.13.1 is left out.
pub fn talos_releases() -> Vec<TalosRelease> {
    let k8s = kubernetes_releases();
    all_talos_versions()
        .into_iter()
        .filter(|v| !is_talos_deprecated(v) && !is_talos_denied(v))
        .map(|v| TalosRelease {
            compatible_kubernetes: k8s
                .iter()
                .filter(|k| kubernetes_supported_by_talos(&v, k))
                .cloned()
                .collect(),
            version: v,
        })
        .collect()
}

/// Every Kubernetes patch release of the stable minors covered by §7.2 (1.23 … 1.36), without
/// `v`, ascending.
pub fn kubernetes_releases() -> Vec<String> {
    let mut out = Vec::new();
    for (minor, last, _) in KUBERNETES_LINES {
        for patch in 0..=*last {
            out.push(format!("1.{minor}.{patch}"));
        }
    }
    out
}

/// What the factory's `GET /versions` lists (§3.2): every release from
/// [`FACTORY_MIN_TALOS_VERSION`] (pre-releases only for the highest minor), `v`-prefixed,
/// ascending semver.
pub fn factory_talos_versions() -> Vec<String> {
    let mut versions: Vec<semver::Version> = all_talos_versions()
        .iter()
        .filter_map(|v| parse_full_version(v).ok())
        .collect();
    versions.sort();
    versions.iter().map(|v| format!("v{v}")).collect()
}

/// Whether the factory knows `version` (with or without `v`; must be full semver).
pub fn factory_has_version(version: &str) -> bool {
    parse_full_version(version).is_ok_and(|v| factory_talos_versions().contains(&format!("v{v}")))
}

/// Official extensions: `(name, description, first minor, last minor)`. Renames follow §3.4
/// and §5.1 (1.7 `xe-guest-utilities`→`xen-guest-agent`; 1.8 nvidia `-lts`; 1.9 `i915-ucode`
/// →`i915`, `amdgpu-firmware`→`amdgpu`).
const EXTENSIONS: &[(&str, &str, u64, u64)] = &[
    ("amd-ucode", "AMD CPU microcode updates", 2, 99),
    ("amdgpu-firmware", "AMD GPU firmware", 2, 8),
    ("amdgpu", "AMD GPU firmware and driver", 9, 99),
    ("bnx2-bnx2x", "Broadcom NetXtreme II firmware", 6, 99),
    ("btrfs", "btrfs filesystem driver", 8, 99),
    ("chelsio-drivers", "Chelsio network drivers", 6, 99),
    ("chelsio-firmware", "Chelsio network firmware", 6, 99),
    ("drbd", "DRBD kernel module", 2, 99),
    ("gasket-driver", "Coral gasket driver", 4, 99),
    ("gvisor", "gVisor container runtime", 2, 99),
    ("hello-world-service", "Example service extension", 2, 99),
    ("i915-ucode", "Intel GPU firmware", 2, 8),
    ("i915", "Intel GPU firmware and driver", 9, 99),
    ("intel-ice-firmware", "Intel ice network firmware", 6, 99),
    ("intel-ucode", "Intel CPU microcode updates", 2, 99),
    ("iscsi-tools", "iSCSI tools (iscsid, iscsiadm)", 2, 99),
    ("nut-client", "Network UPS Tools client", 3, 99),
    ("nvidia-container-toolkit", "NVIDIA container toolkit", 2, 7),
    (
        "nvidia-container-toolkit-lts",
        "NVIDIA container toolkit (LTS drivers)",
        8,
        99,
    ),
    (
        "nvidia-container-toolkit-production",
        "NVIDIA container toolkit (production drivers)",
        8,
        99,
    ),
    (
        "nvidia-open-gpu-kernel-modules",
        "NVIDIA open GPU kernel modules",
        2,
        7,
    ),
    (
        "nvidia-open-gpu-kernel-modules-lts",
        "NVIDIA open GPU kernel modules (LTS)",
        8,
        99,
    ),
    (
        "nvidia-open-gpu-kernel-modules-production",
        "NVIDIA open GPU kernel modules (production)",
        8,
        99,
    ),
    (
        "nonfree-kmod-nvidia",
        "NVIDIA proprietary kernel modules",
        2,
        7,
    ),
    (
        "nonfree-kmod-nvidia-lts",
        "NVIDIA proprietary kernel modules (LTS)",
        8,
        99,
    ),
    ("nvidia-fabricmanager", "NVIDIA fabric manager", 2, 7),
    (
        "nvidia-fabric-manager-lts",
        "NVIDIA fabric manager (LTS)",
        8,
        99,
    ),
    ("qemu-guest-agent", "QEMU guest agent", 2, 99),
    ("realtek-firmware", "Realtek network firmware", 6, 99),
    (
        "stargz-snapshotter",
        "stargz snapshotter for containerd",
        2,
        99,
    ),
    ("tailscale", "Tailscale VPN", 3, 99),
    ("thunderbolt", "Thunderbolt/USB4 drivers", 4, 99),
    ("usb-modem-drivers", "USB modem drivers", 6, 99),
    ("util-linux-tools", "util-linux tools (fstrim, ...)", 2, 99),
    ("v4l-uvc-drivers", "V4L2 UVC webcam drivers", 6, 99),
    ("vmtoolsd-guest-agent", "VMware tools guest agent", 6, 99),
    ("xe-guest-utilities", "Xen guest utilities", 2, 6),
    ("xen-guest-agent", "Xen guest agent", 7, 99),
    ("zfs", "ZFS kernel module and tools", 2, 99),
];

/// Overlays: `(name, image)`, available from Talos 1.7.0 (§3.1).
const OVERLAYS: &[(&str, &str)] = &[
    ("rpi_generic", "siderolabs/sbc-raspberrypi"),
    ("rpi_5", "siderolabs/sbc-raspberrypi"),
    ("rock4cplus", "siderolabs/sbc-rockchip"),
    ("rock5a", "siderolabs/sbc-rockchip"),
    ("rock5b", "siderolabs/sbc-rockchip"),
    ("rockpi4", "siderolabs/sbc-rockchip"),
    ("rockpi4c", "siderolabs/sbc-rockchip"),
    ("nanopi-r4s", "siderolabs/sbc-rockchip"),
    ("nanopi-r5s", "siderolabs/sbc-rockchip"),
    ("orangepi-5", "siderolabs/sbc-rockchip"),
    ("orangepi-r1-plus-lts", "siderolabs/sbc-rockchip"),
    ("turingrk1", "siderolabs/sbc-rockchip"),
    ("bananapi_m64", "siderolabs/sbc-allwinner"),
    ("pine64", "siderolabs/sbc-allwinner"),
    ("jetson_nano", "siderolabs/sbc-jetson"),
];

fn synthetic_digest(name: &str, version: &str) -> String {
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(format!("{name}@{version}").as_bytes()))
    )
}

/// Official extensions for a Talos version (sorted by name, like the factory listing). Empty
/// when the version does not parse.
pub fn official_extensions(talos_version: &str) -> Vec<Extension> {
    let Ok(v) = parse_tolerant(talos_version) else {
        return Vec::new();
    };
    let tag = format!("v{v}");
    let mut out: Vec<Extension> = EXTENSIONS
        .iter()
        .filter(|(_, _, lo, hi)| v.major == 1 && v.minor >= *lo && v.minor <= *hi)
        .map(|(name, desc, _, _)| {
            let full = format!("siderolabs/{name}");
            Extension {
                image: format!("ghcr.io/{full}:{tag}"),
                digest: synthetic_digest(&full, &tag),
                name: full,
                author: "Sidero Labs".into(),
                description: (*desc).into(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Whether an extension (name as written; bare names get `siderolabs/`) exists for a version.
pub fn extension_available(name: &str, talos_version: &str) -> bool {
    let full = crate::names::extension_lookup_name(name);
    official_extensions(talos_version)
        .iter()
        .any(|e| e.name == full)
}

/// Official overlays for a Talos version: empty below 1.7.0 (§3.1).
pub fn official_overlays(talos_version: &str) -> Vec<OverlayInfo> {
    let Ok(v) = parse_tolerant(talos_version) else {
        return Vec::new();
    };
    if strip_pre(&v) < semver::Version::new(1, 7, 0) {
        return Vec::new();
    }
    let tag = format!("v{v}");
    OVERLAYS
        .iter()
        .map(|(name, image)| OverlayInfo {
            name: (*name).into(),
            image: (*image).into(),
            reference: format!("ghcr.io/{image}:{tag}"),
            digest: synthetic_digest(name, &tag),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        assert_eq!(normalize_version("v1.13.8").unwrap(), "1.13.8");
        assert_eq!(normalize_version("1.13").unwrap(), "1.13.0");
        assert_eq!(normalize_version(" v1.014.0 ").unwrap(), "1.14.0");
        assert_eq!(normalize_version("v1.14.0-rc.1").unwrap(), "1.14.0-rc.1");
        assert!(normalize_version("1.13-rc.1").is_err());
        assert!(normalize_version("latest").is_err());
        assert!(
            parse_full_version("1.7").is_err(),
            "factory paths need full semver"
        );
        assert!(parse_full_version("v1.7.5").is_ok());
        assert_eq!(
            parse_version("v1.7").unwrap().0,
            semver::Version::new(1, 7, 0)
        );
        assert!(parse_version("1.2.3").unwrap() < parse_version("1.10.0").unwrap());
        assert_eq!(with_v("1.7.5"), "v1.7.5");
        assert_eq!(with_v("v1.7.5"), "v1.7.5");
        assert_eq!(
            validate_template_talos_version("1.13.0").unwrap_err(),
            "version should start with 'v'"
        );
        assert!(validate_template_talos_version("v1.13.0").is_ok());
    }

    #[test]
    fn compatibility_table() {
        assert!(kubernetes_supported_by_talos("1.13.8", "1.36.3"));
        assert!(kubernetes_supported_by_talos("v1.13.8", "v1.31.0"));
        assert!(!kubernetes_supported_by_talos("1.13.8", "1.30.14"));
        assert!(!kubernetes_supported_by_talos("1.13.8", "1.37.0"));
        assert!(kubernetes_supported_by_talos("1.14.0-rc.1", "1.37.0-rc.0"));
        assert!(kubernetes_supported_by_talos("1.6.0", "1.24.0"));
        assert!(!kubernetes_supported_by_talos("1.1.0", "1.23.0"));
        assert!(!kubernetes_supported_by_talos("1.13.8", "1.36.99"));
        assert!(kubernetes_supported_by_talos("1.13.8", "1.36.98"));
        for (talos, lo, hi) in K8S_SUPPORT {
            let t = format!("1.{talos}.0");
            assert!(kubernetes_supported_by_talos(&t, &format!("1.{lo}.0")));
            assert!(!kubernetes_supported_by_talos(
                &t,
                &format!("1.{}.0", lo - 1)
            ));
            assert!(kubernetes_supported_by_talos(&t, &format!("1.{hi}.5")));
            assert!(!kubernetes_supported_by_talos(
                &t,
                &format!("1.{}.0", hi + 1)
            ));
        }
    }

    #[test]
    fn upgrade_paths() {
        assert!(kubernetes_upgrade_allowed("1.35.4", "1.36.3"));
        assert!(kubernetes_upgrade_allowed("1.36.3", "1.36.1"));
        assert!(!kubernetes_upgrade_allowed("1.34.0", "1.36.0"));
        assert!(!kubernetes_upgrade_allowed("1.36.0", "1.35.0"));
        assert_eq!(talos_upgrade_min_from_minor(13), Some(11));
    }

    #[test]
    fn omni_flags() {
        assert!(is_talos_deprecated("1.8.4"));
        assert!(!is_talos_deprecated("1.9.0"));
        assert!(is_talos_unsupported("1.14.0"));
        assert!(!is_talos_unsupported("1.14.0-rc.1"));
        assert!(!is_talos_unsupported("1.13.9"));
        assert!(is_talos_denied("v1.13.1"));
        assert!(is_allowed_prerelease("1.14.0-rc.1"));
        assert!(!is_allowed_prerelease("1.14.0-foo.1"));
    }

    #[test]
    fn catalogue() {
        let talos = talos_releases();
        let names: Vec<&str> = talos.iter().map(|r| r.version.as_str()).collect();
        for v in [
            "1.11.0",
            "1.12.11",
            "1.13.0",
            "1.13.8",
            "1.13.9",
            "1.14.0-rc.1",
        ] {
            assert!(names.contains(&v), "{v}");
        }
        assert!(!names.contains(&"1.13.1"));
        assert!(!names.contains(&"1.8.4"));
        let default = talos
            .iter()
            .find(|r| r.version == DEFAULT_TALOS_VERSION)
            .unwrap();
        assert!(default
            .compatible_kubernetes
            .contains(&DEFAULT_KUBERNETES_VERSION.to_string()));
        assert_eq!(default.compatible_kubernetes.first().unwrap(), "1.31.0");
        assert_eq!(default.compatible_kubernetes.last().unwrap(), "1.36.3");
        let k8s = kubernetes_releases();
        assert_eq!(k8s.first().unwrap(), "1.23.0");
        assert_eq!(k8s.last().unwrap(), "1.36.3");
        assert!(k8s.contains(&"1.35.4".to_string()));
        let fv = factory_talos_versions();
        assert_eq!(fv.first().unwrap(), "v1.2.0");
        assert_eq!(fv.last().unwrap(), "v1.14.0-rc.1");
        assert!(factory_has_version("1.13.1"));
        assert!(!factory_has_version("1.99.0"));
    }

    #[test]
    fn extension_catalogue() {
        let e = official_extensions("v1.13.9");
        let names: Vec<&str> = e.iter().map(|x| x.name.as_str()).collect();
        for n in [
            "siderolabs/iscsi-tools",
            "siderolabs/util-linux-tools",
            "siderolabs/qemu-guest-agent",
            "siderolabs/gvisor",
            "siderolabs/amd-ucode",
            "siderolabs/intel-ucode",
            "siderolabs/nvidia-container-toolkit-lts",
        ] {
            assert!(names.contains(&n), "{n}");
        }
        assert!(!names.contains(&"siderolabs/amdgpu-firmware"));
        assert!(official_extensions("1.8.0")
            .iter()
            .any(|x| x.name == "siderolabs/amdgpu-firmware"));
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let a = official_extensions("1.13.9");
        let b = official_extensions("1.13.8");
        assert_eq!(a[0].digest, official_extensions("1.13.9")[0].digest);
        assert_ne!(a[0].digest, b[0].digest);
        assert!(a[0].digest.starts_with("sha256:") && a[0].digest.len() == 71);
        assert!(extension_available("gvisor", "1.13.0"));
        assert!(!extension_available("siderolabs/nope", "1.13.0"));
        assert!(official_overlays("1.6.0").is_empty());
        let o = official_overlays("1.7.0");
        assert_eq!(o[0].name, "rpi_generic");
        assert_eq!(o[0].image, "siderolabs/sbc-raspberrypi");
        let json = serde_json::to_value(&a[0]).unwrap();
        assert!(json.get("ref").is_some());
    }
}
