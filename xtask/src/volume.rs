//! `cargo xtask volume`: volumes of an environment and their files.

use std::path::{Path, PathBuf};

use modal_runtime::{Error, Volume};

use crate::ServerUrl;

#[derive(clap::Subcommand)]
pub(crate) enum VolumeCommand {
    /// Create a volume (deploy scope).
    Create {
        name: String,
        /// No error if it exists already.
        #[arg(long)]
        exist_ok: bool,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// List the environment's volumes.
    List(ServerUrl),
    /// List a folder of a volume (its root by default), or one file.
    Ls {
        name: String,
        #[arg(default_value = "/")]
        path: String,
        /// Everything below the folder.
        #[arg(short, long)]
        recursive: bool,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// Upload a local file to a volume [REMOTE default: the local file's name, at the root;
    /// a REMOTE ending in `/` is a folder to put it in].
    Put {
        name: String,
        local: PathBuf,
        remote: Option<String>,
        /// Replace a file already there.
        #[arg(short, long)]
        force: bool,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// Download a file of a volume [LOCAL default: its name, here; `-`: standard output].
    Get {
        name: String,
        remote: String,
        local: Option<PathBuf>,
        /// Replace a local file already there.
        #[arg(short, long)]
        force: bool,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// Remove a file of a volume (a folder with `-r`), or without PATH the volume itself.
    Rm {
        name: String,
        path: Option<String>,
        /// A folder, with everything in it.
        #[arg(short, long)]
        recursive: bool,
        #[command(flatten)]
        server: ServerUrl,
    },
}

pub(crate) async fn run(command: VolumeCommand) -> Result<(), Error> {
    match command {
        VolumeCommand::Create {
            name,
            exist_ok,
            server,
        } => {
            server
                .connect()
                .await?
                .create_volume(&name, exist_ok)
                .await?;
            println!("created volume {name}");
        }
        VolumeCommand::List(server) => {
            let volumes = server.connect().await?.list_volumes().await?;
            println!("{:<40} CREATED", "NAME");
            for v in volumes {
                println!("{:<40} {}", v.name, time(v.created_at_ms));
            }
        }
        VolumeCommand::Ls {
            name,
            path,
            recursive,
            server,
        } => {
            let client = server.connect().await?;
            let entries = client.volume(&name).listdir(&path, recursive).await?;
            println!("{:<4} {:>12} {:<29} PATH", "TYPE", "SIZE", "MODIFIED");
            for e in entries {
                let kind = match (e.is_dir, e.is_symlink) {
                    (true, _) => "dir",
                    (_, true) => "link",
                    _ => "file",
                };
                println!(
                    "{kind:<4} {:>12} {:<29} {}",
                    e.size,
                    time(e.mtime_ms),
                    e.path
                );
            }
        }
        VolumeCommand::Put {
            name,
            local,
            remote,
            force,
            server,
        } => {
            let remote = remote_path(&local, remote.as_deref())?;
            let client = server.connect().await?;
            let size = client
                .volume(&name)
                .put_file(&local, &remote, force)
                .await?;
            println!(
                "put {} in volume {name} as {remote} ({size} bytes)",
                local.display()
            );
        }
        VolumeCommand::Get {
            name,
            remote,
            local,
            force,
            server,
        } => {
            let client = server.connect().await?;
            let volume = client.volume(&name);
            match local.as_deref() {
                Some(p) if p == Path::new("-") => {
                    volume.read_file_into(&remote, &mut Stdout).await?;
                }
                _ => {
                    let local = local_path(&remote, local)?;
                    let size = get_to_file(&volume, &remote, &local, force).await?;
                    eprintln!(
                        "got {remote} of volume {name} as {} ({size} bytes)",
                        local.display()
                    );
                }
            }
        }
        VolumeCommand::Rm {
            name,
            path,
            recursive,
            server,
        } => {
            let client = server.connect().await?;
            match path {
                Some(path) => {
                    client.volume(&name).remove_file(&path, recursive).await?;
                    println!("removed {path} from volume {name}");
                }
                None => {
                    client.remove_volume(&name).await?;
                    println!("removed volume {name}");
                }
            }
        }
    }
    Ok(())
}

/// Where `put` puts `local`: `remote`, in it if it ends in `/`, or the
/// root when not given.
fn remote_path(local: &Path, remote: Option<&str>) -> Result<String, Error> {
    let file_name = || {
        local
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::Config(format!("`{}` names no file", local.display())))
    };
    Ok(match remote {
        None => file_name()?,
        Some(r) if r.ends_with('/') => format!("{r}{}", file_name()?),
        Some(r) => r.to_owned(),
    })
}

/// Where `get` writes `remote`: `local`, or the file's own name here.
fn local_path(remote: &str, local: Option<PathBuf>) -> Result<PathBuf, Error> {
    match local {
        Some(local) if local.is_dir() => Ok(local.join(file_name_of(remote)?)),
        Some(local) => Ok(local),
        None => Ok(PathBuf::from(file_name_of(remote)?)),
    }
}

fn file_name_of(remote: &str) -> Result<String, Error> {
    Path::new(remote)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            Error::Config(format!(
                "`{remote}` names no file: name one, e.g. `dir/file`"
            ))
        })
}

/// Downloads into a file beside `local`, renamed into place once whole: a
/// failed download leaves no partial file.
async fn get_to_file(
    volume: &Volume,
    remote: &str,
    local: &Path,
    force: bool,
) -> Result<u64, Error> {
    if !force && local.exists() {
        return Err(Error::Config(format!(
            "{} exists already: pass --force to replace it",
            local.display()
        )));
    }
    let partial = local.with_file_name(format!(
        ".{}.partial-{}",
        local.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let io = |e: std::io::Error| Error::Config(format!("cannot write {}: {e}", local.display()));
    let mut file = tokio::fs::File::create(&partial).await.map_err(io)?;
    let got = volume.read_file_into(remote, &mut file).await;
    drop(file);
    match got {
        Ok(size) => {
            tokio::fs::rename(&partial, local).await.map_err(io)?;
            Ok(size)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(e)
        }
    }
}

/// Standard output as an async writer: each chunk written as it comes
/// (a blocking write, which a CLI can afford).
struct Stdout;

impl tokio::io::AsyncWrite for Stdout {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::io::Write;
        std::task::Poll::Ready(
            std::io::stdout()
                .lock()
                .write_all(data)
                .map(|()| data.len()),
        )
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::io::Write;
        std::task::Poll::Ready(std::io::stdout().lock().flush())
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// A time in ms since the epoch, in UTC to the second.
fn time(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(at)
}
