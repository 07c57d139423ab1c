//! `cargo xtask deploy <package>`: build, read the manifest, upload, register.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use modal_runtime::AppBinary;
use modal_runtime::{Error, Manifest};

use crate::ServerUrl;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The package whose binary to deploy.
    package: String,
    /// App name [default: the package name].
    #[arg(long)]
    name: Option<String>,
    /// Deploy this already-built binary instead of building the package.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Build in the dev profile (faster to build, slower to run).
    #[arg(long)]
    debug: bool,
    #[command(flatten)]
    server: ServerUrl,
}

pub(crate) async fn run(args: Args) -> Result<(), Error> {
    let binary = match &args.binary {
        Some(path) => path.clone(),
        None => build(&args.package, args.debug)?,
    };
    let manifest =
        Manifest::read_from_binary(&binary).map_err(|message| Error::Deploy { message })?;
    let name = args.name.clone().unwrap_or_else(|| args.package.clone());
    let client = args.server.connect().await?;
    let created = client
        .create_app(&name, &manifest, AppBinary::Upload(&binary), false)
        .await?;
    println!(
        "deployed app `{}` version {} to {}",
        created.app,
        created.version,
        client.url()
    );
    for f in &manifest.functions {
        println!("  {}  {}", f.name, f.fingerprint);
    }
    Ok(())
}

/// Builds `package` and returns the path of its binary.
fn build(package: &str, debug: bool) -> Result<PathBuf, Error> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args([
        "build",
        "--package",
        package,
        "--message-format=json-render-diagnostics",
    ]);
    if !debug {
        command.arg("--release");
    }
    eprintln!(
        "building {package}{}",
        if debug { "" } else { " (release)" }
    );
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::Deploy {
            message: format!("cannot run cargo: {e}"),
        })?;
    if !output.status.success() {
        return Err(Error::Deploy {
            message: format!("building `{package}` failed"),
        });
    }
    let mut executables = Vec::new();
    for line in output.stdout.split(|b| *b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["kind"]
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
    match executables.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::Deploy {
            message: format!("package `{package}` has no binary target to deploy"),
        }),
        many => Err(Error::Deploy {
            message: format!(
                "package `{package}` has several binaries ({}); pass one with --binary",
                many.iter()
                    .map(|p| file_name(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
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
