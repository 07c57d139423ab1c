//! The caller's side: a connection to the control plane and typed handles.

mod admin;
mod app;
mod call;
mod callable;
mod cls;
mod function;
mod gen_stream;
mod invoke;
mod map;
mod method;
mod outcome;
pub(crate) mod progress;
mod reconnect;
mod resolve;
mod volume;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::transport::Channel;

pub(crate) use app::{RunningApp, running_app, set_running_app};
pub use call::FunctionCall;
pub use cls::{Cls, Obj, ObjCore};
pub use function::Function;
pub use gen_stream::GenStream;
pub use map::MapStream;
pub use method::Method;
pub use volume::Volume;

use crate::connection::{Credentials, Rpc};
use crate::contract::STREAM_CHUNK_BYTES;
use crate::proto::{self, create_app_request};
use crate::registry::Manifest;
use crate::status::from_status;
use crate::{Error, config};

/// A connection to a control plane (or to the first that answers of
/// several). Cheap to clone.
///
/// Calls that can be resent (`remote`, maps, waiting on a call's result)
/// ride out a control plane that goes away and comes back (restarted, or a
/// standby taking over): they try again, round the URLs, for up to the
/// reconnect timeout ([`Client::with_reconnect_timeout`]).
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    urls: Vec<String>,
    /// One connection per URL, in the same order.
    channels: Vec<Channel>,
    /// The same, sending this client's credentials.
    rpcs: Vec<Rpc>,
    credentials: Credentials,
    /// The URL calls go to now; shared by the clients made from this one.
    current: Arc<AtomicUsize>,
    reconnect_timeout: Duration,
}

static GLOBAL: OnceLock<Client> = OnceLock::new();

impl Client {
    /// Connects to the control plane at `url` (e.g. `http://127.0.0.1:7470`),
    /// or to the first that answers of a comma-separated list of URLs (the
    /// others are tried when it becomes unreachable). Its token and
    /// environment are the configured ones ([`crate::config`]).
    pub async fn connect(url: &str) -> Result<Client, Error> {
        let urls = split_urls(url)?;
        let token = config::token_for(&urls)?;
        Self::connect_urls(urls, token).await
    }

    /// Connects as [`Client::connect`] does, presenting `token`.
    pub async fn connect_with_token(url: &str, token: &str) -> Result<Client, Error> {
        Self::connect_urls(split_urls(url)?, Some(token.to_owned())).await
    }

    async fn connect_urls(urls: Vec<String>, token: Option<String>) -> Result<Client, Error> {
        let mut channels = Vec::with_capacity(urls.len());
        let mut current = None;
        let mut failures = Vec::new();
        for url in &urls {
            let endpoint = endpoint(url)?;
            if current.is_some() {
                channels.push(endpoint.connect_lazy());
                continue;
            }
            match endpoint.connect().await {
                Ok(channel) => {
                    current = Some(channels.len());
                    channels.push(channel);
                }
                Err(e) => {
                    failures.push(error_chain(&e));
                    channels.push(endpoint.connect_lazy());
                }
            }
        }
        let Some(current) = current else {
            return Err(unreachable_all(&urls, failures));
        };
        Client::from_channels(urls, channels, current, token)
    }

    /// A client that connects on first use (no I/O now). Its connection
    /// lives on the tokio runtime current when it is made.
    pub fn lazy(url: &str) -> Result<Client, Error> {
        let urls = split_urls(url)?;
        let channels = urls
            .iter()
            .map(|url| Ok(endpoint(url)?.connect_lazy()))
            .collect::<Result<Vec<_>, Error>>()?;
        let token = config::token_for(&urls)?;
        Client::from_channels(urls, channels, 0, token)
    }

    /// [`Client::lazy`], presenting `token`.
    pub fn lazy_with_token(url: &str, token: &str) -> Result<Client, Error> {
        let urls = split_urls(url)?;
        let channels = urls
            .iter()
            .map(|url| Ok(endpoint(url)?.connect_lazy()))
            .collect::<Result<Vec<_>, Error>>()?;
        Client::from_channels(urls, channels, 0, Some(token.to_owned()))
    }

