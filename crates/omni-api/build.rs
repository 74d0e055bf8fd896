//! Compiles the Omni/COSI protos without a system `protoc`: protox parses them into a
//! FileDescriptorSet, which is both written to OUT_DIR (for protojson via prost-reflect) and fed to
//! tonic-prost-build for the Rust types and gRPC stubs.

use std::{env, fs, path::PathBuf};

use protox::prost::Message as _;

const PROTOS: &[&str] = &[
    "v1alpha1/resource.proto",
    "v1alpha1/state.proto",
    "common/omni.proto",
    "omni/specs/omni.proto",
    "omni/specs/system.proto",
    "omni/management/management.proto",
    "omni/resources/resources.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=build.rs");

    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("omni_api_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
