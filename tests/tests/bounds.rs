//! The control plane's memory and disk stay bounded whatever clients send:
//! oversize messages are refused from their length, uploads have a limit and
//! leave nothing behind when they fail, long polls are capped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use modal_runtime::proto::{self, outcome};
use modal_runtime::server::{Server, ServerConfig};
use modal_tests::{SlowStartEcho, SlowStartEchoParams, wide_echo};
use serde_bytes::ByteBuf;

/// The largest message a control plane accepts (16 MiB).
const MESSAGE_LIMIT: usize = 16 << 20;

/// A raw gRPC client that sends and takes messages of any size: what a
/// careless or hostile client may do.
async fn raw(url: &str) -> Raw {
    raw_admin(url)
        .await
        .max_encoding_message_size(1 << 30)
        .max_decoding_message_size(1 << 30)
}

/// Polls `done` until it holds, for at most `limit`.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The files in `dir`, by name.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The largest resident size of process `pid` seen while it runs, in KiB.
struct PeakRss {
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<u64>,
}

impl PeakRss {
    fn watch(cp: &Standalone) -> PeakRss {
        let pid = cp.pid();
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut peak = 0;
                while !stop.load(Ordering::SeqCst) {
                    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
                    let kib = status
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                        .unwrap_or(0);
                    peak = peak.max(kib);
                    std::thread::sleep(Duration::from_millis(5));
                }
                peak
            })
        };
        PeakRss { stop, sampler }
    }

    fn peak_kib(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.sampler.join().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversize_inline_invokes_are_refused_from_their_length_and_memory_stays_flat() {
    let cp = Standalone::start();
    let client = deploy(&cp.url, "bounds").await;
    let square = raw(&cp.url)
        .await
        .lookup_function(proto::LookupFunctionRequest {
            app: "bounds".into(),
            name: "square".into(),
            version: None,
        })
        .await
        .unwrap()
        .into_inner();
    // One 300 MiB buffer shared by the four requests.
    let request = proto::InvokeRequest {
        function_id: square.function_id,
        args: vec![0_u8; 300 << 20].into(),
        method: String::new(),
        args_blob: String::new(),
        traceparent: String::new(),
    };
    let before = cp.rss_kib();
    let peak = PeakRss::watch(&cp);
    let replies = futures::future::join_all((0..4).map(|_| {
        let request = request.clone();
        let url = cp.url.clone();
        async move { raw(&url).await.invoke(request).await }
    }))
    .await;
    let peak = peak.peak_kib();
    eprintln!("control plane RSS: {before} KiB before, {peak} KiB at most while refusing");
    // A control plane idles at about 20 MiB; four 300 MiB messages held
    // whole would take it past 1 GiB.
    assert!(
        peak < 200 * 1024,
        "the control plane grew from {before} KiB to {peak} KiB while refusing four 300 MiB messages"
    );
    for reply in replies {
        let status = reply.expect_err("a 300 MiB inline message is refused");
        assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
        let message = status.message();
        eprintln!("refusal: {message}");
        assert!(
            message.contains(&MESSAGE_LIMIT.to_string()) && message.contains("blob"),
            "the refusal names the limit and the way for large payloads: {message}"
        );
    }
    // The control plane serves on.
    let square = client.function::<(u64,), u64>("bounds", "square");
    assert_eq!(square.remote((7,)).await.unwrap(), 49);
}

#[tokio::test]
async fn a_map_of_1_mib_inputs_and_results_crosses_in_messages_under_the_limit() {
    // Inputs queue while the instance starts, then go to its container
    // together; 64 run at once, so their results come back together and
    // reach the caller together: each far past one message's limit if sent
    // in one.
    env();
    let tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let obj = SlowStartEcho::from_name(APP).instance(SlowStartEchoParams { tag });
    let inputs = (0..200_u32).map(|i| (ByteBuf::from(vec![(i % 251) as u8; 1 << 20]), 1 << 20));
    let echoes = obj.echo.starmap(inputs).collect_vec().await.unwrap();
    assert_eq!(echoes.len(), 200);
    for echo in &echoes {
        // 2^20 copies of a byte sum to 0 mod 256.
        assert_eq!(echo.len(), 1 << 20);
        assert!(echo.iter().all(|b| *b == 0));
    }
}

#[tokio::test]
async fn map_results_piled_up_on_the_control_plane_leave_in_messages_under_the_limit() {
    // A caller that reads slowly: 300 results of 1 MiB wait on the control
    // plane, then are read by a client that takes no message over the limit.
    env();
    let mut rpc = raw_admin(&env().url)
        .await
        .max_decoding_message_size(MESSAGE_LIMIT);
    let echo = rpc
        .lookup_function(proto::LookupFunctionRequest {
            app: APP.into(),
            name: "big_echo".into(),
            version: None,
        })
        .await
        .unwrap()
        .into_inner();
    let inputs = (0..300_u64)
        .map(|index| proto::MapInput {
            index,
            args: modal_runtime::codec::encode(&(ByteBuf::from(vec![1]), 1_usize << 20)).unwrap(),
            args_blob: String::new(),
        })
        .collect();
    let request = proto::MapRequest {
        function_id: echo.function_id,
        inputs,
        method: String::new(),
        last: false,
        traceparent: String::new(),
    };
    let mut responses = rpc
        .map(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    // Every input runs (its outcome waits on the control plane) before the
    // first response is read.
    let mut stats = raw(&env().url).await;
    let mut busy = false;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = stats
            .get_stats(proto::GetStatsRequest {
                function_id: echo.function_id,
            })
            .await
            .unwrap()
            .into_inner();
        let waiting = s.backlog + s.running_inputs;
        if busy && waiting == 0 {
            break;
        }
        busy |= waiting > 0;
        assert!(Instant::now() < deadline, "the map did not finish");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut seen = std::collections::BTreeSet::new();
    while let Some(batch) = responses.message().await.unwrap() {
        for output in batch.outputs {
            let Some(outcome::Result::Value(value)) = output.outcome.and_then(|o| o.result) else {
                panic!("output {} is not an inline value", output.index)
            };
            assert_eq!(value.len(), (1 << 20) + 5, "output {}", output.index);
            seen.insert(output.index);
        }
    }
    assert_eq!(seen, (0..300).collect());
}

#[tokio::test]
async fn a_spawned_map_whose_result_list_is_large_returns_it_as_a_blob() {
    // 40 results of 1 MiB: a 40 MiB list, over one message's limit.
    let inputs = (0..40_u8).map(|i| (ByteBuf::from(vec![i]), 1 << 20));
    let call = on(wide_echo::from_name)
        .handle()
        .clone()
        .spawn_map(inputs)
        .await
        .unwrap();
    let mut rpc = raw(&env().url).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let outcome = loop {
        let reply = rpc
            .get_call_outcome(proto::GetCallOutcomeRequest {
                call_id: call.object_id().to_owned(),
                timeout_ms: 5_000,
            })
            .await
            .unwrap()
            .into_inner();
        if let Some(outcome) = reply.outcome {
            break outcome;
        }
        assert!(Instant::now() < deadline, "the spawned map did not finish");
    };
    assert!(
        matches!(outcome.result, Some(outcome::Result::ValueBlob(_))),
        "a 40 MiB result list travels by blob, not inline"
    );
    let results = call.get(Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(results.len(), 40);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.len(), 1 << 20);
        assert!(result.iter().all(|b| usize::from(*b) == i), "result {i}");
    }
}

#[tokio::test]
async fn an_upload_over_the_configured_limit_is_refused_and_leaves_no_file() {
    let cp = Standalone::start_in(
        scratch_dir("upload-limit"),
        &["--max-upload-bytes", "1048576"],
    );
    let client = common::connect(&cp.url).await.unwrap();
    let dir = scratch_dir("upload-files");
    let small = dir.join("small");
    // Executables (ELF) only are accepted.
    let elf = |len: usize, fill: u8| {
        let mut bytes = b"\x7fELF".to_vec();
        bytes.resize(len, fill);
        bytes
    };
    std::fs::write(&small, elf(100 << 10, 1)).unwrap();
    let large = dir.join("large");
    std::fs::write(&large, elf(3 << 20, 2)).unwrap();

    let err = client.upload_binary(&large).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("1048576") && text.contains("--max-upload-bytes"),
        "the refusal names the limit and how to raise it: {text}"
    );
    let binaries = cp.data_dir.join("binaries");
    assert_eq!(
        files_in(&binaries),
        Vec::<String>::new(),
        "files left behind"
    );
    // Under the limit is fine.
    let id = client.upload_binary(&small).await.unwrap();
    assert_eq!(files_in(&binaries), vec![id]);
}

