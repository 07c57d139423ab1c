//! The control plane as a process that hostile or careless clients cannot
//! knock over: checked spawn-map indices, app lifetimes held by a lease,
//! stable ids across restarts, pinned versions after a redeploy, and maps
//! whose callers go away.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{APP, Standalone, env, test_app};
use futures::StreamExt;
use modal_runtime::proto::{self, LookupFunctionRequest, MapInput, MapRequest};
use modal_runtime::{AppBinary, Manifest};
use modal_tests::{held, solo, square};

async fn raw(url: &str) -> common::Raw {
    common::raw_admin(url).await
}

async fn function_id(rpc: &mut common::Raw, app: &str, name: &str) -> u64 {
    rpc.lookup_function(LookupFunctionRequest {
        app: app.into(),
        name: name.into(),
        version: None,
    })
    .await
    .unwrap()
    .into_inner()
    .function_id
}

fn encoded_u64(x: u64) -> bytes::Bytes {
    modal_runtime::codec::encode(&(x,)).unwrap()
}

/// Polls `check` until it holds or `within` passes.
async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn spawn_map_with_indices(
    rpc: &mut common::Raw,
    function_id: u64,
    indices: &[u64],
) -> Result<String, tonic::Status> {
    let request = MapRequest {
        function_id,
        inputs: indices
            .iter()
            .map(|&index| MapInput {
                index,
                args: encoded_u64(2),
                args_blob: String::new(),
            })
            .collect(),
        method: String::new(),
        last: true,
        traceparent: String::new(),
    };
    rpc.spawn_map(tokio_stream::iter(vec![request]))
        .await
        .map(|r| r.into_inner().call_id)
}

#[tokio::test]
async fn spawn_map_refuses_indices_that_are_not_dense_and_keeps_serving() {
    let url = env().url.clone();
    let mut rpc = raw(&url).await;
    let id = function_id(&mut rpc, APP, "square").await;
    for indices in [
        vec![1 << 40],
        vec![u64::MAX],
        vec![1 << 24],
        vec![0, 0],
        vec![0, 5],
        vec![1, 0],
    ] {
        let status = spawn_map_with_indices(&mut rpc, id, &indices)
            .await
            .expect_err(&format!("indices {indices:?} were accepted"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("index"), "{}", status.message());
    }
    // Dense indices still work, and the control plane is alive.
    let call_id = spawn_map_with_indices(&mut rpc, id, &[0, 1, 2])
        .await
        .unwrap();
    let call = modal_runtime::FunctionCall::<Vec<u64>>::from_id(&call_id).unwrap();
    assert_eq!(call.get(None).await.unwrap(), vec![4, 4, 4]);
    assert_eq!(square::from_name(APP).remote(5).await.unwrap(), 25);
}

/// Processes running `binary` (its containers, or the program itself).
fn processes_of(binary: &std::path::Path) -> Vec<u32> {
    let binary = binary.canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == binary))
        .collect()
}

fn long_caller() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_long_caller"))
}

#[tokio::test]
async fn a_killed_caller_s_app_is_stopped_within_15_seconds() {
    let cp = Standalone::start();
    let mut caller = Command::new(long_caller())
        .envs(common::server_env(&cp.url))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let stdout = caller.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "running");
    }
    let client = common::connect(&cp.url).await.unwrap();
    let running = |apps: Vec<proto::AppInfo>| {
        apps.into_iter()
            .filter(|a| a.ephemeral && a.state == "running")
            .count()
    };
    assert_eq!(running(client.list_apps().await.unwrap()), 1);
    caller.kill().unwrap();
    caller.wait().unwrap();
    let killed = Instant::now();
    let stopped = eventually(Duration::from_secs(15), async || {
        running(client.list_apps().await.unwrap()) == 0 && processes_of(&long_caller()).is_empty()
    })
    .await;
    assert!(
        stopped,
        "15 s after its program was killed, its app still runs: {:?}, containers {:?}",
        client.list_apps().await.unwrap(),
        processes_of(&long_caller())
    );
    println!(
        "app stopped {:?} after its caller was killed",
        killed.elapsed()
    );
}

