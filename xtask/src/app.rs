//! `cargo xtask app list | stop | logs | history | rollback`.

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
    /// List an app's versions: when each was deployed, its binary's hash
    /// and its functions.
    History {
        name: String,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// Deploy a new version of an app from an earlier version's binary
    /// (by default the one before the latest).
    Rollback {
        name: String,
        version: Option<u32>,
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
            for app in &apps {
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
            let scheduled: Vec<_> = apps
                .iter()
                .flat_map(|a| a.schedules.iter().map(move |s| (a.name.as_str(), s)))
                .collect();
            print_schedules(&scheduled);
        }
        Command::Stop { name, server } => {
            let stopped = server.connect().await?.stop_app(&name).await?;
            println!("stopped app `{name}` ({stopped} containers)");
        }
        Command::History { name, server } => {
            let (versions, schedules) = server
                .connect()
                .await?
                .app_history_and_schedules(&name)
                .await?;
            println!(
                "{:>7}  {:<29}  {:<12}  FUNCTIONS",
                "VERSION", "DEPLOYED", "BINARY"
            );
            for v in versions {
                let binary = if v.binary_sha256.is_empty() {
                    "-".to_owned()
                } else {
                    v.binary_sha256[..12.min(v.binary_sha256.len())].to_owned()
                };
                let from = v
                    .rolled_back_from
                    .map(|f| format!(" (rollback to {f})"))
                    .unwrap_or_default();
                println!(
                    "{:>7}  {:<29}  {:<12}  {}{from}",
                    v.version,
                    utc(v.created_at_ms),
                    binary,
                    v.functions.join(", ")
                );
            }
            let scheduled: Vec<_> = schedules.iter().map(|s| (name.as_str(), s)).collect();
            print_schedules(&scheduled);
        }
        Command::Rollback {
            name,
            version,
            server,
        } => {
            let created = server.connect().await?.rollback_app(&name, version).await?;
            println!(
                "rolled back app `{name}`: version {} runs the binary of version {}",
                created.version,
                version.map_or_else(|| "before the latest".to_owned(), |v| v.to_string())
            );
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

/// The schedules of deployed apps, by app: each one's next run and its
/// last run's call with that call's state.
fn print_schedules(scheduled: &[(&str, &modal_runtime::proto::ScheduleInfo)]) {
    if scheduled.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<24} {:<20} {:<29}  LAST RUN",
        "SCHEDULED", "SCHEDULE", "NEXT RUN"
    );
    for (app, s) in scheduled {
        let next = if s.next_run_ms == 0 {
            "never".to_owned()
        } else {
            utc(s.next_run_ms)
        };
        let last = if s.last_call_id.is_empty() {
            "none yet".to_owned()
        } else {
            format!(
                "{} {} (tick {})",
                s.last_call_id,
                s.last_state,
                utc(s.last_tick_ms)
            )
        };
        println!(
            "{:<24} {:<20} {:<29}  {last}",
            format!("{app}.{}", s.function),
            s.schedule,
            next
        );
    }
}

/// An HTTP date (`Mon, 30 Nov 2026 12:00:00 GMT`), from milliseconds since
/// the epoch.
fn utc(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    httpdate::fmt_http_date(at)
}
