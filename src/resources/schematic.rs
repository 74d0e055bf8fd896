//! `omni_schematic`: a Talos Image Factory schematic whose ID is known at plan time
//! (image-factory-and-talos.md §1–§5).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use talos_machinery::schematic::{self as sm, Bootloader, Schematic, SchematicBuilder};
use talos_machinery::urls;
use talos_machinery::yaml::Flavor;
use tfplugin::{
    async_trait, Attribute, AttributePath, Ctx, Diagnostic, Diagnostics, Nesting, PrivateState,
    Resource, Result, Schema, Type, Value,
};

use crate::common::factory_http::{self, factory_error};

const DESCRIPTION: &str = "A [Talos Image Factory](https://factory.talos.dev) **schematic**: the \
customisation (system extensions, kernel arguments, META values, overlay, SecureBoot, bootloader) \
of the Talos images, installers and PXE scripts the factory builds.\n\n\
The schematic `id` is computed by the provider **at plan time**, exactly as the factory computes \
it (strict parse, canonical YAML, SHA-256), so anything depending on it (VM definitions, PXE \
configuration, `installer_image`) is planned with its final value. On apply the schematic is \
registered with the factory; if the factory assigns a different ID (a factory release that \
encodes schematics differently), the apply fails instead of storing a wrong ID.\n\n\
Give the schematic either with the structured attributes (`extensions`, `extra_kernel_args`, \
`meta`, `overlay`, `secureboot`, `bootloader`) or as a raw `schematic` document, not both. No \
attribute at all is the vanilla schematic. Unknown or misspelt fields in a raw document are \
errors at plan time, as they are at the factory.\n\n\
A change that changes the ID replaces the resource; a change that keeps it (reformatting the raw \
document, switching between the two styles, `talos_version`, `platform`, `architecture`, \
`register_via`) is an in-place update. Schematics are content-addressed and the factory has no \
delete: destroying the resource only forgets it. Refresh checks the factory still serves the \
schematic and plans to register it again when it does not.\n\n\
Import with the schematic ID; the document is read back from the factory.";

/// `omni_schematic` state.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SchematicState {
    /// Schematic ID (SHA-256 of the canonical YAML).
    pub id: Value<String>,
    /// Raw schematic document (YAML or JSON).
    pub schematic: Value<String>,
    /// `customization.systemExtensions.officialExtensions`.
    pub extensions: Value<Vec<Value<String>>>,
    /// `customization.extraKernelArgs`.
    pub extra_kernel_args: Value<Vec<Value<String>>>,
    /// `customization.meta`, key (0–255, decimal) → value.
    pub meta: Value<BTreeMap<String, Value<String>>>,
    /// `overlay`.
    pub overlay: Value<OverlayState>,
    /// `customization.secureboot`.
    pub secureboot: Value<SecureBootState>,
    /// `customization.bootloader`.
    pub bootloader: Value<String>,
    /// `factory` or `omni`.
    pub register_via: Value<String>,
    /// Talos version for the computed image references.
    pub talos_version: Value<String>,
    /// Platform of the computed image references.
    pub platform: Value<String>,
    /// Architecture of the computed image references.
    pub architecture: Value<String>,
    /// Canonical YAML.
    pub schematic_yaml: Value<String>,
    /// Installer image reference.
    pub installer_image: Value<String>,
    /// SecureBoot installer image reference.
    pub secureboot_installer_image: Value<String>,
    /// ISO URL.
    pub iso_url: Value<String>,
    /// Disk image URL.
    pub disk_image_url: Value<String>,
    /// PXE script URL.
    pub pxe_url: Value<String>,
}

/// `overlay` object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OverlayState {
    /// Overlay name, e.g. `rpi_generic`.
    pub name: Value<String>,
    /// Overlay image, e.g. `siderolabs/sbc-raspberrypi`.
    pub image: Value<String>,
    /// Overlay options as a YAML/JSON mapping.
    pub options: Value<String>,
}

/// `secureboot` object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SecureBootState {
    /// `includeWellKnownCertificates`.
    pub include_well_known_certificates: Value<bool>,
}

/// The `omni_schematic` resource.
pub struct SchematicResource;

/// Attributes that make up the schematic document (a change may change the ID).
const INPUTS: &[&str] = &[
    "schematic",
    "extensions",
    "extra_kernel_args",
    "meta",
    "overlay",
    "secureboot",
    "bootloader",
];

const REGISTER_FACTORY: &str = "factory";
const REGISTER_OMNI: &str = "omni";
const DEFAULT_PLATFORM: &str = "metal";
const DEFAULT_ARCH: &str = "amd64";

