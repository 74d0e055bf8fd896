//! Image Factory schematics: strict parsing, canonical YAML and IDs
//! (image-factory-and-talos.md §1–§2).
//!
//! The factory decodes the POST body into its Go struct with go-yaml (strict: unknown fields
//! rejected, first document only), re-encodes the struct, and hashes the bytes. This module
//! imitates both halves: [`parse`] applies go-yaml's decoding rules for each field type, and
//! [`Schematic::canonical_yaml`] lays the struct out exactly as go-yaml's encoder does.

use std::collections::BTreeMap;

use sha2::Digest;

use crate::yaml::{self, plain_out, string_out, value_out, Flavor, Node, NodeKind, Out};

pub use crate::yaml::Value;

/// Error returned when a schematic is rejected; `Display` is the factory's kind of message
/// (e.g. `yaml: construct errors: line 1: field something not found in type
/// schematic.Schematic`, or `EOF` for an empty body).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SchematicError {
    /// The message the factory would answer with (without the trailing newline).
    pub message: String,
}

impl SchematicError {
    fn new(message: impl Into<String>) -> Self {
        SchematicError {
            message: message.into(),
        }
    }
}

/// `overlay` part of a schematic.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Overlay {
    /// Overlay image, e.g. `siderolabs/sbc-raspberrypi`.
    pub image: String,
    /// Overlay name, e.g. `rpi_generic`.
    pub name: String,
    /// Free-form options; keys are sorted only when emitted (§2.3).
    pub options: Vec<(String, Value)>,
}

impl Overlay {
    fn is_empty(&self) -> bool {
        self.image.is_empty() && self.name.is_empty() && self.options.is_empty()
    }
}

/// One `customization.meta` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaValue {
    /// META key (0..=255).
    pub key: u8,
    /// META value.
    pub value: String,
}

/// `customization.bootloader` (§1.1 row 3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bootloader {
    /// Zero value, omitted from the canonical form.
    #[default]
    None,
    /// `dual-boot`
    DualBoot,
    /// `sd-boot`
    SdBoot,
    /// `grub`
    Grub,
}

impl Bootloader {
    /// Parses the factory's names, case-insensitively. `auto` is **not** accepted (§1.1).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Ok(Bootloader::None),
            "dual-boot" => Ok(Bootloader::DualBoot),
            "sd-boot" => Ok(Bootloader::SdBoot),
            "grub" => Ok(Bootloader::Grub),
            _ => Err(format!("{s} does not belong to BootloaderKind values")),
        }
    }

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Bootloader::None => "none",
            Bootloader::DualBoot => "dual-boot",
            Bootloader::SdBoot => "sd-boot",
            Bootloader::Grub => "grub",
        }
    }
}

/// `customization.secureboot`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecureBoot {
    /// `enrollKeys` (not validated by the factory at POST, §1.1).
    pub enroll_keys: String,
    /// `includeWellKnownCertificates`.
    pub include_well_known_certificates: bool,
}

/// `customization`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Customization {
    /// `embeddedMachineConfiguration`.
    pub embedded_machine_configuration: String,
    /// `extraKernelArgs` (order and duplicates kept).
    pub extra_kernel_args: Vec<String>,
    /// `meta` (order kept).
    pub meta: Vec<MetaValue>,
    /// `systemExtensions.officialExtensions` (order and duplicates kept).
    pub official_extensions: Vec<String>,
    /// `bootloader`.
    pub bootloader: Bootloader,
    /// `secureboot`.
    pub secureboot: SecureBoot,
    /// `diskImage.sectorSize` (0 = unset).
    pub disk_image_sector_size: u64,
}

/// A decoded schematic.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schematic {
    /// `owner` (Enterprise only).
    pub owner: String,
    /// `overlay`.
    pub overlay: Overlay,
    /// `customization`.
    pub customization: Customization,
}

