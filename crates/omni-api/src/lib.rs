//! omni-api
