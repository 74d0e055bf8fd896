//! The `omni` Terraform provider.
//!
//! * [`provider`]: the provider block (endpoint, credentials) and the
//!   [`provider::ProviderData`] every resource reads with
//!   `ctx.provider_data::<ProviderData>()`.
//! * [`resources`] / [`data_sources`] / [`ephemeral`] / [`functions`]: one
//!   module per object, registered in the lists there.
//! * [`common`]: client access, error diagnostics, `timeouts`, waits.
//!
//! The protocol layer is the `tfplugin` crate; see its crate docs for how to
//! write a resource.

pub mod common;
pub mod data_sources;
pub mod ephemeral;
pub mod functions;
pub mod provider;
pub mod resources;

/// The provider's short name (resource types are `omni_*`).
pub const PROVIDER_NAME: &str = "omni";

/// The provider's source address, used by `--debug` for the reattach line.
pub const PROVIDER_ADDRESS: &str = "siderolabs/omni";

/// Serves the provider until Terraform stops it; call from `main`.
pub fn serve() -> std::process::ExitCode {
    tfplugin::serve(PROVIDER_NAME, PROVIDER_ADDRESS, provider::OmniProvider)
}
