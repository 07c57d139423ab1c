//! `MapStream<Ret>`: the ordered results of a map, with bounded memory.
//!
//! Inputs are read from the caller's iterator on a blocking thread (it may be
//! slow or lazy), encoded once and sent many per message. At most [`WINDOW`]
//! inputs are between "sent" and "handed to the caller", which bounds both the
//! control plane's share of this map and the reorder buffer here.
//!
//! The inputs sent and not yet answered are kept (their encoded bytes are
//! shared, not copied): should the control plane go away, they are sent
//! again under the same indices on a new stream once one answers, so that
//! every result is still handed over once, in order.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};
use tracing::Instrument as _;

use super::FunctionCall;
use super::invoke::{self, Callee, MAX_RENEWALS};
use super::outcome::{CallSite, decode_outcome};
use super::progress::Progress;
use super::reconnect::Outage;
use super::resolve::Resolve;
use crate::contract::BATCH_BYTES;
use crate::message_size::{self, Batcher};
use crate::proto::{self, MapInput, MapRequest};
use crate::{Error, codec};

/// Inputs in flight per map (sent, not yet handed to the caller): the
/// control plane holds a map to the same window.
const WINDOW: usize = crate::contract::MAP_WINDOW_INPUTS;
/// Inline argument bytes in flight per map, in KiB (128 MiB): with
/// [`WINDOW`], what bounds the control plane's share of one map whatever
/// the size of its inputs.
const WINDOW_KIB: usize = crate::contract::MAP_WINDOW_KIB as usize;
/// Inputs per request message, at most: a message is also cut at
/// [`BATCH_BYTES`](crate::contract::BATCH_BYTES).
const CHUNK: usize = 512;

type Starter<Ret> =
    Box<dyn FnOnce(mpsc::Sender<Result<Ret, Error>>, MapSettings) -> JoinHandle<()> + Send>;

/// How a map hands its results over.
#[derive(Debug, Clone, Copy)]
struct MapSettings {
    /// Input order (a slow early input holds later ones back), or completion order.
    ordered: bool,
    /// Failures take their input's place instead of ending the map.
    return_exceptions: bool,
    /// Whether to draw a progress bar; `None`: the program's default.
    progress: Option<bool>,
}

/// The results of a map: a `Stream` of `Result<Ret, Error>`, by default in
/// input order and ending after the first error.
/// [`order_outputs(false)`](MapStream::order_outputs) yields results as they
/// complete; [`return_exceptions(true)`](MapStream::return_exceptions) yields
/// each failure in its input's place and goes on.
pub struct MapStream<Ret> {
    starter: Option<Starter<Ret>>,
    settings: MapSettings,
    results: Option<mpsc::Receiver<Result<Ret, Error>>>,
    driver: Option<JoinHandle<()>>,
    /// How many inputs the map has, when the iterator says so exactly.
    total: Option<u64>,
    progress: Option<Progress>,
}

