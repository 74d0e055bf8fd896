//! omni-client