#[tokio::test]
async fn following_logs_and_disconnecting_leaves_the_app_running() {
    let url = env().url.clone();
    let client = common::connect(&url).await.unwrap();
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    let created = client
        .create_app(
            "followed",
            &manifest,
            AppBinary::LocalPath(&test_app()),
            true,
        )
        .await
        .unwrap();
    let _lease = client.hold_app(&created.app).await.unwrap();
    for _ in 0..3 {
        let logs = client.stream_logs(&created.app, true).await.unwrap();
        drop(logs);
    }
    let f = client.function::<(u64,), u64>(&created.app, "square");
    let results = f.map((0..2_000).map(|x| (x,))).collect_vec().await.unwrap();
    assert_eq!(results.len(), 2_000);
    assert_eq!(results[1_999], 1_999 * 1_999);
}

#[tokio::test]
async fn an_ephemeral_app_whose_lease_ends_is_stopped() {
    let url = env().url.clone();
    let client = common::connect(&url).await.unwrap();
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    let created = client
        .create_app("leased", &manifest, AppBinary::LocalPath(&test_app()), true)
        .await
        .unwrap();
    let lease = client.hold_app(&created.app).await.unwrap();
    let f = client.function::<(u64,), u64>(&created.app, "square");
    assert_eq!(f.remote((3,)).await.unwrap(), 9);
    drop(lease);
    let gone = eventually(Duration::from_secs(5), async || {
        !client
            .list_apps()
            .await
            .unwrap()
            .iter()
            .any(|a| a.name == created.app && a.state == "running")
    })
    .await;
    assert!(gone, "the app outlived its lease");
}

#[tokio::test]
async fn a_pinned_version_keeps_working_after_a_redeploy() {
    let url = env().url.clone();
    let client = common::connect(&url).await.unwrap();
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    let deploy = async || {
        client
            .create_app(
                "pinned",
                &manifest,
                AppBinary::LocalPath(&test_app()),
                false,
            )
            .await
            .unwrap()
            .version
    };
    let first = deploy().await;
    let pinned = square::from_name("pinned").version(first);
    assert_eq!(pinned.remote(3).await.unwrap(), 9);
    let second = deploy().await;
    assert_eq!(second, first + 1);
    assert_eq!(pinned.remote(4).await.unwrap(), 16);
    let fresh = square::from_name("pinned").version(first);
    assert_eq!(fresh.remote(5).await.unwrap(), 25);
    assert_eq!(square::from_name("pinned").remote(6).await.unwrap(), 36);
}

