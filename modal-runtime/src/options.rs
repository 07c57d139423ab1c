//! Per-function options, as written in `#[app::function(...)]` and as deployed.
//!
//! The same type is built in a `const` by the macro (borrowed strings) and read
//! back from a deployed manifest (owned strings), so the two cannot drift.
//!
//! # A container's image and resources
//!
//! `image`, `cpu`, `memory` and `gpu` say what a container is made of. A
//! backend that runs containers (Docker) applies them; one that runs plain
//! processes reports them and enforces none. Their grammar and bounds are
//! in [`container`], which the macro compiles too, so a value refused at
//! deploy is refused at compile time with the same message.
//!
//! - `image`: a base image already present where containers run, as a
//!   Docker reference (`ubuntu:22.04`, `ghcr.io/org/app:v1@sha256:...`).
//! - `cpu = request` or `cpu = (request, limit)`, in cores. The request is
//!   what the scheduler sets aside for a container, and its share when
//!   CPUs are contended (Docker: `cpu_shares`, 1024 per core); the limit is
//!   the hard cap (Docker: `nano_cpus`). With one value the limit is the
//!   request: [`FunctionOptions::cpu_limit_cores`].
//! - `memory = request` or `memory = (request, limit)`, in MiB. The request
//!   is what the scheduler sets aside (Docker: `memory_reservation`); the
//!   limit is the hard cap, past which the container is killed (Docker:
//!   `memory`). With one value the limit is that value:
//!   [`FunctionOptions::memory_limit_bytes`].
//! - `gpu = "A100"`, `"H100:2"`, `"any"`: a type (or any) and a count,
//!   parsed by [`GpuRequest::parse`]: [`FunctionOptions::gpu_request`].
//!
//! # Schedules
//!
//! `schedule = Cron("0 9 * * 1-5", timezone = "Europe/Paris")` or
//! `schedule = Period(60)` ([`Schedule`]) runs a function without
//! arguments by itself once its app is deployed. The grammar (five cron
//! fields, IANA time zones, a period of 1 s to 366 days) is in
//! [`schedule`], which the macro compiles too.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub mod bounds;
pub mod container;
pub mod schedule;
pub mod web;

pub use container::{GpuRequest, ImageReference};

/// A static list of `KEY=value` pairs.
pub type EnvList = Cow<'static, [(Cow<'static, str>, Cow<'static, str>)]>;

/// Every option a function can declare. Defaults follow Modal's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionOptions {
    /// CPU cores requested per container (fractional values allowed): what
    /// the scheduler reserves for it (Docker: `cpu_shares`).
    pub cpu: Option<f64>,
    /// The most CPU cores a container may use (Docker: `nano_cpus`), from
    /// `cpu = (request, limit)`; at least `cpu`, and only with it. `None`:
    /// the limit is `cpu` itself (see [`Self::cpu_limit_cores`]).
    #[serde(default)]
    pub cpu_limit: Option<f64>,
    /// Memory requested per container, in MiB: what the scheduler reserves
    /// for it (Docker: `memory_reservation`).
    pub memory_mib: Option<u32>,
    /// The most memory a container may use, in MiB, past which it is killed
    /// (Docker: `memory`), from `memory = (request, limit)`; at least
    /// `memory_mib`, and only with it. `None`: the limit is `memory_mib`
    /// itself (see [`Self::memory_limit_bytes`]).
    #[serde(default)]
    pub memory_limit_mib: Option<u32>,
    /// GPU request such as `"H100"` or `"A100:2"` (see [`GpuRequest`]); the
    /// macro stores it in normal form (`"h100:2"` becomes `"H100:2"`).
    pub gpu: Option<Cow<'static, str>>,
    /// The base image of every container, a Docker reference to an image
    /// already in the engine (`"python:3.12-slim"`); `None`: the backend's
    /// default. Checked by [`ImageReference::parse`].
    #[serde(default)]
    pub image: Option<Cow<'static, str>>,
    /// Per-attempt execution timeout in seconds (1 to 86,400).
    pub timeout_secs: u32,
    /// Retries after a failed attempt (0 to 10).
    pub retries: u32,
    /// Each retry waits `initial delay × coefficient^(n-1)`, capped at the
    /// maximum delay. `retries = N` alone is a fixed 1 s delay.
    #[serde(default = "one_f64")]
    pub retry_backoff_coefficient: f64,
    #[serde(default = "one_second_ms")]
    pub retry_initial_delay_ms: u32,
    #[serde(default = "one_minute_ms")]
    pub retry_max_delay_ms: u32,
    /// Time allowed for a container to start and run `enter`, in seconds;
    /// `timeout` when `None`.
    #[serde(default)]
    pub startup_timeout_secs: Option<u32>,
    /// Upper bound on containers; `None` means the server's limit.
    pub max_containers: Option<u32>,
    /// Containers kept warm even with no work.
    pub min_containers: u32,
    /// Extra idle containers kept while the function is busy.
    pub buffer_containers: u32,
    /// Seconds a container may stay idle before it is stopped (2 to 3,600).
    pub scaledown_window_secs: u32,
    /// Environment variables set in every container.
    pub env: EnvList,
    /// Names of secrets injected into every container.
    pub secrets: Cow<'static, [Cow<'static, str>]>,
    /// Region the containers should run in.
    pub region: Option<Cow<'static, str>>,
    /// Cloud provider the containers should run on.
    pub cloud: Option<Cow<'static, str>>,
    /// Volumes mounted in every container: `(mount path, volume name)`.
    #[serde(default = "no_volumes")]
    pub volumes: Cow<'static, [(Cow<'static, str>, Cow<'static, str>)]>,
    /// Inputs one container runs at once (1 to 1,000).
    #[serde(default = "one")]
    pub max_inputs: u32,
    /// Inputs per container the autoscaler aims for; `max_inputs` when `None`.
    #[serde(default)]
    pub target_inputs: Option<u32>,
    /// Dynamic batching: the most inputs per batch (1 to 1,000), if batched.
    #[serde(default)]
    pub batch_max_size: Option<u32>,
    /// Dynamic batching: how long a batch waits for more inputs after its first.
    #[serde(default)]
    pub batch_wait_ms: u64,
    /// Served over HTTP by the control plane, if it is a web endpoint.
    #[serde(default)]
    pub web: Option<WebEndpoint>,
    /// Run on a schedule, once the app is deployed (a function without
    /// arguments only). Left out of a manifest when `None`, so that a
    /// binary without schedules deploys to a control plane that predates
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

