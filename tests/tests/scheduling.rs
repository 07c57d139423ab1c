//! Scheduling end to end: retries, timeouts, autoscaling, cancellation,
//! spawned calls across processes and their retention, map options.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use modal_runtime::server::{Server, ServerConfig};
use modal_runtime::{AppBinary, ClsOptions, Error, FunctionCall, Manifest};
use modal_tests::*;

#[tokio::test]
async fn a_function_that_fails_twice_succeeds_on_its_third_attempt() {
    let started = Instant::now();
    // `retries = 3`: fixed one-second delays.
    assert_eq!(on(flaky::from_name).remote(2).await.unwrap(), 3);
    assert!(started.elapsed() >= Duration::from_secs(2));
    // Out of retries: the last failure, saying how many attempts ran.
    let err = on(flaky::from_name).remote(10).await.unwrap_err();
    assert!(matches!(err, Error::User { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("attempt 4 fails"), "{text}");
    assert!(text.contains("failed on all 4 attempts"), "{text}");
}

#[tokio::test]
async fn a_crash_is_retried_on_a_new_container_without_using_retries() {
    let dir = scratch_dir("crash-once");
    let (container_pid, attempt) = on(crash_once::from_name)
        .remote(dir.to_string_lossy().into_owned())
        .await
        .unwrap();
    assert_ne!(container_pid, std::process::id());
    assert_eq!(attempt, 2, "the rerun is the input's second attempt");
}

#[tokio::test]
async fn a_crash_loop_still_ends() {
    let started = Instant::now();
    let err = on(exit_process::from_name).remote(5).await.unwrap_err();
    assert!(matches!(err, Error::ContainerCrashed { .. }), "{err:?}");
    assert!(err.to_string().contains("run on 4 containers"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn a_timeout_fires_and_says_so() {
    for slow in [
        on(slow_blocking::from_name).handle().clone(),
        on(slow_async::from_name).handle().clone(),
    ] {
        let started = Instant::now();
        let err = slow.remote((10_000,)).await.unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        assert!(err.to_string().contains("`timeout` of 1s"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(8));
        // The function still serves inputs that finish in time.
        assert_eq!(slow.remote((10,)).await.unwrap(), 10);
    }
}

#[tokio::test]
async fn a_startup_timeout_fires_and_says_so() {
    env();
    let slow = SlowStart::from_name(APP)
        .with_options(ClsOptions::new().startup_timeout(Duration::from_secs(1)))
        .instance(SlowStartParams::new(30_000));
    let started = Instant::now();
    let err = slow.ready.remote().await.unwrap_err();
    assert!(matches!(err, Error::ContainerStart { .. }), "{err:?}");
    assert!(err.to_string().contains("`startup_timeout`"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Within its startup timeout, the same class starts.
    let quick = SlowStart::from_name(APP).instance(SlowStartParams::new(10));
    assert!(quick.ready.remote().await.unwrap());
}

#[tokio::test]
async fn a_burst_scales_up_to_max_containers_in_parallel_and_back_to_zero() {
    let f = on(burst::from_name);
    let started = Instant::now();
    let pids: BTreeSet<u32> = f
        .map(vec![200_u64; 50])
        .collect_vec()
        .await
        .unwrap()
        .into_iter()
        .collect();
    let took = started.elapsed();
    assert_eq!(pids.len(), 5, "{pids:?}");
    // 50 × 200 ms over 5 containers is 2 s of work; serial cold starts or a
    // single container would take far longer.
    assert!(took < Duration::from_secs(6), "took {took:?}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stats = f.get_current_stats().await.unwrap();
        if stats.num_total_runners == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still running: {stats:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn cancelling_a_running_input_ends_its_call() {
    let f = on(nap::from_name);
    let call = f.spawn(30_000).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.get_current_stats().await.unwrap().running_inputs == 0 {
        assert!(Instant::now() < deadline, "the input never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call.cancel(false).await.unwrap();
    let err = call.get(Some(Duration::from_secs(5))).await.unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    // The container is free again at once: the async input was stopped.
    let started = Instant::now();
    assert_eq!(f.remote(1).await.unwrap(), 1);
    assert!(started.elapsed() < Duration::from_secs(5));
    let stats = f.get_current_stats().await.unwrap();
    assert_eq!(stats.running_inputs, 0, "{stats:?}");
}

#[tokio::test]
async fn cancelling_with_terminate_stops_the_container() {
    let f = on(sleep_ms::from_name);
    let call = f.spawn(30_000).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.get_current_stats().await.unwrap().running_inputs == 0 {
        assert!(Instant::now() < deadline, "the input never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call.cancel(true).await.unwrap();
    let err = call.get(None).await.unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    assert_eq!(f.remote(5).await.unwrap(), 5);
}

#[tokio::test]
async fn from_id_in_a_second_process_and_gather() {
    let call = on(add::from_name).spawn(40, 2).await.unwrap();
    let out = Command::new(workspace_binary("get_call"))
        .arg(call.object_id())
        .envs(common::server_env(&env().url))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("result 42"), "{}", text(&out));

    let calls = vec![
        on(square::from_name).spawn(3).await.unwrap(),
        on(square::from_name).spawn(4).await.unwrap(),
    ];
    assert_eq!(FunctionCall::gather(calls).await.unwrap(), [9, 16]);
    let calls = vec![
        on(checked_div::from_name).spawn(4, 2).await.unwrap(),
        on(checked_div::from_name).spawn(1, 0).await.unwrap(),
    ];
    let err = FunctionCall::gather(calls).await.unwrap_err();
    assert!(err.to_string().contains("cannot divide 1 by zero"), "{err}");
}

#[tokio::test]
async fn results_expire_after_the_retention_with_a_clear_error() {
    let mut config = ServerConfig::new(scratch_dir("retention"));
    config.call_retention = Duration::from_secs(1);
    config.upkeep_interval = Duration::from_millis(100);
    let server = Server::start(config).await.unwrap();
    let client = common::connect(server.url()).await.unwrap();
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    client
        .create_app(
            "retention",
            &manifest,
            AppBinary::LocalPath(&test_app()),
            false,
        )
        .await
        .unwrap();
    let squarer = client.function::<(u64,), u64>("retention", "square");
    let call = squarer.spawn((7,)).await.unwrap();
    assert_eq!(call.get(None).await.unwrap(), 49);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let err = call.get(None).await.unwrap_err();
    assert!(matches!(err, Error::CallExpired { .. }), "{err:?}");
    assert!(err.to_string().contains("has expired"), "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn unordered_maps_and_returned_exceptions() {
    // The first input is slow: unordered, a fast one comes first.
    let delays: Vec<u64> = vec![1000, 10, 10, 10, 10, 10];
    let got: Vec<u64> = on(sleep_ms::from_name)
        .map(delays)
        .order_outputs(false)
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(got.len(), 6);
    assert_eq!(got[0], 10, "{got:?}");
    assert!(got.contains(&1000), "{got:?}");

    let results: Vec<Result<i64, Error>> = on(checked_div::from_name)
        .starmap([(4, 2), (1, 0), (9, 3)])
        .return_exceptions(true)
        .collect()
        .await;
    assert_eq!(results.len(), 3);
    assert_eq!(*results[0].as_ref().unwrap(), 2);
    assert!(matches!(results[1], Err(Error::User { .. })));
    assert_eq!(*results[2].as_ref().unwrap(), 3);

    // `for_each` that ignores failures.
    on(checked_div::from_name)
        .starmap([(1, 0), (2, 1)])
        .return_exceptions(true)
        .drain()
        .await
        .unwrap();
}

#[tokio::test]
async fn spawn_map_returns_every_result_through_one_call() {
    let call = on(square::from_name)
        .handle()
        .clone()
        .spawn_map((0..2_000_u64).map(|x| (x,)))
        .await
        .unwrap();
    let squares = call.get(Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(squares, (0..2_000_u64).map(|x| x * x).collect::<Vec<_>>());
    let call = on(checked_div::from_name)
        .handle()
        .clone()
        .spawn_map([(1, 1), (1, 0)])
        .await
        .unwrap();
    let err = call.get(None).await.unwrap_err();
    assert!(err.to_string().contains("cannot divide 1 by zero"), "{err}");
}

#[tokio::test]
async fn a_larger_map_streams_through_bounded_windows() {
    let results = on(square::from_name).map(0..100_000_u64);
    let mut count = 0_u64;
    let mut results = std::pin::pin!(results);
    while let Some(r) = results.next().await {
        assert_eq!(r.unwrap(), count * count);
        count += 1;
    }
    assert_eq!(count, 100_000);
}

#[tokio::test]
async fn payloads_of_256_mib_travel_both_ways() {
    // A control plane of its own, so that its blobs go with its directory.
    let dir = scratch_dir("payloads");
    let server = Server::start(ServerConfig::new(&dir)).await.unwrap();
    let client = common::connect(server.url()).await.unwrap();
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    client
        .create_app(
            "payloads",
            &manifest,
            AppBinary::LocalPath(&test_app()),
            false,
        )
        .await
        .unwrap();
    let echo = client
        .function::<(serde_bytes::ByteBuf, usize), serde_bytes::ByteBuf>("payloads", "big_echo");
    let size = 256 << 20;
    let data = serde_bytes::ByteBuf::from(vec![1_u8; size]);
    let back = echo.remote((data, size)).await.unwrap();
    assert_eq!(back.len(), size);
    // 2^28 ones sum to 0 mod 256.
    assert!(back.iter().all(|b| *b == 0));
    // The argument's blob went with its input; only the result's remains.
    let blobs = std::fs::read_dir(dir.join("blobs")).unwrap().count();
    assert_eq!(blobs, 1, "blobs left on the control plane");
    server.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_payload_over_the_limit_is_refused_before_sending() {
    let too_big =
        serde_bytes::ByteBuf::from(vec![0_u8; modal_runtime::contract::MAX_PAYLOAD_BYTES]);
    let err = on(big_echo::from_name)
        .remote(too_big, 1)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("over the limit"), "{err}");
}

#[tokio::test]
async fn a_failing_input_iterator_ends_the_map_with_its_error() {
    let inputs = (0..10_u64).map(|i| {
        if i == 6 {
            Err(format!("line {i} is not a number"))
        } else {
            Ok((i,))
        }
    });
    let started = Instant::now();
    let results: Vec<Result<u64, Error>> = on(square::from_name)
        .handle()
        .try_map(inputs)
        .collect()
        .await;
    assert!(started.elapsed() < Duration::from_secs(20));
    let values: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(values, [0, 1, 4, 9, 16, 25]);
    let err = results.last().unwrap().as_ref().unwrap_err();
    assert!(
        matches!(err, Error::InputIterator { index: 6, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("line 6 is not a number"), "{err}");
}

#[tokio::test]
async fn a_generator_streams_items_as_produced_and_keeps_its_return_value() {
    let started = Instant::now();
    let mut items = on(countdown::from_name).remote_gen(3, 400);
    let first = items.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert_eq!(first, 3);
    assert_eq!(items.next().await.unwrap().unwrap(), 2);
    assert_eq!(items.next().await.unwrap().unwrap(), 1);
    assert_eq!(items.finish().await.unwrap(), "3 items");
    let total = started.elapsed();
    assert!(
        first_at + Duration::from_millis(700) < total,
        "the first item came at {first_at:?}, the end at {total:?}: items did not stream"
    );
    // Reading only the return value skips the items.
    let items = on(countdown::from_name).remote_gen(2, 0);
    assert_eq!(items.finish().await.unwrap(), "2 items");
}

#[tokio::test]
async fn a_failing_generator_ends_with_its_error() {
    let mut items = on(fails_midway::from_name).remote_gen("hello".into());
    assert_eq!(items.next().await.unwrap().unwrap(), "hello");
    let err = items.next().await.unwrap().unwrap_err();
    assert!(err.to_string().contains("the source went away"), "{err}");
    let err = items.finish().await.unwrap_err();
    assert!(matches!(err, Error::User { .. }), "{err:?}");
}

#[tokio::test]
async fn a_map_of_large_inputs_flows_through_its_byte_window() {
    // 300 inputs of 1 MiB: more than the 128 MiB a map may have in flight.
    let inputs = (0..300_u32).map(|i| {
        (
            serde_bytes::ByteBuf::from(vec![(i % 251) as u8; 1 << 20]),
            1_usize,
        )
    });
    let sums = on(big_echo::from_name)
        .handle()
        .clone()
        .map(inputs)
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(sums.len(), 300);
    for (i, sum) in sums.iter().enumerate() {
        // 2^20 copies of a byte sum to 0 mod 256.
        assert_eq!(sum.as_slice(), [0], "input {i}");
    }
}

/// Waits until `f`'s pool holds `want` containers (checking `ok` of each
/// count on the way), within `timeout`.
async fn wait_for_containers(
    f: &modal_runtime::Function<(u64,), u64>,
    timeout: Duration,
    mut done: impl FnMut(u32) -> bool,
) -> modal_runtime::FunctionStats {
    let deadline = Instant::now() + timeout;
    loop {
        let stats = f.get_current_stats().await.unwrap();
        if done(stats.num_total_runners) {
            return stats;
        }
        assert!(Instant::now() < deadline, "timed out at {stats:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn update_autoscaler_scales_the_pool_now_and_a_redeploy_resets_it() {
    use modal_runtime::{Autoscaler, AutoscalerSettings};
    let app = "autoscaled";
    let client = deploy(&env().url, app).await;
    let pool = client.function::<(u64,), u64>(app, "nap");
    let deployed = Autoscaler {
        min_containers: 0,
        max_containers: 8,
        buffer_containers: 0,
        scaledown_window: Duration::from_secs(60),
    };
    assert_eq!(pool.get_current_stats().await.unwrap().autoscaler, deployed);

    // Bad values are refused, naming the field, and change nothing.
    for (bad, field) in [
        (
            AutoscalerSettings {
                min_containers: Some(3),
                max_containers: Some(2),
                ..AutoscalerSettings::default()
            },
            "`min_containers` (3) exceeds `max_containers` (2)",
        ),
        (
            AutoscalerSettings::min_containers(9),
            "`min_containers` (9) exceeds `max_containers` (8, the server's default",
        ),
        (
            AutoscalerSettings {
                max_containers: Some(0),
                ..AutoscalerSettings::default()
            },
            "`max_containers` is 0",
        ),
        (
            AutoscalerSettings {
                max_containers: Some(1_000_000),
                ..AutoscalerSettings::default()
            },
            "`max_containers` is 1000000",
        ),
        (
            AutoscalerSettings {
                scaledown_window: Some(Duration::from_secs(1)),
                ..AutoscalerSettings::default()
            },
            "`scaledown_window (seconds)` is 1",
        ),
        (
            AutoscalerSettings {
                scaledown_window: Some(Duration::from_secs(u64::MAX)),
                ..AutoscalerSettings::default()
            },
            "`scaledown_window (seconds)` is 4294967295",
        ),
    ] {
        let err = pool.update_autoscaler(bad).await.unwrap_err();
        assert!(err.to_string().contains(field), "{err}");
    }
    assert_eq!(pool.get_current_stats().await.unwrap().autoscaler, deployed);

    // A minimum of 2: two containers start with no input.
    pool.update_autoscaler(AutoscalerSettings {
        min_containers: Some(2),
        scaledown_window: Some(Duration::from_secs(30)),
        ..AutoscalerSettings::default()
    })
    .await
    .unwrap();
    let stats = wait_for_containers(&pool, Duration::from_secs(20), |n| n == 2).await;
    assert_eq!(stats.backlog, 0);
    assert_eq!(
        stats.autoscaler,
        Autoscaler {
            min_containers: 2,
            scaledown_window: Duration::from_secs(30),
            ..deployed
        }
    );

    // A maximum of 1: the idle one beyond it stops at once, well within
    // the scale-down window, and the pool grows no more under load.
    pool.update_autoscaler(AutoscalerSettings {
        min_containers: Some(1),
        max_containers: Some(1),
        ..AutoscalerSettings::default()
    })
    .await
    .unwrap();
    wait_for_containers(&pool, Duration::from_secs(10), |n| n == 1).await;
    let calls: Vec<_> = (0..4).map(|_| pool.remote((300,))).collect();
    let (results, most) = tokio::join!(futures::future::join_all(calls), async {
        let mut most = 0;
        for _ in 0..10 {
            most = most.max(pool.get_current_stats().await.unwrap().num_total_runners);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        most
    });
    assert!(results.into_iter().all(|r| r.unwrap() == 300));
    assert_eq!(most, 1, "the pool grew past its new maximum");

    // A redeploy serves a version with the decorator's settings.
    deploy(&env().url, app).await;
    let redeployed = client.function::<(u64,), u64>(app, "nap");
    assert_eq!(
        redeployed.get_current_stats().await.unwrap().autoscaler,
        deployed
    );
}
