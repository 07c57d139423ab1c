//! `cargo xtask …` in this repository, `cargo modal …` anywhere once
//! installed (`cargo install --path xtask`): run a control plane, deploy
//! apps, manage them, benchmark. One command line, two binaries.

mod access;
mod app;
mod bench;
mod cargo_build;
mod deploy;
mod progress;
mod server;
mod volume;
mod workspace;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use modal_runtime::{Client, Error, config};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "modal-rs: run a control plane, deploy apps and manage them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a standalone control plane (loopback by default).
    Server(Box<server::Args>),
    /// Build a package of the current workspace in release, upload its binary and register a new app version.
    Deploy(deploy::Args),
    /// List, stop or follow deployed apps.
    #[command(subcommand)]
    App(app::Command),
    /// Measure round trip, map throughput and cold start (in a modal-rs checkout).
    Bench(bench::Args),
    /// Make, list or revoke tokens (admin).
    #[command(subcommand)]
    Token(access::TokenCommand),
    /// Create, list or remove secrets of an environment (admin).
    #[command(subcommand)]
    Secret(access::SecretCommand),
    /// Create, list or remove environments (admin).
    #[command(subcommand)]
    Env(access::EnvCommand),
    /// Create, list or remove volumes, and list, put, get or remove their files.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
}

#[derive(clap::Args, Clone)]
pub(crate) struct ServerUrl {
    /// Control plane URL [default: MODAL_SERVER_URL, the config file, or http://127.0.0.1:7470].
    #[arg(long = "server")]
    url: Option<String>,
    /// Environment to act in [default: MODAL_ENVIRONMENT, the config file, or the token's own (`main` for admin tokens)].
    #[arg(long = "env")]
    environment: Option<String>,
}

impl ServerUrl {
    pub(crate) fn resolve(&self) -> Result<String, Error> {
        match &self.url {
            Some(url) => Ok(config::normalize_url(url)),
            None => Ok(config::server_url()?
                .unwrap_or_else(|| config::normalize_url(config::DEFAULT_SERVER_ADDR))),
        }
    }

    pub(crate) async fn connect(&self) -> Result<Client, Error> {
        let client = Client::connect(&self.resolve()?).await?;
        match &self.environment {
            Some(environment) => client.with_environment(environment),
            None => Ok(client),
        }
    }
}

/// The program as it was invoked (`cargo xtask`, `cargo modal`): what help
/// and the commands that messages suggest call it.
static PROGRAM: OnceLock<&'static str> = OnceLock::new();

pub(crate) fn program() -> &'static str {
    PROGRAM.get().copied().unwrap_or("cargo xtask")
}

/// Runs the command line `args` (the program's path first) as `name`.
pub fn main(name: &'static str, args: impl IntoIterator<Item = OsString>) -> ExitCode {
    PROGRAM.get_or_init(|| name);
    let matches = Cli::command()
        .name(name)
        .bin_name(name)
        .get_matches_from(args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => server::run(*args).await,
            Command::Deploy(args) => deploy::run(args).await,
            Command::App(command) => app::run(command).await,
            Command::Bench(args) => bench::run(args),
            Command::Token(command) => access::token(command).await,
            Command::Secret(command) => access::secret(command).await,
            Command::Env(command) => access::env(command).await,
            Command::Volume(command) => volume::run(command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The library's messages suggest `cargo xtask …` commands: say
            // them by the name in use.
            let message = e
                .to_string()
                .replace("`cargo xtask ", &format!("`{} ", program()));
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
