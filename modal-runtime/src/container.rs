//! The container role: this binary, started by the control plane, serving
//! one function's inputs over one stream until it is told to stop.
//!
//! A user error or panic fails that input only; the container goes on. A
//! class's container builds its one instance (parameters from the control
//! plane, then `enter`) before its first input, and runs `exit` when stopped.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::{Mutex, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tracing::Instrument as _;

use crate::class::{BatchInvocation, Invocation, ServedInstance};
use crate::codec::{BatchOutcomes, CallFailure, UserFailure, panic_message};
use crate::context::{self, InputInfo};
use crate::contract::{self, container_env as env};
use crate::generator::GenEvent;
use crate::message_size::{self, Batcher};
use crate::proto::{self, FailureKind, container_command, container_message, outcome};
use crate::registry::{self, FunctionDescriptor, Handler};
use crate::{lifeline, payload};

struct ContainerConfig {
    server_url: String,
    container_id: String,
    token: String,
    function: &'static FunctionDescriptor,
    heartbeat: Duration,
    max_inputs: usize,
    /// Each attempt's time limit.
    timeout: Duration,
    /// Dynamic batching: the most inputs per batch and how long a batch
    /// waits for more after its first input.
    batch: Option<(usize, Duration)>,
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
            timeout: Duration::from_secs(
                var(env::TIMEOUT_SECS)?.parse().map_err(|_| "bad timeout")?,
            ),
            batch: match std::env::var(env::BATCH_MAX_SIZE) {
                Ok(size) => Some((
                    size.parse().map_err(|_| "bad batch size")?,
                    Duration::from_millis(
                        var(env::BATCH_WAIT_MS)?
                            .parse()
                            .map_err(|_| "bad batch wait")?,
                    ),
                )),
                Err(_) => None,
            },
        })
    }
}

