//! The control plane: apps, functions, input queues, the scheduler and
//! autoscaler, and the container backends, behind one gRPC service.
//!
//! [`Server::start`] runs one on the current tokio runtime; the same server
//! backs `cargo xtask server` and the embedded default of `#[app::main]`.

mod access;
mod backend;
mod binaries;
mod blobs;
mod budget;
mod calls;
mod catalog;
mod containers;
mod control;
mod http;
mod ids;
mod logs;
mod loops;
mod map_window;
mod oversize;
mod pool;
#[cfg(test)]
mod request_props;
mod schedules;
mod service;
mod store;
mod telemetry;
mod tls;
mod volumes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

pub use backend::{
    ContainerBackend, ContainerEvent, ContainerSpec, DockerBackend, DockerConfig, ExitCause,
    LocalProcessBackend, OutputStream, Placement, Resources, VolumeMount,
};
pub use binaries::sha256_file;
pub use http::metrics::MetricsToken;
pub use store::StoreConfig;
pub use tls::TlsConfig;
/// Where volume `name` of environment `env` lives under a data folder:
/// what a backend mounts (or hands to its process) as that volume.
pub(crate) use volumes::volume_dir;

use crate::contract::{CONNECTION_WINDOW_BYTES, MAX_MESSAGE_BYTES, STREAM_WINDOW_BYTES};
use crate::proto::control_plane_server::ControlPlaneServer;

/// How a control plane runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free one.
    pub bind: SocketAddr,
    /// Where deployed binaries and large payloads are kept (and, by
    /// default, the store).
    pub data_dir: PathBuf,
    /// Where apps, versions, ids and detached calls are kept: by default
    /// `store.sqlite3` in the data folder.
    pub store: StoreConfig,
    /// How often containers report that they are alive.
    pub heartbeat_interval: Duration,
    /// Silence after which a container is declared lost and killed.
    pub heartbeat_timeout: Duration,
    /// How long a stopping container may finish before it is killed.
    pub stop_grace: Duration,
    /// Containers per function when the function sets no `max_containers`.
    pub default_max_containers: u32,
    /// How long spawned calls' outcomes are kept.
    pub call_retention: Duration,
    /// How often idle, lost and warm-pool containers are looked at.
    pub upkeep_interval: Duration,
    /// How long an ephemeral app lives without a beat from its program
    /// (and how long its program has to take the lease after creating it).
    pub lease_timeout: Duration,
    /// Largest binary `UploadBinary` accepts, in bytes.
    pub max_upload_bytes: u64,
    /// Inline argument bytes of accepted inputs not yet answered, across
    /// all callers (each input counts for at least 1 KiB). Beyond it,
    /// streams wait and single calls wait [`ServerConfig::inline_budget_patience`],
    /// then are refused with `RESOURCE_EXHAUSTED`.
    pub max_inline_bytes_in_flight: u64,
    /// How long a single call waits for room in the inline budget.
    pub inline_budget_patience: Duration,
    /// The longest a `GetCallOutcome` long poll is held, whatever timeout
    /// the client asks for: a held request is memory, and a connection a
    /// proxy may cut.
    pub max_long_poll: Duration,
    /// Serve TLS with this certificate (the URL is then `https://`, at
    /// loopback for an unspecified bind address), and have containers
    /// verify it; `None`: plaintext.
    pub tls: Option<TlsConfig>,
    /// Where the control plane keeps an admin token for its own URL (an
    /// owner-only file, `credentials.toml` beside the user's config file for
    /// `cargo xtask server`): written at first start, and again whenever it
    /// holds no valid admin token. `None` writes nothing: the process's own
    /// callers need none ([`Server::local_token`]), and an admin token can
    /// only be made with another.
    pub credentials_file: Option<PathBuf>,
    /// Where containers run: local processes (the default) or Docker.
    pub backend: BackendConfig,
    /// Where to serve the control plane's own pages (the dashboard,
    /// `/metrics`) over HTTP; port 0 picks a free one, `None` serves none.
    pub http_bind: Option<SocketAddr>,
    /// Where to serve web endpoints over HTTP: a port of their own, so
    /// that what they serve shares no origin with the dashboard; port 0
    /// picks a free one, `None` serves none (endpoints then have no URL).
    pub web_bind: Option<SocketAddr>,
    /// The largest request body a web endpoint accepts (413 beyond it).
    pub web_max_body_bytes: usize,
    /// How long a web request may take, start to end (504 beyond it).
    pub web_request_timeout: Duration,
    /// Requests that may wait for a web endpoint that runs all the
    /// containers it may: past them, 503 with `Retry-After`.
    pub web_queue_limit: usize,
    /// A bearer token `/metrics` requires; `None` (the default) serves it
    /// to anyone who reaches the HTTP listener, as Prometheus exporters
    /// usually are.
    pub metrics_token: Option<MetricsToken>,
}

/// Where a control plane runs its containers.
#[derive(Debug, Clone, Default)]
pub enum BackendConfig {
    /// Local processes of the user's binary: fast to start, isolating
    /// nothing, enforcing no resources.
    #[default]
    Process,
    /// Docker containers of an image built from each deployed binary.
    Docker(DockerConfig),
}