/// When a deployed function runs by itself (`schedule = Cron(..)` or
/// `schedule = Period(..)`). Its grammar is [`schedule`]'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// At the times a five-field cron expression names, read in
    /// `timezone` (an IANA name; UTC when `None`).
    Cron {
        expression: Cow<'static, str>,
        timezone: Option<Cow<'static, str>>,
    },
    /// Every `millis` milliseconds, counted from the deploy.
    Period { millis: u64 },
}

impl Schedule {
    /// Checks the expression and time zone, or the period's bounds.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Schedule::Cron {
                expression,
                timezone,
            } => {
                schedule::parse_cron(expression)?;
                if let Some(tz) = timezone {
                    schedule::parse_timezone(tz)?;
                }
                Ok(())
            }
            Schedule::Period { millis } => schedule::check_period_millis(*millis),
        }
    }
}

/// As written in the attribute: `Cron("0 9 * * 1-5", timezone =
/// "Europe/Paris")`, `Period(2)`.
impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Cron {
                expression,
                timezone: None,
            } => write!(f, "Cron({expression:?})"),
            Schedule::Cron {
                expression,
                timezone: Some(tz),
            } => write!(f, "Cron({expression:?}, timezone = {tz:?})"),
            Schedule::Period { millis } if millis % 1000 == 0 => {
                write!(f, "Period({})", millis / 1000)
            }
            Schedule::Period { millis } => write!(f, "Period({})", *millis as f64 / 1000.0),
        }
    }
}

/// How a function is served over HTTP (`#[app::web_endpoint]`,
/// `#[app::web_app]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebEndpoint {
    pub kind: WebKind,
    /// The method a JSON endpoint answers (upper case, one of
    /// [`web::JSON_METHODS`]); raw endpoints and apps answer all.
    pub method: Cow<'static, str>,
    /// The last segment of its URL: `/<environment>/<app>/<label>`.
    pub label: Cow<'static, str>,
    /// Reachable without a token.
    pub public: bool,
    /// Answers with a stream (a generator's items).
    pub streams: bool,
}

/// What an endpoint takes and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebKind {
    /// Typed arguments from JSON (or a query), the result as JSON.
    Json,
    /// An `http::Request<Bytes>` in, an `http::Response<Bytes>` out.
    Raw,
    /// An `axum::Router` answering everything under the endpoint's URL.
    App,
}

fn no_volumes() -> Cow<'static, [(Cow<'static, str>, Cow<'static, str>)]> {
    Cow::Borrowed(&[])
}

fn one() -> u32 {
    1
}

fn one_f64() -> f64 {
    1.0
}

fn one_second_ms() -> u32 {
    1_000
}

fn one_minute_ms() -> u32 {
    60_000
}

impl FunctionOptions {
    /// Modal's defaults: 300 s timeout, no retries, 60 s scale-down window.
    pub const DEFAULT: FunctionOptions = FunctionOptions {
        cpu: None,
        cpu_limit: None,
        memory_mib: None,
        memory_limit_mib: None,
        gpu: None,
        image: None,
        timeout_secs: 300,
        retries: 0,
        retry_backoff_coefficient: 1.0,
        retry_initial_delay_ms: 1_000,
        retry_max_delay_ms: 60_000,
        startup_timeout_secs: None,
        max_containers: None,
        min_containers: 0,
        buffer_containers: 0,
        scaledown_window_secs: 60,
        env: Cow::Borrowed(&[]),
        secrets: Cow::Borrowed(&[]),
        region: None,
        cloud: None,
        volumes: Cow::Borrowed(&[]),
        max_inputs: 1,
        target_inputs: None,
        batch_max_size: None,
        batch_wait_ms: 0,
        web: None,
        schedule: None,
    };