// ---------------------------------------------------------------------------------------------
// Decoding (go-yaml rules for each Go field type)
// ---------------------------------------------------------------------------------------------

struct Decoder {
    errors: Vec<String>,
}

/// Go `%s` of a scalar inside a type error: at most 10 bytes, else 7 bytes + `...`.
fn shorten(v: &str) -> String {
    if v.len() > 10 {
        let cut = String::from_utf8_lossy(&v.as_bytes()[..7]).into_owned();
        format!(" `{cut}...`")
    } else {
        format!(" `{v}`")
    }
}

impl Decoder {
    fn type_error(&mut self, n: &Node, go_type: &str) {
        let value = match &n.kind {
            NodeKind::Scalar { value, .. } => shorten(value),
            _ => String::new(),
        };
        self.errors.push(format!(
            "line {}: cannot construct {}{} into {}",
            n.line, n.tag, value, go_type
        ));
    }

    /// Go `string` field: any non-null scalar is taken verbatim (its source text).
    fn string(&mut self, n: &Node, out: &mut String) {
        match &n.kind {
            NodeKind::Scalar { value, .. } => {
                if !n.is_null() {
                    *out = value.clone();
                }
            }
            _ => self.type_error(n, "string"),
        }
    }

    /// Go `bool` field: YAML booleans, plus the YAML 1.1 spellings go-yaml still accepts for
    /// typed bool targets.
    fn boolean(&mut self, n: &Node, out: &mut bool) {
        if n.is_null() {
            return;
        }
        if let NodeKind::Scalar { value, .. } = &n.kind {
            if n.tag == "!!bool" {
                if let yaml::Resolved::Bool(b) = yaml::resolve_plain(value) {
                    *out = b;
                    return;
                }
            }
            if n.tag == "!!str" {
                match value.as_str() {
                    "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
                        *out = true;
                        return;
                    }
                    "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
                        *out = false;
                        return;
                    }
                    _ => {}
                }
            }
        }
        self.type_error(n, "bool");
    }

    /// Go unsigned integer field with `max` and type name.
    fn unsigned(&mut self, n: &Node, max: u64, go_type: &str) -> Option<u64> {
        if n.is_null() {
            return None;
        }
        if let NodeKind::Scalar { value, .. } = &n.kind {
            let r = match n.tag.as_str() {
                "!!int" | "!!float" => yaml::resolve_plain(value),
                _ => yaml::Resolved::Str,
            };
            let v = match r {
                yaml::Resolved::Int(i) if i >= 0 => Some(i as u64),
                yaml::Resolved::Uint(u) => Some(u),
                // Go converts the float with truncation when it is in range.
                yaml::Resolved::Float(f) if (0.0..=u64::MAX as f64).contains(&f) => Some(f as u64),
                _ => None,
            };
            if let Some(v) = v.filter(|v| *v <= max) {
                return Some(v);
            }
        }
        self.type_error(n, go_type);
        None
    }

    /// Go `[]string` field. Null items are dropped (§1.2).
    fn string_list(&mut self, n: &Node, out: &mut Vec<String>) {
        match &n.kind {
            NodeKind::Seq(items) => {
                out.clear();
                for item in items {
                    if item.is_null() {
                        continue;
                    }
                    let mut s = String::new();
                    let before = self.errors.len();
                    self.string(item, &mut s);
                    if self.errors.len() == before {
                        out.push(s);
                    }
                }
            }
            _ if n.is_null() => out.clear(),
            _ => self.type_error(n, "[]string"),
        }
    }

    /// Walks a struct mapping: duplicate keys, merge keys and unknown fields are handled as
    /// go-yaml does; `field` returns false for an unknown name.
    fn structure(
        &mut self,
        n: &Node,
        go_type: &str,
        mut field: impl FnMut(&mut Self, &str, &Node) -> bool,
    ) {
        match &n.kind {
            NodeKind::Map(_) => {}
            _ if n.is_null() => return,
            _ => {
                self.type_error(n, go_type);
                return;
            }
        }
        let dups = yaml::duplicate_key_errors(n);
        if !dups.is_empty() {
            self.errors.extend(dups);
            return;
        }
        for (k, v) in n.map_entries() {
            let name = match &k.kind {
                NodeKind::Scalar { value, .. } => {
                    if k.is_null() {
                        String::new()
                    } else {
                        value.clone()
                    }
                }
                _ => {
                    self.type_error(k, "string");
                    continue;
                }
            };
            if !field(self, &name, v) {
                self.errors.push(format!(
                    "line {}: field {} not found in type {}",
                    k.line, name, go_type
                ));
            }
        }
    }

    fn schematic(&mut self, n: &Node) -> Schematic {
        let mut s = Schematic::default();
        self.structure(n, "schematic.Schematic", |d, name, v| {
            match name {
                "owner" => d.string(v, &mut s.owner),
                "overlay" => d.overlay(v, &mut s.overlay),
                "customization" => d.customization(v, &mut s.customization),
                _ => return false,
            }
            true
        });
        s
    }

    fn overlay(&mut self, n: &Node, o: &mut Overlay) {
        self.structure(n, "schematic.Overlay", |d, name, v| {
            match name {
                "image" => d.string(v, &mut o.image),
                "name" => d.string(v, &mut o.name),
                "options" => d.options(v, &mut o.options),
                _ => return false,
            }
            true
        });
    }

    /// `map[string]any`: keys become strings (their source text), values are generic. Walked
    /// as a struct whose every field name is known, so the mapping checks are the same.
    fn options(&mut self, n: &Node, out: &mut Vec<(String, Value)>) {
        self.structure(n, "map[string]interface {}", |d, key, v| {
            if let Err(e) = d.check_nested_duplicates(v) {
                d.errors.push(e);
                return true;
            }
            match yaml::to_value(v) {
                Ok(val) => {
                    if let Some(slot) = out.iter_mut().find(|(ek, _)| ek == key) {
                        slot.1 = val;
                    } else {
                        out.push((key.to_string(), val));
                    }
                }
                Err(e) => d.errors.push(e.0.trim_start_matches("yaml: ").to_string()),
            }
            true
        });
    }

    fn check_nested_duplicates(&self, n: &Node) -> Result<(), String> {
        match &n.kind {
            NodeKind::Scalar { .. } => Ok(()),
            NodeKind::Seq(items) => items
                .iter()
                .try_for_each(|i| self.check_nested_duplicates(i)),
            NodeKind::Map(pairs) => {
                if let Some(e) = yaml::duplicate_key_errors(n).into_iter().next() {
                    return Err(e);
                }
                pairs
                    .iter()
                    .try_for_each(|(_, v)| self.check_nested_duplicates(v))
            }
        }
    }

    fn customization(&mut self, n: &Node, c: &mut Customization) {
        self.structure(n, "schematic.Customization", |d, name, v| {
            match name {
                "embeddedMachineConfiguration" => {
                    d.string(v, &mut c.embedded_machine_configuration)
                }
                "extraKernelArgs" => d.string_list(v, &mut c.extra_kernel_args),
                "meta" => d.meta(v, &mut c.meta),
                "systemExtensions" => d.structure(v, "schematic.SystemExtensions", |d, name, v| {
                    if name != "officialExtensions" {
                        return false;
                    }
                    d.string_list(v, &mut c.official_extensions);
                    true
                }),
                "bootloader" => d.bootloader(v, &mut c.bootloader),
                "secureboot" => {
                    d.structure(v, "schematic.SecureBootCustomization", |d, name, v| {
                        match name {
                            "enrollKeys" => d.string(v, &mut c.secureboot.enroll_keys),
                            "includeWellKnownCertificates" => {
                                d.boolean(v, &mut c.secureboot.include_well_known_certificates)
                            }
                            _ => return false,
                        }
                        true
                    })
                }
                "diskImage" => d.structure(v, "schematic.DiskImage", |d, name, v| {
                    if name != "sectorSize" {
                        return false;
                    }
                    if let Some(x) = d.unsigned(v, u64::MAX, "uint") {
                        c.disk_image_sector_size = x;
                    }
                    true
                }),
                _ => return false,
            }
            true
        });
    }

    fn meta(&mut self, n: &Node, out: &mut Vec<MetaValue>) {
        match &n.kind {
            NodeKind::Seq(items) => {
                out.clear();
                for item in items {
                    if item.is_null() {
                        continue;
                    }
                    let mut key = 0u8;
                    let mut value = String::new();
                    let before = self.errors.len();
                    self.structure(item, "schematic.MetaValue", |d, name, v| {
                        match name {
                            "key" => {
                                if let Some(k) = d.unsigned(v, u8::MAX as u64, "uint8") {
                                    key = k as u8;
                                }
                            }
                            "value" => d.string(v, &mut value),
                            _ => return false,
                        }
                        true
                    });
                    if self.errors.len() == before {
                        out.push(MetaValue { key, value });
                    }
                }
            }
            _ if n.is_null() => out.clear(),
            _ => self.type_error(n, "[]schematic.MetaValue"),
        }
    }

    /// The factory's bootloader type decodes a string and checks it against its names.
    fn bootloader(&mut self, n: &Node, out: &mut Bootloader) {
        if n.is_null() {
            return;
        }
        let mut s = String::new();
        let before = self.errors.len();
        self.string(n, &mut s);
        if self.errors.len() != before {
            return;
        }
        match Bootloader::parse(&s) {
            Ok(b) => *out = b,
            Err(e) => self.errors.push(format!("line {}: {e}", n.line)),
        }
    }
}

