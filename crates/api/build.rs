//! Compiles every `.proto` under the workspace's `proto/` with protox (pure Rust, no system
//! `protoc`), generates prost messages and tonic clients and servers from the result, and writes
//! the encoded descriptor set that the servers hand to gRPC reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTO_FILES: &[&str] = &[
    "partnercenter/type/v1/cloud.proto",
    "partnercenter/partner/v1/partner.proto",
    "partnercenter/partner/v1/partner_service.proto",
    "partnercenter/relationship/v1/relationship.proto",
    "partnercenter/relationship/v1/relationship_service.proto",
    "partnercenter/channel/v1/channel.proto",
    "partnercenter/channel/v1/channel_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto").canonicalize()?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    println!("cargo:rerun-if-changed={}", proto_root.display());
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }

    let descriptors = protox::compile(PROTO_FILES, [&proto_root])?;
    // `compile_fds` writes no descriptor file itself; reflection needs one, so write it here.
    fs::write(out_dir.join("partnercenter_descriptor.bin"), descriptors.encode_to_vec())?;

    // Type names let the codec tell request messages (size-limited) from responses.
    let mut prost_config = prost_build::Config::new();
    prost_config.enable_type_names();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .emit_rerun_if_changed(false)
        .codec_path("crate::codec::Codec")
        .compile_fds_with_config(descriptors, prost_config)?;
    Ok(())
}