fn schema() -> Schema {
    Schema::new(DESCRIPTION)
        .attribute(Attribute::string("id").computed().description(
            "Schematic ID: lowercase hex SHA-256 of `schematic_yaml`, the same for every Talos \
             version. Known at plan time (except for the rare documents whose encoding differs \
             between factory releases: whole strings such as `yes`, `off`, `1:20` or `<<`).",
        ))
        .attribute(Attribute::string("schematic").optional().description(
            "The schematic as a raw document (YAML or JSON, e.g. from `yamlencode()` or a file), \
             as it would be sent to `POST /schematics`. Parsed strictly like the factory does: \
             unknown fields and wrongly typed values are plan-time errors. Conflicts with the \
             structured attributes.",
        ))
        .attribute(Attribute::list("extensions", Type::String).optional().description(
            "Official system extensions, e.g. `[\"siderolabs/iscsi-tools\"]`. The order is kept \
             (the factory does not sort; a different order is a different schematic).",
        ))
        .attribute(Attribute::list("extra_kernel_args", Type::String).optional().description(
            "Extra kernel arguments, in order.",
        ))
        .attribute(Attribute::map("meta", Type::String).optional().description(
            "Talos META values: key (a decimal number 0–255, e.g. `\"10\"`) → value. Emitted in \
             ascending key order.",
        ))
        .attribute(
            Attribute::nested(
                "overlay",
                Nesting::Single,
                vec![
                    Attribute::string("name").required().description(
                        "Overlay name as listed by `omni_image_factory_overlays`, e.g. \
                         `rpi_generic`.",
                    ),
                    Attribute::string("image").optional().description(
                        "Overlay image, e.g. `siderolabs/sbc-raspberrypi`. Omitted means an \
                         empty image (a different schematic than with the image).",
                    ),
                    Attribute::string("options").optional().description(
                        "Overlay options as a YAML or JSON mapping, e.g. \
                         `yamlencode({ configTxtAppend = \"dtoverlay=disable-bt\" })`.",
                    ),
                ],
            )
            .optional()
            .description("Board overlay (single-board computers)."),
        )
        .attribute(
            Attribute::nested(
                "secureboot",
                Nesting::Single,
                vec![Attribute::bool("include_well_known_certificates")
                    .optional()
                    .description(
                        "Enroll the well-known (Microsoft) UEFI certificates next to the \
                         factory's SecureBoot key. Defaults to `false`.",
                    )],
            )
            .optional()
            .description("SecureBoot settings."),
        )
        .attribute(Attribute::string("bootloader").optional().description(
            "Bootloader of ISO and disk images: `dual-boot`, `sd-boot` or `grub` (`none`, the \
             default, lets Talos choose). Needs Talos ≥ 1.12 images.",
        ))
        .attribute(
            Attribute::string("register_via")
                .optional_computed()
                .description(
                    "How the schematic is registered on create: `factory` (default; `POST \
                     /schematics` to the provider's `image_factory_url`) or `omni` (Omni's \
                     `CreateSchematicFromRaw`, for service accounts that must not reach the \
                     factory directly; Omni's factory must then be `image_factory_url`).",
                ),
        )
        .attribute(Attribute::string("talos_version").optional().description(
            "Talos version (e.g. `v1.13.9` or `1.13.9`) for the computed image references. \
             Without it, `installer_image` and the URLs are null.",
        ))
        .attribute(Attribute::string("platform").optional_computed().description(
            "Platform of the computed image references: `metal` (default) or a cloud platform \
             such as `aws`, `nocloud`, `vmware`.",
        ))
        .attribute(Attribute::string("architecture").optional_computed().description(
            "Architecture of the computed image references: `amd64` (default) or `arm64`.",
        ))
        .attribute(Attribute::string("schematic_yaml").computed().description(
            "The canonical schematic YAML the factory stores (and the ID is the hash of).",
        ))
        .attribute(Attribute::string("installer_image").computed().description(
            "Installer image for `talos_version`, as Omni references it: \
             `<factory host>/<platform>-installer/<id>:<version>` (Talos ≥ 1.10) or \
             `<factory host>/installer/<id>:<version>`.",
        ))
        .attribute(Attribute::string("secureboot_installer_image").computed().description(
            "SecureBoot installer image for `talos_version`; null when the platform has no \
             SecureBoot images.",
        ))
        .attribute(Attribute::string("iso_url").computed().description(
            "ISO URL for `talos_version`; null when the platform does not boot from an ISO.",
        ))
        .attribute(Attribute::string("disk_image_url").computed().description(
            "Disk image URL (the platform's default format) for `talos_version`; null when the \
             platform does not boot from a disk image.",
        ))
        .attribute(Attribute::string("pxe_url").computed().description(
            "iPXE script URL for `talos_version`; null when the platform does not boot via PXE.",
        ))
}

// ---------------------------------------------------------------------------------------------
// Plan logic
// ---------------------------------------------------------------------------------------------

/// Known strings of a list, `None` when the list or an element is unknown.
fn known_list(v: &Value<Vec<Value<String>>>) -> Option<Option<Vec<String>>> {
    match v {
        Value::Null => Some(None),
        Value::Unknown => None,
        Value::Known(items) => items
            .iter()
            .map(|i| match i {
                Value::Known(s) => Some(s.clone()),
                // A null element cannot be sent: the factory's decoder drops `~` items (§1.2),
                // so we refuse it in validation; treat as unknown here.
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(Some),
    }
}

fn uses_structured(s: &SchematicState) -> bool {
    !s.extensions.is_null()
        || !s.extra_kernel_args.is_null()
        || !s.meta.is_null()
        || !s.overlay.is_null()
        || !s.secureboot.is_null()
        || !s.bootloader.is_null()
}

fn err_at(path: AttributePath, summary: &str, detail: String) -> Diagnostic {
    Diagnostic::error(summary, detail).at(path)
}

/// Parses a META key the way the factory's uint8 field accepts it (decimal or `0x` hex, §1.1).
fn meta_key(k: &str) -> Option<u8> {
    let t = k.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16).ok(),
        None => t.parse::<u8>().ok(),
    }
}