    /// Bounds shared by the macro (at compile time) and the server (at
    /// deploy): the constants of [`bounds`].
    pub const TIMEOUT_SECS: std::ops::RangeInclusive<u32> = bounds::TIMEOUT_SECS;
    pub const RETRIES: std::ops::RangeInclusive<u32> = bounds::RETRIES;
    pub const SCALEDOWN_WINDOW_SECS: std::ops::RangeInclusive<u32> = bounds::SCALEDOWN_WINDOW_SECS;
    pub const MAX_INPUTS: std::ops::RangeInclusive<u32> = bounds::MAX_INPUTS;
    pub const RETRY_BACKOFF_COEFFICIENT: std::ops::RangeInclusive<f64> =
        bounds::RETRY_BACKOFF_COEFFICIENT;
    pub const RETRY_INITIAL_DELAY_MS: std::ops::RangeInclusive<u32> =
        bounds::RETRY_INITIAL_DELAY_MS;
    pub const RETRY_MAX_DELAY_MS: std::ops::RangeInclusive<u32> = bounds::RETRY_MAX_DELAY_MS;
    pub const BATCH_MAX_SIZE: std::ops::RangeInclusive<u32> = bounds::BATCH_MAX_SIZE;
    pub const BATCH_WAIT_MS: std::ops::RangeInclusive<u64> =
        *bounds::BATCH_WAIT_MS.start() as u64..=*bounds::BATCH_WAIT_MS.end() as u64;
    /// The most CPU cores of a request or a limit (see [`container`]).
    pub const CPU_CORES_MAX: f64 = container::CPU_CORES_MAX;
    /// Memory of a request or a limit, in MiB: 1 MiB to 4 TiB.
    pub const MEMORY_MIB: std::ops::RangeInclusive<u32> = container::MEMORY_MIB;
    /// GPUs per container.
    pub const GPU_COUNT: std::ops::RangeInclusive<u32> = container::GPU_COUNT;

    /// Checks the bounds, naming the first option out of range.
    pub fn validate(&self) -> Result<(), String> {
        let in_range = |what: &str, v: u32, r: &std::ops::RangeInclusive<u32>| {
            if r.contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "`{what}` is {v}, but must be between {} and {}",
                    r.start(),
                    r.end()
                ))
            }
        };
        in_range("timeout", self.timeout_secs, &Self::TIMEOUT_SECS)?;
        if let Some(startup) = self.startup_timeout_secs {
            in_range("startup_timeout", startup, &Self::TIMEOUT_SECS)?;
        }
        if !Self::RETRY_BACKOFF_COEFFICIENT.contains(&self.retry_backoff_coefficient) {
            return Err(format!(
                "`backoff_coefficient` is {}, but must be between 1 and 10",
                self.retry_backoff_coefficient
            ));
        }
        in_range(
            "initial_delay (ms)",
            self.retry_initial_delay_ms,
            &Self::RETRY_INITIAL_DELAY_MS,
        )?;
        in_range(
            "max_delay (ms)",
            self.retry_max_delay_ms,
            &Self::RETRY_MAX_DELAY_MS,
        )?;
        in_range("retries", self.retries, &Self::RETRIES)?;
        in_range(
            "scaledown_window",
            self.scaledown_window_secs,
            &Self::SCALEDOWN_WINDOW_SECS,
        )?;
        if self.max_containers == Some(0) {
            return Err("`max_containers` must be at least 1".into());
        }
        if let Some(max) = self.max_containers
            && self.min_containers > max
        {
            return Err(format!(
                "`min_containers` ({}) exceeds `max_containers` ({max})",
                self.min_containers
            ));
        }
        container::check_cpu(self.cpu, self.cpu_limit)?;
        container::check_memory(self.memory_mib, self.memory_limit_mib)?;
        if let Some(gpu) = &self.gpu {
            GpuRequest::parse(gpu)?;
        }
        if let Some(image) = &self.image {
            ImageReference::parse(image)?;
        }
        in_range("max_inputs", self.max_inputs, &Self::MAX_INPUTS)?;
        if let Some(target) = self.target_inputs
            && !(1..=self.max_inputs).contains(&target)
        {
            return Err(format!(
                "`target_inputs` is {target}, but must be between 1 and `max_inputs` ({})",
                self.max_inputs
            ));
        }
        if let Some(size) = self.batch_max_size {
            in_range("max_batch_size", size, &Self::BATCH_MAX_SIZE)?;
        }
        if !Self::BATCH_WAIT_MS.contains(&self.batch_wait_ms) {
            return Err(format!(
                "`wait_ms` is {}, but must be between 0 and {}",
                self.batch_wait_ms,
                Self::BATCH_WAIT_MS.end()
            ));
        }
        for (name, _) in self.env.iter() {
            check_env_name(name)?;
        }
        crate::volume::check_mounts(&self.volumes)?;
        if let Some(endpoint) = &self.web {
            endpoint.validate()?;
            if self.batch_max_size.is_some() {
                return Err("a batched function cannot be a web endpoint".into());
            }
        }
        if let Some(schedule) = &self.schedule {
            schedule.validate()?;
            if self.web.is_some() {
                return Err("a web endpoint cannot run on a schedule".into());
            }
            if self.batch_max_size.is_some() {
                return Err("a batched function cannot run on a schedule".into());
            }
        }
        Ok(())
    }
}

