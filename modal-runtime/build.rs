fn main() {
    // A vendored protoc: building needs no system protobuf compiler.
    let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
    // SAFETY: build scripts are single-threaded.
    unsafe { std::env::set_var("PROTOC", protoc) };
    tonic_prost_build::configure()
        .bytes(".")
        .compile_protos(&["proto/modal.proto"], &["proto"])
        .expect("compile proto/modal.proto");
    println!("cargo:rerun-if-changed=proto/modal.proto");
}
