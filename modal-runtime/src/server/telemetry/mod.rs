//! What the control plane tells operators about its work: Prometheus
//! metrics (`metrics.rs`, served at `/metrics`) and the last inputs that
//! ended (`recent.rs`, for the dashboard).
//!
//! The control plane owns one [`Telemetry`]; each pool holds a
//! [`PoolTelemetry`], its function's metric handles resolved once, so
//! that an input's outcome costs a few atomic additions and a share of
//! one lock per message of outcomes.

mod metrics;
mod recent;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use prometheus::core::Collector;
use prometheus::{Histogram, IntCounter, Registry};

use crate::proto::{self, FailureKind, outcome};
use crate::server::access::names::{app_name_of, environment_of};

pub(crate) use metrics::{Load, commit_seconds};
pub use recent::RecentCall;
use recent::{Entry, RECENT_CALLS, RecentCalls};

/// How a caller made a call: the `kind` of `modal_calls_total` and of a
/// recent call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    Remote,
    Spawn,
    /// One input of a map or a spawned map.
    Map,
    Generator,
    /// A request to a web endpoint.
    Web,
}

impl CallKind {
    pub(crate) const ALL: [CallKind; 5] = [
        CallKind::Remote,
        CallKind::Spawn,
        CallKind::Map,
        CallKind::Generator,
        CallKind::Web,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CallKind::Remote => "remote",
            CallKind::Spawn => "spawn",
            CallKind::Map => "map",
            CallKind::Generator => "generator",
            CallKind::Web => "web",
        }
    }
}

/// How an input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Succeeded,
    Failed(FailureKind),
}

impl Ending {
    pub(crate) fn of(outcome: &proto::Outcome) -> Ending {
        match &outcome.result {
            Some(outcome::Result::Value(_) | outcome::Result::ValueBlob(_)) => Ending::Succeeded,
            Some(outcome::Result::Failure(f)) => {
                Ending::Failed(FailureKind::try_from(f.kind).unwrap_or(FailureKind::Unspecified))
            }
            None => Ending::Failed(FailureKind::Unspecified),
        }
    }

    /// `succeeded`, or the failure kind's label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Ending::Succeeded => "succeeded",
            Ending::Failed(kind) => failure_label(kind),
        }
    }
}

/// A failure kind as a label value: its name in the protocol, in lower case.
pub(crate) fn failure_label(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Unspecified => "unspecified",
        FailureKind::UserError => "user_error",
        FailureKind::Panic => "panic",
        FailureKind::BadInput => "bad_input",
        FailureKind::BadOutput => "bad_output",
        FailureKind::ContainerCrashed => "container_crashed",
        FailureKind::ContainerStart => "container_start",
        FailureKind::AppStopped => "app_stopped",
        FailureKind::Timeout => "timeout",
        FailureKind::Cancelled => "cancelled",
        FailureKind::OutOfMemory => "out_of_memory",
    }
}

/// The failure kinds, by their protocol number.
const FAILURE_KINDS: usize = FailureKind::OutOfMemory as usize + 1;

/// The control plane's metrics and recent calls.
pub(crate) struct Telemetry {
    registry: Registry,
    metrics: Arc<metrics::Metrics>,
    recent: Arc<RecentCalls>,
}

impl Telemetry {
    pub(crate) fn new() -> Telemetry {
        let registry = Registry::new();
        let metrics = metrics::Metrics::register(&registry)
            .expect("the metrics have distinct names and valid options");
        Telemetry {
            registry,
            metrics: Arc::new(metrics),
            recent: Arc::new(RecentCalls::new(RECENT_CALLS)),
        }
    }

    /// Exports what `collector` collects too (the store's commit times).
    pub(crate) fn register(&self, collector: impl Collector + 'static) {
        if let Err(e) = self.registry.register(Box::new(collector)) {
            tracing::error!("a metric could not be registered: {e}");
        }
    }

    /// Exports the queue, running and container gauges of what `loads`
    /// returns, asked at each scrape.
    pub(crate) fn watch_pools(&self, loads: impl Fn() -> Vec<Load> + Send + Sync + 'static) {
        self.register(metrics::PoolGauges::new(Box::new(loads)));
    }