impl WebEndpoint {
    /// Checks the label, and the method of a JSON endpoint.
    pub fn validate(&self) -> Result<(), String> {
        web::check_label(&self.label)?;
        match self.kind {
            WebKind::Json => {
                let method = web::parse_method(&self.method)?;
                if method != self.method {
                    return Err(format!("the method `{}` must be upper case", self.method));
                }
            }
            WebKind::Raw | WebKind::App if self.method != "*" => {
                return Err(format!(
                    "a raw endpoint or app answers every method: its method is `*`, not `{}`",
                    self.method
                ));
            }
            WebKind::Raw | WebKind::App => {}
        }
        if self.streams && self.kind != WebKind::Json {
            return Err("only a JSON endpoint (a generator) answers with a stream".into());
        }
        Ok(())
    }
}

impl FunctionOptions {
    /// How long retry number `n` (1 for the first) waits.
    pub fn retry_delay(&self, n: u32) -> std::time::Duration {
        let factor = self
            .retry_backoff_coefficient
            .powi(n.saturating_sub(1).min(64) as i32);
        let ms = (f64::from(self.retry_initial_delay_ms) * factor)
            .min(f64::from(self.retry_max_delay_ms));
        std::time::Duration::from_millis(ms as u64)
    }

    /// Time allowed for a container to start and run `enter`.
    pub fn startup_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(
            self.startup_timeout_secs.unwrap_or(self.timeout_secs),
        ))
    }

    /// The hard cap on a container's CPU, in cores (Docker: `nano_cpus` =
    /// cores × 10⁹): the limit of `cpu = (request, limit)`, else the
    /// request of `cpu = request`; `None` without `cpu`.
    pub fn cpu_limit_cores(&self) -> Option<f64> {
        self.cpu_limit.or(self.cpu)
    }

    /// The memory a container is guaranteed, in bytes (Docker:
    /// `memory_reservation`): `memory` (either form's request); `None`
    /// without it.
    pub fn memory_request_bytes(&self) -> Option<u64> {
        self.memory_mib.map(mib_to_bytes)
    }

    /// The hard cap on a container's memory, in bytes (Docker: `memory`):
    /// the limit of `memory = (request, limit)`, else the value of
    /// `memory = value`; `None` without `memory`.
    pub fn memory_limit_bytes(&self) -> Option<u64> {
        self.memory_limit_mib.or(self.memory_mib).map(mib_to_bytes)
    }

    /// The GPUs asked for, parsed; `None` without `gpu`, and for a value
    /// that does not parse (which [`Self::validate`] refuses, so never for
    /// deployed options).
    pub fn gpu_request(&self) -> Option<GpuRequest> {
        GpuRequest::parse(self.gpu.as_deref()?).ok()
    }
}

fn mib_to_bytes(mib: u32) -> u64 {
    u64::from(mib) << 20
}

/// A retry policy: how many retries, and how long each waits.
///
/// `RetryPolicy::new(3)` retries up to three times with a fixed 1 s delay;
/// `.backoff(2.0, Duration::from_secs(1), Duration::from_secs(30))` waits
/// 1 s, 2 s, 4 s, ... up to 30 s.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub backoff_coefficient: f64,
    pub initial_delay_ms: u32,
    pub max_delay_ms: u32,
}

impl RetryPolicy {
    /// Up to `max_retries` retries, 1 s apart.
    pub fn new(max_retries: u32) -> Self {
        RetryPolicy {
            max_retries,
            backoff_coefficient: 1.0,
            initial_delay_ms: 1_000,
            max_delay_ms: 60_000,
        }
    }

    /// Exponential backoff: retry `n` waits `initial × coefficient^(n-1)`,
    /// at most `max`.
    pub fn backoff(
        mut self,
        coefficient: f64,
        initial: std::time::Duration,
        max: std::time::Duration,
    ) -> Self {
        self.backoff_coefficient = coefficient;
        self.initial_delay_ms = u32::try_from(initial.as_millis()).unwrap_or(u32::MAX);
        self.max_delay_ms = u32::try_from(max.as_millis()).unwrap_or(u32::MAX);
        self
    }
}

impl Default for FunctionOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Options that override a class's (or function's) own, for one variant:
/// built with [`ClsOptions::new`] and its setters, applied with
/// `with_options`. Every option left unset keeps the value beneath it.
///
/// ```ignore
/// let big = Model::cls().with_options(ClsOptions::new().cpu(4.0).memory(8192).retries(2));
/// ```
///
/// Stacking (`with_options(a).with_options(b)`): a value set in `b` overrides
/// `a`'s; `env` is merged key by key; `secrets` and `volumes` given later
/// replace the earlier lists whole; a request and its limit (`cpu` or
/// `cpu_limits`, `memory` or `memory_limits`) are replaced together. Nothing
/// can be unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClsOptions {
    cpu: Option<f64>,
    /// Set only together with `cpu`: the pair is overridden as one.
    #[serde(default)]
    cpu_limit: Option<f64>,
    memory_mib: Option<u32>,
    /// Set only together with `memory_mib`, like `cpu_limit`.
    #[serde(default)]
    memory_limit_mib: Option<u32>,
    gpu: Option<String>,
    #[serde(default)]
    image: Option<String>,
    env: Option<Vec<(String, String)>>,
    secrets: Option<Vec<String>>,
    volumes: Option<Vec<(String, String)>>,
    retries: Option<u32>,
    retry_policy: Option<RetryPolicy>,
    startup_timeout_secs: Option<u32>,
    max_containers: Option<u32>,
    buffer_containers: Option<u32>,
    scaledown_window_secs: Option<u32>,
    timeout_secs: Option<u32>,
    region: Option<String>,
    cloud: Option<String>,
    max_inputs: Option<u32>,
    target_inputs: Option<u32>,
    batch_max_size: Option<u32>,
    batch_wait_ms: Option<u64>,
}

