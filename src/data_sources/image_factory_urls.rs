//! `omni_image_factory_urls`: installer image and boot asset URLs for a schematic, Talos
//! version, platform and architecture (image-factory-and-talos.md §3.3, §4.2). Pure string
//! building: no request is made.

use serde::{Deserialize, Serialize};
use talos_machinery::urls::{self, Target};
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, DataSource, Diagnostic, Diagnostics, Result,
    Schema, Value,
};

const DESCRIPTION: &str = "Builds the [Image Factory](https://factory.talos.dev) references for \
one schematic and Talos version: the installer image and the URLs of the ISO, disk image, iPXE \
script, kernel, kernel command line, initramfs and UKI, for a `platform` (metal or a cloud) or a \
single-board computer (`sbc`). Each URL is set only when the platform boots that way (e.g. \
`aws` has a disk image but no ISO; `vultr` has an ISO and PXE but no disk image); the others are \
null. Nothing is requested from the factory, so this works at plan time with \
`omni_schematic.id`.";

/// `omni_image_factory_urls` state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct UrlsState {
    /// Talos version.
    pub talos_version: Value<String>,
    /// Schematic ID.
    pub schematic_id: Value<String>,
    /// Platform.
    pub platform: Value<String>,
    /// Single-board computer.
    pub sbc: Value<String>,
    /// Architecture.
    pub architecture: Value<String>,
    /// SecureBoot variants.
    pub secureboot: Value<bool>,
    /// Installer image.
    pub installer_image: Value<String>,
    /// ISO.
    pub iso_url: Value<String>,
    /// Disk image.
    pub disk_image_url: Value<String>,
    /// iPXE script.
    pub pxe_url: Value<String>,
    /// Kernel.
    pub kernel_url: Value<String>,
    /// Kernel command line.
    pub kernel_command_line_url: Value<String>,
    /// Initramfs.
    pub initramfs_url: Value<String>,
    /// UKI.
    pub uki_url: Value<String>,
}

/// The data source.
pub struct ImageFactoryUrlsDataSource;

fn err(attr: &str, summary: &str, detail: String) -> Diagnostics {
    Diagnostic::error(summary, detail)
        .at(AttributePath::new(attr))
        .into()
}

/// Checks what can be checked with the values known so far.
fn check(c: &UrlsState) -> Result<()> {
    if let Some(id) = c.schematic_id.as_str() {
        if id.len() != 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(err(
                "schematic_id",
                "Invalid schematic ID",
                format!("{id:?} is not a schematic ID (64 lowercase hex characters)."),
            ));
        }
    }
    if let Some(v) = c.talos_version.as_str() {
        urls::normalize_talos_version(v).map_err(|_| {
            err(
                "talos_version",
                "Invalid Talos version",
                format!("{v:?} is not a Talos version (e.g. `v1.13.9`)."),
            )
        })?;
    }
    if !c.platform.is_null() && !c.sbc.is_null() {
        return Err(err(
            "sbc",
            "Conflicting targets",
            "Set either `platform` or `sbc`, not both.".into(),
        ));
    }
    if let Some(p) = c.platform.as_str() {
        let Some(info) = urls::platform(p) else {
            let known: Vec<&str> = urls::PLATFORMS.iter().map(|p| p.name).collect();
            return Err(err(
                "platform",
                "Unknown platform",
                format!(
                    "{p:?} is not a Talos platform; use one of {}.",
                    known.join(", ")
                ),
            ));
        };
        if c.secureboot.as_option() == Some(&true) && !info.secureboot {
            return Err(err(
                "secureboot",
                "No SecureBoot images",
                format!("The platform {p:?} has no SecureBoot images."),
            ));
        }
    }
    if let Some(s) = c.sbc.as_str() {
        if !urls::SBCS.iter().any(|(n, _)| n == &s) {
            let known: Vec<&str> = urls::SBCS.iter().map(|(n, _)| *n).collect();
            return Err(err(
                "sbc",
                "Unknown single-board computer",
                format!(
                    "{s:?} is not a known board; use one of {}.",
                    known.join(", ")
                ),
            ));
        }
        if c.secureboot.as_option() == Some(&true) {
            return Err(err(
                "secureboot",
                "No SecureBoot images",
                "Single-board computer images have no SecureBoot variant.".into(),
            ));
        }
    }
    if let Some(a) = c.architecture.as_str() {
        if a != "amd64" && a != "arm64" {
            return Err(err(
                "architecture",
                "Invalid architecture",
                format!("`architecture` must be `amd64` or `arm64`, got {a:?}."),
            ));
        }
    }
    Ok(())
}

