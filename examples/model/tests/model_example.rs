//! `cargo run -p model` end to end, on the embedded control plane.

use std::process::Command;

#[test]
fn the_model_example_builds_each_table_once_per_container() {
    let output = Command::new(env!("CARGO_BIN_EXE_model"))
        .env_remove("MODAL_SERVER_URL")
        .env("MODAL_CONFIG", "/nonexistent/modal-rs.toml")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for expected in [
        "factorize(360) = [2, 2, 2, 3, 3, 5]",
        "factorize.map(2..1002): 1000 results",
        "count_primes(1_000_000) = 78498",
        "large.factorize(9_999_991) = [9999991]",
        "factorize(5_000_000) failed: function `Factorizer.factorize` failed: 5000000 is outside the table `small` (2 to 1999999)",
        "queued",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    // `[Factorizer c-12] table `small` of ... built in ...`: the containers
    // that built each table.
    let builders = |name: &str| -> Vec<String> {
        stdout
            .lines()
            .filter(|l| l.contains(&format!("table `{name}` of")) && l.contains("built in"))
            .map(|l| l.split(']').next().unwrap_or_default().to_owned())
            .collect()
    };
    let small = builders("small");
    let mut distinct = small.clone();
    distinct.sort();
    distinct.dedup();
    // A thousand calls, at most two containers (`max_containers = 2`), one
    // build in each.
    assert!(!small.is_empty() && small.len() <= 2, "{stdout}");
    assert_eq!(
        small.len(),
        distinct.len(),
        "a container built twice:\n{stdout}"
    );
    assert_eq!(builders("large").len(), 1, "{stdout}");
    // Both containers ran `exit` when the program ended.
    assert!(stdout.contains("table `small` unloaded"), "{stdout}");
    assert!(stdout.contains("table `large` unloaded"), "{stdout}");
}
