//! Web endpoints end to end: real HTTP (reqwest) through the control
//! plane's ingress to container processes started from zero.

mod common;

use std::time::Duration;

use common::{scratch_dir, test_app};
use modal_runtime::server::{Server, ServerConfig};
use modal_runtime::{AppBinary, Client, Manifest};

const APP: &str = "web";

struct WebEnv {
    server: Server,
    client: Client,
    http: reqwest::Client,
}

impl WebEnv {
    async fn start() -> WebEnv {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tune: impl FnOnce(&mut ServerConfig)) -> WebEnv {
        let mut config = ServerConfig::new(scratch_dir("web"));
        config.heartbeat_interval = Duration::from_millis(200);
        config.heartbeat_timeout = Duration::from_millis(1500);
        config.stop_grace = Duration::from_secs(2);
        tune(&mut config);
        let server = Server::start(config).await.unwrap();
        let client = Client::connect(server.url()).await.unwrap();
        let env = WebEnv {
            server,
            client,
            http: reqwest::Client::new(),
        };
        env.deploy().await;
        env
    }

    async fn deploy(&self) -> u32 {
        let manifest = Manifest::read_from_binary(&test_app()).unwrap();
        self.client
            .create_app(APP, &manifest, AppBinary::LocalPath(&test_app()), false)
            .await
            .unwrap()
            .version
    }

    fn url(&self, label: &str) -> String {
        format!("{}/main/{APP}/{label}", self.server.web_base_url().unwrap())
    }

    fn token(&self) -> String {
        format!("Bearer {}", self.server.local_token())
    }

    async fn post(&self, label: &str, body: &str) -> reqwest::Response {
        self.http
            .post(self.url(label))
            .header("authorization", self.token())
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, label_and_query: &str) -> reqwest::Response {
        self.http
            .get(self.url(label_and_query))
            .header("authorization", self.token())
            .send()
            .await
            .unwrap()
    }
}