impl ServerConfig {
    /// Loopback on a free port, data in `data_dir`, the store a SQLite
    /// file there.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: StoreConfig::Sqlite {
                path: data_dir.join("store.sqlite3"),
                max_bytes: None,
            },
            data_dir,
            heartbeat_interval: Duration::from_secs(2),
            heartbeat_timeout: Duration::from_secs(10),
            stop_grace: Duration::from_secs(30),
            default_max_containers: 8,
            call_retention: Duration::from_secs(7 * 24 * 3600),
            upkeep_interval: Duration::from_millis(500),
            lease_timeout: Duration::from_secs(10),
            max_upload_bytes: 1 << 30,
            max_inline_bytes_in_flight: 1 << 30,
            inline_budget_patience: Duration::from_secs(10),
            max_long_poll: Duration::from_secs(55),
            tls: None,
            credentials_file: None,
            backend: BackendConfig::Process,
            http_bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            web_bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            // A request travels as one inline input: room for its headers.
            web_max_body_bytes: crate::contract::INLINE_LIMIT - (64 << 10),
            web_request_timeout: Duration::from_secs(150),
            web_queue_limit: 256,
            metrics_token: None,
        }
    }
}

/// What containers dial.
enum ContainerDial {
    /// The URL clients dial.
    Same,
    /// A URL an operator gave.
    Advertised(String),
    /// A second listener, for containers only.
    Listen(TcpListener),
}

/// This data folder's control plane, as named on the containers it starts:
/// made once and kept, so a restarted control plane knows its own
/// leftovers and leaves other control planes' alone.
fn instance_id(data_dir: &std::path::Path) -> std::io::Result<String> {
    let path = data_dir.join("instance-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        _ => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            std::fs::write(&path, &id)?;
            Ok(id)
        }
    }
}