impl ClsOptions {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// CPU cores requested per container, which are also its limit (like
    /// `cpu = 2`); replaces the class's request and limit.
    pub fn cpu(mut self, cores: f64) -> Self {
        self.cpu = Some(cores);
        self.cpu_limit = None;
        self
    }

    /// CPU cores requested per container and the most it may use (like
    /// `cpu = (0.5, 2.0)`); the limit must be at least the request.
    /// Replaces the class's request and limit.
    pub fn cpu_limits(mut self, request: f64, limit: f64) -> Self {
        self.cpu = Some(request);
        self.cpu_limit = Some(limit);
        self
    }

    /// Memory per container in MiB, requested and also its limit (like
    /// `memory = 1024`); replaces the class's request and limit.
    pub fn memory(mut self, mib: u32) -> Self {
        self.memory_mib = Some(mib);
        self.memory_limit_mib = None;
        self
    }

    /// Memory requested per container and the most it may use, in MiB
    /// (like `memory = (1024, 4096)`); the limit must be at least the
    /// request. Replaces the class's request and limit.
    pub fn memory_limits(mut self, request_mib: u32, limit_mib: u32) -> Self {
        self.memory_mib = Some(request_mib);
        self.memory_limit_mib = Some(limit_mib);
        self
    }

    /// GPU type and optional count, e.g. `"A100"` or `"H100:2"` (see
    /// [`GpuRequest::parse`]).
    pub fn gpu(mut self, gpu: impl Into<String>) -> Self {
        self.gpu = Some(gpu.into());
        self
    }

    /// The containers' base image, a Docker reference such as
    /// `"python:3.12-slim"` (see [`ImageReference::parse`]).
    pub fn image(mut self, reference: impl Into<String>) -> Self {
        self.image = Some(reference.into());
        self
    }

