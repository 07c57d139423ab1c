//! The gRPC face of the control plane: translates requests into calls on
//! [`ControlPlane`] and streams results back.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::Stream;
use futures::StreamExt;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::access::{self, caller};
use super::binaries::UploadError;
use super::calls::{MapCall, check_spawn_map_indices};
use super::control::ControlPlane;
use super::logs::LogEvent;
use super::map_window;
use super::pool::{AutoscalerUpdate, Origin, Pool, Reply, failure};
use super::store::{StoredInput, Write};
use super::telemetry::CallKind;
use crate::message_size;
use crate::proto::FailureKind;
use crate::proto::control_plane_server::ControlPlane as ControlPlaneRpc;
use crate::proto::{self, container_message};

type RpcStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

pub(crate) struct Service {
    pub cp: Arc<ControlPlane>,
}

/// Outputs per map response message.
const MAP_BATCH: usize = 1024;
/// Log lines per message.
const LOG_BATCH: usize = 256;
/// A spawned map's message commits waiting at once: the map's reading goes
/// on while they commit, bounded so that a fast sender cannot queue more.
const SPAWN_MAP_COMMITS_IN_FLIGHT: usize = 64;

#[tonic::async_trait]
impl ControlPlaneRpc for Service {
    async fn upload_binary(
        &self,
        request: Request<Streaming<proto::BinaryChunk>>,
    ) -> Result<Response<proto::BinaryRef>, Status> {
        let mut chunks = request.into_inner();
        let io = |e: std::io::Error| Status::internal(format!("cannot store the upload: {e}"));
        let mut first = true;
        // However this ends before `finish` (refused, failed, the client
        // gone), dropping `upload` removes its partial file.
        let mut upload = self
            .cp
            .catalog
            .begin_upload()
            .map_err(io)?
            .with_limit(self.cp.config.max_upload_bytes);
        while let Some(chunk) = chunks.message().await? {
            if std::mem::take(&mut first) && !chunk.sha256.is_empty() {
                upload.expect_sha256(&chunk.sha256);
            }
            upload
                .write(&chunk.data)
                .map_err(UploadError::into_status)?;
        }
        // Hashing the last chunks and syncing is not for the serving threads.
        let (id, size) = tokio::task::spawn_blocking(move || upload.finish())
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(UploadError::into_status)?;
        Ok(Response::new(proto::BinaryRef { id, size }))
    }

    async fn find_binary(
        &self,
        request: Request<proto::FindBinaryRequest>,
    ) -> Result<Response<proto::BinaryRef>, Status> {
        let sha256 = request.into_inner().sha256.to_ascii_lowercase();
        match self.cp.catalog.binary_size(&sha256) {
            Some(size) => Ok(Response::new(proto::BinaryRef { id: sha256, size })),
            None => Err(Status::not_found(format!(
                "no binary with SHA-256 {sha256} is stored here: upload it"
            ))),
        }
    }

