//! A transport-free model of the Image Factory HTTP API (image-factory-and-talos.md §3) that
//! the emulator mounts on its HTTP listener: schematics are stored in memory under the same
//! IDs the real factory computes; versions and catalogues come from [`crate::versions`].
//!
//! Images, installers and PXE scripts are not built: `GET`/`HEAD` on `/image/…` and `/pxe/…`
//! run the factory's request-time checks (§3.4) and answer a small synthetic body.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::schematic::{self, Schematic};
use crate::versions;

pub use crate::urls;

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactoryResponse {
    /// Status code.
    pub status: u16,
    /// Content-Type.
    pub content_type: String,
    /// Body bytes.
    pub body: Vec<u8>,
}

const TEXT: &str = "text/plain; charset=utf-8";

impl FactoryResponse {
    fn text(status: u16, msg: &str) -> Self {
        // Errors handled by the factory are text/plain bodies ending in a newline (§3).
        FactoryResponse {
            status,
            content_type: TEXT.into(),
            body: format!("{msg}\n").into_bytes(),
        }
    }

    fn json(status: u16, content_type: &str, value: &serde_json::Value) -> Self {
        let mut body = serde_json::to_vec(value).unwrap_or_default();
        body.push(b'\n');
        FactoryResponse {
            status,
            content_type: content_type.into(),
            body,
        }
    }
}

/// Extension names the factory maps to their new names when building images (§3.4).
const EXTENSION_ALIASES: &[(&str, &str)] = &[
    ("siderolabs/v4l-uvc", "siderolabs/v4l-uvc-drivers"),
    ("siderolabs/usb-modem", "siderolabs/usb-modem-drivers"),
    ("siderolabs/gasket", "siderolabs/gasket-driver"),
    (
        "siderolabs/talos-vmtoolsd",
        "siderolabs/vmtoolsd-guest-agent",
    ),
    (
        "siderolabs/xe-guest-utilities",
        "siderolabs/xen-guest-agent",
    ),
    (
        "siderolabs/nvidia-container-toolkit",
        "siderolabs/nvidia-container-toolkit-lts",
    ),
    (
        "siderolabs/nvidia-open-gpu-kernel-modules",
        "siderolabs/nvidia-open-gpu-kernel-modules-lts",
    ),
    (
        "siderolabs/nonfree-kmod-nvidia",
        "siderolabs/nonfree-kmod-nvidia-lts",
    ),
    (
        "siderolabs/nvidia-fabricmanager",
        "siderolabs/nvidia-fabric-manager-lts",
    ),
    ("siderolabs/i915-ucode", "siderolabs/i915"),
    ("siderolabs/amdgpu-firmware", "siderolabs/amdgpu"),
];

/// In-memory Image Factory (community edition: `owner` is refused).
#[derive(Debug, Default)]
pub struct Factory {
    schematics: Mutex<BTreeMap<String, String>>,
}

impl Factory {
    /// New factory with an empty schematic registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a schematic as `POST /schematics` does and returns `(id, canonical YAML)`.
    pub fn create_schematic(
        &self,
        body: &str,
    ) -> Result<(String, String), schematic::SchematicError> {
        let s = schematic::parse(body)?;
        if !s.owner.is_empty() {
            return Err(schematic::SchematicError {
                message: "owner field is only supported in Enterprise edition".into(),
            });
        }
        let canonical = s.canonical_yaml();
        let id = schematic::id_of_canonical(&canonical);
        self.lock().insert(id.clone(), canonical.clone());
        Ok((id, canonical))
    }

    /// The stored canonical YAML of a schematic.
    pub fn schematic(&self, id: &str) -> Option<String> {
        self.lock().get(id).cloned()
    }

    /// Forgets a schematic (test hook: the real factory has lost schematics, §4.1).
    pub fn forget_schematic(&self, id: &str) -> bool {
        self.lock().remove(id).is_some()
    }

    /// Number of stored schematics.
    pub fn schematic_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still
        // usable, so keep serving rather than propagate the panic.
        self.schematics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles one request. `path` may carry a query string.
    pub fn handle(&self, method: &str, path: &str, body: &[u8]) -> FactoryResponse {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let get = method == "GET" || method == "HEAD";
        match (method, segs.as_slice()) {
            ("POST", ["schematics"]) => self.post_schematic(body),
            (_, ["schematics"]) => FactoryResponse::text(405, "Method Not Allowed"),
            (m, ["schematics", id]) if m == "GET" || m == "HEAD" => match self.schematic(id) {
                Some(y) => FactoryResponse {
                    status: 200,
                    content_type: "application/yaml".into(),
                    body: y.into_bytes(),
                },
                None => FactoryResponse::text(404, "schematic not found"),
            },
            (_, ["versions"]) if get => {
                // `?broken=true` lists the configured broken versions: none here.
                let broken = query.split('&').any(|kv| kv == "broken=true");
                let list = if broken {
                    Vec::new()
                } else {
                    versions::factory_talos_versions()
                };
                // The factory does not set a Content-Type; Go sniffs JSON text as plain text.
                FactoryResponse::json(200, TEXT, &serde_json::json!(list))
            }
            (_, ["version", v, "extensions", "official"]) if get => self.with_version(v, |v| {
                let list = versions::official_extensions(v);
                FactoryResponse::json(200, "application/json", &serde_json::json!(list))
            }),
            (_, ["version", v, "overlays", "official"]) if get => self.with_version(v, |v| {
                let list = versions::official_overlays(v);
                FactoryResponse::json(200, "application/json", &serde_json::json!(list))
            }),
            (_, ["image", id, v, asset]) if get => self.image(id, v, asset),
            (_, ["pxe", id, v, asset]) if get => self.image(id, v, asset),
            _ => FactoryResponse::text(404, "404 page not found"),
        }
    }