/// Strictly parses a schematic the way `POST /schematics` does (§1.2): YAML or JSON, first
/// document only, unknown or wrongly typed fields rejected.
pub fn parse(input: &str) -> Result<Schematic, SchematicError> {
    let docs = yaml::parse_documents(input, Some(1)).map_err(|e| SchematicError::new(e.0))?;
    let Some(root) = docs.first() else {
        // go-yaml's decoder reports io.EOF when the stream holds no document.
        return Err(SchematicError::new("EOF"));
    };
    let mut d = Decoder { errors: Vec::new() };
    let s = d.schematic(root);
    if d.errors.is_empty() {
        Ok(s)
    } else {
        Err(SchematicError::new(format!(
            "yaml: construct errors: {}",
            d.errors.join("; ")
        )))
    }
}

/// Parses `input` and returns its schematic ID.
pub fn schematic_id(input: &str) -> Result<String, SchematicError> {
    parse(input).map(|s| s.id())
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

fn key(name: &str) -> Out {
    plain_out(name)
}

impl Schematic {
    /// The factory's canonical YAML (factory v1.5.0 library build, see §2.5).
    pub fn canonical_yaml(&self) -> String {
        self.canonical_yaml_with(Flavor::V4Rc6)
    }

    /// The canonical YAML as produced by a given go-yaml build (§2.5): only strings equal to
    /// YAML 1.1 booleans, base-60 numbers or `<<` differ between builds.
    pub fn canonical_yaml_with(&self, flavor: Flavor) -> String {
        yaml::emit(&self.to_out(flavor))
    }

    /// True when the ID depends on the factory's YAML library build (§2.5), i.e. a predicted
    /// ID should not be promised at plan time.
    pub fn id_depends_on_factory_version(&self) -> bool {
        let a = self.canonical_yaml_with(Flavor::V4Rc6);
        a != self.canonical_yaml_with(Flavor::V4Rc4) || a != self.canonical_yaml_with(Flavor::V3)
    }

    /// Lowercase hex SHA-256 of the canonical YAML (§2.1).
    pub fn id(&self) -> String {
        id_of_canonical(&self.canonical_yaml())
    }

    /// The ID for a given go-yaml build.
    pub fn id_with(&self, flavor: Flavor) -> String {
        id_of_canonical(&self.canonical_yaml_with(flavor))
    }

    fn to_out(&self, f: Flavor) -> Out {
        let s = |v: &str| string_out(v, f);
        let mut root = Vec::new();
        if !self.owner.is_empty() {
            root.push((key("owner"), s(&self.owner)));
        }
        if !self.overlay.is_empty() {
            // image and name have no omitempty: both are written once the overlay is.
            let mut o = vec![
                (key("image"), s(&self.overlay.image)),
                (key("name"), s(&self.overlay.name)),
            ];
            if !self.overlay.options.is_empty() {
                let map = Value::Map(
                    self.overlay
                        .options
                        .iter()
                        .map(|(k, v)| (Value::String(k.clone()), v.clone()))
                        .collect(),
                );
                o.push((key("options"), value_out(&map, f)));
            }
            root.push((key("overlay"), Out::Map(o)));
        }
        let c = &self.customization;
        let mut cm = Vec::new();
        if !c.embedded_machine_configuration.is_empty() {
            cm.push((
                key("embeddedMachineConfiguration"),
                s(&c.embedded_machine_configuration),
            ));
        }
        if !c.extra_kernel_args.is_empty() {
            cm.push((
                key("extraKernelArgs"),
                Out::Seq(c.extra_kernel_args.iter().map(|a| s(a)).collect()),
            ));
        }
        if !c.meta.is_empty() {
            cm.push((
                key("meta"),
                Out::Seq(
                    c.meta
                        .iter()
                        .map(|m| {
                            Out::Map(vec![
                                (key("key"), plain_out(m.key.to_string())),
                                (key("value"), s(&m.value)),
                            ])
                        })
                        .collect(),
                ),
            ));
        }
        if !c.official_extensions.is_empty() {
            cm.push((
                key("systemExtensions"),
                Out::Map(vec![(
                    key("officialExtensions"),
                    Out::Seq(c.official_extensions.iter().map(|e| s(e)).collect()),
                )]),
            ));
        }
        if c.bootloader != Bootloader::None {
            cm.push((key("bootloader"), s(c.bootloader.as_str())));
        }
        if !c.secureboot.enroll_keys.is_empty() || c.secureboot.include_well_known_certificates {
            let mut sb = Vec::new();
            if !c.secureboot.enroll_keys.is_empty() {
                sb.push((key("enrollKeys"), s(&c.secureboot.enroll_keys)));
            }
            if c.secureboot.include_well_known_certificates {
                sb.push((key("includeWellKnownCertificates"), plain_out("true")));
            }
            cm.push((key("secureboot"), Out::Map(sb)));
        }
        if c.disk_image_sector_size != 0 {
            cm.push((
                key("diskImage"),
                Out::Map(vec![(
                    key("sectorSize"),
                    plain_out(c.disk_image_sector_size.to_string()),
                )]),
            ));
        }
        root.push((key("customization"), Out::Map(cm)));
        Out::Map(root)
    }
}

/// Lowercase hex SHA-256 of canonical bytes.
pub fn id_of_canonical(canonical: &str) -> String {
    hex::encode(sha2::Sha256::digest(canonical.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Builder
// ---------------------------------------------------------------------------------------------

/// Builds a schematic from structured parts (for a Terraform resource). Lists keep their
/// order: the factory does not sort, and order changes the ID (§1.2).
#[derive(Debug, Clone, Default)]
pub struct SchematicBuilder {
    schematic: Schematic,
    error: Option<SchematicError>,
}

impl SchematicBuilder {
    /// Empty builder (vanilla schematic).
    pub fn new() -> Self {
        Self::default()
    }

    /// Official extensions, kept in the given order.
    pub fn extensions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.schematic.customization.official_extensions =
            names.into_iter().map(Into::into).collect();
        self
    }

    /// Extra kernel args, kept in the given order.
    pub fn extra_kernel_args<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        args: I,
    ) -> Self {
        self.schematic.customization.extra_kernel_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// META values, emitted in ascending key order.
    pub fn meta(mut self, meta: &BTreeMap<u8, String>) -> Self {
        self.schematic.customization.meta = meta
            .iter()
            .map(|(k, v)| MetaValue {
                key: *k,
                value: v.clone(),
            })
            .collect();
        self
    }

    /// META values in the given order (Omni's CreateSchematic sorts them by key descending,
    /// image-factory-and-talos.md §5.3; the factory keeps whatever order it receives).
    pub fn meta_in_order<I: IntoIterator<Item = (u8, String)>>(mut self, meta: I) -> Self {
        self.schematic.customization.meta = meta
            .into_iter()
            .map(|(key, value)| MetaValue { key, value })
            .collect();
        self
    }

    /// Overlay with generic options (keys are sorted on output like the factory does).
    pub fn overlay(mut self, name: &str, image: &str, options: Vec<(String, Value)>) -> Self {
        self.schematic.overlay = Overlay {
            image: image.into(),
            name: name.into(),
            options,
        };
        self
    }

    /// Overlay whose options are given as YAML text (a mapping, or empty).
    pub fn overlay_with_yaml_options(self, name: &str, image: &str, options_yaml: &str) -> Self {
        if options_yaml.trim().is_empty() {
            return self.overlay(name, image, Vec::new());
        }
        let wrapped = format!("overlay:\n  options:\n{}", indent_block(options_yaml, 4));
        match parse(&wrapped) {
            Ok(s) => self.overlay(name, image, s.overlay.options),
            Err(e) => {
                let mut b = self;
                b.error = Some(SchematicError::new(format!("invalid overlay options: {e}")));
                b
            }
        }
    }

    /// SecureBoot `includeWellKnownCertificates`.
    pub fn secureboot_include_well_known_certificates(mut self, v: bool) -> Self {
        self.schematic
            .customization
            .secureboot
            .include_well_known_certificates = v;
        self
    }

    /// Bootloader by its factory name (`none`, `dual-boot`, `sd-boot`, `grub`; any case).
    pub fn bootloader(mut self, name: &str) -> Self {
        match Bootloader::parse(name) {
            Ok(b) => self.schematic.customization.bootloader = b,
            Err(e) => self.error = Some(SchematicError::new(e)),
        }
        self
    }

    /// Embedded machine configuration (multi-document Talos config).
    pub fn embedded_machine_configuration(mut self, cfg: &str) -> Self {
        self.schematic.customization.embedded_machine_configuration = cfg.into();
        self
    }

    /// Disk image sector size (0 = default).
    pub fn disk_image_sector_size(mut self, size: u64) -> Self {
        self.schematic.customization.disk_image_sector_size = size;
        self
    }

    /// Finishes the schematic.
    pub fn build(self) -> Result<Schematic, SchematicError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.schematic),
        }
    }
}

