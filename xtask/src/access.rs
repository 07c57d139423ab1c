//! `cargo xtask token | secret | env`: access management (admin tokens).

use std::collections::BTreeMap;

use modal_runtime::Error;

use crate::ServerUrl;

#[derive(clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a token; its secret is printed once.
    New {
        /// admin (everything), deploy (apps of its environment) or invoke
        /// (call its environment's functions).
        #[arg(long, default_value = "invoke")]
        scope: String,
        /// A note for listings: who or what holds it.
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// List tokens (never their secrets).
    List(ServerUrl),
    /// Revoke a token by its id: its next request is refused.
    Revoke {
        id: String,
        #[command(flatten)]
        server: ServerUrl,
    },
}

#[derive(clap::Subcommand)]
pub(crate) enum SecretCommand {
    /// Store a secret: `KEY=VALUE` pairs injected as environment variables
    /// into the containers of functions that name it.
    Create {
        name: String,
        #[arg(required = true, value_parser = parse_pair)]
        values: Vec<(String, String)>,
        /// Replace a secret of that name.
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// List secrets: names and keys, never values.
    List(ServerUrl),
    /// Remove a secret.
    Rm {
        name: String,
        #[command(flatten)]
        server: ServerUrl,
    },
}

#[derive(clap::Subcommand)]
pub(crate) enum EnvCommand {
    /// Create an environment.
    Create {
        name: String,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// List environments with their apps and secrets.
    List(ServerUrl),
    /// Remove an environment that runs no app, with its secrets and tokens.
    Rm {
        name: String,
        #[command(flatten)]
        server: ServerUrl,
    },
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| "expected KEY=VALUE".to_owned())?;
    if key.is_empty() {
        return Err("expected KEY=VALUE with a non-empty KEY".into());
    }
    Ok((key.to_owned(), value.to_owned()))
}

pub(crate) async fn token(command: TokenCommand) -> Result<(), Error> {
    match command {
        TokenCommand::New {
            scope,
            label,
            server,
        } => {
            let client = server.connect().await?;
            let (info, token) = client
                .create_token(&scope, server.environment.as_deref(), &label)
                .await?;
            eprintln!(
                "made token {} (scope {}{}); its secret is shown only now:",
                info.id,
                info.scope,
                if info.environment.is_empty() {
                    String::new()
                } else {
                    format!(", environment {}", info.environment)
                }
            );
            println!("{token}");
        }
        TokenCommand::List(server) => {
            let tokens = server.connect().await?.list_tokens().await?;
            println!("{:<16} {:<7} {:<16} LABEL", "ID", "SCOPE", "ENVIRONMENT");
            for t in tokens {
                let env = if t.environment.is_empty() {
                    "(all)"
                } else {
                    &t.environment
                };
                println!("{:<16} {:<7} {:<16} {}", t.id, t.scope, env, t.label);
            }
        }
        TokenCommand::Revoke { id, server } => {
            server.connect().await?.revoke_token(&id).await?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

pub(crate) async fn secret(command: SecretCommand) -> Result<(), Error> {
    match command {
        SecretCommand::Create {
            name,
            values,
            overwrite,
            server,
        } => {
            let values: BTreeMap<String, String> = values.into_iter().collect();
            let keys = values.keys().cloned().collect::<Vec<_>>().join(", ");
            server
                .connect()
                .await?
                .create_secret(&name, values, overwrite)
                .await?;
            println!("stored secret {name} ({keys})");
        }
        SecretCommand::List(server) => {
            let secrets = server.connect().await?.list_secrets().await?;
            println!("{:<24} KEYS", "NAME");
            for s in secrets {
                println!("{:<24} {}", s.name, s.keys.join(", "));
            }
        }
        SecretCommand::Rm { name, server } => {
            server.connect().await?.remove_secret(&name).await?;
            println!("removed secret {name}");
        }
    }
    Ok(())
}

pub(crate) async fn env(command: EnvCommand) -> Result<(), Error> {
    match command {
        EnvCommand::Create { name, server } => {
            server.connect().await?.create_environment(&name).await?;
            println!("created environment {name}");
        }
        EnvCommand::List(server) => {
            let environments = server.connect().await?.list_environments().await?;
            println!("{:<24} {:>5} {:>8}", "NAME", "APPS", "SECRETS");
            for e in environments {
                println!("{:<24} {:>5} {:>8}", e.name, e.apps, e.secrets);
            }
        }
        EnvCommand::Rm { name, server } => {
            server.connect().await?.remove_environment(&name).await?;
            println!("removed environment {name}");
        }
    }
    Ok(())
}
