//! Image Factory schematics: strict parsing, canonical YAML and IDs (image-factory-and-talos.md §1–§2).

use std::collections::BTreeMap;

/// Error returned when a schematic is rejected; `Display` is the factory's kind of message
/// (e.g. `yaml: construct errors: line 1: field something not found in type schematic.Schematic`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SchematicError {
    /// The message the factory would answer with (without the trailing newline).
    pub message: String,
}

/// A generic YAML value, as found in `overlay.options`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// Signed integer.
    Int(i64),
    /// Unsigned integer above `i64::MAX`.
    Uint(u64),
    /// Floating point.
    Float(f64),
    /// Timestamp, kept in Go's RFC 3339 output form.
    Timestamp(String),
    /// String.
    String(String),
    /// Sequence.
    Seq(Vec<Value>),
    /// Mapping, in input order (sorted only when emitted).
    Map(Vec<(Value, Value)>),
}

/// `overlay` part of a schematic.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Overlay {
    /// Overlay image, e.g. `siderolabs/sbc-raspberrypi`.
    pub image: String,
    /// Overlay name, e.g. `rpi_generic`.
    pub name: String,
    /// Free-form options (string keys).
    pub options: Vec<(String, Value)>,
}

/// One `customization.meta` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaValue {
    /// META key (0..=255).
    pub key: u8,
    /// META value.
    pub value: String,
}

/// `customization.bootloader`.
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

/// `customization.secureboot`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecureBoot {
    /// `enrollKeys` (not validated by the factory at POST).
    pub enroll_keys: String,
    /// `includeWellKnownCertificates`.
    pub include_well_known_certificates: bool,
}

/// `customization`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Customization {
    /// `embeddedMachineConfiguration`.
    pub embedded_machine_configuration: String,
    /// `extraKernelArgs`.
    pub extra_kernel_args: Vec<String>,
    /// `meta`.
    pub meta: Vec<MetaValue>,
    /// `systemExtensions.officialExtensions`.
    pub official_extensions: Vec<String>,
    /// `bootloader`.
    pub bootloader: Bootloader,
    /// `secureboot`.
    pub secureboot: SecureBoot,
    /// `diskImage.sectorSize`.
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

/// Strictly parses a schematic (YAML or JSON, first document only).
pub fn parse(input: &str) -> Result<Schematic, SchematicError> {
    let _ = input;
    Err(SchematicError {
        message: "not implemented yet".into(),
    })
}

/// Parses `input` and returns its schematic ID.
pub fn schematic_id(input: &str) -> Result<String, SchematicError> {
    parse(input).map(|s| s.id())
}

impl Schematic {
    /// The factory's canonical YAML.
    pub fn canonical_yaml(&self) -> String {
        String::new()
    }

    /// Lowercase hex SHA-256 of the canonical YAML.
    pub fn id(&self) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(self.canonical_yaml().as_bytes()))
    }
}

/// Builds a schematic from structured parts (for a Terraform resource).
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
    /// Overlay with options.
    pub fn overlay(mut self, name: &str, image: &str, options: Vec<(String, Value)>) -> Self {
        self.schematic.overlay = Overlay {
            image: image.into(),
            name: name.into(),
            options,
        };
        self
    }
    /// SecureBoot `includeWellKnownCertificates`.
    pub fn secureboot_include_well_known_certificates(mut self, v: bool) -> Self {
        self.schematic
            .customization
            .secureboot
            .include_well_known_certificates = v;
        self
    }
    /// Bootloader by its factory name (`none`, `dual-boot`, `sd-boot`, `grub`).
    pub fn bootloader(mut self, name: &str) -> Self {
        let _ = name;
        self.error = Some(SchematicError {
            message: "not implemented yet".into(),
        });
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
