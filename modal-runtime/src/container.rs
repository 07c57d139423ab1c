//! The container role: this binary, started by the control plane, serving
//! one function's inputs over one stream until it is told to stop.
//!
//! A user error or panic fails that input only; the container goes on.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::{Mutex, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::codec::{CallFailure, panic_message};
use crate::proto::control_plane_client::ControlPlaneClient;
use crate::proto::{self, FailureKind, container_command, container_message, outcome};
use crate::registry::{self, FunctionDescriptor, Handler};
use crate::server::container_env as env;

struct ContainerConfig {
    server_url: String,
    container_id: String,
    token: String,
    function: &'static FunctionDescriptor,
    heartbeat: Duration,
    max_inputs: usize,
}

impl ContainerConfig {
    fn from_env() -> Result<Self, String> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| {
                format!("{name} is not set; containers are started by the control plane")
            })
        };
        let function_name = var(env::FUNCTION)?;
        let function = registry::find(&function_name).ok_or_else(|| {
            format!(
                "this binary has no function `{function_name}` (it has: {})",
                registry::functions()
                    .iter()
                    .map(|d| d.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        Ok(ContainerConfig {
            server_url: var(env::SERVER_URL)?,
            container_id: var(env::CONTAINER_ID)?,
            token: var(env::TOKEN)?,
            function,
            heartbeat: Duration::from_millis(
                var(env::HEARTBEAT_MS)?
                    .parse()
                    .map_err(|_| "bad heartbeat interval")?,
            ),
            max_inputs: var(env::MAX_INPUTS)?
                .parse()
                .map_err(|_| "bad max inputs")?,
        })
    }
}

/// Serves inputs until stopped, then exits the process.
pub(crate) fn serve() -> ! {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let code = match ContainerConfig::from_env() {
        Ok(config) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("start the container's runtime");
            match runtime.block_on(run(config)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("modal-rs container: {e}");
                    1
                }
            }
        }
        Err(e) => {
            eprintln!("modal-rs container: {e}");
            2
        }
    };
    std::process::exit(code)
}

async fn run(config: ContainerConfig) -> Result<(), String> {
    let channel = connect(&config.server_url).await?;
    let mut rpc = ControlPlaneClient::new(channel)
        .max_decoding_message_size(crate::client::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(crate::client::MAX_MESSAGE_BYTES);
    let (to_server, outbound) = mpsc::channel::<proto::ContainerMessage>(64);
    to_server
        .send(message(container_message::Msg::Hello(
            proto::ContainerHello {
                container_id: config.container_id.clone(),
                token: config.token.clone(),
            },
        )))
        .await
        .map_err(|_| "the outbound stream closed")?;
    let mut commands = rpc
        .container_session(ReceiverStream::new(outbound))
        .await
        .map_err(|s| format!("the control plane refused this container: {}", s.message()))?
        .into_inner();

    // Outcomes are sent as they finish, many per message when they pile up.
    let (outputs, mut outputs_rx) = mpsc::unbounded_channel::<proto::ContainerOutput>();
    let sender = {
        let to_server = to_server.clone();
        tokio::spawn(async move {
            while let Some(first) = outputs_rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < 1024 {
                    match outputs_rx.try_recv() {
                        Ok(o) => batch.push(o),
                        Err(_) => break,
                    }
                }
                let msg = message(container_message::Msg::Outputs(proto::OutputBatch {
                    outputs: batch,
                }));
                if to_server.send(msg).await.is_err() {
                    return;
                }
            }
        })
    };
    let heartbeat = {
        let to_server = to_server.clone();
        let every = config.heartbeat;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let beat = message(container_message::Msg::Heartbeat(proto::Heartbeat {}));
                if to_server.send(beat).await.is_err() {
                    return;
                }
            }
        })
    };

    // `max_inputs` workers take inputs in arrival order.
    let (inputs, inputs_rx) = mpsc::unbounded_channel::<proto::ContainerInput>();
    let inputs_rx = Arc::new(Mutex::new(inputs_rx));
    let workers: Vec<_> = (0..config.max_inputs.max(1))
        .map(|_| {
            let inputs_rx = inputs_rx.clone();
            let outputs = outputs.clone();
            let handler = config.function.handler;
            let container_id: Arc<str> = config.container_id.as_str().into();
            tokio::spawn(async move {
                loop {
                    let next = inputs_rx.lock().await.recv().await;
                    let Some(input) = next else { return };
                    let output = run_input(handler, input, &container_id).await;
                    if outputs.send(output).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(outputs);

    loop {
        match commands.message().await {
            Ok(Some(proto::ContainerCommand { cmd: Some(cmd) })) => match cmd {
                container_command::Cmd::Inputs(batch) => {
                    for input in batch.inputs {
                        let _ = inputs.send(input);
                    }
                }
                container_command::Cmd::Stop(_) => break,
            },
            Ok(Some(_)) => {}
            // The control plane is gone: nothing can reach us any more.
            Ok(None) | Err(_) => {
                heartbeat.abort();
                return Ok(());
            }
        }
    }
    // Stopping: finish what was handed over, send it, then exit.
    drop(inputs);
    for worker in workers {
        let _ = worker.await;
    }
    let _ = sender.await;
    heartbeat.abort();
    Ok(())
}

async fn connect(url: &str) -> Result<tonic::transport::Channel, String> {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("bad control plane URL `{url}`: {e}"))?
        .tcp_nodelay(true)
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(32 << 20);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match endpoint.connect().await {
            Ok(channel) => return Ok(channel),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!("connecting to {url}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(format!("cannot reach the control plane at {url}: {e}")),
        }
    }
}

async fn run_input(
    handler: Handler,
    input: proto::ContainerInput,
    container_id: &str,
) -> proto::ContainerOutput {
    let started = Instant::now();
    let args = input.args;
    let result = match handler {
        Handler::Async(run) => AssertUnwindSafe(run(args))
            .catch_unwind()
            .await
            .map_err(|p| panic_message(&*p)),
        Handler::Blocking(run) => {
            match tokio::task::spawn_blocking(move || {
                std::panic::catch_unwind(AssertUnwindSafe(|| run(args)))
            })
            .await
            {
                Ok(r) => r.map_err(|p| panic_message(&*p)),
                Err(join) => Err(join.to_string()),
            }
        }
    };
    let exec_us = started.elapsed().as_micros() as u64;
    let result = match result {
        Ok(Ok(value)) => outcome::Result::Value(value),
        Ok(Err(failure)) => {
            let (kind, message) = match failure {
                CallFailure::User(m) => (FailureKind::UserError, m),
                CallFailure::Panic(m) => (FailureKind::Panic, m),
                CallFailure::BadInput(m) => (FailureKind::BadInput, m),
                CallFailure::BadOutput(m) => (FailureKind::BadOutput, m),
            };
            outcome::Result::Failure(proto::Failure {
                kind: kind as i32,
                message,
                container_id: container_id.to_owned(),
            })
        }
        Err(panic) => outcome::Result::Failure(proto::Failure {
            kind: FailureKind::Panic as i32,
            message: panic,
            container_id: container_id.to_owned(),
        }),
    };
    proto::ContainerOutput {
        input_id: input.input_id,
        outcome: Some(proto::Outcome {
            result: Some(result),
        }),
        exec_us,
    }
}

fn message(msg: container_message::Msg) -> proto::ContainerMessage {
    proto::ContainerMessage { msg: Some(msg) }
}
