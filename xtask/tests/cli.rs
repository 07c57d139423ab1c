//! The xtask commands' errors, without a control plane.

use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env_remove("MODAL_SERVER_URL")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn an_unreachable_server_is_named_with_its_url() {
    let out = xtask(&["app", "list", "--server", "127.0.0.1:9"]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("cannot reach the modal-rs control plane at http://127.0.0.1:9"),
        "{text}"
    );
}

#[test]
fn deploying_a_missing_binary_says_which() {
    let out = xtask(&["deploy", "hello", "--binary", "/nonexistent/hello"]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(text.contains("cannot run /nonexistent/hello"), "{text}");
}