impl<Ret: DeserializeOwned + Send + 'static> MapStream<Ret> {
    /// A map over `inputs` of `method` (empty for a function) of what
    /// `source` names.
    pub(crate) fn start<S, Args, I>(source: S, method: &'static str, inputs: I) -> Self
    where
        S: Resolve,
        Args: Serialize + Send + 'static,
        I: Iterator<Item = Args> + Send + 'static,
    {
        Self::start_fallible(
            source,
            method,
            inputs.map(Ok::<Args, std::convert::Infallible>),
        )
    }

    /// A map over inputs that may fail to be produced: the first `Err` ends
    /// the map with that error, after the results of the inputs before it.
    pub(crate) fn start_fallible<S, Args, E, I>(source: S, method: &'static str, inputs: I) -> Self
    where
        S: Resolve,
        Args: Serialize + Send + 'static,
        E: std::fmt::Display,
        I: Iterator<Item = Result<Args, E>> + Send + 'static,
    {
        let total = match inputs.size_hint() {
            (low, Some(high)) if low == high => Some(low as u64),
            _ => None,
        };
        // Nothing runs until the stream is first polled (inside a runtime),
        // in the caller's context: its trace is taken there, since the
        // map's own task has none.
        let starter: Starter<Ret> = Box::new(move |out, settings| {
            let (span, trace) = crate::trace::call_span("map");
            tokio::spawn(
                async move {
                    if let Err(e) =
                        drive(source, method, inputs, trace, out.clone(), settings).await
                    {
                        let _ = out.send(Err(e)).await;
                    }
                }
                .instrument(span),
            )
        });
        MapStream {
            starter: Some(starter),
            settings: MapSettings {
                ordered: true,
                return_exceptions: false,
                progress: None,
            },
            results: None,
            driver: None,
            total,
            progress: None,
        }
    }

    /// Draws a progress bar on stderr (done, failed, rate, ETA) while the
    /// map runs: `true` where stderr is a terminal, `false` never. By
    /// default, the program's choice ([`crate::set_progress_bars`],
    /// `MODAL_PROGRESS`), else whether stderr is a terminal.
    pub fn show_progress(mut self, show: bool) -> Self {
        self.settings.progress = Some(show);
        self
    }

    /// `true` (the default): results in input order. `false`: as they
    /// complete, so that a slow input holds nothing back.
    pub fn order_outputs(mut self, ordered: bool) -> Self {
        self.settings.ordered = ordered;
        self
    }

    /// `false` (the default): the first failure ends the map. `true`: each
    /// failure is yielded in its input's place and the map goes on.
    pub fn return_exceptions(mut self, return_exceptions: bool) -> Self {
        self.settings.return_exceptions = return_exceptions;
        self
    }

    /// Runs the map to its end, discarding results: with
    /// `return_exceptions(true)` failures are ignored too (Modal's
    /// `for_each(ignore_exceptions=True)`); otherwise the first one is returned.
    pub async fn drain(mut self) -> Result<(), Error> {
        let ignore = self.settings.return_exceptions;
        while let Some(r) = futures::StreamExt::next(&mut self).await {
            if let Err(e) = r
                && !ignore
            {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Collects every result, or returns the first error.
    pub async fn collect_vec(mut self) -> Result<Vec<Ret>, Error> {
        let mut all = Vec::new();
        while let Some(r) = futures::StreamExt::next(&mut self).await {
            all.push(r?);
        }
        Ok(all)
    }
}

impl<Ret> Stream for MapStream<Ret> {
    type Item = Result<Ret, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(starter) = this.starter.take() {
            let (tx, rx) = mpsc::channel(CHUNK);
            this.driver = Some(starter(tx, this.settings));
            this.results = Some(rx);
            this.progress = Some(Progress::new(this.total, this.settings.progress));
        }
        let polled = match this.results.as_mut() {
            Some(rx) => rx.poll_recv(cx),
            None => Poll::Ready(None),
        };
        if let Some(progress) = &mut this.progress {
            match &polled {
                Poll::Ready(Some(result)) => progress.record(result.is_ok()),
                Poll::Ready(None) => progress.finish(),
                Poll::Pending => {}
            }
        }
        polled
    }
}

impl<Ret> Drop for MapStream<Ret> {
    fn drop(&mut self) {
        // Dropping the stream ends the map: its request stream closes.
        if let Some(driver) = self.driver.take() {
            driver.abort();
        }
    }
}

async fn drive<S, Args, E, Ret, I>(
    source: S,
    method: &'static str,
    inputs: I,
    trace: crate::trace::TraceParent,
    out: mpsc::Sender<Result<Ret, Error>>,
    settings: MapSettings,
) -> Result<(), Error>
where
    S: Resolve,
    Args: Serialize + Send + 'static,
    E: std::fmt::Display,
    Ret: DeserializeOwned + Send + 'static,
    I: Iterator<Item = Result<Args, E>> + Send + 'static,
{
    let mut callee = invoke::find(&source, method).await?;
    let name = callee.display_name();
    tracing::Span::current().record("function", name.as_str());
    let window = Arc::new(Window::new());
    let (link, first_requests) = Link::open(callee.resolved.function_id, trace.header());
    let mut first_requests = Some(first_requests);
    // However the map ends (done, failed, dropped), the feeder stops.
    let _end = EndOnDrop {
        window: window.clone(),
        link: link.clone(),
    };
    let feeder = {
        let (window, link, callee) = (window.clone(), link.clone(), callee.clone());
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let _fed = FedOnDrop(link.clone());
            feed(inputs, &callee, &window, &link, &runtime)
        })
    };
    let mut results = Results {
        out,
        settings,
        window,
        link: link.clone(),
        reorder: Reorder::default(),
        ready: VecDeque::new(),
        answered: Vec::new(),
        handed: 0,
    };
    let mut outage = Outage::default();
    let mut renewals = 0;
    let mut stale = false;
    loop {
        let client = callee.resolved.client.clone();
        let (at, rpc) = client.rpc_at();
        let received = match renew(&source, &mut callee, &mut stale).await {
            Ok(()) => {
                let requests = first_requests.take().unwrap_or_else(|| {
                    lock(&link).reopen(callee.resolved.function_id, callee.method)
                });
                let site = callee.resolved.site(&name);
                let stream = results.receive(&client, at, rpc, requests, &site, &mut outage);
                stream.await
            }
            Err(e) => Err(e),
        };
        let error = match received {
            Ok(Flow::Finished) if lock(&link).settled() => break,
            // The control plane ended the stream with inputs unanswered.
            Ok(Flow::Finished) => None,
            Ok(Flow::Ended) => return Ok(()),
            Err(e) => Some(e),
        };
        match error {
            None | Some(Error::FunctionIdUnknown { .. }) if renewals < MAX_RENEWALS => {
                renewals += 1;
            }
            None => {
                return Err(Error::Internal(format!(
                    "the control plane ended a map of `{name}` after {} results, with inputs unanswered",
                    results.handed
                )));
            }
            Some(e) => {
                renewals = 0;
                client.ride_out(&mut outage, at, e).await?;
            }
        }
        // The control plane that answers next may not know the function's
        // id (it restarted): the function is found again first, since a map
        // to an unknown id may end without saying why.
        stale = true;
    }
    let handed = results.handed;
    match feeder.await {
        Ok(Ok(sent)) if sent == handed => Ok(()),
        Ok(Ok(sent)) => Err(Error::Internal(format!(
            "the control plane ended a map of `{name}` after {handed} of {sent} results"
        ))),
        Ok(Err(e)) => Err(e),
        Err(join) => Err(Error::Internal(format!(
            "the input iterator of a map of `{name}` panicked: {}",
            join.try_into_panic()
                .map(|p| codec::panic_message(&*p))
                .unwrap_or_else(|_| "cancelled".into())
        ))),
    }
}

/// Finds `callee` again if it is `stale` (and can be found again), without
/// waiting for an unreachable control plane: the map's own loop does that.
async fn renew<S: Resolve>(source: &S, callee: &mut Callee, stale: &mut bool) -> Result<(), Error> {
    if *stale && source.forget(&callee.resolved) {
        *callee = Callee {
            resolved: source.find(false).await?,
            method: callee.method,
        };
    }
    *stale = false;
    Ok(())
}

/// How one stream of a map ended, when not with an error.
enum Flow {
    /// Every input sent was answered and the stream closed.
    Finished,
    /// The caller is gone, or a failure ended the map.
    Ended,
}

/// The receiving end of a map: results on their way to the caller.
struct Results<Ret> {
    out: mpsc::Sender<Result<Ret, Error>>,
    settings: MapSettings,
    window: Arc<Window>,
    link: Arc<Mutex<Link>>,
    reorder: Reorder,
    ready: VecDeque<(u64, Option<proto::Outcome>)>,
    /// The outputs of one message with their inputs, while they are taken
    /// (kept to reuse its room).
    answered: Vec<(proto::MapOutput, MapInput)>,
    /// Results handed to the caller.
    handed: u64,
}

impl<Ret: DeserializeOwned> Results<Ret> {
    /// Opens a `Map` stream on `rpc` (URL number `at` of `client`) sending
    /// `requests`, and hands its results over until it ends.
    async fn receive(
        &mut self,
        client: &super::Client,
        at: usize,
        mut rpc: crate::connection::Rpc,
        requests: mpsc::UnboundedReceiver<MapRequest>,
        site: &CallSite<'_>,
        outage: &mut Outage,
    ) -> Result<Flow, Error> {
        let mut responses = rpc
            .map(UnboundedReceiverStream::new(requests))
            .await
            .map_err(|s| client.status_at(at, s))?
            .into_inner();
        while let Some(batch) = responses
            .message()
            .await
            .map_err(|s| client.status_at(at, s))?
        {
            *outage = Outage::default();
            self.take(client, batch.outputs).await?;
            while let Some((index, outcome)) =
                self.ready.pop_front().or_else(|| self.reorder.pop_ready())
            {
                let result = decode_outcome::<Ret>(outcome, site);
                let ends = result.is_err() && !self.settings.return_exceptions;
                if self.out.send(result).await.is_err() || ends {
                    return Ok(Flow::Ended);
                }
                self.handed += 1;
                self.window.release(index);
            }
        }
        Ok(Flow::Finished)
    }

    /// Takes the outputs of inputs still unanswered (an output for an input
    /// answered before is a duplicate), large values read back. Should
    /// reading one fail, it and the outputs after it stay unanswered.
    async fn take(
        &mut self,
        client: &super::Client,
        outputs: Vec<proto::MapOutput>,
    ) -> Result<(), Error> {
        {
            let mut link = lock(&self.link);
            let answered = outputs
                .into_iter()
                .filter_map(|o| link.unanswered.remove(&o.index).map(|input| (o, input)));
            self.answered.extend(answered);
        }
        let mut answered = self.answered.drain(..);
        while let Some((mut output, input)) = answered.next() {
            if let Some(outcome) = output.outcome.take() {
                match invoke::fetch_outcome(client, outcome).await {
                    Ok(outcome) => output.outcome = Some(outcome),
                    Err(e) => {
                        let mut link = lock(&self.link);
                        for (_, input) in std::iter::once((output, input)).chain(answered) {
                            link.unanswered.insert(input.index, input);
                        }
                        return Err(e);
                    }
                }
            }
            if self.settings.ordered {
                self.reorder.insert(output.index, output.outcome);
            } else {
                self.ready.push_back((output.index, output.outcome));
            }
        }
        Ok(())
    }
}

/// Where a map's inputs go, shared by its feeder and its driver: the
/// request stream in use, and the inputs sent and not yet answered, to be
/// sent again on a new stream should this one be lost.
struct Link {
    /// `None` once every input was sent (the stream closes) or the map ended.
    requests: Option<mpsc::UnboundedSender<MapRequest>>,
    function_id: u64,
    /// The map's trace context, sent on each stream's first message.
    traceparent: String,
    /// Nothing was sent on the current stream yet.
    fresh: bool,
    unanswered: HashMap<u64, MapInput, ByIndex>,
    /// The feeder is done: no input comes after those sent.
    fed: bool,
    /// The map ended: nothing more is sent.
    ended: bool,
}

impl Link {
    /// A link to `function_id` in trace context `traceparent`, and the
    /// stream its requests go on.
    fn open(
        function_id: u64,
        traceparent: String,
    ) -> (Arc<Mutex<Link>>, mpsc::UnboundedReceiver<MapRequest>) {
        let (requests, stream) = mpsc::unbounded_channel();
        let link = Link {
            requests: Some(requests),
            function_id,
            traceparent,
            fresh: true,
            unanswered: HashMap::default(),
            fed: false,
            ended: false,
        };
        (Arc::new(Mutex::new(link)), stream)
    }

    /// Whether every input was sent and answered.
    fn settled(&self) -> bool {
        self.fed && self.unanswered.is_empty()
    }

    /// Sends inputs (from the feeder); `false` once the map has ended.
    fn send(&mut self, inputs: Vec<MapInput>, method: &'static str) -> bool {
        if self.ended {
            return false;
        }
        for input in &inputs {
            self.unanswered.insert(input.index, input.clone());
        }
        let request = MapRequest {
            function_id: self.function_id,
            inputs,
            method: method.to_owned(),
            last: false,
            traceparent: self.first_message_trace(),
        };
        if let Some(requests) = &self.requests {
            // A lost stream drops this message: its inputs are sent again
            // on the next one.
            let _ = requests.send(request);
        }
        true
    }

    /// The trace context for the next message: the map's on a stream's
    /// first, none after (the control plane reads the first only).
    fn first_message_trace(&mut self) -> String {
        if std::mem::take(&mut self.fresh) {
            self.traceparent.clone()
        } else {
            String::new()
        }
    }

    /// A new request stream (to `function_id`, which later inputs go to
    /// too) that starts with every unanswered input, in index order, and
    /// closes after them if the feeder is done.
    fn reopen(
        &mut self,
        function_id: u64,
        method: &'static str,
    ) -> mpsc::UnboundedReceiver<MapRequest> {
        let (requests, stream) = mpsc::unbounded_channel();
        self.function_id = function_id;
        self.fresh = true;
        let mut traceparent = Some(self.traceparent.clone());
        let mut pending: Vec<&MapInput> = self.unanswered.values().collect();
        pending.sort_unstable_by_key(|input| input.index);
        let mut batch = Batcher::new(BATCH_BYTES);
        let mut send = |inputs: Vec<MapInput>| {
            let _ = requests.send(MapRequest {
                function_id,
                inputs,
                method: method.to_owned(),
                last: false,
                traceparent: traceparent.take().unwrap_or_default(),
            });
        };
        for input in pending {
            let size = message_size::entry_len(input);
            if let Some(full) = batch.push(input.clone(), size) {
                send(full);
            } else if batch.len() >= CHUNK {
                send(batch.take());
            }
        }
        if !batch.is_empty() {
            send(batch.take());
        }
        self.fresh = traceparent.is_some();
        if !self.fed && !self.ended {
            self.requests = Some(requests);
        }
        stream
    }
}

/// Hashes an input's index with one multiplication: indices are not chosen
/// by anyone hostile, and every input is hashed twice (sent, answered).
#[derive(Default, Clone, Copy)]
struct ByIndex;

impl std::hash::BuildHasher for ByIndex {
    type Hasher = IndexHasher;

    fn build_hasher(&self) -> IndexHasher {
        IndexHasher(0)
    }
}

struct IndexHasher(u64);

impl std::hash::Hasher for IndexHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn lock(link: &Mutex<Link>) -> std::sync::MutexGuard<'_, Link> {
    // Nothing panics while holding it; a poisoned link is still consistent.
    link.lock().unwrap_or_else(|e| e.into_inner())
}