    fn from_channels(
        urls: Vec<String>,
        channels: Vec<Channel>,
        current: usize,
        token: Option<String>,
    ) -> Result<Client, Error> {
        let environment = config::environment()?;
        let credentials =
            Credentials::new(token.as_deref(), environment.as_deref()).map_err(Error::Config)?;
        let rpcs = rpcs(&channels, &credentials);
        Ok(Client {
            inner: Arc::new(ClientInner {
                urls,
                channels,
                rpcs,
                credentials,
                current: Arc::new(AtomicUsize::new(current)),
                reconnect_timeout: config::reconnect_timeout()?,
            }),
        })
    }

    /// The same connection, whose calls wait up to `timeout` for an
    /// unreachable control plane to come back before failing with
    /// [`Error::ServerLost`] (60 s by default, or
    /// `MODAL_RECONNECT_TIMEOUT_SECS`). `Duration::ZERO` turns reconnecting
    /// off: the first lost connection fails the call.
    pub fn with_reconnect_timeout(&self, timeout: Duration) -> Client {
        self.derive(self.inner.credentials.clone(), timeout)
    }

    /// The same connection and token, acting in `environment`: apps are
    /// deployed, looked up and listed there.
    pub fn with_environment(&self, environment: &str) -> Result<Client, Error> {
        let credentials = self
            .inner
            .credentials
            .in_environment(environment)
            .map_err(Error::Config)?;
        Ok(self.derive(credentials, self.inner.reconnect_timeout))
    }

    /// The environment this client asks for, if it names one (otherwise
    /// its token's own, or `main`).
    pub fn environment(&self) -> Option<&str> {
        self.inner.credentials.environment()
    }

    fn derive(&self, credentials: Credentials, reconnect_timeout: Duration) -> Client {
        let inner = &self.inner;
        Client {
            inner: Arc::new(ClientInner {
                urls: inner.urls.clone(),
                channels: inner.channels.clone(),
                rpcs: rpcs(&inner.channels, &credentials),
                credentials,
                current: inner.current.clone(),
                reconnect_timeout,
            }),
        }
    }

    /// How long calls wait for an unreachable control plane to come back.
    pub fn reconnect_timeout(&self) -> Duration {
        self.inner.reconnect_timeout
    }

    /// A typed handle on function `name` of deployed app `app`, called
    /// through this client.
    pub fn function<Args, Ret>(&self, app: &str, name: &str) -> Function<Args, Ret>
    where
        Args: serde::de::DeserializeOwned,
        Ret: serde::de::DeserializeOwned,
    {
        Function::from_name_with(Some(self.clone()), app, name)
    }

    /// A typed handle on class `name` of deployed app `app`, called through
    /// this client.
    pub fn cls<C: crate::class::ClsMethods>(&self, app: &str, name: &str) -> Cls<C> {
        Cls::from_name_with(Some(self.clone()), app, name)
    }

    /// The URL of the control plane in use.
    pub fn url(&self) -> &str {
        &self.inner.urls[self.current()]
    }

    /// Every URL this client may use, in the order they are tried.
    pub fn urls(&self) -> &[String] {
        &self.inner.urls
    }

    fn current(&self) -> usize {
        self.inner.current.load(Ordering::Relaxed)
    }