/// Starts an upload of `mib` MiB in a process of its own, waits until the
/// control plane holds it all in `dir`, then kills the uploader.
fn cut_off_upload(cp: &Standalone, kind: &str, mib: u64, dir: &Path, partial: fn(&str) -> bool) {
    let mut uploader = Command::new(env!("CARGO_BIN_EXE_partial_upload"))
        .args([cp.url.as_str(), kind, &mib.to_string()])
        .env("MODAL_TOKEN", &cp.token)
        .spawn()
        .unwrap();
    wait_for(
        &format!("the {kind} upload to reach {mib} MiB"),
        Duration::from_secs(30),
        || {
            std::fs::read_dir(dir).unwrap().flatten().any(|e| {
                partial(&e.file_name().to_string_lossy())
                    && e.metadata().is_ok_and(|m| m.len() >= mib << 20)
            })
        },
    );
    uploader.kill().unwrap();
    uploader.wait().unwrap();
}

#[tokio::test]
async fn an_upload_cut_off_half_way_leaves_no_file() {
    let cp = Standalone::start();
    let binaries = cp.data_dir.join("binaries");
    cut_off_upload(&cp, "binary", 3, &binaries, |n| n.starts_with("upload-"));
    wait_for(
        "the partial binary to be removed",
        Duration::from_secs(10),
        || files_in(&binaries).is_empty(),
    );
    // Environment `main`'s payloads.
    let blobs = cp.data_dir.join("blobs").join("main");
    cut_off_upload(&cp, "blob", 3, &blobs, |n| n.ends_with(".partial"));
    wait_for(
        "the partial blob to be removed",
        Duration::from_secs(10),
        || files_in(&blobs).is_empty(),
    );
}

