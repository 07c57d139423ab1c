//! Building the package to deploy with cargo, in the workspace it belongs
//! to, and finding its binary in what cargo reports.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use modal_runtime::Error;

use crate::progress::{Progress, Step};

/// The cargo that runs us (cargo sets `CARGO` for its subcommands and for
/// `cargo run`), else the one on the `PATH`.
pub(crate) fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Builds `package` of the workspace at `manifest_path` (or around the
/// current folder) and returns the path of its binary.
pub(crate) fn build(
    package: &str,
    manifest_path: Option<&Path>,
    debug: bool,
    progress: Progress,
) -> Result<PathBuf, Error> {
    let mut command = Command::new(cargo());
    command.args([
        "build",
        "--package",
        package,
        "--message-format=json-render-diagnostics",
    ]);
    if let Some(path) = manifest_path {
        command.arg("--manifest-path").arg(path);
    }
    if !debug {
        command.arg("--release");
    }
    clear_run_environment(&mut command);
    let what = format!(
        "building {package}{}",
        if debug { "" } else { " (release)" }
    );
    let step = progress.step(what.clone());
    // On a terminal cargo's status lines feed the spinner (its warnings and
    // errors are kept above it); elsewhere they go out as cargo prints them.
    command
        .stdout(Stdio::piped())
        .stderr(if progress.is_terminal() {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
    let mut child = command.spawn().map_err(|e| Error::Deploy {
        message: format!("cannot run cargo: {e}"),
    })?;
    let status = Arc::new(Mutex::new(Status {
        what,
        ready: 0,
        now: String::new(),
    }));
    let relay = child.stderr.take().map(|stderr| {
        let (step, status) = (step.clone(), status.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                match cargo_status(&line) {
                    Some(now) => status.lock().unwrap().now(&step, now),
                    None => step.println(&line),
                }
            }
        })
    });
    let mut executables = Vec::new();
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        status.lock().unwrap().ready(&step);
        if msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "bin"))
            && msg["package_id"]
                .as_str()
                .is_some_and(|id| belongs_to(id, package))
            && let Some(exe) = msg["executable"].as_str()
        {
            executables.push(PathBuf::from(exe));
        }
    }
    let exit = child.wait();
    if let Some(relay) = relay {
        let _ = relay.join();
    }
    let failed = |step: Step, message: String| {
        step.failed();
        Err(Error::Deploy { message })
    };
    match exit {
        Ok(exit) if exit.success() => {}
        Ok(_) => {
            return failed(
                step,
                format!("building `{package}` failed (cargo says why above)"),
            );
        }
        Err(e) => return failed(step, format!("cargo did not finish: {e}")),
    }
    match executables.as_slice() {
        [one] => {
            step.done(&format!("built {}", one.display()));
            Ok(one.clone())
        }
        [] => failed(
            step,
            format!("package `{package}` has no binary target to deploy"),
        ),
        many => failed(
            step,
            format!(
                "package `{package}` has several binaries ({}); pass one with --binary",
                many.iter()
                    .map(|p| file_name(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
}

/// Leaves out what `cargo run` (the `cargo xtask` alias) and test harnesses
/// set for the program they start: a build script that reads one (ring's
/// reads `CARGO_MANIFEST_DIR`) would otherwise see a changed environment,
/// rebuild, and make the next plain `cargo build` rebuild it all again.
fn clear_run_environment(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if is_run_variable(key) {
            command.env_remove(key);
        }
    }
}

fn is_run_variable(key: &str) -> bool {
    ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_BIN_EXE_"]
        .iter()
        .any(|prefix| key.starts_with(prefix))
        || [
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "OUT_DIR",
        ]
        .contains(&key)
}

/// What the spinner says: the step, how many units (crates, build
/// scripts) are done, and what cargo is doing now.
struct Status {
    what: String,
    ready: usize,
    now: String,
}

impl Status {
    fn ready(&mut self, step: &Step) {
        self.ready += 1;
        self.show(step);
    }

    /// What cargo does now: its verb and crate (`Compiling tokio`), not
    /// the version and path that would crowd the line.
    fn now(&mut self, step: &Step, line: &str) {
        self.now = line.split(' ').take(2).collect::<Vec<_>>().join(" ");
        self.show(step);
    }

    fn show(&self, step: &Step) {
        step.status(format!(
            "{}: {} done{}{}",
            self.what,
            self.ready,
            if self.now.is_empty() { "" } else { ", " },
            self.now
        ));
    }
}

/// Cargo's status lines (`   Compiling tokio v1.0.0`), as opposed to
/// diagnostics and everything else worth keeping.
fn cargo_status(line: &str) -> Option<&str> {
    const VERBS: &[&str] = &[
        "Adding",
        "Blocking",
        "Building",
        "Checking",
        "Compiling",
        "Downloaded",
        "Downloading",
        "Finished",
        "Fresh",
        "Locking",
        "Updating",
    ];
    let trimmed = line.trim_start();
    let verb = trimmed.split(' ').next()?;
    (line.starts_with(' ') && VERBS.contains(&verb)).then_some(trimmed)
}

/// Whether a cargo package id (`path+file:///…/hello#0.1.0` or the older
/// `hello 0.1.0 (…)` form) names `package`.
fn belongs_to(id: &str, package: &str) -> bool {
    id.starts_with(&format!("{package} "))
        || id.rsplit('/').next().is_some_and(|tail| {
            tail.split(['#', '@']).next() == Some(package) || tail.contains(&format!("#{package}@"))
        })
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_told_from_diagnostics() {
        assert_eq!(
            cargo_status("   Compiling tokio v1.54.1"),
            Some("Compiling tokio v1.54.1")
        );
        assert_eq!(
            cargo_status("    Finished `dev` profile"),
            Some("Finished `dev` profile")
        );
        assert_eq!(cargo_status("warning: unused variable: `x`"), None);
        assert_eq!(cargo_status("  --> src/main.rs:3:9"), None);
    }

    #[test]
    fn only_what_cargo_run_sets_is_left_out() {
        assert!(is_run_variable("CARGO_MANIFEST_DIR"));
        assert!(is_run_variable("CARGO_PKG_NAME"));
        assert!(is_run_variable("CARGO_BIN_EXE_test_app"));
        assert!(!is_run_variable("CARGO_TARGET_DIR"));
        assert!(!is_run_variable("CARGO_HOME"));
        assert!(!is_run_variable("CARGO"));
    }

    #[test]
    fn package_ids_name_their_package() {
        assert!(belongs_to("path+file:///ws/fns#0.1.0", "fns"));
        assert!(belongs_to("path+file:///ws/x#fns@0.1.0", "fns"));
        assert!(belongs_to("fns 0.1.0 (path+file:///ws/fns)", "fns"));
        assert!(!belongs_to("path+file:///ws/fns-b#0.1.0", "fns"));
    }
}