    /// A call was accepted (the web ingress counts its requests here).
    pub(crate) fn call_started(&self, kind: CallKind) {
        self.metrics.calls[kind as usize].inc();
    }

    /// `inputs` inputs of a map were accepted.
    pub(crate) fn map_inputs_started(&self, inputs: usize) {
        self.metrics.calls[CallKind::Map as usize].inc_by(inputs as u64);
    }

    /// The handles of function `function` of app `app` (as the catalog
    /// keys it), with `methods` for a class.
    pub(crate) fn pool(&self, app: &str, function: &str, methods: &[String]) -> Arc<PoolTelemetry> {
        let labels = [
            environment_of(app).to_owned(),
            app_name_of(app).to_owned(),
            function.to_owned(),
        ];
        let pool_labels = labels.each_ref().map(String::as_str);
        let starts = |outcome: &str| {
            let [environment, app, function] = pool_labels;
            self.metrics
                .container_starts
                .with_label_values(&[environment, app, function, outcome])
        };
        let method_names: Vec<&str> = if methods.is_empty() {
            vec![""]
        } else {
            methods.iter().map(String::as_str).collect()
        };
        let methods = method_names
            .into_iter()
            .map(|method| {
                let call_name = if method.is_empty() {
                    function.to_owned()
                } else {
                    format!("{function}.{method}")
                };
                let labels = [pool_labels[0], pool_labels[1], call_name.as_str()];
                MethodTelemetry {
                    method: method.to_owned(),
                    succeeded: self.metrics.succeeded.with_label_values(&labels),
                    exec_seconds: self.metrics.exec_seconds.with_label_values(&labels),
                    failed: std::array::from_fn(|_| OnceLock::new()),
                    call_name: call_name.into(),
                }
            })
            .collect();
        Arc::new(PoolTelemetry {
            metrics: self.metrics.clone(),
            recent: self.recent.clone(),
            app: app.into(),
            started: starts("started"),
            start_failed: starts("start_failed"),
            cold_start_seconds: self
                .metrics
                .cold_start_seconds
                .with_label_values(&pool_labels),
            labels,
            methods,
        })
    }

    /// Every metric, in Prometheus' text format.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        if let Err(e) =
            prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text)
        {
            tracing::error!("the metrics could not be written: {e}");
        }
        text
    }

    /// At most `limit` of the last inputs that ended, newest first; of app
    /// `app` only (as the catalog keys it) when given.
    pub(crate) fn recent_calls(&self, app: Option<&str>, limit: usize) -> Vec<RecentCall> {
        self.recent.newest(app, limit)
    }
}

/// One function's (or class's) metric handles and its share of the recent
/// calls; a class's instances share their class's.
pub(crate) struct PoolTelemetry {
    metrics: Arc<metrics::Metrics>,
    recent: Arc<RecentCalls>,
    /// The app as the catalog keys it.
    app: Arc<str>,
    /// Environment, app name, function (or class) name.
    labels: [String; 3],
    /// One per method; one, unnamed, for a function.
    methods: Vec<MethodTelemetry>,
    started: IntCounter,
    start_failed: IntCounter,
    cold_start_seconds: Histogram,
}

struct MethodTelemetry {
    method: String,
    /// `square`, `Model.predict`: the `function` label of its inputs.
    call_name: Arc<str>,
    succeeded: IntCounter,
    exec_seconds: Histogram,
    /// By failure kind, made at its first failure of that kind.
    failed: [OnceLock<IntCounter>; FAILURE_KINDS],
}

/// An input that ended: what its telemetry needs of it.
pub(crate) struct Ended<'a> {
    pub method: &'a str,
    pub kind: CallKind,
    pub accepted: Instant,
    pub ending: Ending,
}

impl PoolTelemetry {
    /// Environment, app and function labels, as the gauges name this pool.
    pub(crate) fn labels(&self) -> [String; 3] {
        self.labels.clone()
    }

