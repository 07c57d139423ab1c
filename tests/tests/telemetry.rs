//! Telemetry end to end: `/metrics` scraped over HTTP after real calls on
//! real containers, and one trace id seen by a caller and inside the
//! container that ran its call.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use modal_runtime::server::{MetricsToken, Server, ServerConfig};
use modal_runtime::trace::{self, TraceParent};
use modal_runtime::{Client, Function};
use modal_tests::*;
use tracing::instrument::WithSubscriber as _;

/// A control plane of this test's own, so that no other test's calls
/// count in its metrics.
async fn own_server(what: &str, metrics_token: Option<&str>) -> Server {
    let mut config = ServerConfig::new(scratch_dir(what));
    config.heartbeat_interval = Duration::from_millis(200);
    config.heartbeat_timeout = Duration::from_millis(1500);
    config.stop_grace = Duration::from_secs(2);
    config.metrics_token = metrics_token.map(|t| MetricsToken::new(t).unwrap());
    Server::start(config).await.unwrap()
}

async fn scrape(server: &Server) -> prometheus_parse::Scrape {
    let url = format!("{}/metrics", server.http_url().unwrap());
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the sample of `metric` with exactly these labels (and
/// whatever others), if there is one; a histogram's is its count.
fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let sample = scrape.samples.iter().find(|s| {
        s.metric == metric
            && labels
                .iter()
                .all(|(name, value)| s.labels.get(name) == Some(*value))
    })?;
    Some(match &sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        prometheus_parse::Value::Histogram(buckets) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map(|b| b.count)
            .unwrap(),
        other => panic!("{metric}: unexpected {other:?}"),
    })
}

#[tokio::test]
async fn metrics_count_every_outcome_of_a_map_and_its_containers() {
    let server = own_server("telemetry-metrics", None).await;
    let app = "telemetry";
    let client = deploy(server.url(), app).await;
    let f: Function<(u64,), u64> = client.function(app, "fail_on_tens");
    let results: Vec<_> = f
        .map((0..1_000_u64).map(|x| (x,)))
        .return_exceptions(true)
        .collect::<Vec<_>>()
        .await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    assert_eq!(failed, 100);
    assert_eq!(f.remote((7,)).await.unwrap(), 7);
    let call = f.spawn((9,)).await.unwrap();
    assert_eq!(call.get(Some(Duration::from_secs(30))).await.unwrap(), 9);

    let metrics = scrape(&server).await;
    let function = [
        ("environment", "main"),
        ("app", app),
        ("function", "fail_on_tens"),
    ];
    let with = |more: (&'static str, &'static str)| {
        let mut labels = function.to_vec();
        labels.push(more);
        labels
    };
    assert_eq!(
        value(&metrics, "modal_inputs_succeeded_total", &function),
        Some(902.0)
    );
    assert_eq!(
        value(
            &metrics,
            "modal_inputs_failed_total",
            &with(("kind", "user_error"))
        ),
        Some(100.0)
    );
    assert_eq!(
        value(&metrics, "modal_calls_total", &[("kind", "map")]),
        Some(1_000.0)
    );
    assert_eq!(
        value(&metrics, "modal_calls_total", &[("kind", "remote")]),
        Some(1.0)
    );
    assert_eq!(
        value(&metrics, "modal_calls_total", &[("kind", "spawn")]),
        Some(1.0)
    );
    assert_eq!(
        value(&metrics, "modal_calls_total", &[("kind", "web")]),
        Some(0.0)
    );
    // Every attempt's run time, one attempt each (no retries).
    assert_eq!(
        value(&metrics, "modal_input_exec_seconds", &function),
        Some(1_002.0)
    );
    let started = value(
        &metrics,
        "modal_container_starts_total",
        &with(("outcome", "started")),
    )
    .unwrap();
    assert!(started >= 1.0, "{started}");
    let cold_starts = value(&metrics, "modal_container_cold_start_seconds", &function).unwrap();
    assert_eq!(cold_starts, started);
    // Read from the pools at the scrape: nothing is waiting now, and the
    // containers that ran the map are still there (idle).
    assert_eq!(value(&metrics, "modal_inputs_queued", &function), Some(0.0));
    assert_eq!(
        value(&metrics, "modal_inputs_running", &function),
        Some(0.0)
    );
    assert!(value(&metrics, "modal_containers", &function).unwrap() >= 1.0);
    // The deploy and the spawn were committed to the SQLite store.
    assert!(value(&metrics, "modal_store_commit_seconds", &[]).unwrap() >= 2.0);
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let token = "scrape-token-0123456789";
    let server = own_server("telemetry-token", Some(token)).await;
    let url = format!("{}/metrics", server.http_url().unwrap());
    let http = reqwest::Client::new();
    let refused = http.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let wrong = http
        .get(&url)
        .bearer_auth("not-the-token-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let text = wrong.text().await.unwrap();
    assert!(!text.contains(token), "{text}");
    let scraped = http.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("modal_calls_total"));
    server.shutdown().await;
}

