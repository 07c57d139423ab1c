//! `deploy [PACKAGE]`: build a package of the current workspace, read its
//! manifest, upload its binary, register a new app version; each step shown.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use modal_runtime::{AppBinary, Error, Manifest};

use crate::ServerUrl;
use crate::progress::{self, Progress};
use crate::{cargo_build, workspace};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The package whose binary to deploy [default: the binary package of the current folder, or the workspace's only one].
    package: Option<String>,
    /// App name [default: the package name].
    #[arg(long)]
    name: Option<String>,
    /// Deploy this already-built binary instead of building the package.
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Build in the dev profile (faster to build, slower to run).
    #[arg(long)]
    debug: bool,
    /// The workspace's (or package's) Cargo.toml [default: the one cargo finds from the current folder].
    #[arg(long)]
    manifest_path: Option<PathBuf>,
    #[command(flatten)]
    server: ServerUrl,
}

pub(crate) async fn run(args: Args) -> Result<(), Error> {
    let progress = Progress::detect();
    let (binary, package) = match &args.binary {
        Some(path) => (path.clone(), args.package.clone()),
        None => {
            let package = pick_package(&args)?;
            let binary = cargo_build::build(
                &package,
                args.manifest_path.as_deref(),
                args.debug,
                progress,
            )?;
            (binary, Some(package))
        }
    };
    let manifest =
        Manifest::read_from_binary(&binary).map_err(|message| Error::Deploy { message })?;
    let Some(name) = args.name.clone().or(package) else {
        return Err(Error::Deploy {
            message: "name the app: `--name NAME`, or the package after `deploy`".into(),
        });
    };
    let client = args.server.connect().await?;
    let id = upload(&client, &binary, progress).await?;
    let registering = progress.step(format!("registering app `{name}` at {}", client.url()));
    let created = match client
        .create_app(&name, &manifest, AppBinary::Uploaded(&id), false)
        .await
    {
        Ok(created) => created,
        Err(e) => {
            registering.failed();
            return Err(e);
        }
    };
    // The line below says it all.
    registering.clear();
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

/// The package to build: the one named, else the one the current folder
/// implies in its workspace.
fn pick_package(args: &Args) -> Result<String, Error> {
    let workspace = workspace::load(&cargo_build::cargo(), args.manifest_path.as_deref())?;
    let cwd = std::env::current_dir().map_err(|e| Error::Deploy {
        message: format!("cannot tell the current folder: {e}"),
    })?;
    Ok(workspace.pick(args.package.as_deref(), &cwd)?.name.clone())
}

/// Uploads `binary` unless the control plane has it already, with a byte
/// bar; returns its content id.
async fn upload(
    client: &modal_runtime::Client,
    binary: &std::path::Path,
    progress: Progress,
) -> Result<String, Error> {
    let size = std::fs::metadata(binary).map_or(0, |m| m.len());
    let step = progress.step(format!(
        "hashing {} ({})",
        binary.display(),
        progress::bytes(size)
    ));
    let sending = Arc::new(AtomicBool::new(false));
    let hook = {
        let (step, sending) = (step.clone(), sending.clone());
        move |sent: u64, total: u64| {
            if !sending.swap(true, Ordering::Relaxed) {
                step.status("uploading".into());
                step.bytes(total, format!("uploading {}", progress::bytes(total)));
            }
            step.position(sent);
        }
    };
    match client.upload_binary_with_progress(binary, hook).await {
        Ok(id) if sending.load(Ordering::Relaxed) => {
            step.done(&format!("uploaded {}", progress::bytes(size)));
            Ok(id)
        }
        Ok(id) => {
            step.done(&format!(
                "the control plane has this binary already (sha256 {})",
                &id[..id.len().min(12)]
            ));
            Ok(id)
        }
        Err(e) => {
            step.failed();
            Err(e)
        }
    }
}