#[tokio::test]
async fn partial_uploads_left_by_a_killed_control_plane_are_swept_at_start() {
    let data = scratch_dir("sweep");
    let binaries: PathBuf = data.join("binaries");
    let blobs: PathBuf = data.join("blobs");
    std::fs::create_dir_all(&binaries).unwrap();
    std::fs::create_dir_all(&blobs).unwrap();
    let finished_binary = "ab".repeat(32);
    let finished_blob = format!("bl-{}", "cd".repeat(16));
    for (dir, name) in [
        (&binaries, "upload-0123456789abcdef0123456789abcdef"),
        (&binaries, finished_binary.as_str()),
        (&blobs, "bl-0123456789abcdef0123456789abcdef.partial"),
        (&blobs, finished_blob.as_str()),
    ] {
        std::fs::write(dir.join(name), b"some bytes").unwrap();
    }
    let _cp = Standalone::start_in(data.clone(), &[]);
    assert_eq!(files_in(&binaries), vec![finished_binary]);
    // A payload kept from before environments is environment `main`'s.
    assert_eq!(files_in(&blobs), vec!["main".to_owned()]);
    assert_eq!(files_in(&blobs.join("main")), vec![finished_blob]);
}

#[tokio::test]
async fn a_long_poll_is_held_no_longer_than_the_cap_whatever_the_client_asks() {
    let mut config = ServerConfig::new(scratch_dir("long-poll"));
    config.max_long_poll = Duration::from_secs(1);
    let server = Server::start(config).await.unwrap();
    let client = deploy(server.url(), "long-poll").await;
    let call = client
        .function::<(u64,), u64>("long-poll", "sleep_ms")
        .spawn((600_000,))
        .await
        .unwrap();
    let started = Instant::now();
    let reply = tokio::time::timeout(
        Duration::from_secs(30),
        raw(server.url())
            .await
            .get_call_outcome(proto::GetCallOutcomeRequest {
                call_id: call.object_id().to_owned(),
                timeout_ms: u32::MAX,
            }),
    )
    .await
    .expect("a long poll of u32::MAX ms is cut to the control plane's cap")
    .unwrap()
    .into_inner();
    let held = started.elapsed();
    assert!(reply.outcome.is_none(), "the call is still running");
    assert!(
        held >= Duration::from_millis(900) && held < Duration::from_secs(10),
        "held {held:?}"
    );
    call.cancel(true).await.unwrap();
    server.shutdown().await;
}
