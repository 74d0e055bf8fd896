//! Wire types for Sidero Omni: the COSI `State` service, Omni's spec messages, the management API
//! and the JSON resource API. Generated at build time from the `.proto` files in `proto/`, which
//! were written from `omni-api.md` (§1.3, §3.4, §6, §11). Package names and method paths are
//! Omni's own, so the bytes on the wire are the same as the Go client's.

#![allow(clippy::all, missing_docs)]

/// COSI (`cosi.*` proto packages).
pub mod cosi {
    /// `cosi.resource`: resource model, queries and the `State` service (omni-api.md §1.2-§1.3).
    pub mod resource {
        include!(concat!(env!("OUT_DIR"), "/cosi.resource.rs"));

        /// The proto name of [`IdQuery`] (prost renames `IDQuery`).
        pub type IDQuery = IdQuery;
    }
}

/// `common`: the `Runtime` enum named by the `runtime` metadata header (omni-api.md §11).
pub mod common {
    include!(concat!(env!("OUT_DIR"), "/common.rs"));
}

/// `specs`: Omni resource spec messages (omni-api.md §3.4).
pub mod specs {
    include!(concat!(env!("OUT_DIR"), "/specs.rs"));

    /// The proto name of [`ClusterUuid`] (prost renames `ClusterUUID`).
    pub type ClusterUUID = ClusterUuid;
}

/// `management`: `ManagementService` (omni-api.md §6).
pub mod management {
    include!(concat!(env!("OUT_DIR"), "/management.rs"));
}

/// Omni's own `omni.*` proto packages.
pub mod omni {
    /// `omni.resources`: the JSON `ResourceService` used by the web UI (omni-api.md §11).
    pub mod resources {
        include!(concat!(env!("OUT_DIR"), "/omni.resources.rs"));
    }
}

/// The encoded `google.protobuf.FileDescriptorSet` of every proto in this crate (including the
/// well-known types they import), for protojson and reflection (e.g. with prost-reflect).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/omni_api_descriptor.bin"));
