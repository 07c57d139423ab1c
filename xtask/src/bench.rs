//! `cargo xtask bench`: builds and runs the benchmark app in release.
//!
//! The benchmark is an ordinary modal-rs program (`bench/`) on the embedded
//! control plane; it prints one `name value unit` line per figure.

use std::process::Command;

use modal_runtime::Error;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// A short run (fewer samples), for a quick comparison.
    #[arg(long)]
    quick: bool,
    /// Only the Docker backend's figures and their floor.
    #[arg(long)]
    docker_only: bool,
}

pub(crate) fn run(args: Args) -> Result<(), Error> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args([
        "run",
        "--quiet",
        "--release",
        "--package",
        "modal-bench",
        "--bin",
        "modal-bench",
        "--",
    ]);
    if args.quick {
        command.arg("--quick");
    }
    if args.docker_only {
        command.arg("--docker-only");
    }
    // The benchmark builds its standalone control plane (for the memory
    // figures) first, then measures the embedded one.
    let build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "--release",
            "--package",
            "modal-bench",
            "--bins",
        ])
        .status()
        .map_err(|e| Error::Config(format!("cannot run cargo: {e}")))?;
    if !build.success() {
        return Err(Error::Config(format!(
            "building the benchmark failed ({build})"
        )));
    }
    // The Docker floor's no-op binary, linked statically: it runs in a
    // `FROM scratch` image, with no loader or libraries.
    let noop = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "rustc",
            "--quiet",
            "--release",
            "--package",
            "modal-bench",
            "--bin",
            "noop",
            "--",
            "-C",
            "target-feature=+crt-static",
        ])
        .status()
        .map_err(|e| Error::Config(format!("cannot run cargo: {e}")))?;
    if !noop.success() {
        return Err(Error::Config(format!(
            "building the Docker floor's binary failed ({noop})"
        )));
    }
    command.env_remove(modal_runtime::config::SERVER_URL_ENV);
    let status = command
        .status()
        .map_err(|e| Error::Config(format!("cannot run cargo: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Config(format!("the benchmark failed ({status})")))
    }
}