/// The feeder is done (however it ended): the request stream closes once
/// what was sent is.
struct FedOnDrop(Arc<Mutex<Link>>);

impl Drop for FedOnDrop {
    fn drop(&mut self) {
        let mut link = lock(&self.0);
        link.fed = true;
        link.requests = None;
    }
}

/// The map ended: the feeder stops waiting for room and sends no more.
struct EndOnDrop {
    window: Arc<Window>,
    link: Arc<Mutex<Link>>,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.window.close();
        let mut link = lock(&self.link);
        link.ended = true;
        link.requests = None;
    }
}

/// Reads the caller's iterator and sends inputs while the window allows.
/// Returns how many inputs were sent.
fn feed<Args: Serialize, E: std::fmt::Display>(
    inputs: impl Iterator<Item = Result<Args, E>>,
    callee: &Callee,
    window: &Window,
    link: &Mutex<Link>,
    runtime: &tokio::runtime::Handle,
) -> Result<u64, Error> {
    let send = |inputs| lock(link).send(inputs, callee.method);
    let mut inputs = inputs.peekable();
    let mut index = 0_u64;
    while inputs.peek().is_some() {
        // Wait for room, then take as much room as there is, up to a chunk.
        match runtime.block_on(window.inputs.acquire()) {
            Ok(permit) => permit.forget(),
            Err(_) => return Ok(index),
        }
        let mut room = 1;
        while room < CHUNK {
            match window.inputs.try_acquire() {
                Ok(permit) => {
                    permit.forget();
                    room += 1;
                }
                Err(_) => break,
            }
        }
        let mut batch = Batcher::new(BATCH_BYTES);
        let mut failed = None;
        let mut taken = 0;
        for args in inputs.by_ref().take(room) {
            match args {
                Ok(args) => {
                    let input = map_input(callee, index, &args, true, runtime)?;
                    let size = message_size::entry_len(&input);
                    let has_room = window.try_take_bytes(index, input.args.len());
                    // A full message goes now; so does what is ready when the
                    // window is out of byte room (its results are what frees
                    // room), before waiting.
                    if (!has_room || batch.would_overflow(size))
                        && !batch.is_empty()
                        && !send(batch.take())
                    {
                        return Ok(index);
                    }
                    if !has_room && !window.take_bytes(index, input.args.len(), runtime) {
                        return Ok(index);
                    }
                    batch.push(input, size);
                    taken += 1;
                }
                Err(e) => {
                    failed = Some(Error::InputIterator {
                        function: callee.display_name(),
                        index,
                        message: format!("{e:#}"),
                    });
                    break;
                }
            }
            index += 1;
        }
        if taken < room {
            window.inputs.add_permits(room - taken);
        }
        if !send(batch.take()) {
            // The map ended early (a failure, or the caller dropped it).
            return Ok(index);
        }
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(index)
}

/// Queues every input and returns one call whose result is the list of
/// results, in input order (or the first failure).
pub(crate) async fn spawn_map<Args, Ret, I>(
    callee: Callee,
    inputs: I,
) -> Result<FunctionCall<Vec<Ret>>, Error>
where
    Args: Serialize + Send + 'static,
    Ret: DeserializeOwned,
    I: Iterator<Item = Args> + Send + 'static,
{
    let (span, trace) = crate::trace::call_span("map");
    span.record("function", callee.display_name());
    spawn_map_in(callee, inputs, trace).instrument(span).await
}

async fn spawn_map_in<Args, Ret, I>(
    callee: Callee,
    inputs: I,
    trace: crate::trace::TraceParent,
) -> Result<FunctionCall<Vec<Ret>>, Error>
where
    Args: Serialize + Send + 'static,
    Ret: DeserializeOwned,
    I: Iterator<Item = Args> + Send + 'static,
{
    let (requests, request_stream) = mpsc::channel::<MapRequest>(4);
    let feeder = {
        let callee = callee.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || -> Result<(), Error> {
            let mut inputs = inputs.peekable();
            let mut index = 0_u64;
            let mut batch = Batcher::new(BATCH_BYTES);
            // The first message carries the trace context.
            let mut traceparent = Some(trace.header());
            loop {
                // Inputs until the message is full by count or by bytes; the
                // one that overflows it starts the next.
                let mut full = None;
                while full.is_none() && batch.len() < CHUNK {
                    let Some(args) = inputs.next() else { break };
                    let input = map_input(&callee, index, &args, false, &runtime)?;
                    index += 1;
                    let size = message_size::entry_len(&input);
                    full = batch.push(input, size);
                }
                let last = inputs.peek().is_none() && full.is_none();
                let inputs = full.unwrap_or_else(|| batch.take());
                let trace = traceparent.take().unwrap_or_default();
                if !send(&requests, &callee, inputs, last, trace, &runtime) || last {
                    return Ok(());
                }
            }
        })
    };
    let r = &callee.resolved;
    let reply = r
        .client
        .rpc()
        .spawn_map(ReceiverStream::new(request_stream))
        .await;
    // An encoding failure or a panicking iterator is the error to report.
    match feeder.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(join) => {
            return Err(Error::Internal(format!(
                "the input iterator of a spawned map of `{}` panicked: {}",
                callee.display_name(),
                join.try_into_panic()
                    .map(|p| codec::panic_message(&*p))
                    .unwrap_or_else(|_| "cancelled".into())
            )));
        }
    }
    let reply = reply.map_err(|s| r.client.status(s))?;
    Ok(FunctionCall::new(
        r.client.clone(),
        reply.into_inner().call_id,
    ))
}

