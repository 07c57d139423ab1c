//! `cargo xtask app list | stop | logs`.

use futures::StreamExt;
use modal_runtime::Error;
use modal_runtime::proto::LogStream;

use crate::ServerUrl;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// List apps with their version, state, functions and containers.
    List(ServerUrl),
    /// Stop an app: its containers exit and new calls are refused.
    Stop {
        name: String,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// Print an app's recent container output, then follow it.
    Logs {
        name: String,
        #[command(flatten)]
        server: ServerUrl,
    },
}

pub(crate) async fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::List(server) => {
            let apps = server.connect().await?.list_apps().await?;
            if apps.is_empty() {
                println!("no apps");
            }
            println!(
                "{:<24} {:>7} {:<8} {:>10}  FUNCTIONS",
                "NAME", "VERSION", "STATE", "CONTAINERS"
            );
            for app in apps {
                let kind = if app.ephemeral { " (ephemeral)" } else { "" };
                println!(
                    "{:<24} {:>7} {:<8} {:>10}  {}{kind}",
                    app.name,
                    app.version,
                    app.state,
                    app.containers,
                    app.functions.join(", ")
                );
            }
        }
        Command::Stop { name, server } => {
            let stopped = server.connect().await?.stop_app(&name).await?;
            println!("stopped app `{name}` ({stopped} containers)");
        }
        Command::Logs { name, server } => {
            let client = server.connect().await?;
            let mut logs = client.stream_logs(&name, true).await?;
            while let Some(batch) = logs.next().await {
                let batch = batch?;
                for line in batch.lines {
                    let text = format!("[{} {}] {}", line.function, line.container_id, line.text);
                    if line.stream == LogStream::Stderr as i32 {
                        eprintln!("{text}");
                    } else {
                        println!("{text}");
                    }
                }
                if batch.dropped > 0 {
                    eprintln!("[modal-rs] {} lines were dropped", batch.dropped);
                }
            }
        }
    }
    Ok(())
}