/// Fills the outputs (all inputs known).
fn fill(mut c: UrlsState, factory_url: &str) -> Result<UrlsState> {
    check(&c)?;
    let id = c.schematic_id.as_str().unwrap_or_default().to_string();
    let version = c.talos_version.as_str().unwrap_or_default().to_string();
    let secureboot = c.secureboot.as_option() == Some(&true);
    let target = match c.sbc.as_str() {
        Some(s) => {
            // SBC images are arm64 whatever is asked (§4.2).
            c.architecture = Value::Known("arm64".into());
            Target::Sbc(s.to_string())
        }
        None => {
            let p = c.platform.as_str().unwrap_or("metal").to_string();
            c.platform = Value::Known(p.clone());
            if c.architecture.is_null() {
                c.architecture = Value::Known("amd64".into());
            }
            Target::Platform(p)
        }
    };
    let arch = c.architecture.as_str().unwrap_or("amd64").to_string();
    let u = urls::image_urls(factory_url, &id, &version, &arch, &target)
        .map_err(|e| err("talos_version", "Cannot build the URLs", e))?;
    let pick = |plain: Option<String>, sb: Option<String>| -> Value<String> {
        if secureboot {
            sb.into()
        } else {
            plain.into()
        }
    };
    c.installer_image = pick(u.installer, u.installer_secureboot);
    c.iso_url = pick(u.iso, u.iso_secureboot);
    c.disk_image_url = pick(u.disk_image, u.disk_image_secureboot);
    // §3.1: the iPXE script path takes the `-secureboot` suffix like the other assets.
    c.pxe_url = match (u.pxe, &target) {
        (Some(_), Target::Platform(p)) if secureboot => {
            Value::Known(urls::pxe_url(factory_url, &id, &version, p, &arch, true))
        }
        (pxe, _) => pxe.into(),
    };
    c.kernel_url = u.kernel.into();
    c.kernel_command_line_url = match u.kernel_command_line {
        Some(cmdline) if secureboot => Value::Known(format!("{cmdline}-secureboot")),
        other => other.into(),
    };
    c.initramfs_url = u.initramfs.into();
    c.uki_url = u.uki.into();
    c.secureboot = Value::Known(secureboot);
    Ok(c)
}

#[async_trait]
impl DataSource for ImageFactoryUrlsDataSource {
    const TYPE_NAME: &'static str = "omni_image_factory_urls";
    type State = UrlsState;

    fn schema(&self) -> Schema {
        let url = |name: &str, what: &str| Attribute::string(name).computed().description(what);
        Schema::new(DESCRIPTION)
            .attribute(Attribute::string("talos_version").required().description(
                "Talos version, e.g. `v1.13.9` (the `v` is optional).",
            ))
            .attribute(Attribute::string("schematic_id").required().description(
                "Schematic ID, e.g. `omni_schematic.this.id`.",
            ))
            .attribute(Attribute::string("platform").optional_computed().description(
                "`metal` (default) or a cloud platform: `aws`, `gcp`, `azure`, `nocloud`, \
                 `openstack`, `vmware`, `hcloud`, ... Conflicts with `sbc`.",
            ))
            .attribute(Attribute::string("sbc").optional().description(
                "Single-board computer, e.g. `rpi_generic`, `rock5b`, `turingrk1`: gives the \
                 metal installer and the arm64 disk image. Conflicts with `platform`.",
            ))
            .attribute(Attribute::string("architecture").optional_computed().description(
                "`amd64` (default) or `arm64`. Always `arm64` for an `sbc`.",
            ))
            .attribute(Attribute::bool("secureboot").optional_computed().description(
                "SecureBoot variants of the installer, ISO, disk image, PXE script and kernel \
                 command line. Defaults to `false`; an error for platforms without SecureBoot.",
            ))
            .attribute(url(
                "installer_image",
                "Installer image, `<factory host>/<platform>-installer[-secureboot]/<id>:<version>`.",
            ))
            .attribute(url("iso_url", "ISO URL; null when the platform does not boot from an ISO."))
            .attribute(url(
                "disk_image_url",
                "Disk image URL in the platform's default format; null when the platform does not \
                 boot from a disk image.",
            ))
            .attribute(url("pxe_url", "iPXE script URL; null when the platform does not boot via PXE."))
            .attribute(url("kernel_url", "Kernel URL (`metal` only)."))
            .attribute(url("kernel_command_line_url", "Kernel command line URL (`metal` only)."))
            .attribute(url("initramfs_url", "Initramfs URL (`metal` only)."))
            .attribute(url("uki_url", "Unified kernel image (SecureBoot) URL (`metal` only)."))
    }