#[tokio::test]
async fn two_control_planes_in_one_process_keep_their_metrics_apart() {
    let (a, b) = (
        own_server("telemetry-a", None).await,
        own_server("telemetry-b", None).await,
    );
    let client = deploy(a.url(), "apart").await;
    let f: Function<(u64,), u64> = client.function("apart", "square");
    assert_eq!(f.remote((3,)).await.unwrap(), 9);
    let labels = [("kind", "remote")];
    assert_eq!(
        value(&scrape(&a).await, "modal_calls_total", &labels),
        Some(1.0)
    );
    assert_eq!(
        value(&scrape(&b).await, "modal_calls_total", &labels),
        Some(0.0)
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// The fields of the `modal.call` spans made while it listens.
#[derive(Clone, Default)]
struct CallSpans(Arc<Mutex<Vec<(String, String)>>>);

/// Collects fields as text.
struct Fields<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S> tracing_subscriber::Layer<S> for CallSpans
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if attrs.metadata().name() == "modal.call" {
            attrs.record(&mut Fields(&mut self.0.lock().unwrap()));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if ctx.span(id).is_some_and(|span| span.name() == "modal.call") {
            values.record(&mut Fields(&mut self.0.lock().unwrap()));
        }
    }
}

impl CallSpans {
    fn field(&self, name: &str) -> Vec<String> {
        let fields = self.0.lock().unwrap();
        fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// Waits for a line of app `APP`'s containers that holds every one of
/// `needles`, and returns it.
async fn log_line_with(client: &Client, needles: &[&str]) -> String {
    let mut logs = client.stream_logs(APP, true).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Ok(Some(batch)) = tokio::time::timeout(Duration::from_secs(30), logs.next()).await
        else {
            break;
        };
        for line in batch.unwrap().lines {
            if needles.iter().all(|n| line.text.contains(n)) {
                return line.text;
            }
        }
    }
    panic!("no container logged a line with {needles:?}");
}

#[tokio::test]
async fn a_caller_s_trace_runs_on_into_the_container() {
    // A trace the caller set: the input runs in it, async or blocking.
    let parent = TraceParent::new_root();
    let seen = trace::scope(parent, on(trace_id_seen::from_name).remote("scoped".into()))
        .await
        .unwrap();
    assert_eq!(seen, parent.trace_id().to_string());
    let seen = trace::scope(
        parent,
        on(trace_id_seen_blocking::from_name).remote("scoped-blocking".into()),
    )
    .await
    .unwrap();
    assert_eq!(seen, parent.trace_id().to_string());
    // A map's inputs all run in its trace.
    let seen: Vec<String> = trace::scope(
        parent,
        on(trace_id_seen::from_name)
            .map((0..20).map(|i| format!("map-{i}")))
            .collect_vec(),
    )
    .await
    .unwrap();
    assert!(
        seen.iter().all(|id| *id == parent.trace_id().to_string()),
        "{seen:?}"
    );
}

/// A subscriber recording into `spans`, for one future
/// (`with_subscriber`).
///
/// `tracing` caches whether a callsite is enabled, from the subscribers
/// alive when it is first reached. Other tests of this binary reach the
/// same callsites on other threads with no subscriber of their own, which
/// could cache "never" while this one was being made. A global subscriber
/// that records nothing, set once, keeps every callsite's cache at
/// "enabled", so that the subscriber of the moment decides.
fn scoped(spans: &CallSpans) -> tracing::Dispatch {
    use tracing_subscriber::layer::SubscriberExt as _;
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(spans.clone()));
    tracing::callsite::rebuild_interest_cache();
    dispatch
}

#[tokio::test]
async fn a_call_s_span_and_its_input_s_span_share_a_trace_id() {
    // No trace set: the call starts one, recorded on its `modal.call` span.
    let spans = CallSpans::default();
    let subscriber = scoped(&spans);
    let tag = format!("unscoped-{}", std::process::id());
    let seen = on(trace_id_seen::from_name)
        .remote(tag.clone())
        .with_subscriber(subscriber)
        .await
        .unwrap();
    let trace_ids = spans.field("trace_id");
    assert_eq!(
        trace_ids,
        std::slice::from_ref(&seen),
        "{:?}",
        spans.0.lock().unwrap()
    );
    assert_eq!(seen.len(), 32);
    assert_eq!(spans.field("function"), ["trace_id_seen"]);
    assert_eq!(spans.field("kind"), ["remote"]);
    // What the container logged during the input names its trace.
    let client = common::connect(&env().url).await.unwrap();
    let line = log_line_with(&client, &["traced input", &tag]).await;
    assert!(line.starts_with(&format!("trace_id={seen} ")), "{line}");
    // Another call starts another trace.
    let again = on(trace_id_seen::from_name)
        .remote("again".into())
        .await
        .unwrap();
    assert_ne!(again, seen);
}

#[tokio::test]
async fn the_input_s_span_names_the_trace_and_the_caller_s_span() {
    let spans = CallSpans::default();
    let subscriber = scoped(&spans);
    let tag = format!("in-span-{}", std::process::id());
    let seen = on(trace_id_seen_in_span::from_name)
        .remote(tag.clone())
        .with_subscriber(subscriber)
        .await
        .unwrap();
    assert_eq!(spans.field("trace_id"), std::slice::from_ref(&seen));
    let call_span = spans.field("span_id").pop().unwrap();
    // Its containers log the DEBUG `modal.input` span: the trace, and as
    // its parent the caller's `modal.call` span.
    let client = common::connect(&env().url).await.unwrap();
    let line = log_line_with(&client, &["traced input", &tag]).await;
    let plain = strip_ansi(&line);
    assert!(plain.contains("modal.input{"), "{plain}");
    for (field, value) in [("trace_id", &seen), ("parent_span_id", &call_span)] {
        assert!(
            plain.contains(&format!("{field}={value}")),
            "{field}={value} missing from {plain}"
        );
    }
}

/// `line` without its terminal colours.
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An escape runs to its final letter (`m`).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[tokio::test]
async fn a_malformed_traceparent_is_refused_saying_why() {
    use modal_runtime::proto;
    env();
    let mut raw = raw_admin(&env().url).await;
    let info = raw
        .lookup_function(proto::LookupFunctionRequest {
            app: APP.into(),
            name: "square".into(),
            version: None,
        })
        .await
        .unwrap()
        .into_inner();
    let args = modal_runtime::codec::encode(&(3_u64,)).unwrap();
    for bad in [
        "00-zz".to_owned(),
        "x".repeat(70_000),
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01".to_owned(),
    ] {
        let status = raw
            .invoke(proto::InvokeRequest {
                function_id: info.function_id,
                args: args.clone(),
                traceparent: bad.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("traceparent"), "{status:?}");
        assert!(status.message().len() < 300, "{status:?}");
    }
    // A well-formed one is taken.
    let reply = raw
        .invoke(proto::InvokeRequest {
            function_id: info.function_id,
            args,
            traceparent: TraceParent::new_root().header(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(
        reply.result,
        Some(proto::outcome::Result::Value(_))
    ));
}
