//! # tfplugin: a thin Terraform plugin protocol 6.9 server
//!
//! Write a provider as a handful of typed traits; this crate speaks the wire
//! protocol (tfplugin6.9 over gRPC, the go-plugin handshake with required
//! AutoMTLS client certificates, Unix sockets, 256 MiB messages), encodes cty
//! values, and does the protocol chores every resource needs.
//!
//! ## The pieces
//! * [`Provider`]: schema, `configure` (its result is the provider data every
//!   call can read with [`Ctx::provider_data`]) and the lists of resources,
//!   data sources, ephemeral resources and functions.
//! * [`Resource`], [`DataSource`], [`EphemeralResource`], [`Function`]:
//!   implement on a struct, register with [`resource()`], [`data_source()`],
//!   [`ephemeral_resource()`], [`function()`].
//! * [`Value<T>`]: null / unknown / known. Use it for every field of a state
//!   struct; the struct is converted to and from cty with serde.
//! * [`Schema`], [`Attribute`], [`NestedBlock`]: builders. Descriptions are
//!   markdown and become the generated docs.
//! * [`Diagnostics`] is the error type of every method ([`Result`]); any
//!   `std::error::Error` converts with `?`, and [`ResultExt::diag`] gives any
//!   `Display` error (anyhow too) a summary: `api.get(id).await.diag("Reading cluster")?`.
//!   Point at an attribute with `Diagnostic::error(..).at(AttributePath::new("name"))`;
//!   add warnings with [`Ctx::warn`].
//! * [`serve`] runs the plugin from `main`; `--debug` prints a
//!   `TF_REATTACH_PROVIDERS` line instead of the handshake.
//!
//! ## What the framework does for you
//! * Defaults declared with [`Attribute::default_value`] are planned when the
//!   configuration leaves the attribute null.
//! * Create plans: computed attributes not set in config become unknown.
//! * Update plans: Terraform's proposal keeps prior values of unconfigured
//!   computed attributes; set [`Value::Unknown`] yourself for ones that change.
//! * Attributes declared [`Attribute::requires_replace`] are added to
//!   `requires_replace` when they change.
//! * Write-only attributes are nulled in plans and states; configuring a
//!   computed-only attribute is an error; apply may not leave unknowns.
//! * A panic in your code becomes an error diagnostic naming the resource and
//!   RPC (logged once, no backtrace), never a hang.
//! * `UpgradeResourceState` at the current version decodes the stored JSON
//!   leniently (unknown attributes dropped, missing ones null).
//! * Logs: `tracing` events go to stderr as hclog JSON at the level of
//!   `TF_LOG_PROVIDER_<NAME>` / `TF_LOG_PROVIDER` / `TF_LOG`. Never log
//!   sensitive values. Nothing but the handshake is written to stdout.
//!
//! ## Example: a resource
//! ```
//! use serde::{Deserialize, Serialize};
//! use tfplugin::{async_trait, Attribute, Ctx, PrivateState, Resource, Result, Schema, Value};
//!
//! pub struct NoteResource;
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct NoteState {
//!     pub id: Value<String>,
//!     pub title: Value<String>,
//!     pub body: Value<String>,
//! }
//!
//! #[async_trait]
//! impl Resource for NoteResource {
//!     const TYPE_NAME: &'static str = "omni_note";
//!     type State = NoteState;
//!
//!     fn schema(&self) -> Schema {
//!         Schema::new("A note. *Markdown* works here.")
//!             .attribute(Attribute::string("id").computed().description("Note ID."))
//!             .attribute(Attribute::string("title").required().requires_replace()
//!                 .description("Title; changing it replaces the note."))
//!             .attribute(Attribute::string("body").optional().description("Text."))
//!     }
//!
//!     async fn read(&self, _ctx: &Ctx, state: NoteState, _p: &mut PrivateState)
//!         -> Result<Option<NoteState>> {
//!         // Fetch by state.id; Ok(None) when it was deleted outside Terraform.
//!         Ok(Some(state))
//!     }
//!
//!     async fn create(&self, _ctx: &Ctx, mut plan: NoteState, _config: &NoteState,
//!                     _p: &mut PrivateState) -> Result<NoteState> {
//!         // `plan.id` is Value::Unknown here: fill every unknown.
//!         plan.id = Value::Known(format!("note-{}", plan.title.as_str().unwrap_or("")));
//!         Ok(plan)
//!     }
//!
//!     async fn update(&self, _ctx: &Ctx, _prior: NoteState, plan: NoteState,
//!                     _config: &NoteState, _p: &mut PrivateState) -> Result<NoteState> {
//!         Ok(plan)
//!     }
//!
//!     async fn delete(&self, _ctx: &Ctx, _prior: NoteState, _p: &PrivateState) -> Result<()> {
//!         Ok(())
//!     }
//!
//!     async fn import(&self, _ctx: &Ctx, id: &str) -> Result<NoteState> {
//!         Ok(NoteState { id: id.into(), title: Value::Null, body: Value::Null })
//!     }
//! }
//!
//! // In Provider::resources(): vec![tfplugin::resource(NoteResource)]
//! ```
//!
//! `src/bin/tfptest/` in this crate is a complete provider using every
//! feature (nested attributes, write-only and sensitive values, private
//! state, a data source, an ephemeral resource and a function).

#![warn(missing_docs)]

mod adapter;
mod diag;
mod log;
mod schema;
mod serve;
mod server;
mod tls;
mod traits;
pub mod value;

pub use adapter::{
    data_source, ephemeral_resource, function, resource, DynDataSource, DynEphemeralResource,
    DynFunction, DynResource, PlanOutcome,
};
pub use async_trait::async_trait;
pub use diag::{AttributePath, Diagnostic, Diagnostics, PathStep, ResultExt, Severity};
pub use log::HclogLayer;
pub use schema::{
    Attribute, AttributeType, Block, BlockNesting, FunctionDefinition, IdentityAttribute,
    IdentitySchema, NestedBlock, Nesting, Parameter, Schema,
};
pub use serve::{serve, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE};
pub use server::proto;
pub use server::MAX_MESSAGE_SIZE;
pub use traits::{
    Arguments, Ctx, DataSource, EphemeralResource, Function, FunctionError, MoveSource,
    PrivateState, Provider, Resource, Result,
};
pub use value::{Dynamic, Number, Type, Value};
