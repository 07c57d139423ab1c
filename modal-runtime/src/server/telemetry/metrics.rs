//! The control plane's Prometheus metrics: their names, labels and
//! buckets, in one registry per control plane (never the process's global
//! one, so that two control planes in one process keep theirs apart).
//!
//! Counters and histograms are counted where things happen, through
//! handles each pool resolves once (`PoolTelemetry`); the queue and running
//! gauges are read from the pools at scrape time ([`PoolGauges`]), so no
//! state is kept twice.

use std::sync::Mutex;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

use super::CallKind;

/// Labels of everything counted per function.
pub(super) const FUNCTION_LABELS: [&str; 3] = ["environment", "app", "function"];

/// Seconds an attempt ran in its container.
const EXEC_BUCKETS: &[f64] = &[
    0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 3600.0,
];
/// Seconds from a container's start to its first input.
const COLD_START_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Seconds one group commit of the store takes.
pub(crate) const COMMIT_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Every metric counted as things happen.
pub(super) struct Metrics {
    /// By [`CallKind`], in its order.
    pub calls: [IntCounter; CallKind::ALL.len()],
    pub succeeded: IntCounterVec,
    /// Labels: [`FUNCTION_LABELS`] and `kind`.
    pub failed: IntCounterVec,
    pub exec_seconds: HistogramVec,
    /// Labels: [`FUNCTION_LABELS`] and `outcome` (`started`, `start_failed`).
    pub container_starts: IntCounterVec,
    pub cold_start_seconds: HistogramVec,
}

impl Metrics {
    /// The metrics, registered in `registry`.
    pub(super) fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        let calls = IntCounterVec::new(
            Opts::new(
                "modal_calls_total",
                "Calls accepted, by kind (remote, spawn, map, generator, web); every input of a \
                 map counts as one",
            ),
            &["kind"],
        )?;
        let succeeded = IntCounterVec::new(
            Opts::new(
                "modal_inputs_succeeded_total",
                "Inputs that ended with a result (retried failures before it not counted)",
            ),
            &FUNCTION_LABELS,
        )?;
        let failed = IntCounterVec::new(
            Opts::new(
                "modal_inputs_failed_total",
                "Inputs that ended failed, after their retries, by failure kind",
            ),
            &[
                FUNCTION_LABELS[0],
                FUNCTION_LABELS[1],
                FUNCTION_LABELS[2],
                "kind",
            ],
        )?;
        let exec_seconds = HistogramVec::new(
            HistogramOpts::new(
                "modal_input_exec_seconds",
                "Time each attempt of an input ran in its container",
            )
            .buckets(EXEC_BUCKETS.to_vec()),
            &FUNCTION_LABELS,
        )?;
        let container_starts = IntCounterVec::new(
            Opts::new(
                "modal_container_starts_total",
                "Containers that became ready for inputs (outcome `started`) or ended before \
                 (`start_failed`)",
            ),
            &[
                FUNCTION_LABELS[0],
                FUNCTION_LABELS[1],
                FUNCTION_LABELS[2],
                "outcome",
            ],
        )?;
        let cold_start_seconds = HistogramVec::new(
            HistogramOpts::new(
                "modal_container_cold_start_seconds",
                "Time from a container's start being asked for to its being ready for inputs \
                 (a class's: after `enter`)",
            )
            .buckets(COLD_START_BUCKETS.to_vec()),
            &FUNCTION_LABELS,
        )?;
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(succeeded.clone()))?;
        registry.register(Box::new(failed.clone()))?;
        registry.register(Box::new(exec_seconds.clone()))?;
        registry.register(Box::new(container_starts.clone()))?;
        registry.register(Box::new(cold_start_seconds.clone()))?;
        Ok(Metrics {
            calls: CallKind::ALL.map(|kind| calls.with_label_values(&[kind.as_str()])),
            succeeded,
            failed,
            exec_seconds,
            container_starts,
            cold_start_seconds,
        })
    }
}

/// The store's commit-time histogram (it owns and observes it; the
/// registry only reads it).
pub(crate) fn commit_seconds() -> prometheus::Histogram {
    prometheus::Histogram::with_opts(
        HistogramOpts::new(
            "modal_store_commit_seconds",
            "Time one group commit of the store takes (one transaction for every write waiting)",
        )
        .buckets(COMMIT_BUCKETS.to_vec()),
    )
    .expect("the commit histogram's options are valid")
}

/// One pool's load now, with its function's labels.
pub(crate) struct Load {
    /// [`FUNCTION_LABELS`]' values.
    pub labels: [String; 3],
    pub queued: u64,
    pub running: u64,
    pub containers: u64,
}

/// The gauges read from the pools at each scrape.
pub(super) struct PoolGauges {
    loads: Box<dyn Fn() -> Vec<Load> + Send + Sync>,
    /// Behind a lock: two scrapes at once must not mix their values.
    gauges: Mutex<[IntGaugeVec; 3]>,
    descs: Vec<Desc>,
}

impl PoolGauges {
    pub(super) fn new(loads: Box<dyn Fn() -> Vec<Load> + Send + Sync>) -> PoolGauges {
        let gauge = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &FUNCTION_LABELS)
                .expect("the gauges' options are valid")
        };
        let gauges = [
            gauge("modal_inputs_queued", "Inputs waiting for a container"),
            gauge(
                "modal_inputs_running",
                "Inputs handed to containers and not yet answered",
            ),
            gauge(
                "modal_containers",
                "Containers starting, running or stopping",
            ),
        ];
        let descs = gauges
            .iter()
            .flat_map(|g| g.desc().into_iter().cloned())
            .collect();
        PoolGauges {
            loads,
            gauges: Mutex::new(gauges),
            descs,
        }
    }
}

impl Collector for PoolGauges {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let loads = (self.loads)();
        let gauges = self.gauges.lock().unwrap();
        for gauge in gauges.iter() {
            gauge.reset();
        }
        // Versions and class instances of one function add up.
        for load in loads {
            let labels = load.labels.each_ref().map(String::as_str);
            for (gauge, value) in gauges
                .iter()
                .zip([load.queued, load.running, load.containers])
            {
                gauge.with_label_values(&labels).add(value as i64);
            }
        }
        gauges.iter().flat_map(|g| g.collect()).collect()
    }
}