    async fn create_app(
        &self,
        request: Request<proto::CreateAppRequest>,
    ) -> Result<Response<proto::CreateAppResponse>, Status> {
        let caller = caller(&request)?;
        self.cp
            .create_app(&caller, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_apps(
        &self,
        request: Request<proto::ListAppsRequest>,
    ) -> Result<Response<proto::ListAppsResponse>, Status> {
        let caller = caller(&request)?;
        let mut apps = self.cp.catalog.list_apps(&caller.environment);
        let deployed = self.cp.catalog.scheduled();
        for app in &mut apps {
            app.schedules = self.cp.schedules.info(
                &access::names::app_key(&caller.environment, &app.name),
                &deployed,
            );
        }
        Ok(Response::new(proto::ListAppsResponse { apps }))
    }

    async fn stop_app(
        &self,
        request: Request<proto::StopAppRequest>,
    ) -> Result<Response<proto::StopAppResponse>, Status> {
        let caller = caller(&request)?;
        let app = caller.app_key(&request.into_inner().name)?;
        let containers_stopped = self.cp.stop_app(&app).await?;
        Ok(Response::new(proto::StopAppResponse { containers_stopped }))
    }

    type StreamLogsStream = RpcStream<proto::LogBatch>;

    async fn stream_logs(
        &self,
        request: Request<proto::StreamLogsRequest>,
    ) -> Result<Response<Self::StreamLogsStream>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let app = caller.app_key(&request.app)?;
        self.cp.catalog.require_app(&app)?;
        // Following logs never changes an app's life: that is its lease's job.
        let (past, mut rx, closed) = self.cp.logs.subscribe(&app, request.history);
        let stream = async_stream(
            move |tx: mpsc::Sender<Result<proto::LogBatch, Status>>| async move {
                for chunk in past.chunks(LOG_BATCH) {
                    let batch = proto::LogBatch {
                        lines: chunk.to_vec(),
                        dropped: 0,
                    };
                    if tx.send(Ok(batch)).await.is_err() {
                        return;
                    }
                }
                if closed {
                    return;
                }
                loop {
                    let mut batch = proto::LogBatch::default();
                    let mut ended = false;
                    match rx.recv().await {
                        Ok(LogEvent::Line(line)) => batch.lines.push(line),
                        Ok(LogEvent::Closed) | Err(broadcast::error::RecvError::Closed) => {
                            ended = true
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => batch.dropped += n,
                    }
                    while !ended && batch.lines.len() < LOG_BATCH {
                        match rx.try_recv() {
                            Ok(LogEvent::Line(line)) => batch.lines.push(line),
                            Ok(LogEvent::Closed) => ended = true,
                            Err(broadcast::error::TryRecvError::Lagged(n)) => batch.dropped += n,
                            Err(_) => break,
                        }
                    }
                    if (!batch.lines.is_empty() || batch.dropped > 0)
                        && tx.send(Ok(batch)).await.is_err()
                    {
                        return;
                    }
                    if ended {
                        return;
                    }
                }
            },
        );
        Ok(Response::new(stream))
    }

    type HoldAppStream = RpcStream<proto::HoldAppResponse>;

    async fn hold_app(
        &self,
        request: Request<Streaming<proto::HoldAppRequest>>,
    ) -> Result<Response<Self::HoldAppStream>, Status> {
        let caller = caller(&request)?;
        let mut beats = request.into_inner();
        let timeout = self.cp.config.lease_timeout;
        let first = tokio::time::timeout(timeout, beats.message())
            .await
            .map_err(|_| Status::deadline_exceeded("a lease must name its app at once"))??
            .ok_or_else(|| Status::invalid_argument("a lease must name its app"))?;
        let app = caller.app_key(&first.app)?;
        self.cp.catalog.hold(&app)?;
        let cp = self.cp.clone();
        let stream = async_stream(
            move |tx: mpsc::Sender<Result<proto::HoldAppResponse, Status>>| async move {
                // Released however this ends: the holder's stream closing
                // (its program exited or was killed) or falling silent.
                let _held = LeaseGuard {
                    cp: cp.clone(),
                    app: app.clone(),
                };
                if tx.send(Ok(proto::HoldAppResponse {})).await.is_err() {
                    return;
                }
                loop {
                    tokio::select! {
                        beat = tokio::time::timeout(timeout, beats.message()) => match beat {
                            Ok(Ok(Some(_))) => {}
                            Ok(Ok(None)) | Ok(Err(_)) => return,
                            Err(_) => {
                                tracing::warn!(%app, "no beat from the program holding this app for {timeout:?}");
                                return;
                            }
                        },
                        _ = tx.closed() => return,
                    }
                }
            },
        );
        Ok(Response::new(stream))
    }

    async fn app_history(
        &self,
        request: Request<proto::AppHistoryRequest>,
    ) -> Result<Response<proto::AppHistoryResponse>, Status> {
        let caller = caller(&request)?;
        let key = caller.app_key(&request.into_inner().name)?;
        let versions = self.cp.catalog.history(&key)?;
        Ok(Response::new(proto::AppHistoryResponse {
            versions,
            schedules: self.cp.schedules.info(&key, &self.cp.catalog.scheduled()),
        }))
    }

    async fn rollback_app(
        &self,
        request: Request<proto::RollbackAppRequest>,
    ) -> Result<Response<proto::CreateAppResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        self.cp
            .rollback(&caller.app_key(&r.name)?, r.version)
            .map(Response::new)
    }

    async fn lookup_function(
        &self,
        request: Request<proto::LookupFunctionRequest>,
    ) -> Result<Response<proto::FunctionInfo>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        self.cp
            .catalog
            .lookup(&caller.app_key(&r.app)?, &r.name, r.version)
            .map(Response::new)
    }