/// Sends one message of a spawned map's inputs; `false` once the map has
/// ended.
fn send(
    requests: &mpsc::Sender<MapRequest>,
    callee: &Callee,
    inputs: Vec<MapInput>,
    last: bool,
    traceparent: String,
    runtime: &tokio::runtime::Handle,
) -> bool {
    let request = MapRequest {
        function_id: callee.resolved.function_id,
        inputs,
        method: callee.method.to_owned(),
        last,
        traceparent,
    };
    runtime.block_on(requests.send(request)).is_ok()
}

/// One input of a map, encoded once; a large one is uploaded as a blob
/// (with `ride_out`, waiting for an unreachable control plane).
fn map_input<Args: Serialize>(
    callee: &Callee,
    index: u64,
    args: &Args,
    ride_out: bool,
    runtime: &tokio::runtime::Handle,
) -> Result<MapInput, Error> {
    let args = super::invoke::encode_args(&callee.display_name(), args).map_err(|e| match e {
        Error::Encode { function, message } => Error::Encode {
            function,
            message: format!("input {index}: {message}"),
        },
        other => other,
    })?;
    let staged = super::invoke::stage_args_with(&callee.resolved, args, ride_out);
    let (args, args_blob) = runtime.block_on(staged)?;
    Ok(MapInput {
        index,
        args,
        args_blob,
    })
}

