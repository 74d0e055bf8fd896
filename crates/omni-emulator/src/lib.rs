//! A local Omni for tests and demos: Omni's gRPC protocol, validation, persistence and
//! simulated controllers (omni-api.md).

pub mod auth;
pub mod keys;
pub mod model;
pub mod query;
pub mod signer;
pub mod store;
pub mod wal;