    async fn invoke(
        &self,
        request: Request<proto::InvokeRequest>,
    ) -> Result<Response<proto::Outcome>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let function = self.cp.callable_by(&caller, r.function_id, &r.method)?;
        self.cp
            .blobs
            .check_args(&caller.environment, &r.args_blob)?;
        let trace = request_trace(&r.traceparent)?;
        let budget = self.cp.budget.reserve(r.args.len()).await?;
        let (tx, rx) = oneshot::channel();
        self.cp.submit_one(
            &function,
            r.method,
            r.args,
            r.args_blob,
            Reply::Once(tx),
            budget,
            Origin::new(CallKind::Remote, trace),
        );
        let outcome = rx
            .await
            .map_err(|_| Status::internal("the input was dropped without an outcome"))?;
        Ok(Response::new(outcome))
    }

    type InvokeGeneratorStream = RpcStream<proto::GeneratorEvent>;

    async fn invoke_generator(
        &self,
        request: Request<proto::InvokeRequest>,
    ) -> Result<Response<Self::InvokeGeneratorStream>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let function = self.cp.callable_by(&caller, r.function_id, &r.method)?;
        self.cp
            .blobs
            .check_args(&caller.environment, &r.args_blob)?;
        let trace = request_trace(&r.traceparent)?;
        let budget = self.cp.budget.reserve(r.args.len()).await?;
        let (events, mut rx) = mpsc::unbounded_channel();
        let input_id = self.cp.submit_one(
            &function,
            r.method,
            r.args,
            r.args_blob,
            Reply::Generator(events),
            budget,
            Origin::new(CallKind::Generator, trace),
        );
        // Items go on as the caller takes them: each batch passed on lets
        // the generator send as many more (it runs `GENERATOR_CREDIT_ITEMS`
        // ahead at most), so a slow caller holds its generator back.
        let stream = async_stream(
            move |tx: mpsc::Sender<Result<proto::GeneratorEvent, Status>>| async move {
                while let Some(event) = rx.recv().await {
                    let items = match &event.event {
                        Some(proto::generator_event::Event::Items(items)) => items.values.len(),
                        _ => 0,
                    };
                    if tx.send(Ok(event)).await.is_err() {
                        // The caller went away: its generator stops.
                        function.cancel_input(input_id);
                        return;
                    }
                    if items > 0 {
                        function.grant_items(input_id, items as u32);
                    }
                }
            },
        );
        Ok(Response::new(stream))
    }

    async fn spawn(
        &self,
        request: Request<proto::InvokeRequest>,
    ) -> Result<Response<proto::SpawnResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let function = self.cp.callable_by(&caller, r.function_id, &r.method)?;
        self.cp
            .blobs
            .check_args(&caller.environment, &r.args_blob)?;
        let trace = request_trace(&r.traceparent)?;
        let budget = self.cp.budget.reserve(r.args.len()).await?;
        let (record, new_call) = self.cp.calls.create(
            &function.app,
            &function.call_name(&r.method),
            function.id,
            &r.method,
            false,
        );
        // Acknowledged means durable: the id goes out once the call and its
        // input are committed (with whatever else waits: one commit for all).
        let committed = self.cp.store.commit(vec![
            Write::Call(new_call),
            Write::Inputs {
                call_id: record.id.clone(),
                inputs: vec![StoredInput {
                    index: 0,
                    args: r.args.clone(),
                    args_blob: r.args_blob.clone(),
                }],
            },
        ]);
        if let Err(e) = committed.await {
            record.complete(failure(FailureKind::BadInput, &e.to_string(), ""));
            return Err(e.into_status());
        }
        let call_id = record.id.to_string();
        self.cp.submit_one(
            &function,
            r.method,
            r.args,
            r.args_blob,
            Reply::Call(record),
            budget,
            Origin::new(CallKind::Spawn, trace),
        );
        Ok(Response::new(proto::SpawnResponse { call_id }))
    }

    async fn get_call_outcome(
        &self,
        request: Request<proto::GetCallOutcomeRequest>,
    ) -> Result<Response<proto::GetCallOutcomeResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let record = self.cp.call(&r.call_id).await?;
        caller.check_app(&record.app, &format!("call `{}`", r.call_id))?;
        let wait = super::calls::long_poll(r.timeout_ms, self.cp.config.max_long_poll);
        let outcome = record.wait(wait).await;
        Ok(Response::new(proto::GetCallOutcomeResponse {
            outcome,
            function: record.function.clone(),
            app: access::names::app_name_of(&record.app).to_owned(),
        }))
    }

    async fn cancel_call(
        &self,
        request: Request<proto::CancelCallRequest>,
    ) -> Result<Response<proto::CancelCallResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        self.cp
            .cancel_call(&caller, &r.call_id, r.terminate_containers)
            .await?;
        Ok(Response::new(proto::CancelCallResponse {}))
    }

    async fn spawn_map(
        &self,
        request: Request<Streaming<proto::MapRequest>>,
    ) -> Result<Response<proto::SpawnResponse>, Status> {
        let caller = caller(&request)?;
        let mut requests = request.into_inner();
        type Target = (
            Arc<Pool>,
            String,
            Arc<MapCall>,
            Option<crate::trace::TraceParent>,
        );
        let mut target: Option<Target> = None;
        let mut accepted = 0_u64;
        let mut finished = false;
        // Each message's inputs are committed while the next is read; the
        // call is acknowledged once every commit is done.
        let mut commits = futures::stream::FuturesUnordered::new();
        let mut failed: Option<super::store::StoreError> = None;
        while let Some(request) = requests.message().await? {
            let mut writes = Vec::with_capacity(2);
            let (function, method, call, trace) = match &target {
                Some(t) => t,
                None => {
                    let function =
                        self.cp
                            .callable_by(&caller, request.function_id, &request.method)?;
                    let trace = request_trace(&request.traceparent)?;
                    let name = function.call_name(&request.method);
                    let (record, new_call) = self.cp.calls.create(
                        &function.app,
                        &name,
                        function.id,
                        &request.method,
                        true,
                    );
                    writes.push(Write::Call(new_call));
                    let call =
                        Arc::new(MapCall::new(record, self.cp.blobs.dir(&caller.environment)));
                    target.insert((function, request.method.clone(), call, trace))
                }
            };
            // The whole message is checked before any of it is queued; a
            // refused map's earlier inputs are dropped unrun, since their
            // call has its outcome.
            if let Err(status) = request
                .inputs
                .iter()
                .try_for_each(|i| self.cp.blobs.check_args(&caller.environment, &i.args_blob))
            {
                call.call
                    .complete(failure(FailureKind::BadInput, status.message(), ""));
                return Err(status);
            }
            if let Err(message) = check_spawn_map_indices(accepted, &request.inputs) {
                call.call
                    .complete(failure(FailureKind::BadInput, &message, ""));
                return Err(Status::invalid_argument(message));
            }
            accepted += request.inputs.len() as u64;
            call.expect(request.inputs.len());
            if self.cp.store.is_durable() {
                writes.push(Write::Inputs {
                    call_id: call.call.id.clone(),
                    inputs: request
                        .inputs
                        .iter()
                        .map(|i| StoredInput {
                            index: i.index,
                            args: i.args.clone(),
                            args_blob: i.args_blob.clone(),
                        })
                        .collect(),
                });
                // Queued before the inputs run: the store writes in order,
                // so their dispatches and results follow them.
                commits.push(self.cp.store.commit(writes));
                while commits.len() >= SPAWN_MAP_COMMITS_IN_FLIGHT {
                    if let Some(Err(e)) = commits.next().await {
                        failed.get_or_insert(e);
                    }
                }
            }
            // Queued inputs hold their share of the inline budget: a
            // spawned map larger than it is read as room frees up.
            let inputs = self
                .cp
                .admit(
                    &caller.environment,
                    method,
                    *trace,
                    request.inputs,
                    |_, input| Reply::MapCall {
                        index: input.index,
                        call: call.clone(),
                    },
                )
                .await;
            self.cp.submit(function, inputs);
            if request.last {
                finished = true;
                break;
            }
        }
        let Some((_, _, call, _)) = target else {
            return Err(Status::invalid_argument(
                "a spawned map needs at least one message",
            ));
        };
        if !finished {
            let message = "the caller's input iterator ended the map before its last input";
            call.call
                .complete(failure(FailureKind::BadInput, message, ""));
            return Err(Status::cancelled(message));
        }
        commits.push(self.cp.store.commit(vec![Write::MapTotal {
            call_id: call.call.id.clone(),
            total: accepted,
        }]));
        while let Some(result) = commits.next().await {
            if let Err(e) = result {
                failed.get_or_insert(e);
            }
        }
        if let Some(e) = failed {
            call.call
                .complete(failure(FailureKind::BadInput, &e.to_string(), ""));
            return Err(e.into_status());
        }
        call.inputs_end();
        Ok(Response::new(proto::SpawnResponse {
            call_id: call.call.id.to_string(),
        }))
    }

    type MapStream = RpcStream<proto::MapResponse>;

    async fn map(
        &self,
        request: Request<Streaming<proto::MapRequest>>,
    ) -> Result<Response<Self::MapStream>, Status> {
        let caller = caller(&request)?;
        let requests = request.into_inner();
        let (sink, outputs) = mpsc::unbounded_channel::<(proto::MapOutput, u32)>();
        let (errors_tx, mut errors) = mpsc::channel::<Status>(1);
        let window = Arc::new(map_window::MapWindow::new());
        let function = Arc::new(std::sync::OnceLock::<Arc<Pool>>::new());
        tokio::spawn(map_window::read_map_inputs(
            self.cp.clone(),
            requests,
            sink,
            errors_tx,
            window.clone(),
            function.clone(),
            caller,
        ));
        let stream = async_stream(
            move |tx: mpsc::Sender<Result<proto::MapResponse, Status>>| async move {
                let mut outputs = message_size::ReadyBatches::new(
                    UnboundedReceiverStream::new(outputs),
                    MAP_BATCH,
                    crate::contract::BATCH_BYTES,
                    |(output, _): &(proto::MapOutput, u32)| message_size::entry_len(output),
                );
                loop {
                    tokio::select! {
                        batch = outputs.next() => match batch {
                            Some(batch) => {
                                let count = batch.len();
                                let kib: u32 = batch.iter().map(|(_, kib)| kib).sum();
                                let outputs = batch.into_iter().map(|(o, _)| o).collect();
                                if tx.send(Ok(proto::MapResponse { outputs })).await.is_err() {
                                    break;
                                }
                                window.release(count, kib);
                            }
                            None => {
                                // The reader sends its error before it
                                // ends the outputs: both may be ready at
                                // once, and the error must not be lost.
                                if let Ok(status) = errors.try_recv() {
                                    let _ = tx.send(Err(status)).await;
                                }
                                return;
                            }
                        },
                        Some(status) = errors.recv() => {
                            let _ = tx.send(Err(status)).await;
                            break;
                        }
                        // The caller went away while nothing was ready.
                        _ = tx.closed() => break,
                    }
                }
                // Nobody reads this map any more: its reader stops, and its
                // queued inputs leave the queue now rather than hold up
                // other callers.
                window.close();
                drop(outputs);
                if let Some(function) = function.get() {
                    function.drop_settled();
                }
            },
        );
        Ok(Response::new(stream))
    }

    async fn bind_instance(
        &self,
        request: Request<proto::BindInstanceRequest>,
    ) -> Result<Response<proto::FunctionInfo>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        self.cp.function_of(&caller, r.function_id)?;
        self.cp
            .bind_instance(r.function_id, r.params, &r.options_json)
            .map(Response::new)
    }

    async fn set_warm_pool(
        &self,
        request: Request<proto::SetWarmPoolRequest>,
    ) -> Result<Response<proto::SetWarmPoolResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let function = self.cp.function_of(&caller, r.function_id)?;
        let update = AutoscalerUpdate {
            min_containers: Some(r.min_containers),
            ..AutoscalerUpdate::default()
        };
        self.cp.update_autoscaler(&function, update).await?;
        Ok(Response::new(proto::SetWarmPoolResponse {}))
    }

    async fn update_autoscaler(
        &self,
        request: Request<proto::UpdateAutoscalerRequest>,
    ) -> Result<Response<proto::AutoscalerSettings>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let function = self.cp.function_of(&caller, r.function_id)?;
        self.cp
            .update_autoscaler(&function, AutoscalerUpdate::of(&r))
            .await
            .map(Response::new)
    }

    async fn get_stats(
        &self,
        request: Request<proto::GetStatsRequest>,
    ) -> Result<Response<proto::FunctionStats>, Status> {
        let caller = caller(&request)?;
        let function = self
            .cp
            .function_of(&caller, request.into_inner().function_id)?;
        Ok(Response::new(function.stats()))
    }

    async fn put_blob(
        &self,
        request: Request<Streaming<proto::BlobChunk>>,
    ) -> Result<Response<proto::BinaryRef>, Status> {
        let caller = caller(&request)?;
        let mut chunks = request.into_inner();
        let io =
            |e: std::io::Error| Status::invalid_argument(format!("cannot store the payload: {e}"));
        // Dropped unfinished (refused, failed, the client gone), `blob`
        // removes its partial file.
        let mut blob = self.cp.blobs.begin(&caller.environment).map_err(io)?;
        while let Some(chunk) = chunks.message().await? {
            blob.write(&chunk.data).map_err(io)?;
        }
        let (id, size) = blob.finish().map_err(io)?;
        Ok(Response::new(proto::BinaryRef { id, size }))
    }

    type GetBlobStream = RpcStream<proto::BlobChunk>;

    async fn get_blob(
        &self,
        request: Request<proto::GetBlobRequest>,
    ) -> Result<Response<Self::GetBlobStream>, Status> {
        let caller = caller(&request)?;
        let id = request.into_inner().id;
        let path = self
            .cp
            .blobs
            .path(&caller.environment, &id)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "payload `{id}` is not stored in environment `{}` (payloads are kept for \
                     the call retention)",
                    caller.environment
                ))
            })?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Status::internal(format!("cannot read payload `{id}`: {e}")))?;
        Ok(Response::new(stream_file(file, |data| proto::BlobChunk {
            data,
        })))
    }

    async fn create_token(
        &self,
        request: Request<proto::CreateTokenRequest>,
    ) -> Result<Response<proto::CreateTokenResponse>, Status> {
        self.create_token_rpc(request).await
    }

    async fn list_tokens(
        &self,
        _request: Request<proto::ListTokensRequest>,
    ) -> Result<Response<proto::ListTokensResponse>, Status> {
        Ok(Response::new(proto::ListTokensResponse {
            tokens: self.cp.access.list_tokens(),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<proto::RevokeTokenRequest>,
    ) -> Result<Response<proto::RevokeTokenResponse>, Status> {
        self.cp
            .access
            .revoke_token(&request.into_inner().id)
            .await?;
        Ok(Response::new(proto::RevokeTokenResponse {}))
    }

    async fn create_environment(
        &self,
        request: Request<proto::EnvironmentRequest>,
    ) -> Result<Response<proto::EnvironmentResponse>, Status> {
        self.cp
            .access
            .create_environment(&request.into_inner().name)
            .await?;
        Ok(Response::new(proto::EnvironmentResponse {}))
    }

    async fn list_environments(
        &self,
        _request: Request<proto::ListEnvironmentsRequest>,
    ) -> Result<Response<proto::ListEnvironmentsResponse>, Status> {
        let environments = self
            .cp
            .access
            .environments()
            .into_iter()
            .map(|(name, secrets)| proto::EnvironmentInfo {
                apps: self.cp.catalog.apps_in(&name) as u32,
                name,
                secrets,
            })
            .collect();
        Ok(Response::new(proto::ListEnvironmentsResponse {
            environments,
        }))
    }

    async fn remove_environment(
        &self,
        request: Request<proto::EnvironmentRequest>,
    ) -> Result<Response<proto::EnvironmentResponse>, Status> {
        let name = request.into_inner().name;
        let volumes = self.cp.volumes.count(&name);
        if volumes > 0 && self.cp.access.environment_exists(&name) {
            // Its volumes are data: removed only when asked for one by one.
            return Err(Status::failed_precondition(format!(
                "environment `{name}` still holds {volumes} volume(s): remove them first \
                 (`cargo xtask volume list --env {name}`, then `cargo xtask volume rm NAME --env {name}`)"
            )));
        }
        let apps = self.cp.catalog.apps_in(&name);
        self.cp.access.remove_environment(&name, apps).await?;
        Ok(Response::new(proto::EnvironmentResponse {}))
    }

    async fn create_secret(
        &self,
        request: Request<proto::CreateSecretRequest>,
    ) -> Result<Response<proto::SecretResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        self.cp
            .access
            .create_secret(
                &caller.environment,
                &r.name,
                r.values.into_iter().collect(),
                r.overwrite,
            )
            .await?;
        Ok(Response::new(proto::SecretResponse {}))
    }

    async fn list_secrets(
        &self,
        request: Request<proto::ListSecretsRequest>,
    ) -> Result<Response<proto::ListSecretsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(proto::ListSecretsResponse {
            secrets: self.cp.access.list_secrets(&caller.environment),
        }))
    }

    async fn remove_secret(
        &self,
        request: Request<proto::RemoveSecretRequest>,
    ) -> Result<Response<proto::SecretResponse>, Status> {
        let caller = caller(&request)?;
        self.cp
            .access
            .remove_secret(&caller.environment, &request.into_inner().name)
            .await?;
        Ok(Response::new(proto::SecretResponse {}))
    }

    async fn create_volume(
        &self,
        request: Request<proto::CreateVolumeRequest>,
    ) -> Result<Response<proto::VolumeResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        self.cp
            .volumes
            .create(&caller.environment, &r.name, r.exist_ok)?;
        Ok(Response::new(proto::VolumeResponse {}))
    }

    async fn list_volumes(
        &self,
        request: Request<proto::ListVolumesRequest>,
    ) -> Result<Response<proto::ListVolumesResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(proto::ListVolumesResponse {
            volumes: self.cp.volumes.list(&caller.environment),
        }))
    }

    async fn remove_volume(
        &self,
        request: Request<proto::RemoveVolumeRequest>,
    ) -> Result<Response<proto::VolumeResponse>, Status> {
        let caller = caller(&request)?;
        let name = request.into_inner().name;
        let cp = self.cp.clone();
        // A large volume takes a while to remove: not on the serving threads.
        tokio::task::spawn_blocking(move || cp.volumes.remove(&caller.environment, &name))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(proto::VolumeResponse {}))
    }

    async fn list_volume_files(
        &self,
        request: Request<proto::ListVolumeFilesRequest>,
    ) -> Result<Response<proto::ListVolumeFilesResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let cp = self.cp.clone();
        let listing = tokio::task::spawn_blocking(move || {
            cp.volumes
                .list_files(&caller.environment, &r.volume, &r.path, r.recursive)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(listing))
    }

    async fn put_volume_file(
        &self,
        request: Request<Streaming<proto::VolumeFileChunk>>,
    ) -> Result<Response<proto::VolumeFileInfo>, Status> {
        let caller = caller(&request)?;
        let mut chunks = request.into_inner();
        let first = chunks.message().await?.ok_or_else(|| {
            Status::invalid_argument("an upload's first message must name its volume and path")
        })?;
        // However this ends before `finish` (refused, failed, the client
        // gone), dropping `upload` removes what it wrote.
        let mut upload = self.cp.volumes.begin_put(
            &caller.environment,
            &first.volume,
            &first.path,
            first.overwrite,
            self.cp.config.max_upload_bytes,
        )?;
        let announced = first.size;
        let mut next = Some(first);
        while let Some(chunk) = next {
            if chunk.data.len() > crate::contract::STREAM_CHUNK_BYTES {
                return Err(Status::invalid_argument(format!(
                    "a message of an upload carries at most {} bytes; this one has {}: send                      the file in smaller pieces",
                    crate::contract::STREAM_CHUNK_BYTES,
                    chunk.data.len()
                )));
            }
            upload.write(&chunk.data)?;
            next = chunks.message().await?;
        }
        if let Some(size) = announced
            && size != upload.size()
        {
            return Err(Status::data_loss(format!(
                "the upload of `{}` ended after {} of its {size} bytes: its sender stopped \
                 short (could it read the file?); nothing was written",
                upload.path(),
                upload.size()
            )));
        }
        // Syncing and placing the file is not for the serving threads.
        let (path, size) = tokio::task::spawn_blocking(move || upload.finish())
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(proto::VolumeFileInfo { path, size }))
    }

    type GetVolumeFileStream = RpcStream<proto::VolumeFileData>;

    async fn get_volume_file(
        &self,
        request: Request<proto::GetVolumeFileRequest>,
    ) -> Result<Response<Self::GetVolumeFileStream>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let file = self
            .cp
            .volumes
            .open_file(&caller.environment, &r.volume, &r.path)?;
        let file = tokio::fs::File::from_std(file);
        Ok(Response::new(stream_file(file, |data| {
            proto::VolumeFileData { data }
        })))
    }

    async fn remove_volume_file(
        &self,
        request: Request<proto::RemoveVolumeFileRequest>,
    ) -> Result<Response<proto::VolumeResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let cp = self.cp.clone();
        tokio::task::spawn_blocking(move || {
            cp.volumes
                .remove_file(&caller.environment, &r.volume, &r.path, r.recursive)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(proto::VolumeResponse {}))
    }

    type ContainerSessionStream = RpcStream<proto::ContainerCommand>;

    async fn container_session(
        &self,
        request: Request<Streaming<proto::ContainerMessage>>,
    ) -> Result<Response<Self::ContainerSessionStream>, Status> {
        let caller = caller(&request)?;
        let access::Principal::Container {
            container_id: authenticated,
            ..
        } = caller.principal
        else {
            return Err(Status::permission_denied(
                "only a container's own token opens its session",
            ));
        };
        let mut messages = request.into_inner();
        let hello = match messages.message().await? {
            Some(proto::ContainerMessage {
                msg: Some(container_message::Msg::Hello(hello)),
            }) => hello,
            _ => return Err(Status::invalid_argument("a container must say hello first")),
        };
        if hello.container_id != authenticated {
            return Err(Status::permission_denied(format!(
                "this token is container `{authenticated}`'s, not `{}`'s",
                hello.container_id
            )));
        }
        let function = self.cp.authenticate(&hello.container_id, &hello.token)?;
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let container_id = hello.container_id;
        if !function.connected(&container_id, commands) {
            return Err(Status::failed_precondition(format!(
                "container `{container_id}` is not expected to connect"
            )));
        }
        tracing::debug!(container = %container_id, function = %function.name, "container connected");
        let cp = self.cp.clone();
        tokio::spawn(async move {
            let connected_at = Instant::now();
            loop {
                match messages.message().await {
                    Ok(Some(proto::ContainerMessage { msg: Some(msg) })) => match msg {
                        container_message::Msg::Outputs(batch) => {
                            cp.container_outputs(&function, &container_id, batch.outputs)
                        }
                        container_message::Msg::Heartbeat(_) => function.touch(&container_id),
                        container_message::Msg::Ready(_) => function.ready(&container_id),
                        container_message::Msg::Items(items) => {
                            function.items(&container_id, items)
                        }
                        container_message::Msg::StartFailed(failed) => {
                            cp.container_start_failed(&container_id, &failed.message);
                            return;
                        }
                        container_message::Msg::Hello(_) => {}
                    },
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            tracing::debug!(container = %container_id, after = ?connected_at.elapsed(), "container stream ended");
            cp.container_disconnected(&container_id);
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(
            commands_rx,
        ))))
    }
}

