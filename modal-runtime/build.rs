fn main() {
    // A vendored protoc: building needs no system protobuf compiler.
    let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
    // SAFETY: build scripts are single-threaded.
    unsafe { std::env::set_var("PROTOC", protoc) };
    // The gRPC server side exists only with the `server` feature: clients
    // and containers do not link it.
    let server = std::env::var_os("CARGO_FEATURE_SERVER").is_some();
    tonic_prost_build::configure()
        .bytes(".")
        .build_server(server)
        // Malformed messages are INVALID_ARGUMENT, not INTERNAL.
        .codec_path("crate::grpc_codec::ProtoCodec")
        .compile_protos(&["proto/modal.proto"], &["proto"])
        .expect("compile proto/modal.proto");
    println!("cargo:rerun-if-changed=proto/modal.proto");
}
