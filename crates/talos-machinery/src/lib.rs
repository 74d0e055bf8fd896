//! Pure, dependency-light rules shared by the Terraform provider (plan-time checks) and the
//! local Omni emulator (server-side validation). No I/O, no other workspace crate.
//!
//! Every behaviour imitates a documented behaviour of the real services; the spec section is
//! cited next to each rule (`image-factory-and-talos.md`, `omni-api.md`).
//!
//! | Module | What it gives |
//! |---|---|
//! | [`schematic`] | strict `parse`, `Schematic::canonical_yaml`/`id` (factory-identical bytes and IDs), `schematic_id`, `SchematicBuilder` |
//! | [`patch`] | `validate_config_patch` (Talos loader + Omni forbidden rules), `normalize`, `semantically_equal` |
//! | [`versions`] | tolerant parsing, K8s↔Talos compatibility, upgrade paths, seeded release and extension/overlay catalogues |
//! | [`names`] | cluster names, machine set IDs, resource IDs, label/annotation limits, kernel args, extension lists |
//! | [`selector`] | COSI label selector parser (`parse_selector`) and matcher (`LabelQuery::matches`, `matches_any`) |
//! | [`factory`] | transport-free Image Factory (`Factory::handle(method, path, body)`) |
//! | [`urls`] | installer/ISO/disk/PXE URL builders per platform, arch and SecureBoot |
//! | [`yaml`] | the go-yaml-compatible YAML reader/emitter the above are built on |

pub mod factory;
pub mod names;
pub mod patch;
pub mod schematic;
pub mod selector;
pub mod urls;
pub mod versions;
pub mod yaml;