/// Access management: admin tokens only (the access layer checked that).
impl Service {
    async fn create_token_rpc(
        &self,
        request: Request<proto::CreateTokenRequest>,
    ) -> Result<Response<proto::CreateTokenResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let scope = access::Scope::parse(&r.scope).map_err(Status::invalid_argument)?;
        let environment = match (scope, r.environment.is_empty()) {
            (access::Scope::Admin, true) => None,
            (_, false) => Some(r.environment),
            (_, true) => Some(caller.environment.clone()),
        };
        let (info, token) = self
            .cp
            .access
            .create_token(scope, environment, &r.label)
            .await?;
        Ok(Response::new(proto::CreateTokenResponse {
            info: Some(info),
            token,
        }))
    }
}

/// The trace context a request carries: none when empty, refused
/// (`INVALID_ARGUMENT`, saying what is wrong) when malformed.
pub(super) fn request_trace(
    traceparent: &str,
) -> Result<Option<crate::trace::TraceParent>, Status> {
    if traceparent.is_empty() {
        return Ok(None);
    }
    crate::trace::TraceParent::check(traceparent)
        .map(Some)
        .map_err(|e| {
            Status::invalid_argument(format!(
                "the request's traceparent is not valid: {e}; send a W3C trace context or none"
            ))
        })
}