/// The status and the JSON error body's kind and message.
async fn failure(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    let error = &body["error"];
    (
        status,
        error["kind"].as_str().unwrap_or_default().to_owned(),
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_endpoint_answers_from_zero_containers_at_a_url_stable_across_redeploys() {
    let env = WebEnv::start().await;
    let square = env.client.function::<(u64,), u64>(APP, "web_square");
    let url = square
        .web_url()
        .await
        .unwrap()
        .expect("an endpoint has a URL");
    assert_eq!(url, env.url("square"));
    assert_eq!(
        square.get_current_stats().await.unwrap().num_total_runners,
        0
    );

    let response = env.post("square", "7").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "a JSON endpoint answers JSON"
    );
    assert_eq!(response.json::<u64>().await.unwrap(), 49);
    // Still an ordinary function for typed callers.
    assert_eq!(square.remote((5,)).await.unwrap(), 25);

    let second = env.deploy().await;
    assert!(second >= 2);
    let again = env.client.function::<(u64,), u64>(APP, "web_square");
    assert_eq!(again.web_url().await.unwrap(), Some(url.clone()));
    assert_eq!(
        env.post("square", "9").await.json::<u64>().await.unwrap(),
        81
    );

    // A function that is not an endpoint has no URL.
    let plain = env.client.function::<(u64,), u64>(APP, "square");
    assert_eq!(plain.web_url().await.unwrap(), None);
    assert_eq!(plain.get_web_url().await.unwrap(), None);
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_way_a_request_fails_has_its_status_and_a_json_error() {
    let env = WebEnv::start_with(|c| c.web_max_body_bytes = 1024).await;

    let (status, kind, message) = failure(env.post("square", r#""seven""#).await).await;
    assert_eq!((status, kind.as_str()), (400, "bad_input"), "{message}");
    assert!(message.contains("argument `x`"), "{message}");

    let (status, kind, message) = failure(env.get("item?id=2").await).await;
    assert_eq!((status, kind.as_str()), (404, "http_error"));
    assert_eq!(message, "no item 2");
    let found: serde_json::Value = env.get("item?id=1").await.json().await.unwrap();
    assert_eq!(found, serde_json::json!({"id": 1, "name": "one"}));

    let (status, kind, message) = failure(env.post("fail", r#""no""#).await).await;
    assert_eq!((status, kind.as_str()), (500, "user_error"));
    assert!(message.contains("refused: no"), "{message}");

    let (status, kind, message) = failure(env.post("panic", "").await).await;
    assert_eq!((status, kind.as_str()), (500, "panic"));
    assert!(message.contains("the endpoint panicked"), "{message}");

    let (status, kind, _) = failure(env.post("slow", "3000").await).await;
    assert_eq!((status, kind.as_str()), (504, "timeout"));
    assert_eq!(env.post("slow", "1").await.json::<u64>().await.unwrap(), 1);

    let wrong_method = env.get("square").await;
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(wrong_method.headers()["allow"], "POST");

    let (status, _, message) = failure(env.post("nope", "1").await).await;
    assert_eq!(status, 404);
    assert!(message.contains("no endpoint `nope`"), "{message}");
    let (status, _, message) = failure(
        env.http
            .post(format!(
                "{}/main/ghost/square",
                env.server.web_base_url().unwrap()
            ))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(message.contains("no app `ghost`"), "{message}");

    let big = "1".repeat(2048);
    let (status, kind, _) = failure(env.post("square", &big).await).await;
    assert_eq!((status, kind.as_str()), (413, "payload_too_large"));
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_need_an_invoke_token_of_their_environment_unless_public() {
    let env = WebEnv::start().await;
    let bare = env
        .http
        .post(env.url("square"))
        .body("2")
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);
    assert!(bare.headers().contains_key("www-authenticate"));
    let (status, _, _) = failure(
        env.http
            .post(env.url("square"))
            .header("authorization", "Bearer not-a-token")
            .body("2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);

    env.client.create_environment("other").await.unwrap();
    let (_, elsewhere) = env
        .client
        .create_token("invoke", Some("other"), "web")
        .await
        .unwrap();
    let (status, kind, message) = failure(
        env.http
            .post(env.url("square"))
            .header("authorization", format!("Bearer {elsewhere}"))
            .body("2")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "permission_denied"),
        "{message}"
    );

    let (_, invoke) = env
        .client
        .create_token("invoke", None, "web")
        .await
        .unwrap();
    let ok = env
        .http
        .post(env.url("square"))
        .header("authorization", format!("Bearer {invoke}"))
        .body("4")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<u64>().await.unwrap(), 16);

    // Public: no token, arguments from the query.
    let add_url = env
        .client
        .function::<(i64, i64), i64>(APP, "web_add")
        .web_url()
        .await
        .unwrap()
        .unwrap();
    let sum = env
        .http
        .get(format!("{add_url}?a=40&b=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(sum.status(), 200);
    assert_eq!(sum.json::<i64>().await.unwrap(), 42);
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_endpoint_sees_the_request_as_sent_without_the_token() {
    let env = WebEnv::start().await;
    let response = env
        .http
        .put(format!("{}/a/b?q=1", env.url("echo")))
        .header("authorization", env.token())
        .header("x-probe", "probe")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-echo"], "yes");
    assert_eq!(
        response.text().await.unwrap(),
        "PUT /a/b?q=1 probe token=false body=hello"
    );
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generator_endpoint_streams_json_lines_or_server_sent_events() {
    let env = WebEnv::start().await;
    let lines = env.post("count", "4").await;
    assert_eq!(lines.status(), 200);
    assert_eq!(lines.headers()["content-type"], "application/x-ndjson");
    assert_eq!(lines.text().await.unwrap(), "0\n1\n2\n3\n");

    let events = env
        .http
        .post(env.url("count"))
        .header("authorization", env.token())
        .header("accept", "text/event-stream")
        .body("3")
        .send()
        .await
        .unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    assert_eq!(
        events.text().await.unwrap(),
        "data: 0\n\ndata: 1\n\ndata: 2\n\n"
    );
    let (status, kind, _) = failure(env.post("count", r#""many""#).await).await;
    assert_eq!((status, kind.as_str()), (400, "bad_input"));
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_app_answers_under_its_prefix_over_http1_and_http2() {
    let env = WebEnv::start().await;
    let root = env.get("api").await;
    assert_eq!(root.status(), 200);
    assert_eq!(root.text().await.unwrap(), "api root");

    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for client in [&env.http, &h2] {
        let response = client
            .post(format!("{}/items/7", env.url("api")))
            .header("authorization", env.token())
            .json(&serde_json::json!({"x": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.version());
        if std::ptr::eq(client, &h2) {
            assert_eq!(response.version(), reqwest::Version::HTTP_2);
        }
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["id"], 7);
        assert_eq!(body["got"], serde_json::json!({"x": 1}));
    }
    let missing = env.get("api/nothing-here").await;
    assert_eq!(missing.status(), 404, "the app's own 404");
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_endpoint_answers_503_with_retry_after_and_loses_nothing() {
    let env = WebEnv::start_with(|c| c.web_queue_limit = 2).await;
    let requests = (0..8).map(|_| env.post("hold", "1500"));
    let responses = futures::future::join_all(requests).await;
    let (mut ok, mut busy) = (0, 0);
    for response in responses {
        match response.status().as_u16() {
            200 => ok += 1,
            503 => {
                assert_eq!(response.headers()["retry-after"], "1");
                busy += 1;
            }
            other => panic!("a request ended with {other}"),
        }
    }
    assert!(ok >= 1 && busy >= 1, "{ok} answered, {busy} refused");
    assert_eq!(ok + busy, 8);
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_dies_mid_request_is_retried_or_named_in_a_502() {
    let env = WebEnv::start().await;
    let retried = env.post("crash-once", "").await;
    assert_eq!(retried.status(), 200);
    assert_eq!(
        retried.json::<u32>().await.unwrap(),
        2,
        "the second attempt answered"
    );

    let (status, kind, message) = failure(env.post("crash-always", "").await).await;
    assert_eq!(
        (status, kind.as_str()),
        (502, "container_crashed"),
        "{message}"
    );
    assert!(message.contains("(container "), "{message}");
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_container_answers_max_inputs_requests_at_once() {
    let env = WebEnv::start().await;
    // Started from zero, then eight requests of 1 s at once.
    env.post("hold-many", "0").await;
    let started = std::time::Instant::now();
    let responses = futures::future::join_all((0..8).map(|_| env.post("hold-many", "1000"))).await;
    let elapsed = started.elapsed();
    let mut pids = std::collections::HashSet::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        pids.insert(response.json::<u32>().await.unwrap());
    }
    assert_eq!(pids.len(), 1, "one container answered them all");
    assert!(
        elapsed < Duration::from_millis(2500),
        "together, not one after another: {elapsed:?}"
    );
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_goes_away_cancels_its_request() {
    let env = WebEnv::start().await;
    let hold = env.client.function::<(u64,), u64>(APP, "web_hold");
    let gone = env
        .http
        .post(env.url("hold"))
        .header("authorization", env.token())
        .timeout(Duration::from_millis(1500))
        .body("60000")
        .send()
        .await;
    assert!(gone.is_err(), "the caller gave up");
    // The input is no longer queued nor running.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = hold.get_current_stats().await.unwrap();
        if stats.running_inputs == 0 && stats.backlog == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still held: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The one container is free for the next request at once.
    let started = std::time::Instant::now();
    assert_eq!(
        env.post("hold", "10").await.json::<u64>().await.unwrap(),
        10
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_runs_in_the_callers_trace_and_is_counted_as_web() {
    let env = WebEnv::start().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let seen: String = env
        .http
        .get(env.url("trace"))
        .header("authorization", env.token())
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen, trace_id);
    // Without one (or with a malformed one), a trace of its own.
    let fresh: String = env
        .http
        .get(env.url("trace"))
        .header("authorization", env.token())
        .header("traceparent", "not-a-trace")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fresh.len(), 32);
    assert_ne!(fresh, trace_id);

    let metrics = env
        .http
        .get(format!("{}/metrics", env.server.http_url().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let web_calls = metrics
        .lines()
        .find(|l| l.starts_with("modal_calls_total{") && l.contains("kind=\"web\""))
        .unwrap_or_else(|| panic!("no web calls in:\n{metrics}"));
    assert!(web_calls.ends_with(" 2"), "{web_calls}");
    env.server.shutdown().await;
}