/// Serves inputs until stopped, then exits the process.
pub(crate) fn serve() -> ! {
    // First, before any thread or user code: whatever the user's code
    // starts must end with the control plane.
    if let Err(e) = lifeline::watch() {
        eprintln!("modal-rs container: {e}");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the container's runtime");
    {
        // An OpenTelemetry exporter is made inside the runtime.
        let _in_runtime = runtime.enter();
        init_tracing();
    }
    let code = match ContainerConfig::from_env() {
        Ok(config) => {
            match runtime.block_on(run(config)) {
                Ok(Ended::Stopped) => 0,
                Ok(Ended::Abandoned) => {
                    // The control plane is gone (or has given up on this
                    // container and kills it anyway). Its lifeline may not
                    // have broken yet: end the group now, or this exit could
                    // leave the user's processes to nobody.
                    lifeline::end_process_group();
                    0
                }
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
    #[cfg(feature = "otel")]
    crate::trace::otel::shutdown();
    std::process::exit(code)
}

/// Log lines to stderr (which the control plane collects), at the level
/// `RUST_LOG` says (`info` by default), each written during an input
/// starting with its trace id; with the `otel` feature and
/// `OTEL_EXPORTER_OTLP_ENDPOINT` set, the inputs' spans exported there.
fn init_tracing() {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let level = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .event_format(TraceIdFirst(tracing_subscriber::fmt::format()))
        .with_filter(level());
    let registry = tracing_subscriber::registry().with(logs);
    #[cfg(feature = "otel")]
    if std::env::var_os(crate::trace::otel::ENDPOINT_ENV).is_some() {
        let service = std::env::var(env::APP).unwrap_or_else(|_| "modal-rs".into());
        match crate::trace::otel::layer(&service) {
            Ok(otel) => {
                // The inputs' spans are DEBUG: exported whatever the log level.
                let spans = level().add_directive(
                    "modal_runtime::trace=debug"
                        .parse()
                        .expect("a valid directive"),
                );
                let _ = registry.with(otel.with_filter(spans)).try_init();
                return;
            }
            Err(e) => eprintln!("modal-rs container: spans are not exported: {e}"),
        }
    }
    let _ = registry.try_init();
}

/// The container's log format: lines written during an input start with
/// `trace_id=<its trace id>`, the default format follows.
struct TraceIdFirst<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for TraceIdFirst<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        if let Some(trace) = context::current_input().and_then(|input| input.trace) {
            write!(writer, "trace_id={} ", trace.trace_id())?;
        }
        self.0.format_event(ctx, writer, event)
    }
}

/// Why a container's session ended.
enum Ended {
    /// Told to stop: it finished its inputs (and ran `exit`).
    Stopped,
    /// Its stream closed without a stop: nothing can reach it any more.
    Abandoned,
}

async fn run(config: ContainerConfig) -> Result<Ended, String> {
    let channel = connect(&config.server_url).await?;
    // The container's own token: it may serve its inputs and move their
    // payloads, nothing else.
    let token = crate::contract::container_token::format(&config.container_id, &config.token);
    let credentials = crate::connection::Credentials::new(Some(&token), None)?;
    let mut rpc = crate::connection::rpc(channel, credentials);
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
        .map_err(|s| match silence(&s, &config.server_url) {
            Some(silent) => silent,
            None => format!("the control plane refused this container: {}", s.message()),
        })?
        .into_inner();

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

    // A class's container builds its one instance first (heartbeats go on
    // meanwhile: `enter` may take long) and says when it is ready.
    let target = match config.function.handler {
        Handler::Class(class) => {
            let params = match commands.message().await {
                Ok(Some(proto::ContainerCommand {
                    cmd: Some(container_command::Cmd::Init(init)),
                })) => init.params,
                Ok(Some(_)) => return Err("expected the instance's parameters first".into()),
                Ok(None) | Err(_) => {
                    heartbeat.abort();
                    return Ok(Ended::Abandoned);
                }
            };
            match (class.start)(params).await {
                Ok(instance) => {
                    let ready = message(container_message::Msg::Ready(proto::ContainerReady {}));
                    if to_server.send(ready).await.is_err() {
                        heartbeat.abort();
                        return Ok(Ended::Abandoned);
                    }
                    Target::Instance(instance)
                }
                Err(reason) => {
                    eprintln!("modal-rs container: {reason}");
                    let failed = message(container_message::Msg::StartFailed(
                        proto::ContainerStartFailed {
                            message: message_size::bound_failure_message(reason),
                        },
                    ));
                    let _ = to_server.send(failed).await;
                    // The control plane stops this container; wait for it.
                    let closed = tokio::time::timeout(Duration::from_secs(10), async {
                        while let Ok(Some(_)) = commands.message().await {}
                    })
                    .await;
                    heartbeat.abort();
                    // `enter` may have started processes: if the control
                    // plane went away meanwhile, they must end with us.
                    if closed.is_ok() {
                        return Ok(Ended::Abandoned);
                    }
                    return Err("the instance could not be started".into());
                }
            }
        }
        function => Target::of_function(function).expect("a function's handler"),
    };

    // Outcomes are sent as they finish, many per message when they pile up;
    // a generator's items go the same way, so they precede its outcome.
    let (outputs, mut outputs_rx) = mpsc::unbounded_channel::<Sent>();
    let sender = {
        let to_server = to_server.clone();
        tokio::spawn(async move {
            while let Some(first) = outputs_rx.recv().await {
                let mut pending = vec![first];
                while pending.len() < 1024 {
                    match outputs_rx.try_recv() {
                        Ok(o) => pending.push(o),
                        Err(_) => break,
                    }
                }
                for msg in messages_in_order(pending) {
                    if to_server.send(msg).await.is_err() {
                        return;
                    }
                }
            }
        })
    };

    // `max_inputs` workers take inputs in arrival order.
    let runner = Arc::new(Runner {
        rpc: rpc.clone(),
        sent: outputs.clone(),
        target: target.clone(),
        web_target: config.function.web.and_then(Target::of_function),
        function: config.function.name,
        container_id: config.container_id.as_str().into(),
        timeout: config.timeout,
        running: std::sync::Mutex::default(),
        cancelled: std::sync::Mutex::default(),
        credits: std::sync::Mutex::default(),
        stuck: tokio::sync::Notify::new(),
    });
    let (inputs, inputs_rx) = mpsc::unbounded_channel::<proto::ContainerInput>();
    let inputs_rx = Arc::new(Mutex::new(inputs_rx));
    let workers: Vec<_> = (0..config.max_inputs.max(1))
        .map(|_| {
            let inputs_rx = inputs_rx.clone();
            let outputs = outputs.clone();
            let runner = runner.clone();
            let batch = config.batch;
            tokio::spawn(async move {
                loop {
                    let done = match batch {
                        None => {
                            let next = inputs_rx.lock().await.recv().await;
                            let Some(input) = next else { return };
                            runner.run_input(input).await.into_iter().collect()
                        }
                        Some((max_size, wait)) => {
                            let inputs = next_batch(&inputs_rx, max_size, wait).await;
                            if inputs.is_empty() {
                                return;
                            }
                            runner.run_batch(inputs).await
                        }
                    };
                    for output in done {
                        if outputs.send(Sent::Output(output)).is_err() {
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    drop(outputs);

    loop {
        let command = tokio::select! {
            command = commands.message() => command,
            () = runner.stuck.notified() => {
                // A blocking thread ran past its timeout and cannot be
                // stopped: let its outcome go out, then end the process (the
                // control plane runs this container's other inputs elsewhere).
                tokio::time::sleep(Duration::from_millis(200)).await;
                heartbeat.abort();
                return Err(
                    "an input ran past its timeout on a blocking thread, which cannot be \
                     interrupted; the container exits to stop it"
                        .into(),
                );
            }
        };
        match command {
            Ok(Some(proto::ContainerCommand { cmd: Some(cmd) })) => match cmd {
                container_command::Cmd::Inputs(batch) => {
                    for input in batch.inputs {
                        let _ = inputs.send(input);
                    }
                }
                container_command::Cmd::Cancel(cancel) => runner.cancel(cancel.input_id),
                container_command::Cmd::Credit(credit) => {
                    runner.credit(credit.input_id, credit.items)
                }
                container_command::Cmd::Stop(_) => break,
                container_command::Cmd::Init(_) => {}
            },
            Ok(Some(_)) => {}
            // The control plane is gone: nothing can reach us any more.
            // A closed stream is an ordinary end; silence is a failure.
            Ok(None) => {
                heartbeat.abort();
                return Ok(Ended::Abandoned);
            }
            Err(status) => {
                heartbeat.abort();
                return silence(&status, &config.server_url).map_or(Ok(Ended::Abandoned), Err);
            }
        }
    }
    // Stopping: finish what was handed over, send it, run `exit`, then exit.
    drop(inputs);
    for worker in workers {
        let _ = worker.await;
    }
    // The runner holds the last way into the outcome channel: with it gone,
    // the sender drains what is left and ends.
    drop(runner);
    let _ = sender.await;
    if let Target::Instance(instance) = target
        && let Err(e) = instance.exit().await
    {
        eprintln!(
            "modal-rs container: `exit` of `{}` failed: {e}",
            config.function.name
        );
    }
    heartbeat.abort();
    Ok(Ended::Stopped)
}

/// Runs inputs: with the function's timeout, the input visible to user
/// code, and cancellation.
struct Runner {
    /// Where a generator's items go (with the outcomes, in order).
    sent: mpsc::UnboundedSender<Sent>,
    /// For large payloads, fetched from and stored to the blob store.
    rpc: crate::connection::Rpc,
    target: Target,
    /// What runs HTTP requests, for a web endpoint.
    web_target: Option<Target>,
    /// The function (or class) it serves, for its inputs' spans.
    function: &'static str,
    container_id: Arc<str>,
    timeout: Duration,
    /// Async inputs running now, to abort on cancellation.
    running: std::sync::Mutex<HashMap<u64, futures::future::AbortHandle>>,
    /// Inputs cancelled before they started.
    cancelled: std::sync::Mutex<HashSet<u64>>,
    /// Running generators: the items each may still send before its caller
    /// takes more.
    credits: std::sync::Mutex<HashMap<u64, Arc<tokio::sync::Semaphore>>>,
    /// Signalled when a blocking input timed out: only exiting stops it.
    stuck: tokio::sync::Notify,
}

/// What goes to the control plane, in order.
enum Sent {
    Output(proto::ContainerOutput),
    Items(proto::ContainerItems),
}

/// Messages for `pending`, in its order: runs of outcomes become one
/// message, items one message per run of the same input, each cut at
/// [`contract::BATCH_BYTES`] so that it stays under the message limit.
fn messages_in_order(pending: Vec<Sent>) -> Vec<proto::ContainerMessage> {
    let mut messages = Vec::new();
    let mut outputs = Batcher::new(contract::BATCH_BYTES);
    // The input of the run of items being collected, and its items.
    let mut items: Option<(u64, Batcher<Bytes>)> = None;
    let outputs_message = |outputs| {
        message(container_message::Msg::Outputs(proto::OutputBatch {
            outputs,
        }))
    };
    let items_message = |input_id, values| {
        message(container_message::Msg::Items(proto::ContainerItems {
            input_id,
            values,
        }))
    };
    for sent in pending {
        match sent {
            Sent::Output(o) => {
                if let Some((input_id, mut run)) = items.take() {
                    messages.push(items_message(input_id, run.take()));
                }
                let size = message_size::entry_len(&o);
                if let Some(full) = outputs.push(o, size) {
                    messages.push(outputs_message(full));
                }
            }
            Sent::Items(more) => {
                if !outputs.is_empty() {
                    messages.push(outputs_message(outputs.take()));
                }
                if items.as_ref().is_some_and(|(id, _)| *id != more.input_id)
                    && let Some((input_id, mut run)) = items.take()
                {
                    messages.push(items_message(input_id, run.take()));
                }
                let (input_id, run) = items
                    .get_or_insert_with(|| (more.input_id, Batcher::new(contract::BATCH_BYTES)));
                for value in more.values {
                    let size = message_size::bytes_entry_len(value.len());
                    if let Some(full) = run.push(value, size) {
                        messages.push(items_message(*input_id, full));
                    }
                }
            }
        }
    }
    if let Some((input_id, mut run)) = items {
        messages.push(items_message(input_id, run.take()));
    }
    if !outputs.is_empty() {
        messages.push(outputs_message(outputs.take()));
    }
    messages
}

/// What this container runs inputs on.
#[derive(Clone)]
enum Target {
    Async(fn(Bytes) -> BoxFuture<'static, Result<Bytes, CallFailure>>),
    Blocking(fn(Bytes) -> Result<Bytes, CallFailure>),
    BatchAsync(fn(Vec<Bytes>) -> BoxFuture<'static, BatchOutcomes>),
    BatchBlocking(fn(Vec<Bytes>) -> BatchOutcomes),
    Generator(fn(Bytes) -> Result<BoxStream<'static, GenEvent>, CallFailure>),
    /// A class's instance; inputs name the method.
    Instance(Arc<dyn ServedInstance>),
}

impl Target {
    /// How a function's handler runs its inputs; `None` for a class, whose
    /// instance is built first.
    fn of_function(handler: Handler) -> Option<Target> {
        Some(match handler {
            Handler::Async(run) => Target::Async(run),
            Handler::Blocking(run) => Target::Blocking(run),
            Handler::BatchAsync(run) => Target::BatchAsync(run),
            Handler::BatchBlocking(run) => Target::BatchBlocking(run),
            Handler::Generator(run) => Target::Generator(run),
            Handler::Class(_) => return None,
        })
    }
}

/// What to report when a call failed because the control plane at `url`
/// stopped answering; `None` for any other failure.
fn silence(status: &tonic::Status, url: &str) -> Option<String> {
    crate::connection::went_silent(status).then(|| {
        crate::Error::ServerSilent {
            url: url.to_owned(),
            silent: contract::SILENCE_LIMIT,
        }
        .to_string()
    })
}

async fn connect(url: &str) -> Result<tonic::transport::Channel, String> {
    let ca = match std::env::var_os(env::TLS_CA) {
        Some(path) => Some(std::fs::read(&path).map_err(|e| {
            format!(
                "cannot read the control plane's CA certificate {} ({}): {e}",
                std::path::Path::new(&path).display(),
                env::TLS_CA
            )
        })?),
        None => None,
    };
    let endpoint = crate::connection::endpoint(url, ca.as_deref())?;
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

impl Runner {
    /// A cancelled input is dropped: it was not started, or its task is
    /// aborted (a blocking input runs on, and its outcome is ignored).
    fn cancel(&self, input_id: u64) {
        match self.running.lock().unwrap().remove(&input_id) {
            Some(task) => task.abort(),
            None => {
                self.cancelled.lock().unwrap().insert(input_id);
            }
        }
    }

    /// A generator's caller took `items` more: it may send as many again.
    fn credit(&self, input_id: u64, items: u32) {
        if let Some(credit) = self.credits.lock().unwrap().get(&input_id) {
            credit.add_permits(items as usize);
        }
    }

    /// Runs one input; `None` when it was cancelled.
    async fn run_input(&self, input: proto::ContainerInput) -> Option<proto::ContainerOutput> {
        if self.cancelled.lock().unwrap().remove(&input.input_id) {
            return None;
        }
        let started = Instant::now();
        let attempt = input.attempt.max(1);
        // The caller's trace goes on here: user code sees this span's
        // context, and its own spans and log lines nest in it.
        let (span, trace) = crate::trace::input_span(
            &input.traceparent,
            self.function,
            &input.method,
            input.input_id,
            attempt,
        );
        let info = InputInfo {
            input_id: input.input_id,
            attempt,
            trace: Some(trace),
        };
        let args = match self.fetch_args(&input).await {
            Ok(args) => args,
            Err(failure) => {
                let done = output(
                    input.input_id,
                    Ok(Err(failure)),
                    started.elapsed(),
                    &self.container_id,
                );
                return Some(done);
            }
        };
        let target = if input.method == crate::web::wire::WEB_INPUT_METHOD {
            match &self.web_target {
                Some(target) => target,
                None => {
                    let failure = CallFailure::BadInput(
                        "this function is not a web endpoint: it takes no HTTP requests".into(),
                    );
                    return Some(output(
                        input.input_id,
                        Ok(Err(failure)),
                        started.elapsed(),
                        &self.container_id,
                    ));
                }
            }
        } else {
            &self.target
        };
        let invocation = match target {
            Target::Async(run) => Invocation::Async(run(args)),
            Target::Blocking(run) => {
                let run = *run;
                Invocation::Blocking(Box::new(move || run(args)))
            }
            Target::Instance(instance) => instance.clone().call(&input.method, args),
            Target::BatchAsync(run) => {
                let run = *run;
                Invocation::Async(Box::pin(async move {
                    run(vec![args]).await.pop().unwrap_or_else(no_outcome)
                }))
            }
            Target::BatchBlocking(run) => {
                let run = *run;
                Invocation::Blocking(Box::new(move || {
                    run(vec![args]).pop().unwrap_or_else(no_outcome)
                }))
            }
            Target::Generator(run) => {
                let run = *run;
                let sent = self.sent.clone();
                let input_id = input.input_id;
                let credit = Arc::new(tokio::sync::Semaphore::new(
                    contract::GENERATOR_CREDIT_ITEMS as usize,
                ));
                self.credits
                    .lock()
                    .unwrap()
                    .insert(input_id, credit.clone());
                Invocation::Async(Box::pin(async move {
                    use futures::StreamExt;
                    let mut events = run(args)?;
                    while let Some(event) = events.next().await {
                        match event {
                            GenEvent::Item(item) => {
                                let item = item?;
                                // Items travel inline, in the container's
                                // messages: a large one fails the input
                                // rather than the container's stream.
                                if item.len() > contract::INLINE_LIMIT {
                                    return Err(CallFailure::BadOutput(format!(
                                        "a generator item is {} bytes encoded, over the limit \
                                         of {} bytes for one item; yield smaller items, or \
                                         return large data as the generator's return value",
                                        item.len(),
                                        contract::INLINE_LIMIT
                                    )));
                                }
                                // Sent only while its caller keeps up.
                                if let Ok(permit) = credit.acquire().await {
                                    permit.forget();
                                }
                                let items = proto::ContainerItems {
                                    input_id,
                                    values: vec![item],
                                };
                                let _ = sent.send(Sent::Items(items));
                            }
                            GenEvent::Return(r) => return r,
                        }
                    }
                    Err(CallFailure::BadOutput(
                        "the generator ended without a return value".into(),
                    ))
                }))
            }
        };
        let result = match invocation {
            Invocation::Async(future) => {
                // Run in this worker's task (no spawn on the hot path), yet
                // abortable by a cancellation.
                let (future, abort) =
                    futures::future::abortable(context::scope_async(info, future).instrument(span));
                self.running.lock().unwrap().insert(input.input_id, abort);
                let result =
                    tokio::time::timeout(self.timeout, AssertUnwindSafe(future).catch_unwind())
                        .await;
                self.running.lock().unwrap().remove(&input.input_id);
                if matches!(target, Target::Generator(_)) {
                    self.credits.lock().unwrap().remove(&input.input_id);
                }
                match result {
                    Ok(Ok(Ok(r))) => Ok(r),
                    Ok(Ok(Err(futures::future::Aborted))) => return None,
                    Ok(Err(panic)) => Err(panic_message(&*panic)),
                    Err(_) => Ok(Err(self.timed_out())),
                }
            }
            Invocation::Blocking(run) => self
                .run_blocking(move || span.in_scope(|| context::scope_blocking(info, run)))
                .await
                .unwrap_or_else(|| Ok(Err(self.timed_out()))),
            Invocation::Failed(failure) => Ok(Err(failure)),
        };
        let done = output(
            input.input_id,
            result,
            started.elapsed(),
            &self.container_id,
        );
        Some(self.offload(done).await)
    }

    /// An input's arguments, read from the blob store when large.
    async fn fetch_args(&self, input: &proto::ContainerInput) -> Result<Bytes, CallFailure> {
        if input.args_blob.is_empty() {
            return Ok(input.args.clone());
        }
        payload::download(self.rpc.clone(), &input.args_blob)
            .await
            .map_err(|s| {
                CallFailure::BadInput(format!(
                    "the arguments could not be read from the control plane: {}",
                    s.message()
                ))
            })
    }

    /// A large result goes to the blob store and travels as a reference;
    /// one over the limit fails its input.
    async fn offload(&self, mut done: proto::ContainerOutput) -> proto::ContainerOutput {
        let Some(proto::Outcome {
            result: Some(outcome::Result::Value(value)),
        }) = &done.outcome
        else {
            return done;
        };
        if value.len() <= contract::INLINE_LIMIT {
            return done;
        }
        let result = if value.len() > contract::MAX_PAYLOAD_BYTES {
            Err(format!(
                "the result is {} bytes encoded, over the limit of {} bytes",
                value.len(),
                contract::MAX_PAYLOAD_BYTES
            ))
        } else {
            payload::upload(self.rpc.clone(), value.clone())
                .await
                .map_err(|s| format!("the result could not be stored: {}", s.message()))
        };
        done.outcome = Some(proto::Outcome {
            result: Some(match result {
                Ok(id) => outcome::Result::ValueBlob(id),
                Err(message) => outcome::Result::Failure(proto::Failure {
                    kind: FailureKind::BadOutput as i32,
                    message,
                    container_id: self.container_id.to_string(),
                    error_value: Bytes::new(),
                }),
            }),
        });
        done
    }

    /// Runs `run` on a blocking thread within the timeout: its value, or
    /// the panic's message; `None` when it timed out (the thread cannot be
    /// stopped, so the container is marked to exit).
    async fn run_blocking<T: Send + 'static>(
        &self,
        run: impl FnOnce() -> T + Send + 'static,
    ) -> Option<Result<T, String>> {
        let task =
            tokio::task::spawn_blocking(move || std::panic::catch_unwind(AssertUnwindSafe(run)));
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(r)) => Some(r.map_err(|p| panic_message(&*p))),
            Ok(Err(join)) => Some(Err(join.to_string())),
            Err(_) => {
                self.stuck.notify_one();
                None
            }
        }
    }

    fn timed_out(&self) -> CallFailure {
        CallFailure::Timeout(format!(
            "the attempt ran past the function's `timeout` of {:?} in container {}",
            self.timeout, self.container_id
        ))
    }
}

fn no_outcome() -> Result<Bytes, CallFailure> {
    Err(CallFailure::BadOutput(
        "the batched function returned no outcome for its input".into(),
    ))
}

/// The next batch: waits for a first input, then takes more until the batch
/// is full or `wait` has passed since the first. Empty once inputs end.
async fn next_batch(
    inputs: &Mutex<mpsc::UnboundedReceiver<proto::ContainerInput>>,
    max_size: usize,
    wait: Duration,
) -> Vec<proto::ContainerInput> {
    // One batch forms at a time; other workers wait for the next.
    let mut inputs = inputs.lock().await;
    let Some(first) = inputs.recv().await else {
        return Vec::new();
    };
    let deadline = tokio::time::Instant::now() + wait;
    let mut batch = vec![first];
    while batch.len() < max_size {
        // Take what is already here without waiting.
        match inputs.try_recv() {
            Ok(input) => {
                batch.push(input);
                continue;
            }
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        match tokio::time::timeout_at(deadline, inputs.recv()).await {
            Ok(Some(input)) => batch.push(input),
            Ok(None) | Err(_) => break,
        }
    }
    batch
}

impl Runner {
    /// Runs one batch; a panic fails every input in it, and so does the
    /// function's timeout.
    async fn run_batch(&self, inputs: Vec<proto::ContainerInput>) -> Vec<proto::ContainerOutput> {
        let container_id: &str = &self.container_id;
        let target = &self.target;
        let started = Instant::now();
        let ids: Vec<u64> = inputs.iter().map(|i| i.input_id).collect();
        let method = inputs[0].method.clone();
        let mut args = Vec::with_capacity(inputs.len());
        for input in &inputs {
            // An argument that cannot be read leaves an empty payload, which
            // fails that input alone when decoded.
            args.push(self.fetch_args(input).await.unwrap_or_default());
        }
        let invocation = match target {
            Target::BatchAsync(run) => BatchInvocation::Async(run(args)),
            Target::BatchBlocking(run) => {
                let run = *run;
                BatchInvocation::Blocking(Box::new(move || run(args)))
            }
            Target::Instance(instance) => instance.clone().call_batch(&method, args),
            Target::Async(_) | Target::Blocking(_) | Target::Generator(_) => {
                BatchInvocation::Failed(CallFailure::BadInput(
                    "this function is not batched".into(),
                ))
            }
        };
        let outcomes: Result<Vec<Result<Bytes, CallFailure>>, String> = match invocation {
            BatchInvocation::Async(future) => {
                match tokio::time::timeout(self.timeout, AssertUnwindSafe(future).catch_unwind())
                    .await
                {
                    Ok(r) => r.map_err(|p| panic_message(&*p)),
                    Err(_) => Ok(vec![Err(self.timed_out()); ids.len()]),
                }
            }
            BatchInvocation::Blocking(run) => self
                .run_blocking(run)
                .await
                .unwrap_or_else(|| Ok(vec![Err(self.timed_out()); ids.len()])),
            BatchInvocation::Failed(failure) => Ok(vec![Err(failure); ids.len()]),
        };
        // Each input is charged its share of the batch's time.
        let elapsed = started.elapsed() / ids.len().max(1) as u32;
        match outcomes {
            Ok(outcomes) => {
                let mut done = Vec::with_capacity(ids.len());
                for (id, r) in ids.into_iter().zip(outcomes) {
                    done.push(self.offload(output(id, Ok(r), elapsed, container_id)).await);
                }
                done
            }
            Err(panic) => ids
                .into_iter()
                .map(|id| output(id, Err(panic.clone()), elapsed, container_id))
                .collect(),
        }
    }
}

/// The message for one finished input.
fn output(
    input_id: u64,
    result: Result<Result<Bytes, CallFailure>, String>,
    elapsed: Duration,
    container_id: &str,
) -> proto::ContainerOutput {
    let exec_us = elapsed.as_micros() as u64;
    let result = match result {
        Ok(Ok(value)) => outcome::Result::Value(value),
        Ok(Err(failure)) => {
            let (kind, message, value) = match failure {
                CallFailure::User(UserFailure { message, value }) => {
                    (FailureKind::UserError, message, value)
                }
                CallFailure::Panic(m) => (FailureKind::Panic, m, None),
                CallFailure::BadInput(m) => (FailureKind::BadInput, m, None),
                CallFailure::BadOutput(m) => (FailureKind::BadOutput, m, None),
                CallFailure::Timeout(m) => (FailureKind::Timeout, m, None),
            };
            outcome::Result::Failure(proto::Failure {
                kind: kind as i32,
                message: message_size::bound_failure_message(message),
                container_id: container_id.to_owned(),
                // Bounded where it was encoded (`codec::user_failure`).
                error_value: value.unwrap_or_default(),
            })
        }
        Err(panic) => outcome::Result::Failure(proto::Failure {
            kind: FailureKind::Panic as i32,
            message: message_size::bound_failure_message(panic),
            container_id: container_id.to_owned(),
            error_value: Bytes::new(),
        }),
    };
    proto::ContainerOutput {
        input_id,
        outcome: Some(proto::Outcome {
            result: Some(result),
        }),
        exec_us,
    }
}

fn message(msg: container_message::Msg) -> proto::ContainerMessage {
    proto::ContainerMessage { msg: Some(msg) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_output(input_id: u64, len: usize) -> Sent {
        Sent::Output(output(
            input_id,
            Ok(Ok(vec![0; len].into())),
            Duration::ZERO,
            "c",
        ))
    }

    fn item(input_id: u64, len: usize) -> Sent {
        Sent::Items(proto::ContainerItems {
            input_id,
            values: vec![vec![0; len].into()],
        })
    }

    /// Each message's kind, input ids and size.
    fn shape(messages: &[proto::ContainerMessage]) -> Vec<(&'static str, Vec<u64>)> {
        messages
            .iter()
            .map(|m| {
                assert!(prost::Message::encoded_len(m) <= contract::BATCH_BYTES + 16);
                match &m.msg {
                    Some(container_message::Msg::Outputs(b)) => {
                        ("outputs", b.outputs.iter().map(|o| o.input_id).collect())
                    }
                    Some(container_message::Msg::Items(i)) => {
                        ("items", vec![i.input_id; i.values.len()])
                    }
                    _ => unreachable!(),
                }
            })
            .collect()
    }

    #[test]
    fn outcomes_and_items_keep_their_order_in_messages_under_the_limit() {
        let mib = 1 << 20;
        let pending = vec![
            value_output(1, 3 * mib),
            value_output(2, 3 * mib),
            value_output(3, 3 * mib),
            item(9, 3 * mib),
            item(9, 3 * mib),
            item(9, 3 * mib),
            item(8, 10),
            value_output(4, 10),
        ];
        let messages = messages_in_order(pending);
        assert_eq!(
            shape(&messages),
            vec![
                ("outputs", vec![1, 2]),
                ("outputs", vec![3]),
                ("items", vec![9, 9]),
                ("items", vec![9]),
                ("items", vec![8]),
                ("outputs", vec![4]),
            ]
        );
    }

    #[test]
    fn a_failure_message_is_bounded() {
        let failure = UserFailure::text("x".repeat(10 << 20));
        let done = output(1, Ok(Err(failure)), Duration::ZERO, "c");
        assert!(prost::Message::encoded_len(&done) < contract::MAX_FAILURE_MESSAGE_BYTES + 100);
    }
}