    /// Environment variables, merged key by key over the class's own.
    pub fn env<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let env = self.env.get_or_insert_with(Vec::new);
        for (k, v) in vars {
            set_var(env, k.into(), v.into());
        }
        self
    }

    /// Secrets injected into every container; replaces the class's list.
    pub fn secrets<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.secrets = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Volumes as `(mount path, volume name)`; replaces the class's list.
    pub fn volumes<P: Into<String>, V: Into<String>>(
        mut self,
        mounts: impl IntoIterator<Item = (P, V)>,
    ) -> Self {
        self.volumes = Some(
            mounts
                .into_iter()
                .map(|(p, v)| (p.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Retries after a failed attempt (0 to 10), 1 s apart.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self.retry_policy = None;
        self
    }

    /// Retries with a policy (count and backoff).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry_policy = Some(policy);
        self.retries = None;
        self
    }

    /// Time allowed for a container to start and run `enter` (whole seconds).
    pub fn startup_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.startup_timeout_secs = Some(secs(timeout));
        self
    }

    /// Upper bound on this variant's containers.
    pub fn max_containers(mut self, n: u32) -> Self {
        self.max_containers = Some(n);
        self
    }

    /// Extra idle containers kept while the variant is busy.
    pub fn buffer_containers(mut self, n: u32) -> Self {
        self.buffer_containers = Some(n);
        self
    }

    /// Idle time before a container stops (2 s to 1 h, whole seconds).
    pub fn scaledown_window(mut self, window: std::time::Duration) -> Self {
        self.scaledown_window_secs = Some(secs(window));
        self
    }

    /// Per-attempt timeout (1 s to 24 h, whole seconds).
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout_secs = Some(secs(timeout));
        self
    }

    /// Region the containers should run in.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Cloud provider the containers should run on.
    pub fn cloud(mut self, cloud: impl Into<String>) -> Self {
        self.cloud = Some(cloud.into());
        self
    }

    pub(crate) fn concurrency(mut self, max_inputs: u32, target_inputs: u32) -> Self {
        self.max_inputs = Some(max_inputs);
        self.target_inputs = Some(target_inputs);
        self
    }

    pub(crate) fn batching(mut self, max_batch_size: u32, wait_ms: u64) -> Self {
        self.batch_max_size = Some(max_batch_size);
        self.batch_wait_ms = Some(wait_ms);
        self
    }

    /// `self` with `later` stacked on top: `later`'s values win, `env` merges
    /// key by key, lists are replaced.
    pub fn stack(&self, later: &ClsOptions) -> ClsOptions {
        let env = match (&self.env, &later.env) {
            (Some(base), Some(over)) => {
                let mut env = base.clone();
                for (k, v) in over {
                    set_var(&mut env, k.clone(), v.clone());
                }
                Some(env)
            }
            (base, over) => over.clone().or_else(|| base.clone()),
        };
        // A request and its limit are one option: a later `cpu(4.0)` drops
        // an earlier limit instead of keeping one below the new request.
        let (cpu, cpu_limit) = if later.cpu.is_some() {
            (later.cpu, later.cpu_limit)
        } else {
            (self.cpu, self.cpu_limit)
        };
        let (memory_mib, memory_limit_mib) = if later.memory_mib.is_some() {
            (later.memory_mib, later.memory_limit_mib)
        } else {
            (self.memory_mib, self.memory_limit_mib)
        };
        ClsOptions {
            cpu,
            cpu_limit,
            memory_mib,
            memory_limit_mib,
            gpu: later.gpu.clone().or_else(|| self.gpu.clone()),
            image: later.image.clone().or_else(|| self.image.clone()),
            env,
            secrets: later.secrets.clone().or_else(|| self.secrets.clone()),
            volumes: later.volumes.clone().or_else(|| self.volumes.clone()),
            // A count and a policy given at different levels: the later wins.
            retries: if later.retry_policy.is_some() {
                None
            } else {
                later.retries.or(self.retries)
            },
            retry_policy: if later.retries.is_some() {
                None
            } else {
                later.retry_policy.or(self.retry_policy)
            },
            startup_timeout_secs: later.startup_timeout_secs.or(self.startup_timeout_secs),
            max_containers: later.max_containers.or(self.max_containers),
            buffer_containers: later.buffer_containers.or(self.buffer_containers),
            scaledown_window_secs: later.scaledown_window_secs.or(self.scaledown_window_secs),
            timeout_secs: later.timeout_secs.or(self.timeout_secs),
            region: later.region.clone().or_else(|| self.region.clone()),
            cloud: later.cloud.clone().or_else(|| self.cloud.clone()),
            max_inputs: later.max_inputs.or(self.max_inputs),
            target_inputs: later.target_inputs.or(self.target_inputs),
            batch_max_size: later.batch_max_size.or(self.batch_max_size),
            batch_wait_ms: later.batch_wait_ms.or(self.batch_wait_ms),
        }
    }

    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == ClsOptions::default()
    }

    /// `base` with these overrides applied, checked against the bounds.
    pub fn apply(&self, base: &FunctionOptions) -> Result<FunctionOptions, String> {
        let mut o = base.clone();
        let owned = |s: &String| Cow::Owned(s.clone());
        // The setters give a limit only with its request; a limit alone
        // comes from a hand-made request and would mean nothing.
        if self.cpu_limit.is_some() && self.cpu.is_none() {
            return Err(
                "a `cpu` limit override needs its request: use `cpu_limits(request, limit)`".into(),
            );
        }
        if self.memory_limit_mib.is_some() && self.memory_mib.is_none() {
            return Err(
                "a `memory` limit override needs its request: use `memory_limits(request, limit)`"
                    .into(),
            );
        }
        if let Some(v) = self.cpu {
            o.cpu = Some(v);
            o.cpu_limit = self.cpu_limit;
        }
        if let Some(v) = self.memory_mib {
            o.memory_mib = Some(v);
            o.memory_limit_mib = self.memory_limit_mib;
        }
        if let Some(v) = &self.gpu {
            // Stored in normal form, as the macro stores its own.
            o.gpu = Some(Cow::Owned(GpuRequest::parse(v)?.to_string()));
        }
        if let Some(v) = &self.image {
            o.image = Some(owned(v));
        }
        if let Some(vars) = &self.env {
            let mut env: Vec<(String, String)> = o
                .env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            for (k, v) in vars {
                set_var(&mut env, k.clone(), v.clone());
            }
            o.env = env
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v)))
                .collect::<Vec<_>>()
                .into();
        }
        if let Some(v) = &self.secrets {
            o.secrets = v.iter().map(owned).collect::<Vec<_>>().into();
        }
        if let Some(v) = &self.volumes {
            o.volumes = v
                .iter()
                .map(|(p, n)| (owned(p), owned(n)))
                .collect::<Vec<_>>()
                .into();
        }
        if let Some(v) = self.retries {
            o.retries = v;
            o.retry_backoff_coefficient = 1.0;
            o.retry_initial_delay_ms = 1_000;
            o.retry_max_delay_ms = 60_000;
        }
        if let Some(p) = self.retry_policy {
            o.retries = p.max_retries;
            o.retry_backoff_coefficient = p.backoff_coefficient;
            o.retry_initial_delay_ms = p.initial_delay_ms;
            o.retry_max_delay_ms = p.max_delay_ms;
        }
        if let Some(v) = self.startup_timeout_secs {
            o.startup_timeout_secs = Some(v);
        }
        if let Some(v) = self.max_containers {
            o.max_containers = Some(v);
        }
        if let Some(v) = self.buffer_containers {
            o.buffer_containers = v;
        }
        if let Some(v) = self.scaledown_window_secs {
            o.scaledown_window_secs = v;
        }
        if let Some(v) = self.timeout_secs {
            o.timeout_secs = v;
        }
        if let Some(v) = &self.region {
            o.region = Some(owned(v));
        }
        if let Some(v) = &self.cloud {
            o.cloud = Some(owned(v));
        }
        if let Some(v) = self.max_inputs {
            o.max_inputs = v;
            // A new maximum without a target aims at the maximum.
            o.target_inputs = None;
        }
        if let Some(v) = self.target_inputs {
            o.target_inputs = Some(v);
        }
        if let Some(v) = self.batch_max_size {
            o.batch_max_size = Some(v);
        }
        if let Some(v) = self.batch_wait_ms {
            o.batch_wait_ms = v;
        }
        o.validate()?;
        Ok(o)
    }
}