    fn post_schematic(&self, body: &[u8]) -> FactoryResponse {
        let Ok(text) = std::str::from_utf8(body) else {
            return FactoryResponse::text(400, "yaml: invalid leading UTF-8 octet");
        };
        match self.create_schematic(text) {
            // §3.1: 201 with the ID and (factory ≥ v1.3.0) the canonical schematic.
            Ok((id, canonical)) => FactoryResponse::json(
                201,
                "application/json",
                &serde_json::json!({ "id": id, "schematic": canonical }),
            ),
            Err(e) => FactoryResponse::text(400, &e.message),
        }
    }

    /// `{v}` accepts `1.7.5` or `v1.7.5` but must be full semver (malformed → 500); a version
    /// the factory does not have → 404.
    fn with_version(&self, v: &str, f: impl FnOnce(&str) -> FactoryResponse) -> FactoryResponse {
        let parsed = match versions::parse_full_version(v) {
            Ok(p) => p,
            Err(e) => return FactoryResponse::text(500, &e),
        };
        let with_v = format!("v{parsed}");
        if !versions::factory_has_version(&with_v) {
            return FactoryResponse::text(404, &format!("version {with_v} is not available"));
        }
        f(&with_v)
    }

    fn image(&self, id: &str, v: &str, asset: &str) -> FactoryResponse {
        let Some(canonical) = self.schematic(id) else {
            return FactoryResponse::text(404, "schematic not found");
        };
        self.with_version(v, |v| {
            let s = match schematic::parse(&canonical) {
                Ok(s) => s,
                Err(e) => return FactoryResponse::text(500, &e.message),
            };
            if let Err(msg) = check_for_version(&s, v, asset) {
                return FactoryResponse::text(400, &msg);
            }
            FactoryResponse {
                status: 200,
                content_type: "application/octet-stream".into(),
                body: format!("synthetic asset {asset} for schematic {id} and Talos {v}\n")
                    .into_bytes(),
            }
        })
    }
}

