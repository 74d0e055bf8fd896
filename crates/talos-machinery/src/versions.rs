//! Talos and Kubernetes versions (image-factory-and-talos.md §7, omni-api.md §4 Cluster).

use serde::Serialize;

/// A Talos release with the Kubernetes versions it supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TalosRelease {
    /// Version without `v`.
    pub version: String,
    /// Compatible Kubernetes versions without `v`, ascending.
    pub compatible_kubernetes: Vec<String>,
}

/// An official system extension in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Extension {
    /// `siderolabs/<name>`.
    pub name: String,
    /// Image reference `ghcr.io/siderolabs/<name>:<tag>`.
    pub image: String,
    /// Synthetic `sha256:` digest, deterministic from name and Talos version.
    pub digest: String,
    /// Author.
    pub author: String,
    /// Description.
    pub description: String,
}

/// An official overlay in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverlayInfo {
    /// Overlay name, e.g. `rpi_generic`.
    pub name: String,
    /// Overlay image, e.g. `siderolabs/sbc-raspberrypi`.
    pub image: String,
    /// Image reference with tag.
    pub reference: String,
    /// Synthetic digest.
    pub digest: String,
}

/// A parsed version (no leading `v`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub semver::Version);

/// Parses a Talos/Kubernetes version, accepting a leading `v`.
pub fn parse_version(s: &str) -> Result<Version, String> {
    let t = s.strip_prefix('v').unwrap_or(s);
    semver::Version::parse(t)
        .map(Version)
        .map_err(|e| format!("version should be in semver format: {e}"))
}

/// Returns the version without a leading `v`.
pub fn normalize_version(s: &str) -> Result<String, String> {
    parse_version(s).map(|v| v.0.to_string())
}

/// Whether Talos `talos` accepts Kubernetes `k8s` (§7.2).
pub fn kubernetes_supported_by_talos(talos: &str, k8s: &str) -> bool {
    let _ = (talos, k8s);
    false
}

/// Whether a Kubernetes change from `from` to `to` is a supported path (same or next minor).
pub fn kubernetes_upgrade_allowed(from: &str, to: &str) -> bool {
    let _ = (from, to);
    false
}

/// Seeded Talos catalogue.
pub fn talos_releases() -> Vec<TalosRelease> {
    Vec::new()
}

/// Seeded Kubernetes catalogue.
pub fn kubernetes_releases() -> Vec<String> {
    Vec::new()
}

/// Official extensions for a Talos version.
pub fn official_extensions(talos_version: &str) -> Vec<Extension> {
    let _ = talos_version;
    Vec::new()
}

/// Official overlays for a Talos version.
pub fn official_overlays(talos_version: &str) -> Vec<OverlayInfo> {
    let _ = talos_version;
    Vec::new()
}