    /// After URL number `failed` failed, calls go to the next one (unless
    /// another caller has moved on already).
    fn move_on_from(&self, failed: usize) {
        let next = reconnect::next_url(failed, self.inner.urls.len());
        let _ =
            self.inner
                .current
                .compare_exchange(failed, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The client handles use when none is given: the one set by
    /// [`Client::set_default`] (as `#[app::main]` does), else one for
    /// `MODAL_SERVER_URL` or the config file.
    pub fn default_client() -> Result<Client, Error> {
        if let Some(c) = GLOBAL.get() {
            return Ok(c.clone());
        }
        let Some(url) = config::server_url()? else {
            return Err(Error::Config(
                "no control plane is configured: run inside a program whose main is marked \
                 #[app::main] (it embeds one), or set MODAL_SERVER_URL (e.g. to the URL \
                 `cargo xtask server` prints)"
                    .into(),
            ));
        };
        // Made on the library's runtime so that it survives the caller's.
        let client = {
            let _guard = crate::runtime::background().enter();
            Client::lazy(&url)?
        };
        Ok(GLOBAL.get_or_init(|| client).clone())
    }

    /// Makes `self` the client that handles use by default. The first call
    /// wins; later calls return `false` and change nothing.
    pub fn set_default(self) -> bool {
        GLOBAL.set(self).is_ok()
    }

    pub(crate) fn rpc(&self) -> crate::connection::Rpc {
        self.rpc_at().1
    }

    /// The connection in use, with its URL's number (for
    /// [`Client::ride_out`] should it fail).
    pub(crate) fn rpc_at(&self) -> (usize, crate::connection::Rpc) {
        let at = self.current();
        (at, self.inner.rpcs[at].clone())
    }

    pub(crate) fn status(&self, status: tonic::Status) -> Error {
        self.status_at(self.current(), status)
    }

    /// The caller's error for `status` from URL number `at`.
    pub(crate) fn status_at(&self, at: usize, status: tonic::Status) -> Error {
        from_status(status, &self.inner.urls[at])
    }

    /// Uploads a binary to the control plane unless it has it already;
    /// returns its content id (its SHA-256), which the control plane checks
    /// what it received against.
    pub async fn upload_binary(&self, path: &Path) -> Result<String, Error> {
        self.upload_binary_with_progress(path, |_, _| {}).await
    }

    /// [`Client::upload_binary`], telling `progress` how far it is:
    /// `(bytes sent, file length)`, first `(0, length)` once the control
    /// plane is known not to have the binary, then after each chunk. Never
    /// called when the control plane has it already (nothing is sent).
    pub async fn upload_binary_with_progress(
        &self,
        path: &Path,
        progress: impl Fn(u64, u64) + Send + Sync + 'static,
    ) -> Result<String, Error> {
        let unreadable = |e: std::io::Error| Error::Deploy {
            message: format!("cannot read {}: {e}", path.display()),
        };
        // Hashed and sent a chunk at a time: a binary is never held whole.
        let hashed = path.to_owned();
        let sha256 = tokio::task::spawn_blocking(move || sha256_file(&hashed))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(unreadable)?;
        match self
            .rpc()
            .find_binary(proto::FindBinaryRequest {
                sha256: sha256.clone(),
            })
            .await
        {
            Ok(found) => return Ok(found.into_inner().id),
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(self.status(s)),
        }
        let file = tokio::fs::File::open(path).await.map_err(unreadable)?;
        let total = file.metadata().await.map_err(unreadable)?.len();
        progress(0, total);
        let progress = std::sync::Arc::new(progress);
        let start = (file, Some(sha256), 0_u64);
        let chunks = futures::stream::unfold(start, move |(mut file, sha256, sent)| {
            let progress = progress.clone();
            async move {
                use tokio::io::AsyncReadExt;
                let mut data = bytes::BytesMut::with_capacity(STREAM_CHUNK_BYTES);
                while data.len() < STREAM_CHUNK_BYTES {
                    match file.read_buf(&mut data).await {
                        Ok(0) => break,
                        Ok(_) => {}
                        // The control plane refuses what then does not
                        // hash as announced.
                        Err(_) => break,
                    }
                }
                if data.is_empty() && sha256.is_none() {
                    return None;
                }
                // Counted as handed to the stream: the transport's flow
                // control keeps that close to what has gone out.
                let sent = sent + data.len() as u64;
                progress(sent, total);
                let chunk = proto::BinaryChunk {
                    data: data.freeze(),
                    sha256: sha256.unwrap_or_default(),
                };
                Some((chunk, (file, None, sent)))
            }
        });
        let reply = self
            .rpc()
            .upload_binary(chunks)
            .await
            .map_err(|s| self.status(s))?;
        Ok(reply.into_inner().id)
    }

    /// Registers an app version running `binary` with the functions of
    /// `manifest`. `binary` is uploaded (unless the control plane has it
    /// already), or with [`AppBinary::LocalPath`] named by its path: only
    /// a control plane running in this same process accepts that.
    pub async fn create_app(
        &self,
        name: &str,
        manifest: &Manifest,
        binary: AppBinary<'_>,
        ephemeral: bool,
    ) -> Result<proto::CreateAppResponse, Error> {
        let binary = match binary {
            AppBinary::LocalPath(p) => {
                create_app_request::Binary::LocalPath(p.to_string_lossy().into_owned())
            }
            AppBinary::Upload(p) => {
                create_app_request::Binary::UploadedId(self.upload_binary(p).await?)
            }
            AppBinary::Uploaded(id) => create_app_request::Binary::UploadedId(id.to_owned()),
        };
        let manifest_json =
            serde_json::to_string(manifest).map_err(|e| Error::Internal(e.to_string()))?;
        let reply = self
            .rpc()
            .create_app(proto::CreateAppRequest {
                name: name.to_owned(),
                ephemeral,
                manifest_json,
                binary: Some(binary),
            })
            .await
            .map_err(|s| self.status(s))?;
        Ok(reply.into_inner())
    }

    /// Every app the control plane knows, newest version of each.
    pub async fn list_apps(&self) -> Result<Vec<proto::AppInfo>, Error> {
        let reply = self
            .rpc()
            .list_apps(proto::ListAppsRequest {})
            .await
            .map_err(|s| self.status(s))?;
        Ok(reply.into_inner().apps)
    }

    /// Stops an app's containers and refuses its new inputs. Returns once its
    /// containers have exited.
    pub async fn stop_app(&self, name: &str) -> Result<u32, Error> {
        let reply = self
            .rpc()
            .stop_app(proto::StopAppRequest {
                name: name.to_owned(),
            })
            .await
            .map_err(|s| self.status(s))?;
        Ok(reply.into_inner().containers_stopped)
    }

    /// Holds an ephemeral app alive: it lives while the returned lease (or
    /// another holder's) does, and is stopped within the control plane's
    /// lease timeout once none is held (the program exited, was killed, or
    /// lost its network).
    pub async fn hold_app(&self, app: &str) -> Result<AppLease, Error> {
        let (beats, beats_rx) = tokio::sync::mpsc::channel(1);
        let first = proto::HoldAppRequest {
            app: app.to_owned(),
        };
        beats
            .send(first)
            .await
            .map_err(|_| Error::Internal("the lease's stream closed".into()))?;
        let mut acks = self
            .rpc()
            .hold_app(tokio_stream::wrappers::ReceiverStream::new(beats_rx))
            .await
            .map_err(|s| self.status(s))?
            .into_inner();
        match acks.message().await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(Error::Internal(format!(
                    "the control plane at {} ended the lease of app `{app}` at once",
                    self.url()
                )));
            }
            Err(s) => return Err(self.status(s)),
        }
        let beating = tokio::spawn(async move {
            let mut tick = tokio::time::interval(LEASE_BEAT);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if beats.send(proto::HoldAppRequest::default()).await.is_err() {
                            return;
                        }
                    }
                    // The control plane ended the lease (it stopped the app).
                    ack = acks.message() => if !matches!(ack, Ok(Some(_))) {
                        return;
                    },
                }
            }
        });
        Ok(AppLease { beating })
    }

    /// Every version of a deployed app, oldest first.
    pub async fn app_history(&self, name: &str) -> Result<Vec<proto::AppVersionInfo>, Error> {
        Ok(self.app_history_and_schedules(name).await?.0)
    }

    /// Every version of a deployed app, oldest first, and the schedules of
    /// the one that serves (each one's next run and last run).
    pub async fn app_history_and_schedules(
        &self,
        name: &str,
    ) -> Result<(Vec<proto::AppVersionInfo>, Vec<proto::ScheduleInfo>), Error> {
        let reply = self
            .rpc()
            .app_history(proto::AppHistoryRequest {
                name: name.to_owned(),
            })
            .await
            .map_err(|s| self.status(s))?
            .into_inner();
        Ok((reply.versions, reply.schedules))
    }

    /// Deploys a new version of `name` from an earlier version's binary and
    /// functions: `version`, or the one before the latest.
    pub async fn rollback_app(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<proto::CreateAppResponse, Error> {
        let reply = self
            .rpc()
            .rollback_app(proto::RollbackAppRequest {
                name: name.to_owned(),
                version,
            })
            .await
            .map_err(|s| self.status(s))?;
        Ok(reply.into_inner())
    }

    /// Follows an app's container output until the app stops.
    pub async fn stream_logs(
        &self,
        app: &str,
        history: bool,
    ) -> Result<impl futures::Stream<Item = Result<proto::LogBatch, Error>> + use<>, Error> {
        let reply = self
            .rpc()
            .stream_logs(proto::StreamLogsRequest {
                app: app.to_owned(),
                history,
            })
            .await
            .map_err(|s| self.status(s))?;
        let url = self.url().to_owned();
        Ok(reply
            .into_inner()
            .map(move |r| r.map_err(|s| from_status(s, &url))))
    }
}