#[tokio::test]
async fn deployed_ids_survive_restarts_and_no_id_is_reused() {
    let mut cp = Standalone::start();
    let data_dir = cp.data_dir.clone();
    common::deploy(&cp.url, "stable").await;
    let mut rpc = raw(&cp.url).await;
    let before = function_id(&mut rpc, "stable", "square").await;
    // An ephemeral app's functions end with the control plane.
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    let ephemeral = common::connect(&cp.url)
        .await
        .unwrap()
        .create_app("passing", &manifest, AppBinary::Upload(&test_app()), true)
        .await
        .unwrap();
    let gone = ephemeral.functions[0].function_id;
    cp.kill9();
    drop(cp);
    let cp = Standalone::start_in(data_dir, &[]);
    let mut rpc = raw(&cp.url).await;
    let after = function_id(&mut rpc, "stable", "square").await;
    assert_eq!(after, before, "a deployed function keeps its id");
    let reply = rpc
        .invoke(proto::InvokeRequest {
            function_id: after,
            args: encoded_u64(3),
            method: String::new(),
            args_blob: String::new(),
            traceparent: String::new(),
        })
        .await
        .unwrap();
    assert!(reply.into_inner().result.is_some());
    let status = rpc
        .invoke(proto::InvokeRequest {
            function_id: gone,
            args: encoded_u64(3),
            method: String::new(),
            args_blob: String::new(),
            traceparent: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert!(
        status.message().contains("look it up again"),
        "{}",
        status.message()
    );
    // A redeploy's ids are above every id handed out before the restart.
    common::deploy(&cp.url, "stable").await;
    let redeployed = function_id(&mut rpc, "stable", "square").await;
    assert!(redeployed > before.max(gone), "{redeployed}");
}

#[tokio::test]
async fn an_abandoned_map_s_queued_inputs_are_cancelled_at_once() {
    let url = env().url.clone();
    let mut rpc = raw(&url).await;
    let id = function_id(&mut rpc, APP, "solo").await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(MapRequest {
        function_id: id,
        inputs: (0..2_000)
            .map(|index| MapInput {
                index,
                args: encoded_u64(100),
                args_blob: String::new(),
            })
            .collect(),
        method: String::new(),
        last: false,
        traceparent: String::new(),
    })
    .await
    .unwrap();
    let mut outputs = rpc
        .map(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    // The first output: the map is running on the only container.
    outputs.next().await.unwrap().unwrap();
    drop(outputs);
    drop(tx);
    drop(rpc);
    // Another caller is served at once, not after 200 s of abandoned work.
    let started = Instant::now();
    let served = tokio::time::timeout(Duration::from_secs(10), solo::from_name(APP).remote(1))
        .await
        .expect("a map whose caller left still holds the function's only container")
        .unwrap();
    assert_eq!(served, 1);
    println!("served after {:?}", started.elapsed());
}

#[tokio::test]
async fn the_control_plane_enforces_the_map_window() {
    let url = env().url.clone();
    let mut rpc = raw(&url).await;
    let id = function_id(&mut rpc, APP, "held").await;
    // 20,000 inputs of 1 s, sent without reading a single output.
    let requests = (0..40_u64).map(move |chunk| MapRequest {
        function_id: id,
        inputs: (chunk * 500..(chunk + 1) * 500)
            .map(|index| MapInput {
                index,
                args: encoded_u64(1_000),
                args_blob: String::new(),
            })
            .collect(),
        method: String::new(),
        last: false,
        traceparent: String::new(),
    });
    let sender = tokio::spawn(async move {
        let response = rpc
            .map(tokio_stream::iter(requests).chain(futures::stream::pending()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(response);
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats = held::from_name(APP).get_current_stats().await.unwrap();
    sender.abort();
    assert!(
        stats.backlog + stats.running_inputs <= 8_192,
        "the control plane accepted {} inputs of one map",
        stats.backlog + stats.running_inputs
    );
}

#[tokio::test]
async fn app_history_lists_versions_and_rollback_redeploys_an_earlier_binary() {
    let url = env().url.clone();
    let client = common::connect(&url).await.unwrap();
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    let other = common::workspace_binary("long_caller");
    let other_manifest = Manifest::read_from_binary(&other).unwrap();
    client
        .create_app(
            "history",
            &manifest,
            AppBinary::LocalPath(&test_app()),
            false,
        )
        .await
        .unwrap();
    client
        .create_app("history", &other_manifest, AppBinary::Upload(&other), false)
        .await
        .unwrap();
    // Version 2 runs another binary; the rollback runs version 1's again.
    let out = common::xtask(&["app", "rollback", "history", "--server", &url]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(
        common::text(&out).contains("version 3 runs the binary of version"),
        "{}",
        common::text(&out)
    );
    assert_eq!(square::from_name("history").remote(7).await.unwrap(), 49);

    let versions = client.app_history("history").await.unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[0].binary_sha256, versions[2].binary_sha256);
    assert_ne!(versions[0].binary_sha256, versions[1].binary_sha256);
    assert_eq!(versions[2].rolled_back_from, Some(1));
    assert!(versions[0].functions.contains(&"square".to_owned()));

    let out = common::xtask(&["app", "history", "history", "--server", &url]);
    let said = common::text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains(&versions[0].binary_sha256[..12]), "{said}");
    assert!(said.contains("(rollback to 1)"), "{said}");

    let out = common::xtask(&["app", "rollback", "history", "9", "--server", &url]);
    assert!(!out.status.success());
    assert!(
        common::text(&out).contains("has no version 9"),
        "{}",
        common::text(&out)
    );
}

#[tokio::test]
async fn a_spent_inline_budget_holds_calls_back_then_refuses_them_clearly() {
    use modal_runtime::server::{Server, ServerConfig};
    let mut config = ServerConfig::new(common::scratch_dir("budget"));
    // Room for three small inputs (each counts for at least 1 KiB).
    config.max_inline_bytes_in_flight = 3 * 1024;
    config.inline_budget_patience = Duration::from_millis(500);
    let server = Server::start(config).await.unwrap();
    let client = common::deploy(server.url(), "budget").await;
    let f = client.function::<(u64,), u64>("budget", "solo");
    let mut calls = Vec::new();
    for _ in 0..3 {
        calls.push(f.spawn((1_500,)).await.unwrap());
    }
    let refused = f.spawn((1,)).await.unwrap_err().to_string();
    assert!(refused.contains("inline arguments"), "{refused}");
    // As inputs are answered, their room comes back.
    assert_eq!(calls[0].get(None).await.unwrap(), 1_500);
    let later = f.spawn((1,)).await.unwrap();
    for call in calls {
        call.get(None).await.unwrap();
    }
    assert_eq!(later.get(None).await.unwrap(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_lease_that_falls_silent_ends_its_app() {
    use modal_runtime::server::{Server, ServerConfig};
    let mut config = ServerConfig::new(common::scratch_dir("silent-lease"));
    config.lease_timeout = Duration::from_secs(1);
    config.upkeep_interval = Duration::from_millis(100);
    let server = Server::start(config).await.unwrap();
    let client = common::connect(server.url()).await.unwrap();
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    let created = client
        .create_app("silent", &manifest, AppBinary::LocalPath(&test_app()), true)
        .await
        .unwrap();
    // A holder that names the app, then neither beats nor hangs up: a
    // program behind a cut network.
    let (beats, beats_rx) = tokio::sync::mpsc::channel(1);
    beats
        .send(proto::HoldAppRequest {
            app: created.app.clone(),
        })
        .await
        .unwrap();
    let mut rpc = raw(server.url()).await;
    let mut acks = rpc
        .hold_app(tokio_stream::wrappers::ReceiverStream::new(beats_rx))
        .await
        .unwrap()
        .into_inner();
    acks.message().await.unwrap().unwrap();
    let running = async || {
        client
            .list_apps()
            .await
            .unwrap()
            .iter()
            .any(|a| a.name == created.app && a.state == "running")
    };
    assert!(running().await);
    let started = Instant::now();
    let stopped = eventually(Duration::from_secs(5), async || !running().await).await;
    assert!(stopped, "a silent holder kept its app alive");
    // Not before the lease timeout (1 s from its one message).
    assert!(started.elapsed() >= Duration::from_millis(200));
    drop(beats);
    server.shutdown().await;
}

#[tokio::test]
async fn inputs_queued_during_a_redeploy_finish_on_their_version() {
    let url = env().url.clone();
    let client = common::deploy(&url, "redeployed").await;
    let f = client.function::<(u64,), u64>("redeployed", "solo");
    // One container at most: one input runs, two wait in the queue.
    let mut calls = Vec::new();
    for _ in 0..3 {
        calls.push(f.spawn((400,)).await.unwrap());
    }
    common::deploy(&url, "redeployed").await;
    for call in calls {
        assert_eq!(call.get(None).await.unwrap(), 400);
    }
}

#[tokio::test]
async fn a_generator_ahead_of_its_caller_waits_for_it() {
    let cp = Standalone::start();
    common::deploy(&cp.url, "gush").await;
    let mut rpc = raw(&cp.url)
        .await
        .max_decoding_message_size(modal_runtime::contract::MAX_MESSAGE_BYTES);
    let id = function_id(&mut rpc, "gush", "gush").await;
    // 2,000 items of 256 KiB: 500 MiB if nothing held the generator back.
    let args = modal_runtime::codec::encode(&(2_000_u32, 256_usize << 10)).unwrap();
    let mut events = rpc
        .invoke_generator(proto::InvokeRequest {
            function_id: id,
            args,
            method: String::new(),
            args_blob: String::new(),
            traceparent: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    // The first message may carry several items already.
    let first = events.message().await.unwrap().unwrap();
    let before = cp.rss_kib();
    // The caller stops reading; the generator could run far ahead.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = cp.rss_kib();
    assert!(
        after < before + 100 * 1024,
        "the control plane grew from {before} KiB to {after} KiB holding a generator's items"
    );
    // Reading on, every item arrives, then the return value.
    let mut items = 0;
    let mut done = None;
    let mut next = Some(first);
    while let Some(event) = next {
        match event.event {
            Some(proto::generator_event::Event::Items(batch)) => items += batch.values.len(),
            Some(proto::generator_event::Event::Done(outcome)) => done = Some(outcome),
            None => {}
        }
        next = events.message().await.unwrap();
    }
    assert_eq!(items, 2_000);
    assert!(
        matches!(
            done.and_then(|o| o.result),
            Some(proto::outcome::Result::Value(_))
        ),
        "the generator did not finish with its return value"
    );
}

/// A map naming a function id the control plane does not know ends with
/// that error, every time: never as a stream that just ends.
#[tokio::test]
async fn a_map_on_an_unknown_function_id_ends_with_its_error() {
    let url = env().url.clone();
    let mut rpc = raw(&url).await;
    for _ in 0..50 {
        let request = MapRequest {
            function_id: u64::MAX - 1,
            inputs: vec![MapInput {
                index: 0,
                args: encoded_u64(1),
                args_blob: String::new(),
            }],
            method: String::new(),
            last: true,
            traceparent: String::new(),
        };
        let mut outputs = match rpc.map(tokio_stream::iter(vec![request])).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
                continue;
            }
        };
        match outputs.next().await {
            Some(Err(status)) => {
                assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}")
            }
            other => panic!("the map ended without its error: {other:?}"),
        }
    }
}

/// A manifest cannot set the variables that change how a binary loads
/// (`LD_*`) or that the runtime uses itself (`MODAL_*`): the deploy is
/// refused, naming the variable, and registers nothing.
#[tokio::test]
async fn a_manifest_setting_reserved_variables_is_refused() {
    let url = env().url.clone();
    let mut rpc = raw(&url).await;
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    for name in ["LD_PRELOAD", "MODAL_CONTAINER_SERVER_URL"] {
        let mut json: serde_json::Value = serde_json::to_value(&manifest).unwrap();
        json["functions"][0]["options"]["env"] = serde_json::json!([[name, "/tmp/evil"]]);
        let status = rpc
            .create_app(proto::CreateAppRequest {
                name: "reserved-env".into(),
                ephemeral: false,
                manifest_json: json.to_string(),
                binary: Some(proto::create_app_request::Binary::LocalPath(
                    test_app().to_string_lossy().into_owned(),
                )),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains(name) && status.message().contains("reserved"),
            "{}",
            status.message()
        );
    }
    let apps = common::connect(&url)
        .await
        .unwrap()
        .list_apps()
        .await
        .unwrap();
    assert!(apps.iter().all(|a| a.name != "reserved-env"), "{apps:?}");
}

/// A manifest's schedules are checked as the macro checks them: a bad cron
/// expression, an unknown time zone, a period out of bounds or a schedule
/// on a function with arguments is refused, naming what is wrong, and
/// registers nothing.
#[tokio::test]
async fn a_manifest_with_a_bad_schedule_is_refused() {
    let url = env().url.clone();
    let mut rpc = raw(&url).await;
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    let json: serde_json::Value = serde_json::to_value(&manifest).unwrap();
    let index = |name: &str| {
        json["functions"]
            .as_array()
            .unwrap()
            .iter()
            .position(|f| f["name"] == name)
            .unwrap()
    };
    let cases = [
        (
            "pid",
            serde_json::json!({"cron": {"expression": "61 * * * *", "timezone": null}}),
            "61 * * * *",
        ),
        (
            "pid",
            serde_json::json!({"cron": {"expression": "0 * * * *", "timezone": "Mars/Olympus"}}),
            "Mars/Olympus",
        ),
        (
            "pid",
            serde_json::json!({"period": {"millis": 0}}),
            "period",
        ),
        (
            "square",
            serde_json::json!({"period": {"millis": 2000}}),
            "a function with arguments cannot run on a schedule",
        ),
    ];
    for (function, schedule, named) in cases {
        let mut json = json.clone();
        json["functions"][index(function)]["options"]["schedule"] = schedule;
        let status = rpc
            .create_app(proto::CreateAppRequest {
                name: "bad-schedule".into(),
                ephemeral: false,
                manifest_json: json.to_string(),
                binary: Some(proto::create_app_request::Binary::LocalPath(
                    test_app().to_string_lossy().into_owned(),
                )),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().contains(named),
            "{named}: {}",
            status.message()
        );
    }
    let apps = common::connect(&url)
        .await
        .unwrap()
        .list_apps()
        .await
        .unwrap();
    assert!(apps.iter().all(|a| a.name != "bad-schedule"), "{apps:?}");
}
