//! The main example, run as a user runs it: on the embedded control plane.

use std::process::Command;

#[test]
fn the_main_example_runs_on_the_embedded_control_plane() {
    let output = Command::new(env!("CARGO_BIN_EXE_hello"))
        .env_remove("MODAL_SERVER_URL")
        .env("MODAL_CONFIG", "/nonexistent/modal-rs.toml")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "square.remote(7) = 49",
        "greet.remote(\"modal-rs\") = Hello, modal-rs!",
        "add.spawn(40, 2) -> fc-",
        "square.map(1..=10) = [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]",
        "add.starmap([(1, 2), (3, 4), (5, 6)]) = [3, 7, 11]",
        "square.for_each(0..100) done",
        "square.local(9) = 81",
        "parse_port.remote(\"eighty\") failed: function `parse_port` failed: invalid digit found in string",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    // What `greet` printed in its container, marked with function and container.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("[greet c-") && l.ends_with("] greeting modal-rs")),
        "{stdout}"
    );
}