/// What a function (or class instance) is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionStats {
    /// Inputs waiting for a container.
    pub backlog: u64,
    /// Containers, starting or running.
    pub num_total_runners: u32,
    /// Inputs handed to containers and not yet answered.
    pub running_inputs: u64,
    /// The autoscaler settings in effect: the function's options, or what
    /// `update_autoscaler` (or `keep_warm`) set since it was deployed.
    pub autoscaler: Autoscaler,
}

/// The autoscaler settings a function (or class instance) scales by now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Autoscaler {
    /// Containers kept running even with no inputs.
    pub min_containers: u32,
    /// The most containers: the function's own, or the server's default.
    pub max_containers: u32,
    /// Extra containers kept while there is work.
    pub buffer_containers: u32,
    /// How long a container may stay idle before it stops (above the minimum).
    pub scaledown_window: Duration,
}

/// A change to a function's (or class instance's) autoscaler, for
/// `update_autoscaler`: each field left `None` keeps its current value.
/// The change applies at once (the pool fills to a raised minimum, and
/// idle containers beyond a lowered maximum stop), and stands until the
/// app is deployed again, across control-plane restarts.
///
/// ```ignore
/// f.update_autoscaler(AutoscalerSettings {
///     min_containers: Some(2),
///     scaledown_window: Some(Duration::from_secs(300)),
///     ..AutoscalerSettings::default()
/// })
/// .await?;
/// ```
///
/// The control plane refuses, naming the field: `max_containers` outside
/// 1 to 10,000, `min_containers` or `buffer_containers` above 10,000,
/// `min_containers` above `max_containers` (once both apply), and a
/// `scaledown_window` outside 2 s to 1 h (whole seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AutoscalerSettings {
    /// Containers kept running even with no inputs (the warm pool).
    pub min_containers: Option<u32>,
    /// The most containers at once.
    pub max_containers: Option<u32>,
    /// Extra containers kept while there is work.
    pub buffer_containers: Option<u32>,
    /// How long a container may stay idle before it stops (whole seconds).
    pub scaledown_window: Option<Duration>,
}

