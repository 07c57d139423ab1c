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

#[test]
fn a_non_loopback_address_needs_tls_or_insecure_and_plaintext_is_warned_about() {
    let data = std::env::temp_dir().join(format!("modal-cli-bind-{}", std::process::id()));
    let data = data.to_str().unwrap();
    let out = xtask(&["server", "--addr", "0.0.0.0:0", "--data-dir", data]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("refusing to serve plaintext on 0.0.0.0:0"),
        "{text}"
    );
    assert!(
        text.contains("--insecure") && text.contains("--tls-cert"),
        "{text}"
    );

    use std::io::BufRead;
    let mut server = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "server",
            "--insecure",
            "--addr",
            "0.0.0.0:0",
            "--data-dir",
            data,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(server.stderr.take().unwrap()).lines();
    let warned = lines.next().expect("a line on stderr").unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(data);
    assert!(
        warned.contains("warning: serving plaintext on 0.0.0.0:0 with --insecure"),
        "{warned}"
    );
}
