//! Typed client for Sidero Omni.
//!
//! * [`Client`] holds the connection: endpoint parsing like the Go client, TLS (system roots,
//!   optional CA bundle, opt-in skip-verify) or h2c, gzip replies (gzip requests opt-in),
//!   keepalive, 32 MiB messages, and the [`auth::RequestSigner`] interceptor that signs every
//!   call with a service-account key.
//! * [`Api<K>`] gives `get`, `get_opt`, `list`, `create`, `update`, `teardown`, `destroy`,
//!   `teardown_and_destroy` and `watch` on one resource kind ([`resources`]).
//! * Management calls (kubeconfig, talosconfig, config validation, schematics, upgrade checks)
//!   are methods on [`Client`].
//!
//! Facts come from `omni-api.md`; comments cite its sections.

#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod client;
pub mod endpoint;
pub mod error;
pub mod management;
pub mod object;
pub mod resources;

pub use api::{Api, WatchEvent, WatchStream};
pub use auth::{RequestSigner, ServiceAccountKey};
pub use client::{Client, ClientBuilder, RetryPolicy, SecretBytes};
pub use endpoint::{Endpoint, Transport};
pub use error::{Error, KeyError, Result};
pub use management::{KubeconfigOptions, ServiceAccountKubeconfig, UpgradePreCheck};
pub use object::{LabelQuery, ListParams, Object, ObjectMeta, Phase, WatchParams};
pub use omni_api;
pub use resources::ResourceKind;