impl AutoscalerSettings {
    /// Only `min_containers`: what `keep_warm(n)` changes.
    pub fn min_containers(n: u32) -> Self {
        AutoscalerSettings {
            min_containers: Some(n),
            ..AutoscalerSettings::default()
        }
    }
}

/// How often a lease holder beats: well inside the control plane's lease
/// timeout (10 s by default), so that one late beat costs nothing.
const LEASE_BEAT: Duration = Duration::from_secs(2);

/// An ephemeral app's lease, from [`Client::hold_app`]: released when
/// dropped.
pub struct AppLease {
    beating: tokio::task::JoinHandle<()>,
}

impl Drop for AppLease {
    fn drop(&mut self) {
        self.beating.abort();
    }
}

/// Where a new app version's binary comes from.
#[derive(Debug, Clone, Copy)]
pub enum AppBinary<'a> {
    /// A file the control plane reads where it is: accepted only from a
    /// caller in the control plane's own process (an embedded run).
    LocalPath(&'a Path),
    /// A file uploaded to the control plane.
    Upload(&'a Path),
    /// A binary uploaded before, by the content id that
    /// [`Client::upload_binary`] (or its `_with_progress` form) returned:
    /// for a caller that shows the upload as a step of its own.
    Uploaded(&'a str),
}

/// SHA-256 of a file's content, in hex, read a piece at a time.
fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn rpcs(channels: &[Channel], credentials: &Credentials) -> Vec<Rpc> {
    channels
        .iter()
        .map(|channel| crate::connection::rpc(channel.clone(), credentials.clone()))
        .collect()
}

fn endpoint(url: &str) -> Result<tonic::transport::Endpoint, Error> {
    let ca = if url.starts_with("https://") {
        config::tls_ca_pem()?
    } else {
        None
    };
    crate::connection::endpoint(url, ca.as_deref()).map_err(Error::Config)
}

fn split_urls(list: &str) -> Result<Vec<String>, Error> {
    let urls = config::split_urls(list);
    if urls.is_empty() {
        return Err(Error::Config(format!(
            "`{list}` names no control plane URL (e.g. http://127.0.0.1:7470, or several separated by commas)"
        )));
    }
    Ok(urls)
}

/// None of `urls` could be connected to; `failures` says why, in order.
fn unreachable_all(urls: &[String], failures: Vec<String>) -> Error {
    let reason = if failures.len() == 1 {
        failures.into_iter().next().unwrap_or_default()
    } else {
        urls.iter()
            .zip(failures)
            .map(|(url, why)| format!("{url}: {why}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Error::ServerUnreachable {
        url: urls.join(", "),
        reason,
    }
}

/// A transport error with its causes, e.g. "transport error: Connection refused".
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
