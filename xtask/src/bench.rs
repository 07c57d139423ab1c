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
    /// Only the web endpoint's figures and their floor (plain axum).
    #[arg(long)]
    web_only: bool,
}

/// `cargo ARGS` (the cargo running this, or the one on the path), run to
/// its end; `Err` names `what` failed.
fn cargo(args: &[&str], what: &str) -> Result<(), Error> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .env_remove(modal_runtime::config::SERVER_URL_ENV)
        .status()
        .map_err(|e| Error::Config(format!("cannot run cargo: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Config(format!("{what} failed ({status})")))
    }
}

pub(crate) fn run(args: Args) -> Result<(), Error> {
    // The benchmark builds its standalone control plane (for the memory
    // figures) first, then measures the embedded one.
    cargo(
        &[
            "build",
            "--quiet",
            "--release",
            "--package",
            "modal-bench",
            "--bins",
        ],
        "building the benchmark",
    )?;
    // The Docker floor's no-op binary, linked statically: it runs in a
    // `FROM scratch` image, with no loader or libraries.
    cargo(
        &[
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
        ],
        "building the Docker floor's binary",
    )?;
    let mut run = vec![
        "run",
        "--quiet",
        "--release",
        "--package",
        "modal-bench",
        "--bin",
        "modal-bench",
        "--",
    ];
    if args.quick {
        run.push("--quick");
    }
    if args.docker_only {
        run.push("--docker-only");
    }
    if args.web_only {
        run.push("--web-only");
    }
    cargo(&run, "the benchmark")
}
