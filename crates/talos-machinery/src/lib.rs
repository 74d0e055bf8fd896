//! Pure, dependency-light rules shared by the Terraform provider (plan-time checks) and the
//! local Omni emulator (server-side validation).
//!
//! Nothing in here performs I/O. Every behaviour imitates a documented behaviour of the real
//! services; the spec section is cited next to each rule.

pub mod factory;
pub mod names;
pub mod patch;
pub mod schematic;
pub mod selector;
pub mod urls;
pub mod versions;
pub mod yaml;