/// Gives an app's lease back when its holder's stream ends.
struct LeaseGuard {
    cp: Arc<ControlPlane>,
    app: String,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.cp.catalog.release(&self.app);
    }
}

/// A file's content as a response stream of 1 MiB messages made by `message`.
fn stream_file<T, F>(file: tokio::fs::File, message: F) -> RpcStream<T>
where
    T: Send + 'static,
    F: Fn(bytes::Bytes) -> T + Send + 'static,
{
    async_stream(move |tx: mpsc::Sender<Result<T, Status>>| async move {
        use tokio::io::AsyncReadExt;
        let mut file = file;
        loop {
            let mut chunk = bytes::BytesMut::with_capacity(STREAM_CHUNK);
            match file.read_buf(&mut chunk).await {
                Ok(0) => return,
                Ok(_) => {
                    // Fill the chunk before sending: fewer, larger messages.
                    while chunk.len() < STREAM_CHUNK {
                        match file.read_buf(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                    if tx.send(Ok(message(chunk.freeze()))).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx
                        .send(Err(Status::internal(format!("cannot read the file: {e}"))))
                        .await;
                    return;
                }
            }
        }
    })
}

/// Bytes per message of a streamed file.
const STREAM_CHUNK: usize = crate::contract::STREAM_CHUNK_BYTES;

/// A response stream fed by a task; the task ends when the stream is dropped.
fn async_stream<T, F, Fut>(produce: F) -> RpcStream<T>
where
    T: Send + 'static,
    F: FnOnce(mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(produce(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
