//! Pieces every resource shares: reaching the configured client, turning client errors into
//! diagnostics, `timeouts`, event-driven waits, and the split between user metadata and Omni's own.

pub mod delete;
pub mod errors;
pub mod factory_http;
pub mod meta;
pub mod read_cache;
pub mod timeouts;
pub mod wait;

pub use delete::{
    create_or_adopt, create_replacing_dying, get_for_read, teardown_and_wait, Adoption,
};
pub use errors::{omni_error, omni_error_at};
pub use timeouts::{bounded, Timeouts};
pub use wait::{wait_for, WaitDecision};

use crate::provider::Configured;
use tfplugin::{Ctx, Result};

/// The configured provider (client and settings) for this call.
pub fn configured(ctx: &Ctx) -> Result<&Configured> {
    ctx.provider_data::<Configured>()
}

/// The Omni client of the configured provider.
pub fn client(ctx: &Ctx) -> Result<omni_client::Client> {
    Ok(configured(ctx)?.client.clone())
}

/// A typed API for kind `K` on the configured client.
pub fn api<K: omni_client::ResourceKind>(ctx: &Ctx) -> Result<omni_client::Api<K>> {
    Ok(omni_client::Api::new(client(ctx)?))
}