/// The factory's build-time checks of a schematic against a Talos version (§3.4): every
/// extension must exist (after the alias table), the overlay must exist (by name) and needs
/// Talos ≥ 1.7.0, embedded configuration needs Talos ≥ 1.12.0 (ignored for kernel/cmdline).
pub fn check_for_version(s: &Schematic, talos_version: &str, asset: &str) -> Result<(), String> {
    let v = versions::parse_tolerant(talos_version).map_err(|e| e.to_string())?;
    let vv = format!("v{v}");
    let available = versions::official_extensions(&vv);
    for name in &s.customization.official_extensions {
        let mapped = EXTENSION_ALIASES
            .iter()
            .find(|(old, new)| {
                old == name
                    && !available.iter().any(|e| e.name == *old)
                    && available.iter().any(|e| e.name == *new)
            })
            .map(|(_, new)| *new)
            .unwrap_or(name);
        if !available.iter().any(|e| e.name == mapped) {
            return Err(format!(
                "official extension {name:?} is not available for Talos version {vv}"
            ));
        }
    }
    let base = semver::Version::new(v.major, v.minor, v.patch);
    if !s.overlay.name.is_empty() || !s.overlay.image.is_empty() {
        if base < semver::Version::new(1, 7, 0) {
            return Err(format!("overlay is not supported for Talos version {vv}"));
        }
        if !versions::official_overlays(&vv)
            .iter()
            .any(|o| o.name == s.overlay.name)
        {
            return Err(format!(
                "official overlay {:?} is not available for Talos version {vv}",
                s.overlay.name
            ));
        }
    }
    let kernel_only = asset.starts_with("kernel-") || asset.starts_with("cmdline-");
    if !s.customization.embedded_machine_configuration.is_empty()
        && !kernel_only
        && base < semver::Version::new(1, 12, 0)
    {
        return Err(format!(
            "embedding configuration is not supported for Talos version {vv}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VANILLA: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

    fn body(r: &FactoryResponse) -> String {
        String::from_utf8(r.body.clone()).unwrap()
    }

    #[test]
    fn post_and_get_schematic() {
        let f = Factory::new();
        let r = f.handle("POST", "/schematics", b"{}");
        assert_eq!(r.status, 201);
        assert_eq!(r.content_type, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["id"], VANILLA);
        assert_eq!(v["schematic"], "customization: {}\n");
        let r = f.handle("GET", &format!("/schematics/{VANILLA}"), b"");
        assert_eq!(
            (r.status, body(&r)),
            (200, "customization: {}\n".to_string())
        );
        assert_eq!(r.content_type, "application/yaml");
        let r = f.handle("GET", "/schematics/0000", b"");
        assert_eq!(
            (r.status, body(&r)),
            (404, "schematic not found\n".to_string())
        );
        assert!(f.forget_schematic(VANILLA));
        assert_eq!(
            f.handle("GET", &format!("/schematics/{VANILLA}"), b"")
                .status,
            404
        );
    }

    #[test]
    fn post_rejections() {
        let f = Factory::new();
        let r = f.handle("POST", "/schematics", b"something:\n");
        assert_eq!(r.status, 400);
        assert_eq!(
            body(&r),
            "yaml: construct errors: line 1: field something not found in type schematic.Schematic\n"
        );
        let r = f.handle("POST", "/schematics", b"");
        assert_eq!((r.status, body(&r)), (400, "EOF\n".to_string()));
        let r = f.handle("POST", "/schematics", b"owner: me\n");
        assert_eq!(
            (r.status, body(&r)),
            (
                400,
                "owner field is only supported in Enterprise edition\n".to_string()
            )
        );
        assert_eq!(f.schematic_count(), 0);
    }

    #[test]
    fn versions_and_catalogues() {
        let f = Factory::new();
        let r = f.handle("GET", "/versions", b"");
        let list: Vec<String> = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(list[0], "v1.2.0");
        assert!(list.contains(&"v1.13.9".to_string()));
        let r = f.handle("GET", "/versions?broken=true", b"");
        assert_eq!(body(&r), "[]\n");
        let r = f.handle("GET", "/version/1.13.9/extensions/official", b"");
        assert_eq!(r.status, 200);
        let list: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap();
        assert!(list.iter().any(|e| e["name"] == "siderolabs/iscsi-tools"));
        for k in ["name", "ref", "digest", "author", "description"] {
            assert!(list[0].get(k).is_some(), "{k}");
        }
        let r = f.handle("GET", "/version/v1.7.0/overlays/official", b"");
        let list: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(list[0]["name"], "rpi_generic");
        assert!(list[0].get("image").is_some() && list[0].get("ref").is_some());
        let r = f.handle("GET", "/version/v1.99.0/extensions/official", b"");
        assert_eq!(
            (r.status, body(&r)),
            (404, "version v1.99.0 is not available\n".to_string())
        );
        assert_eq!(
            f.handle("GET", "/version/1.7/extensions/official", b"")
                .status,
            500
        );
        assert_eq!(f.handle("GET", "/nope", b"").status, 404);
        assert_eq!(f.handle("DELETE", "/schematics", b"").status, 405);
    }

    #[test]
    fn image_requests_check_the_schematic() {
        let f = Factory::new();
        let (id, _) = f
            .create_schematic(
                "customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/nope]\n",
            )
            .unwrap();
        let r = f.handle("GET", &format!("/image/{id}/v1.13.8/metal-amd64.iso"), b"");
        assert_eq!(r.status, 400);
        assert!(body(&r).contains("official extension \"siderolabs/nope\" is not available"));
        let (ok, _) = f
            .create_schematic("customization:\n  systemExtensions:\n    officialExtensions: [siderolabs/amdgpu-firmware]\n")
            .unwrap();
        // Renamed extension is mapped by the alias table.
        assert_eq!(
            f.handle("GET", &format!("/image/{ok}/v1.13.8/metal-amd64.iso"), b"")
                .status,
            200
        );
        assert_eq!(
            f.handle("HEAD", &format!("/pxe/{ok}/v1.13.8/metal-amd64"), b"")
                .status,
            200
        );
        assert_eq!(
            f.handle("GET", "/image/unknown/v1.13.8/metal-amd64.iso", b"")
                .status,
            404
        );
        let (ov, _) = f
            .create_schematic(
                "overlay:\n  name: rpi_generic\n  image: siderolabs/sbc-raspberrypi\n",
            )
            .unwrap();
        let r = f.handle(
            "GET",
            &format!("/image/{ov}/v1.6.0/metal-arm64.raw.xz"),
            b"",
        );
        assert_eq!(
            (r.status, body(&r)),
            (
                400,
                "overlay is not supported for Talos version v1.6.0\n".to_string()
            )
        );
        let (emb, _) = f
            .create_schematic("customization:\n  embeddedMachineConfiguration: |\n    apiVersion: v1alpha1\n    kind: HostnameConfig\n")
            .unwrap();
        assert_eq!(
            f.handle("GET", &format!("/image/{emb}/v1.11.0/metal-amd64.iso"), b"")
                .status,
            400
        );
        assert_eq!(
            f.handle("GET", &format!("/image/{emb}/v1.11.0/kernel-amd64"), b"")
                .status,
            200
        );
    }
}
