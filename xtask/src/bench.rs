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
