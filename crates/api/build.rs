//! Compiles every `.proto` under the workspace's `proto/` with protox (pure Rust, no system
//! `protoc`), generates prost messages and tonic clients and servers from the result, writes the
//! encoded descriptor set that the servers hand to gRPC reflection, and registers the requests
//! that share a shape (`requests.rs`, see `src/requests.rs`) from the contract itself.

use std::{env, fmt::Write as _, fs, path::PathBuf};

use prost::Message;
use prost_types::{
    DescriptorProto, FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};

const PROTO_FILES: &[&str] = &[
    "partnercenter/type/v1/cloud.proto",
    "partnercenter/partner/v1/partner.proto",
    "partnercenter/partner/v1/partner_service.proto",
    "partnercenter/relationship/v1/relationship.proto",
    "partnercenter/relationship/v1/relationship_service.proto",
    "partnercenter/channel/v1/channel.proto",
    "partnercenter/channel/v1/channel_service.proto",
    "partnercenter/event/v1/event.proto",
    "partnercenter/event/v1/event_service.proto",
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
    fs::write(out_dir.join("requests.rs"), shared_shapes(&descriptors)?)?;

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

/// The `lists!` and `idempotent!` lines of every method whose request has the shape: a request
/// with `page_size` and `page_token` is a List (AIP-158) answered by its method's response, whose
/// one repeated message field holds the page; a request with `request_id` is an idempotent create
/// (AIP-155). Deriving them from the contract means a new List or create registers itself.
fn shared_shapes(descriptors: &FileDescriptorSet) -> Result<String, String> {
    let message = |full_name: &str| {
        descriptors.file.iter().find_map(|file| {
            let name = full_name.strip_prefix(&format!(".{}.", file.package()))?;
            file.message_type.iter().find(|message| message.name() == name)
        })
    };
    let has = |message: &DescriptorProto, field: &str, kind: Type| {
        message.field.iter().any(|f| f.name() == field && f.r#type() == kind && f.label() != Label::Repeated)
    };
    let (mut lists, mut idempotent) = (String::new(), String::new());
    for file in &descriptors.file {
        for method in file.service.iter().flat_map(|service| &service.method) {
            let request = message(method.input_type()).ok_or_else(|| format!("{} not found", method.input_type()))?;
            if has(request, "page_size", Type::Int32) && has(request, "page_token", Type::String) {
                let response =
                    message(method.output_type()).ok_or_else(|| format!("{} not found", method.output_type()))?;
                let mut pages =
                    response.field.iter().filter(|f| f.label() == Label::Repeated && f.r#type() == Type::Message);
                let (Some(items), None) = (pages.next(), pages.next()) else {
                    return Err(format!(
                        "{}: a List response needs exactly one repeated message field",
                        response.name()
                    ));
                };
                if !has(response, "next_page_token", Type::String) {
                    return Err(format!("{}: a List response needs `next_page_token`", response.name()));
                }
                writeln!(
                    lists,
                    "    {} => {} {{ {}: {} }},",
                    rust_path(method.input_type()),
                    rust_path(method.output_type()),
                    items.name(),
                    rust_path(items.type_name()),
                )
                .map_err(|e| e.to_string())?;
            }
            if has(request, "request_id", Type::String) {
                writeln!(idempotent, "    {},", rust_path(method.input_type())).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(format!("lists!(\n{lists});\n\nidempotent!(\n{idempotent});\n"))
}

/// The path in this crate of the message `.partnercenter.partner.v1.Partner`: the module tree of
/// `src/lib.rs` mirrors the packages.
fn rust_path(full_name: &str) -> String {
    let (package, name) = full_name.trim_start_matches('.').rsplit_once('.').unwrap_or(("", full_name));
    let modules: Vec<&str> = package.split('.').map(|p| if p == "type" { "r#type" } else { p }).collect();
    format!("crate::{}::{name}", modules.join("::"))
}