/// Builds the schematic from the configuration. `Ok(None)`: something it depends on is unknown.
/// Every rejection names the attribute it is about.
fn build(c: &SchematicState) -> std::result::Result<Option<Schematic>, Diagnostics> {
    let mut diags = Diagnostics::new();
    if !c.schematic.is_null() && uses_structured(c) {
        let mut d = Diagnostics::new();
        d.push(err_at(
            AttributePath::new("schematic"),
            "Conflicting schematic styles",
            "Give the schematic either as a raw `schematic` document or with the structured \
             attributes (`extensions`, `extra_kernel_args`, `meta`, `overlay`, `secureboot`, \
             `bootloader`), not both."
                .into(),
        ));
        return Err(d);
    }
    // Checks that hold even when other parts are unknown.
    for (name, list) in [
        ("extensions", &c.extensions),
        ("extra_kernel_args", &c.extra_kernel_args),
    ] {
        if let Value::Known(items) = list {
            for (i, item) in items.iter().enumerate() {
                let bad = match item {
                    Value::Null => Some("must not be null"),
                    Value::Known(s) if name == "extensions" && s.trim().is_empty() => {
                        Some("must not be empty")
                    }
                    _ => None,
                };
                if let Some(why) = bad {
                    diags.push(err_at(
                        AttributePath::new(name).index(i as i64),
                        "Invalid list element",
                        format!("Element {i} of `{name}` {why}."),
                    ));
                }
            }
        }
    }
    if let Value::Known(m) = &c.meta {
        for (k, v) in m {
            if meta_key(k).is_none() {
                diags.push(err_at(
                    AttributePath::new("meta").key(k.clone()),
                    "Invalid META key",
                    format!("META key {k:?} must be a number from 0 to 255 (e.g. \"10\")."),
                ));
            }
            if v.is_null() {
                diags.push(err_at(
                    AttributePath::new("meta").key(k.clone()),
                    "Invalid META value",
                    format!("META value for key {k:?} must not be null."),
                ));
            }
        }
        let mut seen = BTreeMap::new();
        for k in m.keys() {
            if let Some(n) = meta_key(k) {
                if let Some(prev) = seen.insert(n, k.clone()) {
                    diags.push(err_at(
                        AttributePath::new("meta").key(k.clone()),
                        "Duplicate META key",
                        format!("META keys {prev:?} and {k:?} are the same key {n}."),
                    ));
                }
            }
        }
    }
    if let Some(b) = c.bootloader.as_str() {
        if let Err(e) = Bootloader::parse(b) {
            diags.push(err_at(
                AttributePath::new("bootloader"),
                "Invalid bootloader",
                format!("{e}. Use `dual-boot`, `sd-boot`, `grub` or `none`."),
            ));
        }
    }
    if let Value::Known(o) = &c.overlay {
        if o.name.as_str().is_some_and(|n| n.trim().is_empty()) {
            diags.push(err_at(
                AttributePath::new("overlay").attr("name"),
                "Invalid overlay name",
                "`overlay.name` must not be empty.".into(),
            ));
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }

    if let Value::Known(raw) = &c.schematic {
        return sm::parse(raw).map(Some).map_err(|e| {
            err_at(
                AttributePath::new("schematic"),
                "Invalid schematic",
                format!("The Image Factory would reject this schematic: {e}"),
            )
            .into()
        });
    }
    if c.schematic.is_unknown() {
        return Ok(None);
    }

    let mut b = SchematicBuilder::new();
    match known_list(&c.extensions) {
        None => return Ok(None),
        Some(Some(l)) => b = b.extensions(l),
        Some(None) => {}
    }
    match known_list(&c.extra_kernel_args) {
        None => return Ok(None),
        Some(Some(l)) => b = b.extra_kernel_args(l),
        Some(None) => {}
    }
    match &c.meta {
        Value::Unknown => return Ok(None),
        Value::Null => {}
        Value::Known(m) => {
            let mut meta = BTreeMap::new();
            for (k, v) in m {
                let Value::Known(v) = v else { return Ok(None) };
                if let Some(n) = meta_key(k) {
                    meta.insert(n, v.clone());
                }
            }
            b = b.meta(&meta);
        }
    }
    match &c.overlay {
        Value::Unknown => return Ok(None),
        Value::Null => {}
        Value::Known(o) => {
            let (Value::Known(name), false, false) =
                (&o.name, o.image.is_unknown(), o.options.is_unknown())
            else {
                return Ok(None);
            };
            let image = o.image.as_str().unwrap_or_default();
            let options = o.options.as_str().unwrap_or_default();
            b = b.overlay_with_yaml_options(name, image, options);
            if let Err(e) = b.clone().build() {
                return Err(err_at(
                    AttributePath::new("overlay").attr("options"),
                    "Invalid overlay options",
                    format!("`overlay.options` must be a YAML or JSON mapping: {e}"),
                )
                .into());
            }
        }
    }
    match &c.secureboot {
        Value::Unknown => return Ok(None),
        Value::Null => {}
        Value::Known(sb) => match sb.include_well_known_certificates {
            Value::Unknown => return Ok(None),
            Value::Known(v) => b = b.secureboot_include_well_known_certificates(v),
            Value::Null => {}
        },
    }
    match &c.bootloader {
        Value::Unknown => return Ok(None),
        Value::Known(name) => b = b.bootloader(name),
        Value::Null => {}
    }
    b.build().map(Some).map_err(|e| {
        err_at(
            AttributePath::new("schematic"),
            "Invalid schematic",
            e.to_string(),
        )
        .into()
    })
}

/// Checks `register_via`, `talos_version`, `platform`, `architecture` (values may be unknown).
fn check_settings(c: &SchematicState) -> Diagnostics {
    let mut d = Diagnostics::new();
    if let Some(r) = c.register_via.as_str() {
        if r != REGISTER_FACTORY && r != REGISTER_OMNI {
            d.push(err_at(
                AttributePath::new("register_via"),
                "Invalid register_via",
                format!("`register_via` must be `factory` or `omni`, got {r:?}."),
            ));
        }
    }
    if let Some(v) = c.talos_version.as_str() {
        if urls::normalize_talos_version(v).is_err() {
            d.push(err_at(
                AttributePath::new("talos_version"),
                "Invalid Talos version",
                format!("{v:?} is not a Talos version (e.g. `v1.13.9`)."),
            ));
        }
    }
    if let Some(p) = c.platform.as_str() {
        if urls::platform(p).is_none() {
            let known: Vec<&str> = urls::PLATFORMS.iter().map(|p| p.name).collect();
            d.push(err_at(
                AttributePath::new("platform"),
                "Unknown platform",
                format!(
                    "{p:?} is not a Talos platform; use one of {}.",
                    known.join(", ")
                ),
            ));
        }
    }
    if let Some(a) = c.architecture.as_str() {
        if a != "amd64" && a != "arm64" {
            d.push(err_at(
                AttributePath::new("architecture"),
                "Invalid architecture",
                format!("`architecture` must be `amd64` or `arm64`, got {a:?}."),
            ));
        }
    }
    d
}

/// Defaults for the optional+computed settings. In a plan those arrive unknown when not
/// configured, so the configuration (null there) decides; in read/import, the state does.
fn set_defaults(s: &mut SchematicState, config: Option<&SchematicState>) {
    let unset = |state: &Value<String>, cfg: Option<&Value<String>>| match cfg {
        Some(c) => c.is_null(),
        None => state.is_null(),
    };
    if unset(&s.register_via, config.map(|c| &c.register_via)) {
        s.register_via = Value::Known(REGISTER_FACTORY.into());
    }
    if unset(&s.platform, config.map(|c| &c.platform)) {
        s.platform = Value::Known(DEFAULT_PLATFORM.into());
    }
    if unset(&s.architecture, config.map(|c| &c.architecture)) {
        s.architecture = Value::Known(DEFAULT_ARCH.into());
    }
}

/// Image references and URLs for a schematic ID (§3.3, §5.2). Unknown when an input is.
fn set_urls(s: &mut SchematicState, factory_url: &str) {
    let all = |s: &mut SchematicState, v: Value<String>| {
        s.installer_image = v.clone();
        s.secureboot_installer_image = v.clone();
        s.iso_url = v.clone();
        s.disk_image_url = v.clone();
        s.pxe_url = v;
    };
    match (&s.talos_version, &s.id, &s.platform, &s.architecture) {
        (Value::Null, ..) => all(s, Value::Null),
        (Value::Known(v), Value::Known(id), Value::Known(p), Value::Known(a)) => {
            let (Ok(v), Some(info)) = (urls::normalize_talos_version(v), urls::platform(p)) else {
                all(s, Value::Null);
                return;
            };
            let (id, p, a) = (id.clone(), p.clone(), a.clone());
            s.installer_image =
                Value::Known(urls::omni_installer_image(factory_url, &p, &id, &v, false));
            s.secureboot_installer_image = info
                .secureboot
                .then(|| urls::omni_installer_image(factory_url, &p, &id, &v, true))
                .into();
            s.iso_url = info
                .boots_iso
                .then(|| urls::iso_url(factory_url, &id, &v, &p, &a, false))
                .into();
            s.disk_image_url = match (info.boots_disk, info.disk_suffix) {
                (true, Some(sfx)) => Value::Known(urls::disk_image_url(
                    factory_url,
                    &id,
                    &v,
                    &p,
                    &a,
                    false,
                    sfx,
                )),
                _ => Value::Null,
            };
            s.pxe_url = info
                .boots_pxe
                .then(|| urls::pxe_url(factory_url, &id, &v, &p, &a, false))
                .into();
        }
        _ => all(s, Value::Unknown),
    }
}

/// Fills `id` and `schematic_yaml` from the configuration when they can be predicted. `prior`
/// is the state being updated: a factory-dependent schematic (§2.5) whose prior ID is one of
/// its possible IDs keeps it, since the factory already decided.
fn predict(ctx: &Ctx, s: &mut SchematicState, prior: Option<&SchematicState>) -> Result<()> {
    match build(s)? {
        Some(schem) if schem.id_depends_on_factory_version() => {
            let decided = prior.filter(|p| {
                p.id.as_str().is_some_and(|id| {
                    [Flavor::V4Rc6, Flavor::V4Rc4, Flavor::V3]
                        .into_iter()
                        .any(|f| schem.id_with(f) == id)
                })
            });
            if let Some(p) = decided {
                s.id = p.id.clone();
                s.schematic_yaml = p.schematic_yaml.clone();
                return Ok(());
            }
            // §2.5: factory releases quote these strings differently; the factory decides.
            ctx.warn(
                "Schematic ID known only after apply",
                "This schematic contains a whole string (such as `yes`, `off`, `1:20` or `<<`) \
                 that different Image Factory releases encode differently, so its ID is taken \
                 from the factory on apply instead of being predicted.",
            );
            s.id = Value::Unknown;
            s.schematic_yaml = Value::Unknown;
        }
        Some(schem) => {
            s.id = Value::Known(schem.id());
            s.schematic_yaml = Value::Known(schem.canonical_yaml());
        }
        None => {
            s.id = Value::Unknown;
            s.schematic_yaml = Value::Unknown;
        }
    }
    Ok(())
}

fn factory_url(ctx: &Ctx) -> Result<String> {
    Ok(crate::common::configured(ctx)?
        .settings
        .image_factory_url
        .clone())
}

// ---------------------------------------------------------------------------------------------
// CRUD + import
// ---------------------------------------------------------------------------------------------

#[async_trait]
impl Resource for SchematicResource {
    const TYPE_NAME: &'static str = "omni_schematic";
    type State = SchematicState;

    fn schema(&self) -> Schema {
        schema()
    }

    async fn validate(&self, _ctx: &Ctx, config: &SchematicState) -> Result<()> {
        let mut d = check_settings(config);
        if let Err(e) = build(config) {
            d.extend(e);
        }
        d.into_result()
    }

    async fn read(
        &self,
        ctx: &Ctx,
        mut state: SchematicState,
        _private: &mut PrivateState,
    ) -> Result<Option<SchematicState>> {
        let Some(id) = state.id.clone().known() else {
            return Ok(None);
        };
        let factory = factory_http::client(ctx)?;
        let Some(yaml) = factory
            .get_schematic(&id)
            .await
            .map_err(|e| factory_error(&format!("reading schematic {id}"), &e))?
        else {
            // Lost by the factory (it happened, §4.1) or never there: plan to register again.
            tracing::info!(
                id = id.as_str(),
                "schematic not found at the Image Factory; planning to register it again"
            );
            return Ok(None);
        };
        if state.schematic_yaml.is_null() {
            // Right after import: the configuration attributes come from the stored document.
            let parsed = sm::parse(&yaml).map_err(|e| {
                Diagnostics::from(Diagnostic::error(
                    "Unreadable schematic",
                    format!("The Image Factory's document for {id} cannot be parsed: {e}"),
                ))
            })?;
            from_schematic(&mut state, &parsed, &yaml);
        }
        set_defaults(&mut state, None);
        state.schematic_yaml = Value::Known(yaml);
        set_urls(&mut state, &factory_url(ctx)?);
        Ok(Some(state))
    }

    async fn plan_create(
        &self,
        ctx: &Ctx,
        mut plan: SchematicState,
        config: &SchematicState,
        _private: &mut PrivateState,
    ) -> Result<SchematicState> {
        check_settings(&plan).into_result()?;
        set_defaults(&mut plan, Some(config));
        predict(ctx, &mut plan, None)?;
        set_urls(&mut plan, &factory_url(ctx)?);
        catalogue_warnings(ctx, &plan).await;
        Ok(plan)
    }

    async fn plan_update(
        &self,
        ctx: &Ctx,
        prior: &SchematicState,
        mut plan: SchematicState,
        config: &SchematicState,
        _private: &mut PrivateState,
        requires_replace: &mut Vec<AttributePath>,
    ) -> Result<SchematicState> {
        check_settings(&plan).into_result()?;
        set_defaults(&mut plan, Some(config));
        predict(ctx, &mut plan, Some(prior))?;
        // The ID is the schematic's identity: replace exactly when it changes (or cannot be
        // known yet), so reformatting a document or switching styles is a no-op update.
        let same = matches!((&plan.id, &prior.id), (Value::Known(a), Value::Known(b)) if a == b);
        if !same {
            let changed = changed_inputs(prior, &plan);
            if changed.is_empty() {
                requires_replace.push(AttributePath::new("id"));
            } else {
                requires_replace.extend(changed);
            }
        }
        set_urls(&mut plan, &factory_url(ctx)?);
        if !same || prior.talos_version != plan.talos_version {
            catalogue_warnings(ctx, &plan).await;
        }
        Ok(plan)
    }

    async fn create(
        &self,
        ctx: &Ctx,
        mut plan: SchematicState,
        _config: &SchematicState,
        _private: &mut PrivateState,
    ) -> Result<SchematicState> {
        let schem = build(&plan)?.ok_or_else(|| {
            Diagnostics::from(Diagnostic::error(
                "Schematic not known",
                "The schematic still depends on unknown values at apply time.",
            ))
        })?;
        let canonical = schem.canonical_yaml();
        // The raw document is sent as written, so the factory hashes exactly what it would for
        // any other client; the structured form is sent as our canonical YAML.
        let body = plan
            .schematic
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| canonical.clone());
        let via = plan
            .register_via
            .as_str()
            .unwrap_or(REGISTER_FACTORY)
            .to_string();
        let factory_url = factory_url(ctx)?;
        let (got_id, got_yaml) = if via == REGISTER_OMNI {
            register_via_omni(ctx, &canonical, &plan.talos_version).await?
        } else {
            let factory = factory_http::client(ctx)?;
            let created = factory
                .create_schematic(&body)
                .await
                .map_err(|e| factory_error("registering the schematic", &e))?;
            (created.id, created.schematic)
        };
        let expected = match &plan.id {
            Value::Known(id) => vec![id.clone()],
            // ID left to the factory (§2.5): it must still be one a factory release computes.
            _ => [Flavor::V4Rc6, Flavor::V4Rc4, Flavor::V3]
                .into_iter()
                .map(|f| schem.id_with(f))
                .collect(),
        };
        if !expected.contains(&got_id) {
            let theirs = got_yaml
                .as_deref()
                .map(|y| format!("\n\nThe factory's canonical form:\n{y}"))
                .unwrap_or_default();
            return Err(Diagnostic::error(
                "Image Factory assigned a different schematic ID",
                format!(
                    "The provider computed schematic ID {} but the Image Factory at {factory_url} \
                     (registered via {via}) assigned {got_id}. The factory encodes this \
                     schematic differently from the release the provider follows (factory \
                     version skew), so the ID in the plan would be wrong; nothing was stored \
                     in the state.\n\nThe provider's canonical form:\n{canonical}{theirs}",
                    expected.join(" or "),
                ),
            )
            .into());
        }
        plan.schematic_yaml = Value::Known(match got_yaml {
            Some(y) if sm::id_of_canonical(&y) == got_id => y,
            _ => schem.canonical_yaml_with(flavor_of(&schem, &got_id)),
        });
        plan.id = Value::Known(got_id);
        set_urls(&mut plan, &factory_url);
        Ok(plan)
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _prior: SchematicState,
        mut plan: SchematicState,
        _config: &SchematicState,
        _private: &mut PrivateState,
    ) -> Result<SchematicState> {
        // Only ID-preserving changes get here: nothing to send, the computed values follow.
        set_urls(&mut plan, &factory_url(ctx)?);
        Ok(plan)
    }

    async fn delete(&self, _ctx: &Ctx, prior: SchematicState, _p: &PrivateState) -> Result<()> {
        // The factory has no delete API (§3.1): schematics are content-addressed and permanent.
        tracing::info!(
            id = prior.id.as_str().unwrap_or_default(),
            "forgetting schematic (the Image Factory keeps it)"
        );
        Ok(())
    }

    async fn import(&self, _ctx: &Ctx, id: &str) -> Result<SchematicState> {
        let id = id.trim();
        if id.len() != 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Diagnostic::error(
                "Invalid schematic ID",
                format!("{id:?} is not a schematic ID (64 lowercase hex characters)."),
            )
            .into());
        }
        let mut s = empty_state();
        s.id = Value::Known(id.to_string());
        Ok(s)
    }
}

