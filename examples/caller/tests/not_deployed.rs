//! Without a deployed `hello` app, the caller says so by name.

use std::process::Command;

#[test]
fn calling_an_app_that_is_not_deployed_names_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_caller"))
        .env_remove("MODAL_SERVER_URL")
        .env("MODAL_CONFIG", "/nonexistent/modal-rs.toml")
        .env("HELLO_APP", "hello-nowhere")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("app `hello-nowhere` is not deployed on this control plane"),
        "{stderr}"
    );
}