    async fn validate(&self, _ctx: &Ctx, config: &UrlsState) -> Result<()> {
        check(config)
    }

    async fn read(&self, ctx: &Ctx, config: UrlsState) -> Result<UrlsState> {
        let factory_url = crate::common::configured(ctx)?
            .settings
            .image_factory_url
            .clone();
        fill(config, &factory_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";
    const F: &str = "https://factory.talos.dev";

    fn cfg() -> UrlsState {
        UrlsState {
            talos_version: "1.13.9".into(),
            schematic_id: ID.into(),
            platform: Value::Null,
            sbc: Value::Null,
            architecture: Value::Null,
            secureboot: Value::Null,
            installer_image: Value::Null,
            iso_url: Value::Null,
            disk_image_url: Value::Null,
            pxe_url: Value::Null,
            kernel_url: Value::Null,
            kernel_command_line_url: Value::Null,
            initramfs_url: Value::Null,
            uki_url: Value::Null,
        }
    }

    #[test]
    fn metal_defaults_and_secureboot() {
        let u = fill(cfg(), F).unwrap();
        assert_eq!(u.platform.as_str(), Some("metal"));
        assert_eq!(u.architecture.as_str(), Some("amd64"));
        let base = format!("{F}/image/{ID}/v1.13.9");
        assert_eq!(
            u.iso_url.as_str().unwrap(),
            format!("{base}/metal-amd64.iso")
        );
        assert_eq!(
            u.installer_image.as_str().unwrap(),
            format!("factory.talos.dev/metal-installer/{ID}:v1.13.9")
        );
        let mut c = cfg();
        c.secureboot = true.into();
        c.architecture = "arm64".into();
        let s = fill(c, F).unwrap();
        assert_eq!(
            s.iso_url.as_str().unwrap(),
            format!("{base}/metal-arm64-secureboot.iso")
        );
        assert_eq!(
            s.disk_image_url.as_str().unwrap(),
            format!("{base}/metal-arm64-secureboot.raw.zst")
        );
        assert_eq!(
            s.pxe_url.as_str().unwrap(),
            format!("https://pxe.factory.talos.dev/pxe/{ID}/v1.13.9/metal-arm64-secureboot")
        );
        assert_eq!(
            s.kernel_command_line_url.as_str().unwrap(),
            format!("{base}/cmdline-metal-arm64-secureboot")
        );
        assert_eq!(
            s.installer_image.as_str().unwrap(),
            format!("factory.talos.dev/metal-installer-secureboot/{ID}:v1.13.9")
        );
    }

    #[test]
    fn cloud_and_sbc() {
        let mut c = cfg();
        c.platform = "aws".into();
        let u = fill(c, F).unwrap();
        assert!(u.iso_url.is_null() && u.pxe_url.is_null() && u.kernel_url.is_null());
        assert!(u
            .disk_image_url
            .as_str()
            .unwrap()
            .ends_with("/aws-amd64.raw.xz"));
        let mut c = cfg();
        c.sbc = "rpi_generic".into();
        c.architecture = "amd64".into();
        let u = fill(c, F).unwrap();
        assert_eq!(u.architecture.as_str(), Some("arm64"));
        assert!(u
            .disk_image_url
            .as_str()
            .unwrap()
            .ends_with("/metal-arm64.raw.xz"));
        assert!(u.iso_url.is_null());
    }

    #[test]
    fn bad_inputs_name_their_attribute() {
        let path = |c: UrlsState| check(&c).unwrap_err().0[0].path.clone().unwrap();
        let mut c = cfg();
        c.schematic_id = "abc".into();
        assert_eq!(path(c), AttributePath::new("schematic_id"));
        let mut c = cfg();
        c.talos_version = "latest".into();
        assert_eq!(path(c), AttributePath::new("talos_version"));
        let mut c = cfg();
        c.platform = "aws".into();
        c.secureboot = true.into();
        assert_eq!(path(c), AttributePath::new("secureboot"));
        let mut c = cfg();
        c.platform = "metal".into();
        c.sbc = "rpi_generic".into();
        assert_eq!(path(c), AttributePath::new("sbc"));
        let mut c = cfg();
        c.platform = "amiga".into();
        assert_eq!(path(c), AttributePath::new("platform"));
        let mut c = cfg();
        c.architecture = "s390x".into();
        assert_eq!(path(c), AttributePath::new("architecture"));
    }
}