/// What a map may have in flight: a number of inputs and their inline
/// bytes. The feeder takes room before sending; results release it as they
/// are handed to the caller.
struct Window {
    inputs: Semaphore,
    kib: Semaphore,
    /// KiB held by each input in flight over 1 KiB, by index (the others
    /// hold 1, which needs no record: the common case stays lock-free).
    held: std::sync::Mutex<std::collections::HashMap<u64, u32>>,
    /// How many entries `held` has, read without its lock.
    large: std::sync::atomic::AtomicUsize,
}

impl Window {
    fn new() -> Self {
        Window {
            inputs: Semaphore::new(WINDOW),
            kib: Semaphore::new(WINDOW_KIB),
            held: std::sync::Mutex::default(),
            large: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// KiB of room an input of `len` bytes takes (at least 1, at most all).
    fn kib_for(len: usize) -> u32 {
        len.div_ceil(1024).clamp(1, WINDOW_KIB) as u32
    }

    /// Takes room for input `index` of `len` bytes without waiting.
    fn try_take_bytes(&self, index: u64, len: usize) -> bool {
        let kib = Self::kib_for(len);
        match self.kib.try_acquire_many(kib) {
            Ok(permit) => {
                permit.forget();
                self.hold(index, kib);
                true
            }
            Err(_) => false,
        }
    }

    fn hold(&self, index: u64, kib: u32) {
        if kib > 1 {
            self.held.lock().unwrap().insert(index, kib);
            self.large.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Waits for room for input `index` of `len` bytes; `false` once the map has ended.
    fn take_bytes(&self, index: u64, len: usize, runtime: &tokio::runtime::Handle) -> bool {
        let kib = Self::kib_for(len);
        match runtime.block_on(self.kib.acquire_many(kib)) {
            Ok(permit) => {
                permit.forget();
                self.hold(index, kib);
                true
            }
            Err(_) => false,
        }
    }

    /// Input `index` was handed to the caller: its room is free again.
    fn release(&self, index: u64) {
        self.inputs.add_permits(1);
        let mut held = 1;
        if self.large.load(std::sync::atomic::Ordering::SeqCst) > 0
            && let Some(kib) = self.held.lock().unwrap().remove(&index)
        {
            self.large.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            held = kib;
        }
        self.kib.add_permits(held as usize);
    }

    fn close(&self) {
        self.inputs.close();
        self.kib.close();
    }
}

/// Outputs that arrived ahead of an earlier one, held until it arrives.
#[derive(Default)]
struct Reorder {
    next: u64,
    pending: VecDeque<Option<Option<proto::Outcome>>>,
}

impl Reorder {
    fn insert(&mut self, index: u64, outcome: Option<proto::Outcome>) {
        let Some(offset) = index.checked_sub(self.next) else {
            return; // a duplicate of a delivered output
        };
        let offset = offset as usize;
        if self.pending.len() <= offset {
            self.pending.resize(offset + 1, None);
        }
        self.pending[offset] = Some(outcome);
    }

    /// The next outcome in input order, with its index, once it is here.
    fn pop_ready(&mut self) -> Option<(u64, Option<proto::Outcome>)> {
        match self.pending.front() {
            Some(Some(_)) => {
                let index = self.next;
                self.next += 1;
                self.pending.pop_front().flatten().map(|o| (index, o))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: u8) -> Option<proto::Outcome> {
        Some(proto::Outcome {
            result: Some(proto::outcome::Result::Value(vec![v].into())),
        })
    }

    fn inputs(indices: impl IntoIterator<Item = u64>) -> Vec<MapInput> {
        indices
            .into_iter()
            .map(|index| MapInput {
                index,
                args: vec![index as u8].into(),
                args_blob: String::new(),
            })
            .collect()
    }

    fn indices(request: &MapRequest) -> Vec<u64> {
        request.inputs.iter().map(|i| i.index).collect()
    }

    #[test]
    fn a_new_stream_resends_the_unanswered_inputs_in_order_then_closes_once_fed() {
        let (link, _lost) = Link::open(7, "tp".into());
        let mut link = lock(&link);
        assert!(link.send(inputs(0..5), ""));
        link.unanswered.remove(&1);
        link.unanswered.remove(&3);
        link.fed = true;
        let mut stream = link.reopen(9, "");
        let resent = stream.try_recv().unwrap();
        assert_eq!(resent.function_id, 9);
        assert_eq!(indices(&resent), [0, 2, 4]);
        assert_eq!(resent.traceparent, "tp", "a new stream's first message");
        assert_eq!(
            stream.try_recv().unwrap_err(),
            mpsc::error::TryRecvError::Disconnected
        );
    }

    #[test]
    fn inputs_sent_after_a_new_stream_go_on_it_to_the_new_id() {
        let (link, mut first) = Link::open(7, "tp".into());
        let mut link = lock(&link);
        assert!(link.send(inputs(0..2), ""));
        assert_eq!(first.try_recv().unwrap().traceparent, "tp");
        let mut stream = link.reopen(9, "");
        let resent = stream.try_recv().unwrap();
        assert_eq!(indices(&resent), [0, 1]);
        assert_eq!(resent.traceparent, "tp");
        assert!(link.send(inputs(2..3), ""));
        let next = stream.try_recv().unwrap();
        assert_eq!((next.function_id, indices(&next)), (9, vec![2]));
        assert_eq!(
            next.traceparent, "",
            "only a stream's first message carries it"
        );
        // A new stream with nothing to resend: the next message carries it.
        link.unanswered.clear();
        let mut empty = link.reopen(9, "");
        assert!(link.send(inputs(3..4), ""));
        assert_eq!(empty.try_recv().unwrap().traceparent, "tp");
        assert_eq!(link.unanswered.len(), 1);
        link.ended = true;
        assert!(!link.send(inputs(4..5), ""), "an ended map takes no input");
    }

    #[test]
    fn resent_inputs_are_cut_into_messages_of_at_most_a_chunk() {
        let (link, _lost) = Link::open(1, "tp".into());
        let mut link = lock(&link);
        let total = CHUNK as u64 * 2 + 3;
        assert!(link.send(inputs(0..total), ""));
        let mut stream = link.reopen(1, "");
        let mut sizes = Vec::new();
        let mut next = 0;
        while let Ok(request) = stream.try_recv() {
            for index in indices(&request) {
                assert_eq!(index, next);
                next += 1;
            }
            sizes.push(request.inputs.len());
        }
        assert_eq!(sizes, [CHUNK, CHUNK, 3]);
    }

    #[test]
    fn reorder_releases_in_input_order() {
        let mut r = Reorder::default();
        r.insert(2, value(2));
        r.insert(1, value(1));
        assert!(r.pop_ready().is_none());
        r.insert(0, value(0));
        let got: Vec<_> = std::iter::from_fn(|| r.pop_ready()).collect();
        assert_eq!(got, vec![(0, value(0)), (1, value(1)), (2, value(2))]);
        assert_eq!(r.next, 3);
    }
}