/// Prefixes of environment variables a function's `env` may not set:
/// `LD_*` changes how its binary is loaded (`LD_PRELOAD` runs any library
/// first), and `MODAL_*` are the runtime's own (the container's role, its
/// control plane, its token).
pub const RESERVED_ENV_PREFIXES: [&str; 2] = ["LD_", "MODAL_"];

/// Checks one variable name of an `env` option: `Err` says what is wrong.
pub fn check_env_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(format!(
            "`{}` is not a valid environment variable name: it must be non-empty and contain \
             neither `=` nor NUL",
            name.escape_default()
        ));
    }
    if let Some(prefix) = RESERVED_ENV_PREFIXES
        .iter()
        .find(|p| name.to_ascii_uppercase().starts_with(*p))
    {
        return Err(format!(
            "`{name}` cannot be set through `env`: variables starting with `{prefix}` are \
             reserved (`LD_*` changes how the binary is loaded, `MODAL_*` are the runtime's \
             own); choose another name"
        ));
    }
    Ok(())
}

fn set_var(env: &mut Vec<(String, String)>, key: String, value: String) {
    match env.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key, value)),
    }
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_values_override_and_nothing_unsets() {
        let a = ClsOptions::new().cpu(1.0).retries(2).region("eu");
        let b = ClsOptions::new().cpu(4.0);
        let stacked = a.stack(&b);
        let o = stacked.apply(&FunctionOptions::DEFAULT).unwrap();
        assert_eq!(o.cpu, Some(4.0));
        assert_eq!(o.retries, 2);
        assert_eq!(o.region.as_deref(), Some("eu"));
    }

    #[test]
    fn reserved_and_malformed_env_names_are_refused() {
        for name in [
            "LD_PRELOAD",
            "ld_library_path",
            "MODAL_ROLE",
            "MODAL_CONTAINER_TOKEN",
        ] {
            let err = check_env_name(name).unwrap_err();
            assert!(err.contains("reserved"), "{err}");
            assert!(err.contains(name), "{err}");
        }
        for name in ["", "A=B", "A\0"] {
            assert!(check_env_name(name).unwrap_err().contains("not a valid"));
        }
        assert!(check_env_name("RUST_LOG").is_ok());
        assert!(check_env_name("OLD_VALUE").is_ok());
        // From a client's overrides too.
        let err = ClsOptions::new()
            .env([("LD_PRELOAD", "/tmp/x.so")])
            .apply(&FunctionOptions::DEFAULT)
            .unwrap_err();
        assert!(err.contains("LD_PRELOAD"), "{err}");
    }

    #[test]
    fn lists_are_replaced_and_env_merged() {
        let a = ClsOptions::new()
            .secrets(["a", "b"])
            .volumes([("/data", "v1")])
            .env([("A", "1"), ("B", "1")]);
        let b = ClsOptions::new().secrets(["c"]).env([("B", "2")]);
        let o = a.stack(&b).apply(&FunctionOptions::DEFAULT).unwrap();
        assert_eq!(
            o.secrets.iter().map(|s| s.as_ref()).collect::<Vec<_>>(),
            ["c"]
        );
        assert_eq!(o.volumes.len(), 1);
        let env: Vec<(String, String)> = o
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(env, [("A".into(), "1".into()), ("B".into(), "2".into())]);
    }

    #[test]
    fn retry_delays_back_off_up_to_the_cap() {
        let o = ClsOptions::new()
            .retry_policy(RetryPolicy::new(5).backoff(
                2.0,
                std::time::Duration::from_millis(500),
                std::time::Duration::from_secs(3),
            ))
            .apply(&FunctionOptions::DEFAULT)
            .unwrap();
        let delays: Vec<u128> = (1..=5).map(|n| o.retry_delay(n).as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 3000, 3000]);
        assert_eq!(FunctionOptions::DEFAULT.retry_delay(3).as_millis(), 1000);
        let err = ClsOptions::new()
            .retry_policy(RetryPolicy::new(1).backoff(
                11.0,
                std::time::Duration::ZERO,
                std::time::Duration::from_secs(1),
            ))
            .apply(&FunctionOptions::DEFAULT)
            .unwrap_err();
        assert!(err.contains("`backoff_coefficient` is 11"), "{err}");
    }

    #[test]
    fn resource_pairs_are_overridden_whole() {
        let base = FunctionOptions {
            cpu: Some(1.0),
            cpu_limit: Some(2.0),
            memory_mib: Some(512),
            memory_limit_mib: Some(1024),
            ..FunctionOptions::DEFAULT
        };
        base.validate().unwrap();
        assert_eq!(base.cpu_limit_cores(), Some(2.0));
        assert_eq!(base.memory_request_bytes(), Some(512 << 20));
        assert_eq!(base.memory_limit_bytes(), Some(1 << 30));
        // One value replaces the pair: its limit is the value.
        let o = ClsOptions::new()
            .cpu(4.0)
            .memory(2048)
            .apply(&base)
            .unwrap();
        assert_eq!(
            (o.cpu, o.cpu_limit, o.cpu_limit_cores()),
            (Some(4.0), None, Some(4.0))
        );
        assert_eq!(o.memory_limit_mib, None);
        assert_eq!(o.memory_limit_bytes(), Some(2 << 30));
        // Stacked the same way: the later setter's pair, or single value, wins.
        let stacked = ClsOptions::new()
            .cpu_limits(0.5, 8.0)
            .memory_limits(256, 4096)
            .stack(&ClsOptions::new().cpu(3.0));
        let o = stacked.apply(&base).unwrap();
        assert_eq!((o.cpu, o.cpu_limit), (Some(3.0), None));
        assert_eq!((o.memory_mib, o.memory_limit_mib), (Some(256), Some(4096)));
        let err = ClsOptions::new()
            .cpu_limits(2.0, 0.5)
            .apply(&FunctionOptions::DEFAULT)
            .unwrap_err();
        assert!(
            err.starts_with("`cpu = (2, 0.5)`: the limit (0.5) is below"),
            "{err}"
        );
        let err = ClsOptions::new()
            .memory_limits(1024, 5 << 20)
            .apply(&FunctionOptions::DEFAULT)
            .unwrap_err();
        assert!(
            err.starts_with("the `memory` limit is 5242880 MiB"),
            "{err}"
        );
        // Without any: nothing to enforce.
        let none = FunctionOptions::DEFAULT;
        assert_eq!(
            (none.cpu_limit_cores(), none.memory_limit_bytes()),
            (None, None)
        );
        // A limit alone, from a manifest or hand-made overrides, is refused.
        let lone = FunctionOptions {
            cpu_limit: Some(2.0),
            ..FunctionOptions::DEFAULT
        };
        assert!(lone.validate().unwrap_err().contains("without a request"));
        let overrides: ClsOptions = serde_json::from_str(r#"{"memory_limit_mib": 64}"#).unwrap();
        let err = overrides.apply(&FunctionOptions::DEFAULT).unwrap_err();
        assert!(err.contains("needs its request"), "{err}");
    }

    #[test]
    fn gpu_and_image_are_checked_and_gpu_normalised() {
        let o = ClsOptions::new()
            .gpu("h100:2")
            .image("ghcr.io/org/app:v1")
            .apply(&FunctionOptions::DEFAULT)
            .unwrap();
        assert_eq!(o.gpu.as_deref(), Some("H100:2"));
        assert_eq!(
            o.gpu_request(),
            Some(GpuRequest {
                kind: Some("H100".into()),
                count: 2
            })
        );
        assert_eq!(o.image.as_deref(), Some("ghcr.io/org/app:v1"));
        assert_eq!(FunctionOptions::DEFAULT.gpu_request(), None);
        let err = ClsOptions::new()
            .gpu("A100:0")
            .apply(&FunctionOptions::DEFAULT)
            .unwrap_err();
        assert!(err.contains("the count after `:` is `0`"), "{err}");
        let err = ClsOptions::new()
            .image("Ubuntu")
            .apply(&FunctionOptions::DEFAULT)
            .unwrap_err();
        assert!(err.contains("not a valid image reference"), "{err}");
        // From a manifest, where the macro did not check them.
        let bad = FunctionOptions {
            gpu: Some(Cow::Borrowed("any:9")),
            ..FunctionOptions::DEFAULT
        };
        assert!(bad.validate().unwrap_err().starts_with("`gpu = \"any:9\"`"));
        assert_eq!(bad.gpu_request(), None);
        let bad = FunctionOptions {
            image: Some(Cow::Borrowed("app:")),
            ..FunctionOptions::DEFAULT
        };
        assert!(bad.validate().unwrap_err().contains("the tag ``"));
    }

    #[test]
    fn options_without_the_newer_fields_still_parse() {
        let mut json = serde_json::to_value(FunctionOptions::DEFAULT).unwrap();
        let fields = json.as_object_mut().unwrap();
        for newer in ["image", "cpu_limit", "memory_limit_mib"] {
            assert!(fields.remove(newer).is_some(), "{newer}");
        }
        let parsed: FunctionOptions = serde_json::from_value(json).unwrap();
        assert_eq!(parsed, FunctionOptions::DEFAULT);
        let overrides: ClsOptions = serde_json::from_str(r#"{"cpu": 2.0}"#).unwrap();
        assert_eq!(overrides, ClsOptions::new().cpu(2.0));
    }

    #[test]
    fn out_of_bounds_values_are_named() {
        let err = ClsOptions::new()
            .retries(11)
            .apply(&FunctionOptions::DEFAULT)
            .unwrap_err();
        assert!(err.contains("`retries` is 11"), "{err}");
        let err = ClsOptions::new()
            .concurrency(4, 5)
            .apply(&FunctionOptions::DEFAULT)
            .unwrap_err();
        assert!(err.contains("`target_inputs` is 5"), "{err}");
        let err = ClsOptions::new()
            .volumes([("data", "v")])
            .apply(&FunctionOptions::DEFAULT)
            .unwrap_err();
        assert!(err.contains("must be absolute"), "{err}");
    }
}