fn indent_block(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect::<String>()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VANILLA: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

    #[test]
    fn vanilla_in_many_spellings() {
        // image-factory-and-talos.md §2.4: all of these equal the vanilla ID.
        for input in [
            "{}",
            "customization: {}",
            "customization: {\"extraKernelArgs\": []}",
            "customization: null",
            "customization:\n  systemExtensions: {}\n",
            "customization:\n  secureboot: {includeWellKnownCertificates: false}\n",
            "customization:\n  bootloader: none\n",
            "overlay:\n  options: {}\n",
            "---\n",
            "~",
        ] {
            assert_eq!(schematic_id(input).unwrap(), VANILLA, "input {input:?}");
        }
    }

    #[test]
    fn rejections_carry_factory_messages() {
        let e = parse("something:\n").unwrap_err();
        assert_eq!(
            e.message,
            "yaml: construct errors: line 1: field something not found in type schematic.Schematic"
        );
        let e = parse("customization: {extraKernelArg: [a]}").unwrap_err();
        assert!(e
            .message
            .ends_with("field extraKernelArg not found in type schematic.Customization"));
        let e = parse("customization:\n  meta:\n    - key: 256\n      value: x\n").unwrap_err();
        assert_eq!(
            e.message,
            "yaml: construct errors: line 3: cannot construct !!int `256` into uint8"
        );
        let e = parse("customization:\n  meta:\n    - key: -1\n").unwrap_err();
        assert!(e.message.contains("cannot construct !!int `-1` into uint8"));
        let e = parse("- a\n").unwrap_err();
        assert!(e
            .message
            .contains("cannot construct !!seq into schematic.Schematic"));
        let e = parse("customization:\n  diskImage:\n    sectorSize: \"4096\"\n").unwrap_err();
        assert!(e
            .message
            .contains("cannot construct !!str `4096` into uint"));
        let e = parse(
            "customization:\n  systemExtensions:\n    officialExtensions: siderolabs/iscsi-tools\n",
        )
        .unwrap_err();
        assert!(e
            .message
            .contains("cannot construct !!str `siderol...` into []string"));
        assert_eq!(parse("").unwrap_err().message, "EOF");
        assert_eq!(parse("# only a comment\n").unwrap_err().message, "EOF");
        let e = parse("customization:\n  bootloader: auto\n").unwrap_err();
        assert_eq!(
            e.message,
            "yaml: construct errors: line 2: auto does not belong to BootloaderKind values"
        );
        let e = parse("owner: a\nowner: b\n").unwrap_err();
        assert_eq!(
            e.message,
            "yaml: construct errors: line 2: mapping key \"owner\" already defined at line 1"
        );
    }

    #[test]
    fn normalisation_facts() {
        // §2.4
        let a = schematic_id("customization:\n  meta:\n    - key: 0xa\n      value: x\n").unwrap();
        let b = schematic_id("customization:\n  meta:\n    - key: 10\n      value: x\n").unwrap();
        assert_eq!(a, b);
        let a = schematic_id("customization:\n  bootloader: SD-BOOT\n").unwrap();
        assert_eq!(
            a,
            "9ed5fecdacb36b5c5427b87d409f1065cfb2df69b0f71c58b868d9d466d8dab3"
        );
        let name_only = parse("overlay:\n  name: rpi_generic\n").unwrap();
        assert!(name_only.canonical_yaml().contains("image: \"\"\n"));
        assert!(name_only.id().starts_with("8d2f83ce"), "{}", name_only.id());
        let with_second_doc = schematic_id("{}\n---\nsomething: else\n").unwrap();
        assert_eq!(with_second_doc, VANILLA);
        let n = parse("customization:\n  extraKernelArgs: [a, ~, b]\n").unwrap();
        assert_eq!(n.customization.extra_kernel_args, vec!["a", "b"]);
    }

    #[test]
    fn vga_example_from_api_doc() {
        // §2.7: the real ID of `extraKernelArgs: [vga=791]`.
        assert_eq!(
            schematic_id("customization:\n  extraKernelArgs: [vga=791]\n").unwrap(),
            "eea1f9534c46d95c4715a2f13d17eacb927c13a42ef087c79b22c3bd0c49d073"
        );
    }

    #[test]
    fn builder_matches_parser() {
        let built = SchematicBuilder::new()
            .extensions(["siderolabs/iscsi-tools", "siderolabs/util-linux-tools"])
            .build()
            .unwrap();
        assert_eq!(
            built.id(),
            "613e1592b2da41ae5e265e8789429f22e121aab91cb4deb6bc3c0b6262961245"
        );
        let mut meta = BTreeMap::new();
        meta.insert(10u8, "{\"externalIPs\":[\"1.2.3.4\"]}".to_string());
        let built = SchematicBuilder::new().meta(&meta).build().unwrap();
        assert_eq!(
            built.id(),
            "fe866116408a5a13dab7d5003eb57a00954ea81ebeec3fbbcd1a6d4462a00036"
        );
        let built = SchematicBuilder::new()
            .overlay("rpi_generic", "siderolabs/sbc-raspberrypi", Vec::new())
            .build()
            .unwrap();
        assert_eq!(
            built.id(),
            "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9"
        );
        assert!(SchematicBuilder::new().bootloader("auto").build().is_err());
        let desc = SchematicBuilder::new()
            .meta_in_order([(12u8, "b".to_string()), (10u8, "a".to_string())])
            .build()
            .unwrap();
        assert!(desc
            .canonical_yaml()
            .contains("- key: 12\n          value: b\n        - key: 10\n"));
        let b = SchematicBuilder::new()
            .overlay_with_yaml_options(
                "rpi_generic",
                "siderolabs/sbc-raspberrypi",
                "b: 2\na10: x\n",
            )
            .build()
            .unwrap();
        assert!(b
            .canonical_yaml()
            .contains("options:\n        a10: x\n        b: 2\n"));
    }

    #[test]
    fn factory_version_sensitivity() {
        let s = parse("customization:\n  extraKernelArgs: [\"on\"]\n").unwrap();
        assert!(s.id_depends_on_factory_version());
        assert!(s.canonical_yaml().contains("- 'on'"));
        assert!(s.canonical_yaml_with(Flavor::V4Rc4).contains("- \"on\""));
        let s = parse("customization:\n  extraKernelArgs: [foo=off]\n").unwrap();
        assert!(!s.id_depends_on_factory_version());
    }

    /// Overlay options follow go-yaml's `map[string]interface {}` rules: type errors, duplicate
    /// keys at any depth, a null key as "", merge keys resolved, the source order kept.
    #[test]
    fn overlay_options_are_decoded_like_a_go_map() {
        let options = |yaml: &str| {
            parse(&format!("overlay:\n  options: {yaml}\n"))
                .map(|s| format!("{:?}", s.overlay.options))
                .map_err(|e| e.message)
        };
        let construct = |e: &str| Err(format!("yaml: construct errors: line 2: {e}"));
        assert_eq!(
            options("[a]"),
            construct("cannot construct !!seq into map[string]interface {}")
        );
        assert_eq!(
            options("x"),
            construct("cannot construct !!str `x` into map[string]interface {}")
        );
        assert_eq!(options(""), Ok("[]".to_string()));
        assert_eq!(
            options("{a: 1, a: 2}"),
            construct("mapping key \"a\" already defined at line 2")
        );
        assert_eq!(
            options("{[k]: 1, b: 2}"),
            construct("cannot construct !!seq into string")
        );
        assert_eq!(
            options("{~: 1, b: {c: 1, c: 2}, d: [1]}"),
            construct("mapping key \"c\" already defined at line 2")
        );
        assert_eq!(
            options("{~: 1, n: 2, n2: {a: 1}}"),
            Ok(
                r#"[("", Int(1)), ("n", Int(2)), ("n2", Map([(String("a"), Int(1))]))]"#
                    .to_string()
            )
        );
        assert_eq!(
            options("{b: 2, a: {x: [1, {y: z}]}}"),
            Ok(r#"[("b", Int(2)), ("a", Map([(String("x"), Seq([Int(1), Map([(String("y"), String("z"))])]))]))]"#.to_string())
        );
        assert_eq!(
            options("\n    <<: {m: 1}\n    n: 2"),
            Ok(r#"[("m", Int(1)), ("n", Int(2))]"#.to_string())
        );
    }
}