/// A running control plane.
pub struct Server {
    url: String,
    addr: SocketAddr,
    control: Arc<control::ControlPlane>,
    /// Where an admin token was written at this start, if one was.
    admin_token_written: Option<PathBuf>,
    /// The HTTP listener of the control plane's own pages, unless the
    /// config turned it off.
    http: Option<http::HttpListener>,
    /// The HTTP listener of web endpoints, unless the config turned it off.
    web: Option<http::HttpListener>,
    shutdown: Option<oneshot::Sender<()>>,
    serving: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Server {
    /// Starts a control plane with the backend its config names.
    pub async fn start(config: ServerConfig) -> std::io::Result<Server> {
        match config.backend.clone() {
            BackendConfig::Process => {
                Self::start_with_backend(config, LocalProcessBackend::new()).await
            }
            BackendConfig::Docker(docker) => Self::start_on_docker(config, docker).await,
        }
    }

    /// Starts a control plane with the given container backend.
    pub async fn start_with_backend(
        config: ServerConfig,
        backend: Arc<dyn ContainerBackend>,
    ) -> std::io::Result<Server> {
        Self::start_inner(config, backend, ContainerDial::Same).await
    }

    async fn start_on_docker(
        config: ServerConfig,
        docker: DockerConfig,
    ) -> std::io::Result<Server> {
        let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
        if config.tls.is_some() && docker.advertise_url.is_none() {
            return Err(invalid(
                "with TLS, the Docker backend needs an advertised URL (`--advertise-url`) whose \
                 host the certificate names and containers reach"
                    .into(),
            ));
        }
        std::fs::create_dir_all(&config.data_dir)?;
        let instance = instance_id(&config.data_dir)?;
        let ca = config
            .tls
            .as_ref()
            .map(|_| tls::container_ca_path(&config.data_dir));
        let backend = DockerBackend::connect(&docker, &instance, ca.as_deref())
            .await
            .map_err(std::io::Error::other)?;
        let dial =
            match docker.advertise_url {
                Some(url) => ContainerDial::Advertised(crate::config::normalize_url(&url)),
                None => {
                    // Only this machine and its containers reach the gateway.
                    let listener = TcpListener::bind((backend.gateway(), 0)).await.map_err(|e| {
                    std::io::Error::other(format!(
                        "cannot listen for containers on the Docker network's gateway {}: {e}",
                        backend.gateway()
                    ))
                })?;
                    ContainerDial::Listen(listener)
                }
            };
        Self::start_inner(config, backend, dial).await
    }

    async fn start_inner(
        config: ServerConfig,
        backend: Arc<dyn ContainerBackend>,
        dial: ContainerDial,
    ) -> std::io::Result<Server> {
        // The store first: a PostgreSQL store waits here while another
        // control plane leads, before this one takes the port.
        let store_config = config.store.clone();
        let (store, snapshot) =
            tokio::task::spawn_blocking(move || store::Store::open(&store_config))
                .await
                .map_err(std::io::Error::other)?
                .map_err(std::io::Error::other)?;
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &config.tls {
            builder = builder.tls_config(tls.server_config()).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("the TLS certificate or key is not usable: {e}"),
                )
            })?;
            tls.write_container_ca(&config.data_dir)?;
        }
        let listener = TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let url = match config.tls {
            None => format!("http://{addr}"),
            Some(_) => format!("https://{}", tls::dialed(addr)),
        };
        let credentials_file = config.credentials_file.clone();
        let (container_url, container_listener) = match dial {
            ContainerDial::Same => (url.clone(), None),
            ContainerDial::Advertised(url) => (url, None),
            ContainerDial::Listen(listener) => {
                (format!("http://{}", listener.local_addr()?), Some(listener))
            }
        };
        let (http_bind, web_bind) = (config.http_bind, config.web_bind);
        let (control, events) =
            control::ControlPlane::new(config, container_url, backend, store, snapshot)?;
        let admin_token_written = match &credentials_file {
            Some(path) => control
                .access
                .ensure_admin_credential(path, &url)
                .await
                .map_err(|e| {
                    std::io::Error::other(format!(
                        "cannot write the admin token to {}: {e}",
                        path.display()
                    ))
                })?
                .then(|| path.clone()),
            None => None,
        };
        // Callers in this process (an embedded run) find its token here.
        crate::config::register_local_token(&url, control.access.local_token());
        let tasks = vec![
            tokio::spawn(control.clone().run_events(events)),
            tokio::spawn(control.clone().run_upkeep()),
            tokio::spawn(schedules::run(control.clone())),
        ];
        // A larger message is refused from its length prefix, before any
        // of it is held; the refusal says to send large payloads by blob.
        // Every request is authenticated and checked before the service
        // (or its size limits) sees it.
        let service = access::Authenticate {
            inner: oversize::ExplainOversize(
                ControlPlaneServer::new(service::Service {
                    cp: control.clone(),
                })
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            ),
            cp: control.clone(),
        };
        let state = http::HttpState {
            cp: control.clone(),
        };
        let listen = |bind: SocketAddr, app: axum::Router, what: &'static str| async move {
            http::serve(bind, app).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot serve {what} on {bind}: {e}"))
            })
        };
        let http = match http_bind {
            Some(bind) => {
                Some(listen(bind, http::console_router(state.clone()), "the dashboard").await?)
            }
            None => None,
        };
        let web = match web_bind {
            Some(bind) => Some(listen(bind, http::endpoints_router(state), "web endpoints").await?),
            None => None,
        };
        if let Some(web) = &web {
            control.catalog.set_web_base(&web.base_url);
        }
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        // `tcp_nodelay` below only reaches listeners tonic makes itself: set
        // it on each accepted connection, or small writes wait for delayed
        // ACKs (40 ms a call).
        let connections = futures::stream::select(
            TcpListenerStream::new(listener),
            futures::stream::iter(container_listener)
                .map(TcpListenerStream::new)
                .flatten(),
        );
        let incoming = tokio_stream::StreamExt::map(connections, |conn| {
            conn.inspect(|stream| {
                let _ = stream.set_nodelay(true);
            })
        });
        let serving = tokio::spawn(
            builder
                .tcp_nodelay(true)
                .initial_stream_window_size(STREAM_WINDOW_BYTES)
                .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = shutdown_rx.await;
                }),
        );
        Ok(Server {
            url,
            addr,
            control,
            admin_token_written,
            http,
            web,
            shutdown: Some(shutdown),
            serving: Some(serving),
            tasks,
        })
    }

    /// The URL clients and containers connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of the control plane's own pages (`/dashboard`,
    /// `/metrics`), e.g. `http://127.0.0.1:7471`; `None` when the config
    /// turned them off.
    pub fn http_url(&self) -> Option<&str> {
        self.http.as_ref().map(|h| h.base_url.as_str())
    }

    /// Where web endpoints are served, e.g. `http://127.0.0.1:7472`: their
    /// URLs are `<this>/<environment>/<app>/<label>`. `None` when the
    /// config turned it off.
    pub fn web_base_url(&self) -> Option<&str> {
        self.web.as_ref().map(|h| h.base_url.as_str())
    }

    /// A token with every right, including naming binaries by their path
    /// on this machine, valid while this control plane runs. Never stored
    /// or written: clients made in this process find it by the server's
    /// URL without being given it.
    pub fn local_token(&self) -> &str {
        self.control.access.local_token()
    }

    /// Where this start wrote a new admin token (see
    /// [`ServerConfig::credentials_file`]), if it did.
    pub fn admin_token_written(&self) -> Option<&std::path::Path> {
        self.admin_token_written.as_deref()
    }

    /// Kills every container and stops serving.
    pub async fn shutdown(mut self) {
        crate::config::forget_local_token(&self.url);
        self.control.shutdown().await;
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(serving) = self.serving.take() {
            // Open streams (followers, containers) would hold a graceful
            // shutdown forever; the containers are gone, so stop at once.
            serving.abort();
            let _ = serving.await;
        }
        for listener in [self.http.take(), self.web.take()].into_iter().flatten() {
            listener.serving.abort();
            let _ = listener.serving.await;
        }
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}