/// Warns (at plan time) about extensions and an overlay the factory does not list for
/// `talos_version`: the factory accepts such a schematic but refuses to build images from it
/// (§3.4). The factory's catalogue is the authority, so nothing is checked offline; when it
/// cannot be read the plan goes on (the apply will report an unreachable factory).
async fn catalogue_warnings(ctx: &Ctx, plan: &SchematicState) {
    let Some(version) = plan
        .talos_version
        .as_str()
        .and_then(|v| urls::normalize_talos_version(v).ok())
    else {
        return;
    };
    let Ok(Some(schem)) = build(plan) else {
        return;
    };
    let Ok(factory) = factory_http::client(ctx) else {
        return;
    };
    let exts = &schem.customization.official_extensions;
    if !exts.is_empty() {
        match factory.extensions(&version).await {
            Ok(list) => {
                for (i, name) in exts.iter().enumerate() {
                    if !list.iter().any(|e| &e.name == name) {
                        // Only the structured style has an element to point at.
                        let path = if plan.extensions.is_known() {
                            AttributePath::new("extensions").index(i as i64)
                        } else {
                            AttributePath::new("schematic")
                        };
                        ctx.warn_at(
                            path,
                            "Extension not offered for this Talos version",
                            format!(
                                "The Image Factory does not list {name:?} for Talos {version}: it \
                                 registers the schematic but refuses to build images from it, \
                                 unless it maps a renamed extension. See \
                                 `omni_image_factory_extensions` for the available names."
                            ),
                        );
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "extension catalogue not checked"),
        }
    }
    let overlay = &schem.overlay.name;
    if !overlay.is_empty() {
        match factory.overlays(&version).await {
            Ok(list) if !list.iter().any(|o| &o.name == overlay) => {
                let path = if plan.overlay.is_known() {
                    AttributePath::new("overlay").attr("name")
                } else {
                    AttributePath::new("schematic")
                };
                ctx.warn_at(
                    path,
                    "Overlay not offered for this Talos version",
                    format!(
                        "The Image Factory does not list the overlay {overlay:?} for Talos \
                         {version}; images for this schematic will be refused. See \
                         `omni_image_factory_overlays`."
                    ),
                );
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "overlay catalogue not checked"),
        }
    }
}

async fn register_via_omni(
    ctx: &Ctx,
    canonical: &str,
    talos_version: &Value<String>,
) -> Result<(String, Option<String>)> {
    use omni_client::omni_api::management::CreateSchematicFromRawRequest;
    // CreateSchematicFromRaw registers the document as given; CreateSchematic would add Omni's
    // SideroLink kernel arguments and sort extensions (§5.3), i.e. a different schematic whose
    // ID no plan can predict.
    let request = CreateSchematicFromRawRequest {
        raw_schematic: canonical.as_bytes().to_vec(),
        talos_version: talos_version
            .as_str()
            .map(|v| v.trim().trim_start_matches('v').to_string())
            .unwrap_or_default(),
    };
    let client = crate::common::client(ctx)?;
    let resp = client
        .management()
        .create_schematic_from_raw(request)
        .await
        .map_err(|s| {
            crate::common::omni_error(
                "registering the schematic through Omni",
                omni_client::Error::from(s),
            )
        })?
        .into_inner();
    let yaml = Some(resp.schematic_yml).filter(|y| !y.is_empty());
    Ok((resp.schematic_id, yaml))
}

fn flavor_of(s: &Schematic, id: &str) -> Flavor {
    [Flavor::V4Rc6, Flavor::V4Rc4, Flavor::V3]
        .into_iter()
        .find(|f| s.id_with(*f) == id)
        .unwrap_or(Flavor::V4Rc6)
}

fn changed_inputs(prior: &SchematicState, plan: &SchematicState) -> Vec<AttributePath> {
    let p = serde_json::to_value(prior).unwrap_or_default();
    let n = serde_json::to_value(plan).unwrap_or_default();
    INPUTS
        .iter()
        .filter(|a| p.get(**a) != n.get(**a))
        .map(|a| AttributePath::new(*a))
        .collect()
}

fn empty_state() -> SchematicState {
    SchematicState {
        id: Value::Null,
        schematic: Value::Null,
        extensions: Value::Null,
        extra_kernel_args: Value::Null,
        meta: Value::Null,
        overlay: Value::Null,
        secureboot: Value::Null,
        bootloader: Value::Null,
        register_via: Value::Null,
        talos_version: Value::Null,
        platform: Value::Null,
        architecture: Value::Null,
        schematic_yaml: Value::Null,
        installer_image: Value::Null,
        secureboot_installer_image: Value::Null,
        iso_url: Value::Null,
        disk_image_url: Value::Null,
        pxe_url: Value::Null,
    }
}

// ---------------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------------

/// Fills the configuration attributes from a stored schematic (import): the structured style
/// when it can express the document exactly, the raw document otherwise.
fn from_schematic(state: &mut SchematicState, s: &Schematic, canonical: &str) {
    let c = &s.customization;
    let meta_ascending = c.meta.windows(2).all(|w| w[0].key < w[1].key);
    let structured = s.owner.is_empty()
        && c.embedded_machine_configuration.is_empty()
        && c.secureboot.enroll_keys.is_empty()
        && c.disk_image_sector_size == 0
        && s.overlay.options.is_empty()
        && meta_ascending;
    let strings = |v: &[String]| -> Value<Vec<Value<String>>> {
        if v.is_empty() {
            Value::Null
        } else {
            Value::Known(v.iter().cloned().map(Value::Known).collect())
        }
    };
    if !structured {
        state.schematic = Value::Known(canonical.to_string());
        return;
    }
    state.extensions = strings(&c.official_extensions);
    state.extra_kernel_args = strings(&c.extra_kernel_args);
    state.meta = if c.meta.is_empty() {
        Value::Null
    } else {
        Value::Known(
            c.meta
                .iter()
                .map(|m| (m.key.to_string(), Value::Known(m.value.clone())))
                .collect(),
        )
    };
    state.overlay = if s.overlay.name.is_empty() && s.overlay.image.is_empty() {
        Value::Null
    } else {
        Value::Known(OverlayState {
            name: Value::Known(s.overlay.name.clone()),
            image: Some(s.overlay.image.clone())
                .filter(|i| !i.is_empty())
                .into(),
            options: Value::Null,
        })
    };
    state.secureboot = if c.secureboot.include_well_known_certificates {
        Value::Known(SecureBootState {
            include_well_known_certificates: Value::Known(true),
        })
    } else {
        Value::Null
    };
    state.bootloader = if c.bootloader == Bootloader::None {
        Value::Null
    } else {
        Value::Known(c.bootloader.as_str().to_string())
    };
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const VANILLA: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

    fn list(items: &[&str]) -> Value<Vec<Value<String>>> {
        Value::Known(items.iter().map(|s| Value::Known(s.to_string())).collect())
    }

    fn id_of(s: &SchematicState) -> String {
        build(s).unwrap().unwrap().id()
    }

    fn first_path(s: &SchematicState) -> Option<AttributePath> {
        build(s).unwrap_err().0[0].path.clone()
    }

    #[test]
    fn nothing_is_the_vanilla_schematic() {
        assert_eq!(id_of(&empty_state()), VANILLA);
    }

    #[test]
    fn structured_and_raw_agree() {
        // §2.7 V8.
        let mut s = empty_state();
        s.extensions = list(&["siderolabs/iscsi-tools", "siderolabs/util-linux-tools"]);
        let id = id_of(&s);
        assert_eq!(
            id,
            "613e1592b2da41ae5e265e8789429f22e121aab91cb4deb6bc3c0b6262961245"
        );
        let mut r = empty_state();
        r.schematic = Value::Known(
            "{\"customization\":{\"systemExtensions\":{\"officialExtensions\":[\"siderolabs/iscsi-tools\",\"siderolabs/util-linux-tools\"]}}}".into(),
        );
        assert_eq!(id_of(&r), id);
        // §2.7 V3 (meta key 10) and V4 (overlay), V5 (secureboot), V9–V13 bootloader grub.
        let mut m = empty_state();
        m.meta = Value::Known(BTreeMap::from([(
            "10".to_string(),
            Value::Known("foo".to_string()),
        )]));
        assert_eq!(
            id_of(&m),
            "d308a2a5ee2277bed5fbaa104fcbc8d59122abfa737df987a95b4ca763459a7f"
        );
        let mut o = empty_state();
        o.overlay = Value::Known(OverlayState {
            name: "rpi_generic".into(),
            image: "siderolabs/sbc-raspberrypi".into(),
            options: Value::Null,
        });
        assert_eq!(
            id_of(&o),
            "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9"
        );
        let mut sb = empty_state();
        sb.secureboot = Value::Known(SecureBootState {
            include_well_known_certificates: Value::Known(true),
        });
        assert_eq!(
            id_of(&sb),
            "fa8e05f142a851d3ee568eb0a8e5841eaf6b0ebc8df9a63df16ac5ed2c04f3e6"
        );
        let mut bl = empty_state();
        bl.bootloader = "grub".into();
        assert_eq!(
            id_of(&bl),
            "39d496b2cbdb6265d3b714514c5334bf010f1b4d31b23b9e38c80fb2f3ad7ecb"
        );
    }

    #[test]
    fn bad_inputs_name_their_attribute() {
        let mut both = empty_state();
        both.schematic = "{}".into();
        both.bootloader = "grub".into();
        assert_eq!(first_path(&both), Some(AttributePath::new("schematic")));

        let mut typo = empty_state();
        typo.schematic = "customisation: {}\n".into();
        let e = build(&typo).unwrap_err();
        assert!(e.0[0].detail.contains("field customisation not found"));
        assert_eq!(e.0[0].path, Some(AttributePath::new("schematic")));

        let mut meta = empty_state();
        meta.meta = Value::Known(BTreeMap::from([(
            "256".to_string(),
            Value::Known("x".to_string()),
        )]));
        assert_eq!(
            first_path(&meta),
            Some(AttributePath::new("meta").key("256"))
        );

        let mut dup = empty_state();
        dup.meta = Value::Known(BTreeMap::from([
            ("10".to_string(), Value::Known("a".to_string())),
            ("0xa".to_string(), Value::Known("b".to_string())),
        ]));
        assert!(build(&dup).is_err());

        let mut boot = empty_state();
        boot.bootloader = "auto".into();
        assert_eq!(first_path(&boot), Some(AttributePath::new("bootloader")));

        let mut ext = empty_state();
        ext.extensions = list(&["siderolabs/a", ""]);
        assert_eq!(
            first_path(&ext),
            Some(AttributePath::new("extensions").index(1))
        );

        let mut opts = empty_state();
        opts.overlay = Value::Known(OverlayState {
            name: "rpi_generic".into(),
            image: Value::Null,
            options: "- a list\n".into(),
        });
        assert_eq!(
            first_path(&opts),
            Some(AttributePath::new("overlay").attr("options"))
        );

        let mut settings = empty_state();
        settings.register_via = "carrier-pigeon".into();
        settings.talos_version = "latest".into();
        settings.platform = "mainframe".into();
        settings.architecture = "riscv64".into();
        let paths: Vec<_> = check_settings(&settings)
            .0
            .into_iter()
            .map(|d| d.path.unwrap())
            .collect();
        assert_eq!(
            paths,
            vec![
                AttributePath::new("register_via"),
                AttributePath::new("talos_version"),
                AttributePath::new("platform"),
                AttributePath::new("architecture"),
            ]
        );
    }

    #[test]
    fn unknown_inputs_give_unknown_id() {
        let mut s = empty_state();
        s.extensions = Value::Known(vec![Value::Known("a".into()), Value::Unknown]);
        assert!(build(&s).unwrap().is_none());
        let mut r = empty_state();
        r.schematic = Value::Unknown;
        assert!(build(&r).unwrap().is_none());
    }

    #[test]
    fn urls_follow_platform_rules() {
        let mut s = empty_state();
        set_defaults(&mut s, None);
        s.id = Value::Known(VANILLA.into());
        set_urls(&mut s, "https://factory.talos.dev");
        assert!(s.installer_image.is_null() && s.iso_url.is_null());
        s.talos_version = "1.13.9".into();
        set_urls(&mut s, "https://factory.talos.dev");
        assert_eq!(
            s.installer_image.as_str().unwrap(),
            format!("factory.talos.dev/metal-installer/{VANILLA}:v1.13.9")
        );
        assert_eq!(
            s.iso_url.as_str().unwrap(),
            format!("https://factory.talos.dev/image/{VANILLA}/v1.13.9/metal-amd64.iso")
        );
        assert_eq!(
            s.pxe_url.as_str().unwrap(),
            format!("https://pxe.factory.talos.dev/pxe/{VANILLA}/v1.13.9/metal-amd64")
        );
        // Omni's legacy installer form below Talos 1.10 (§5.2).
        s.talos_version = "v1.9.5".into();
        set_urls(&mut s, "https://factory.talos.dev");
        assert_eq!(
            s.secureboot_installer_image.as_str().unwrap(),
            format!("factory.talos.dev/installer-secureboot/{VANILLA}:v1.9.5")
        );
        s.platform = "aws".into();
        s.architecture = "arm64".into();
        set_urls(&mut s, "https://factory.talos.dev");
        assert!(s.iso_url.is_null() && s.pxe_url.is_null());
        assert!(s.secureboot_installer_image.is_null());
        assert!(s
            .disk_image_url
            .as_str()
            .unwrap()
            .ends_with("aws-arm64.raw.xz"));
        s.id = Value::Unknown;
        set_urls(&mut s, "https://factory.talos.dev");
        assert!(s.installer_image.is_unknown());
    }

    #[test]
    fn import_uses_structured_style_when_exact() {
        let yaml = "overlay:\n    image: siderolabs/sbc-raspberrypi\n    name: rpi_generic\ncustomization:\n    extraKernelArgs:\n        - console=ttyS0\n    meta:\n        - key: 10\n          value: foo\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/iscsi-tools\n    bootloader: sd-boot\n";
        let parsed = sm::parse(yaml).unwrap();
        let mut s = empty_state();
        from_schematic(&mut s, &parsed, yaml);
        assert!(s.schematic.is_null());
        assert_eq!(id_of(&s), sm::id_of_canonical(yaml));
        // META out of key order cannot be expressed by the map: raw document instead.
        let unordered = "customization:\n    meta:\n        - key: 12\n          value: a\n        - key: 10\n          value: b\n";
        let parsed = sm::parse(unordered).unwrap();
        let mut r = empty_state();
        from_schematic(&mut r, &parsed, unordered);
        assert_eq!(r.schematic.as_str(), Some(unordered));
        assert!(r.meta.is_null());
        assert_eq!(id_of(&r), sm::id_of_canonical(unordered));
    }

    #[test]
    fn only_schematic_inputs_count_as_changes() {
        let a = empty_state();
        let mut b = empty_state();
        b.talos_version = "1.13.9".into();
        assert!(changed_inputs(&a, &b).is_empty());
        b.extensions = list(&["siderolabs/x"]);
        assert_eq!(
            changed_inputs(&a, &b),
            vec![AttributePath::new("extensions")]
        );
    }

    #[test]
    fn schema_documents_every_attribute() {
        let s = schema();
        for a in &s.block.attributes {
            assert!(!a.description.is_empty(), "{}", a.name);
        }
        for name in INPUTS {
            assert!(s.attr(name).is_some(), "{name}");
        }
    }
}
