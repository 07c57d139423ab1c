//! `#[app::main]`: one binary, three roles.
//!
//! Started by the control plane (`MODAL_ROLE=container`) it serves a
//! function; asked for its manifest (`MODAL_ROLE=manifest`) it prints it;
//! otherwise it runs the user's `main` as an ephemeral app, on the control
//! plane named by `MODAL_SERVER_URL` or the config file, or on one it embeds.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use tokio::task::JoinHandle;

use crate::client::{AppBinary, Client, RunningApp, set_running_app};
use crate::contract::container_env;
use crate::embedded::Embedded;
use crate::proto::LogStream;
use crate::registry::Manifest;
use crate::{Error, config, container};

/// Runs the program in the role its environment asks for.
pub fn run_main<F, T>(app_name: &'static str, main: F) -> T
where
    F: Future<Output = T>,
{
    match std::env::var(container_env::ROLE).as_deref() {
        Ok(container_env::ROLE_CONTAINER) => container::serve(),
        Ok(container_env::ROLE_MANIFEST) => {
            let json = serde_json::to_string_pretty(&Manifest::of_this_binary())
                .expect("a manifest is plain data");
            println!("{json}");
            std::process::exit(0);
        }
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the program's runtime");
    runtime.block_on(async move {
        let session = match Session::start(app_name).await {
            Ok(session) => session,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        };
        let result = AssertUnwindSafe(main).catch_unwind().await;
        session.finish().await;
        match result {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The ephemeral app of one run of the program.
struct Session {
    app: String,
    client: Client,
    lease: crate::client::AppLease,
    logs: JoinHandle<()>,
    embedded: Option<Embedded>,
}

impl Session {
    async fn start(app_name: &str) -> Result<Session, Error> {
        let (client, embedded) = match config::server_url()? {
            Some(url) => (Client::connect(&url).await?, None),
            None => {
                let embedded = Embedded::start().await?;
                (Client::connect(embedded.url()).await?, Some(embedded))
            }
        };
        let binary = std::env::current_exe()
            .map_err(|e| Error::Internal(format!("cannot find this program's binary: {e}")))?;
        // Only the control plane in this process may be told a path; any
        // other gets the binary uploaded (once: it keeps it by its hash).
        let binary = if embedded.is_some() {
            AppBinary::LocalPath(&binary)
        } else {
            AppBinary::Upload(&binary)
        };
        let created = client
            .create_app(app_name, &Manifest::of_this_binary(), binary, true)
            .await?;
        // The app lives while this program holds its lease: ended by
        // `finish`, or by the control plane if this process dies.
        let lease = client.hold_app(&created.app).await?;
        let logs = client.stream_logs(&created.app, false).await?;
        let logs = tokio::spawn(print_logs(logs));
        for (name, url) in web_urls(&created.functions) {
            eprintln!("modal-rs: web endpoint `{name}` at {url}");
        }
        set_running_app(RunningApp {
            name: created.app.clone(),
            client: client.clone(),
            functions: created
                .functions
                .into_iter()
                .map(|f| (f.name.clone(), f))
                .collect::<HashMap<_, _>>(),
        });
        let _ = client.clone().set_default();
        Ok(Session {
            app: created.app,
            client,
            lease,
            logs,
            embedded,
        })
    }

    /// Stops the app's containers, prints the last of their output and, if
    /// embedded, shuts the control plane down.
    async fn finish(self) {
        if let Err(e) = self.client.stop_app(&self.app).await {
            eprintln!("warning: could not stop app `{}`: {e}", self.app);
        }
        drop(self.lease);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.logs).await;
        if let Some(embedded) = self.embedded {
            embedded.shutdown().await;
        }
    }
}

/// The endpoints among `functions`, by name, with their URLs.
fn web_urls(functions: &[crate::proto::FunctionInfo]) -> Vec<(&str, &str)> {
    let mut urls: Vec<_> = functions
        .iter()
        .filter_map(|f| Some((f.name.as_str(), f.web_url.as_deref()?)))
        .collect();
    urls.sort();
    urls
}

async fn print_logs(
    mut logs: impl futures::Stream<Item = Result<crate::proto::LogBatch, Error>> + Unpin,
) {
    while let Some(Ok(batch)) = logs.next().await {
        for line in &batch.lines {
            let text = format!("[{} {}] {}\n", line.function, line.container_id, line.text);
            // Each line goes to the stream the container wrote it to.
            let _ = if line.stream == LogStream::Stderr as i32 {
                std::io::stderr().write_all(text.as_bytes())
            } else {
                std::io::stdout().write_all(text.as_bytes())
            };
        }
        if batch.dropped > 0 {
            let _ = writeln!(
                std::io::stderr(),
                "[modal-rs] {} lines of container output were dropped",
                batch.dropped
            );
        }
    }
}