    fn method(&self, method: &str) -> &MethodTelemetry {
        // A function has one: no name to compare for each of its inputs.
        if let [only] = self.methods.as_slice() {
            return only;
        }
        self.methods
            .iter()
            .find(|m| m.method == method)
            .unwrap_or(&self.methods[0])
    }

    /// An attempt of `method` ran `exec_us` in its container.
    pub(crate) fn ran(&self, method: &str, exec_us: u64) {
        self.method(method)
            .exec_seconds
            .observe(exec_us as f64 / 1e6);
    }

    /// Inputs that ended together, on container `container_id` (empty for
    /// inputs no container ran): counted, and kept among the recent calls.
    pub(crate) fn ended<'a>(
        &self,
        container_id: &str,
        inputs: impl IntoIterator<Item = Ended<'a>>,
    ) {
        let mut inputs = inputs.into_iter().peekable();
        // Dispatching asks with nothing most of the time: that costs nothing.
        if inputs.peek().is_none() {
            return;
        }
        let container: Arc<str> = container_id.into();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let entries = inputs
            .map(|input| {
                let method = self.method(input.method);
                match input.ending {
                    Ending::Succeeded => method.succeeded.inc(),
                    Ending::Failed(kind) => method.failed[kind as usize]
                        .get_or_init(|| {
                            let [environment, app, _] = &self.labels;
                            self.metrics.failed.with_label_values(&[
                                environment.as_str(),
                                app,
                                &method.call_name,
                                failure_label(kind),
                            ])
                        })
                        .inc(),
                }
                let duration = now.saturating_duration_since(input.accepted);
                Entry {
                    app: self.app.clone(),
                    function: method.call_name.clone(),
                    kind: input.kind,
                    ending: input.ending,
                    started_at: wall.checked_sub(duration).unwrap_or(wall),
                    duration,
                    container: container.clone(),
                }
            })
            .collect();
        self.recent.push(entries);
    }

    /// A container became ready for inputs, `after` its start was asked for.
    pub(crate) fn container_ready(&self, after: Duration) {
        self.started.inc();
        self.cold_start_seconds.observe(after.as_secs_f64());
    }

    /// A container ended before it was ready.
    pub(crate) fn container_start_failed(&self) {
        self.start_failed.inc();
    }

    /// Stops exporting this function's series (its app is gone for good:
    /// an ephemeral app, whose name is never used again).
    pub(crate) fn forget(&self) {
        let [environment, app, function] = self.labels.each_ref().map(String::as_str);
        let m = &self.metrics;
        for outcome in ["started", "start_failed"] {
            let _ = m
                .container_starts
                .remove_label_values(&[environment, app, function, outcome]);
        }
        let _ = m
            .cold_start_seconds
            .remove_label_values(&[environment, app, function]);
        for method in &self.methods {
            let labels = [environment, app, &method.call_name];
            let _ = m.succeeded.remove_label_values(&labels);
            let _ = m.exec_seconds.remove_label_values(&labels);
            for (kind, counter) in method.failed.iter().enumerate() {
                if counter.get().is_some() {
                    let kind = FailureKind::try_from(kind as i32).unwrap_or_default();
                    let _ = m.failed.remove_label_values(&[
                        environment,
                        app,
                        &method.call_name,
                        failure_label(kind),
                    ]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(method: &str, ending: Ending) -> Ended<'_> {
        Ended {
            method,
            kind: CallKind::Remote,
            accepted: Instant::now(),
            ending,
        }
    }

    #[test]
    fn outcomes_are_counted_by_call_and_kind_and_kept() {
        let telemetry = Telemetry::new();
        let model = telemetry.pool("staging/shop", "Model", &["predict".into(), "fit".into()]);
        model.ended(
            "c-1",
            [
                ended("predict", Ending::Succeeded),
                ended("predict", Ending::Failed(FailureKind::Timeout)),
                ended("fit", Ending::Failed(FailureKind::Timeout)),
                ended("fit", Ending::Failed(FailureKind::OutOfMemory)),
            ],
        );
        model.ran("fit", 1_500);
        model.container_ready(Duration::from_millis(20));
        model.container_start_failed();
        telemetry.call_started(CallKind::Web);
        telemetry.map_inputs_started(3);
        let text = telemetry.render();
        for line in [
            r#"modal_inputs_succeeded_total{app="shop",environment="staging",function="Model.predict"} 1"#,
            r#"modal_inputs_failed_total{app="shop",environment="staging",function="Model.predict",kind="timeout"} 1"#,
            r#"modal_inputs_failed_total{app="shop",environment="staging",function="Model.fit",kind="out_of_memory"} 1"#,
            r#"modal_input_exec_seconds_count{app="shop",environment="staging",function="Model.fit"} 1"#,
            r#"modal_container_starts_total{app="shop",environment="staging",function="Model",outcome="started"} 1"#,
            r#"modal_container_starts_total{app="shop",environment="staging",function="Model",outcome="start_failed"} 1"#,
            r#"modal_container_cold_start_seconds_count{app="shop",environment="staging",function="Model"} 1"#,
            r#"modal_calls_total{kind="web"} 1"#,
            r#"modal_calls_total{kind="map"} 3"#,
            r#"modal_calls_total{kind="remote"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        let recent = telemetry.recent_calls(Some("staging/shop"), 10);
        assert_eq!(recent.len(), 4);
        assert_eq!(recent[0].function, "Model.fit");
        assert_eq!(recent[0].state, "out_of_memory");
        assert_eq!(recent[0].container_id, "c-1");
        assert_eq!(recent[3].state, "succeeded");
        assert_eq!(recent[3].kind, "remote");
        assert!(telemetry.recent_calls(Some("shop"), 10).is_empty());

        // A forgotten (ephemeral) app's series go.
        model.forget();
        let text = telemetry.render();
        assert!(!text.contains(r#"app="shop""#), "{text}");
    }

    #[test]
    fn two_pools_of_one_function_add_up_and_gauges_are_read_when_scraped() {
        let telemetry = Telemetry::new();
        let v1 = telemetry.pool("shop", "f", &[]);
        let v2 = telemetry.pool("shop", "f", &[]);
        v1.ended("c-1", [ended("", Ending::Succeeded)]);
        v2.ended("c-2", [ended("", Ending::Succeeded)]);
        let queued = Arc::new(std::sync::atomic::AtomicU64::new(7));
        let reading = queued.clone();
        telemetry.watch_pools(move || {
            let queued = reading.load(std::sync::atomic::Ordering::Relaxed);
            vec![
                Load {
                    labels: ["main".into(), "shop".into(), "f".into()],
                    queued,
                    running: 1,
                    containers: 1,
                },
                Load {
                    labels: ["main".into(), "shop".into(), "f".into()],
                    queued: 1,
                    running: 0,
                    containers: 1,
                },
            ]
        });
        let text = telemetry.render();
        assert!(
            text.contains(
                r#"modal_inputs_succeeded_total{app="shop",environment="main",function="f"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"modal_inputs_queued{app="shop",environment="main",function="f"} 8"#),
            "{text}"
        );
        assert!(
            text.contains(r#"modal_containers{app="shop",environment="main",function="f"} 2"#),
            "{text}"
        );
        queued.store(0, std::sync::atomic::Ordering::Relaxed);
        assert!(
            telemetry
                .render()
                .contains(r#"modal_inputs_queued{app="shop",environment="main",function="f"} 1"#)
        );
    }

    #[test]
    fn every_failure_kind_has_a_label_and_unknown_ones_are_unspecified() {
        for n in 0..FAILURE_KINDS as i32 {
            let kind = FailureKind::try_from(n).unwrap();
            assert!(!failure_label(kind).is_empty());
        }
        let strange = proto::Outcome {
            result: Some(outcome::Result::Failure(proto::Failure {
                kind: 999,
                ..Default::default()
            })),
        };
        assert_eq!(Ending::of(&strange).label(), "unspecified");
        assert_eq!(
            Ending::of(&proto::Outcome::default()).label(),
            "unspecified"
        );
    }
}
