//! End to end: a real control plane, the tests' app deployed to it, calls
//! through typed stubs running in real container processes.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use modal_runtime::server::{Server, ServerConfig};
use modal_runtime::{AppBinary, Client, Error, Function, FunctionCall, Manifest};
use modal_tests::*;

#[tokio::test]
async fn remote_returns_the_result() {
    assert_eq!(on(square::from_name).remote(9).await.unwrap(), 81);
    assert_eq!(on(add::from_name).remote(-2, 5).await.unwrap(), 3);
    assert_eq!(
        on(greet::from_name).remote("Ada".into()).await.unwrap(),
        "Hello, Ada!"
    );
}

#[tokio::test]
async fn spawn_then_get_and_from_id() {
    let call = on(add::from_name).spawn(40, 2).await.unwrap();
    assert_eq!(call.get(Some(Duration::from_secs(30))).await.unwrap(), 42);
    // The id alone is enough to fetch the result again.
    let again = FunctionCall::<i64>::from_id(call.object_id()).unwrap();
    assert_eq!(again.get(None).await.unwrap(), 42);
}

#[tokio::test]
async fn get_with_timeout_leaves_the_call_running() {
    let call = on(sleep_ms::from_name).spawn(1500).await.unwrap();
    let err = call
        .get(Some(Duration::from_millis(100)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OutputTimeout { .. }), "{err}");
    assert!(err.to_string().contains("still running"), "{err}");
    assert_eq!(call.get(Some(Duration::from_secs(30))).await.unwrap(), 1500);
}

#[tokio::test]
async fn unknown_call_id_is_reported() {
    env();
    let err = FunctionCall::<u64>::from_id("fc-nope")
        .unwrap()
        .get(None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CallNotFound { .. }), "{err}");
    assert!(err.to_string().contains("fc-nope"), "{err}");
}

#[tokio::test]
async fn ordered_map_of_1000_inputs() {
    let results = on(square::from_name)
        .map(0..1000_u64)
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(results, (0..1000_u64).map(|x| x * x).collect::<Vec<_>>());
}

#[tokio::test]
async fn map_keeps_order_when_inputs_finish_out_of_order() {
    // Early inputs are the slow ones.
    let delays: Vec<u64> = (0..24).map(|i| (24 - i) * 5).collect();
    let results = on(sleep_ms::from_name)
        .map(delays.clone())
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(results, delays);
}

#[tokio::test]
async fn starmap_spreads_tuples_over_arguments() {
    let sums = on(add::from_name)
        .starmap((0..200).map(|i| (i, 1000 * i)))
        .collect_vec()
        .await
        .unwrap();
    assert_eq!(sums, (0..200).map(|i| 1001 * i).collect::<Vec<_>>());
}

#[tokio::test]
async fn map_ends_with_the_first_failure() {
    let mut results = on(checked_div::from_name).starmap([(4, 2), (1, 0), (9, 3)]);
    assert_eq!(results.next().await.unwrap().unwrap(), 2);
    let err = results.next().await.unwrap().unwrap_err();
    assert!(err.to_string().contains("cannot divide 1 by zero"), "{err}");
    assert!(results.next().await.is_none());
}

#[tokio::test]
async fn for_each_runs_every_input_and_reports_failures() {
    on(square::from_name).for_each(0..300).await.unwrap();
    let err = on(checked_div::from_name)
        .for_each([(1, 1), (2, 0)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::User { .. }), "{err}");
}

#[tokio::test]
async fn local_runs_in_this_process() {
    assert_eq!(square.local(12), 144);
    assert_eq!(pid.local(), std::process::id());
    assert_ne!(
        on(pid::from_name).remote().await.unwrap(),
        std::process::id()
    );
    assert_eq!(greet.local("me".into()).await, "Hello, me!");
    let raw = square.get_raw_f();
    assert_eq!(raw(5), 25);
}

#[tokio::test]
async fn a_user_error_reaches_the_caller_with_its_text() {
    let err = on(checked_div::from_name).remote(7, 0).await.unwrap_err();
    assert!(matches!(err, Error::User { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "function `checked_div` failed: cannot divide 7 by zero"
    );
}

#[tokio::test]
async fn a_serde_error_comes_back_as_a_value_to_match_on() {
    let vetted = on(vet::from_name);
    let err = vetted.remote(-3).await.unwrap_err();
    // Readable for a caller that only prints it…
    assert_eq!(err.to_string(), "function `vet` failed: -3 is negative");
    // …and the function's own error for one that matches on it.
    assert_eq!(err.user_error::<Refusal>(), Some(Refusal::Negative(-3)));
    match vetted
        .remote(250)
        .await
        .unwrap_err()
        .user_error::<Refusal>()
    {
        Some(Refusal::TooLarge { value, limit }) => assert_eq!((value, limit), (250, 100)),
        other => panic!("{other:?}"),
    }
    assert_eq!(vetted.remote(7).await.unwrap(), 7);

    // Through spawn and get, and a handle rebuilt from the call's id.
    let call = vetted.spawn(-1).await.unwrap();
    let err = call.get(Some(Duration::from_secs(30))).await.unwrap_err();
    assert_eq!(err.user_error::<Refusal>(), Some(Refusal::Negative(-1)));
    let again = FunctionCall::<i64>::from_id(call.object_id()).unwrap();
    let err = again.get(None).await.unwrap_err();
    assert_eq!(err.user_error::<Refusal>(), Some(Refusal::Negative(-1)));

    // Through a map that returns its failures in place.
    let results: Vec<Result<i64, Error>> = vetted
        .map([5, -2, 500])
        .return_exceptions(true)
        .collect()
        .await;
    assert_eq!(*results[0].as_ref().unwrap(), 5);
    let errors: Vec<Option<Refusal>> = results[1..]
        .iter()
        .map(|r| r.as_ref().unwrap_err().user_error::<Refusal>())
        .collect();
    assert_eq!(
        errors,
        [
            Some(Refusal::Negative(-2)),
            Some(Refusal::TooLarge {
                value: 500,
                limit: 100
            })
        ]
    );

    // A plain handle names no error type: it passes the same lookup, and
    // decodes the error with whatever type its caller names.
    let plain = Function::<(i64,), i64>::from_name(APP, "vet");
    let err = plain.remote((-9,)).await.unwrap_err();
    assert_eq!(err.user_error::<Refusal>(), Some(Refusal::Negative(-9)));
    assert_eq!(err.user_error::<u64>(), None);
}

#[tokio::test]
async fn an_error_that_is_not_serde_travels_as_text_only() {
    let err = on(open_missing::from_name)
        .remote("/no/such/file".into())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::User { value: None, .. }), "{err:?}");
    assert!(err.to_string().contains("No such file"), "{err}");
    assert_eq!(err.user_error::<String>(), None);
}

#[tokio::test]
async fn a_panic_fails_the_input_not_the_container() {
    let exploder = on(explode::from_name);
    let err = exploder.remote("kaboom".into()).await.unwrap_err();
    assert!(matches!(err, Error::Panic { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("function `explode` panicked in container c-"),
        "{text}"
    );
    assert!(text.ends_with(": kaboom"), "{text}");
    // The same container goes on serving.
    let Error::Panic { container, .. } = &err else {
        unreachable!()
    };
    let err2 = exploder.remote("again".into()).await.unwrap_err();
    let Error::Panic {
        container: container2,
        ..
    } = &err2
    else {
        panic!("{err2}")
    };
    assert_eq!(container, container2, "the container survived its panic");

    let err = on(explode_async::from_name)
        .remote("boom".into())
        .await
        .unwrap_err();
    assert!(err.to_string().ends_with(": async boom"), "{err}");
}

#[tokio::test]
async fn a_crashed_container_fails_its_input() {
    let err = on(exit_process::from_name).remote(3).await.unwrap_err();
    assert!(matches!(err, Error::ContainerCrashed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("exited with status 3"), "{text}");
    assert!(text.contains("while running this input"), "{text}");
    // The function still works: a new container takes the next input.
    let err = on(exit_process::from_name).remote(4).await.unwrap_err();
    assert!(err.to_string().contains("exited with status 4"), "{err}");
}

#[tokio::test]
async fn a_silent_container_is_declared_lost() {
    let started = Instant::now();
    let err = on(freeze::from_name).remote().await.unwrap_err();
    assert!(matches!(err, Error::ContainerCrashed { .. }), "{err:?}");
    assert!(err.to_string().contains("no heartbeat"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn unknown_app_and_function_are_named() {
    env();
    let err = square::from_name("no-such-app")
        .remote(1)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AppNotFound { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("app `no-such-app` is not deployed"), "{text}");
    assert!(text.contains(APP), "lists the deployed apps: {text}");

    let err = Function::<(u64,), u64>::from_name(APP, "cube")
        .remote((2,))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::FunctionNotFound { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("app `e2e` has no function `cube`"), "{text}");
    assert!(text.contains("square"), "lists the functions: {text}");
}

#[tokio::test]
async fn a_caller_with_other_types_is_refused_at_lookup() {
    env();
    let wrong = Function::<(String,), u64>::from_name(APP, "square");
    let err = wrong.hydrate().await.unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("(u64,) -> u64"), "{text}");
    assert!(text.contains("(String,) -> u64"), "{text}");
    // The right types pass the same check.
    Function::<(u64,), u64>::from_name(APP, "square")
        .hydrate()
        .await
        .unwrap();
}

#[tokio::test]
async fn lookup_resolves_now_and_fails_at_once() {
    env();
    let f = Function::<(u64,), u64>::lookup(APP, "square")
        .await
        .unwrap();
    assert_eq!(f.remote((3,)).await.unwrap(), 9);
    let stub = square::lookup(APP).await.unwrap();
    assert_eq!(stub.remote(4).await.unwrap(), 16);
    Function::<(u64,), u64>::lookup_in("main", APP, "square")
        .await
        .unwrap();
    let started = Instant::now();
    let err = Function::<(u64,), u64>::lookup("no-such-app", "square")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AppNotFound { .. }), "{err:?}");
    let Err(err) = square::lookup("no-such-app").await else {
        panic!("a stub of a missing app was found");
    };
    assert!(matches!(err, Error::AppNotFound { .. }), "{err:?}");
    let err = Function::<(u64,), u64>::lookup(APP, "cube")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::FunctionNotFound { .. }), "{err:?}");
    let err = Function::<(String,), u64>::lookup(APP, "square")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_pinned_version_is_checked_against_the_callers_types() {
    env();
    let pinned = || Function::<(u64,), u64>::from_name(APP, "square").version(1);
    pinned().hydrate().await.unwrap();
    let err = Function::<(String,), u64>::from_name(APP, "square")
        .version(1)
        .hydrate()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err:?}");
    let err = Function::<(u64,), u64>::from_name(APP, "square")
        .version(99)
        .hydrate()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has no version 99"), "{err}");
}

#[test]
fn a_function_handle_shows_what_it_calls() {
    assert_eq!(format!("{:?}", square.handle()), "Function(square)");
    let named = Function::<(u64,), u64>::from_name(APP, "square");
    assert_eq!(format!("{named:?}"), "Function(e2e/square)");
    assert_eq!(format!("{:?}", named.version(1)), "Function(e2e/square)");
}

#[tokio::test]
async fn an_unreachable_server_is_named() {
    let err = match common::connect("http://127.0.0.1:9").await {
        Err(e) => e,
        Ok(_) => panic!("connected to a closed port"),
    };
    assert!(matches!(err, Error::ServerUnreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("http://127.0.0.1:9"), "{text}");
    assert!(text.contains("cargo xtask server"), "{text}");
}

#[tokio::test]
async fn a_stub_outside_an_app_says_how_to_call_it() {
    let err = square.remote(2).await.unwrap_err();
    assert!(matches!(err, Error::NoApp { .. }), "{err:?}");
    assert!(err.to_string().contains("square::from_name"), "{err}");
}

#[tokio::test]
async fn logs_are_marked_with_function_and_container() {
    let client = common::connect(&env().url).await.unwrap();
    let mut logs = client.stream_logs(APP, false).await.unwrap();
    on(shout::from_name).remote("ping".into()).await.unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 2 && Instant::now() < deadline {
        let batch = tokio::time::timeout(Duration::from_secs(20), logs.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        for line in batch.lines {
            if line.function == "shout" && line.text.ends_with("says ping") {
                assert!(line.container_id.starts_with("c-"));
                seen.push(line.text);
            }
        }
    }
    seen.sort();
    assert_eq!(seen, ["stderr says ping", "stdout says ping"]);
}

#[test]
fn the_embedded_default_runs_end_to_end_and_leaves_nothing_behind() {
    let marker = format!("MODAL_E2E_MARKER={}", std::process::id());
    let (key, value) = marker.split_once('=').unwrap();
    let output = Command::new(test_app())
        .env_remove("MODAL_SERVER_URL")
        .env("MODAL_CONFIG", "/nonexistent/modal-rs.toml")
        .env(key, value)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for expected in [
        "remote 144",
        "greet Hello, embedded!",
        "spawn 42",
        "map 328350",
        "shout 5",
        "error function `checked_div` failed: cannot divide 1 by zero",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    // Container output reaches the caller, marked with function and container.
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("[shout c-") && l.ends_with("] stdout says hello")),
        "{stdout}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("[shout c-") && l.ends_with("] stderr says hello")),
        "{stderr}"
    );
    assert_eq!(
        processes_with(&marker),
        Vec::<u32>::new(),
        "orphan processes"
    );
}

#[tokio::test]
async fn shutting_the_server_down_kills_every_container() {
    // Not `MODAL_*`: a function's env may not set the runtime's own variables.
    let marker = format!("E2E_SHUTDOWN_MARKER={}", std::process::id());
    let mut config = ServerConfig::new(scratch_dir("shutdown"));
    config.stop_grace = Duration::from_secs(1);
    let server = Server::start(config).await.unwrap();
    let client = common::connect(server.url()).await.unwrap();
    let mut manifest = Manifest::read_from_binary(&test_app()).unwrap();
    for f in &mut manifest.functions {
        let mut env = f.options.env.to_vec();
        let (k, v) = marker.split_once('=').unwrap();
        env.push((k.to_owned().into(), v.to_owned().into()));
        f.options.env = env.into();
    }
    client
        .create_app(
            "shutdown",
            &manifest,
            AppBinary::LocalPath(&test_app()),
            false,
        )
        .await
        .unwrap();
    let info = client_call_sleep(&client).await;
    assert_eq!(info, 3);
    assert!(
        !processes_with(&marker).is_empty(),
        "containers are running"
    );
    server.shutdown().await;
    assert_eq!(
        processes_with(&marker),
        Vec::<u32>::new(),
        "orphan processes"
    );
}

/// Runs `sleep_ms.map` on the app `shutdown` of `client`'s server, so that
/// several containers are up.
async fn client_call_sleep(client: &Client) -> usize {
    let handle = client.function::<(u64,), u64>("shutdown", "sleep_ms");
    handle
        .map([(50,), (50,), (50,)])
        .collect_vec()
        .await
        .unwrap()
        .len()
}

#[test]
fn deploy_with_xtask_then_call_from_another_crate() {
    let url = env().url.clone();
    let hello = workspace_binary("hello");
    let out = xtask(&[
        "deploy",
        "hello",
        "--binary",
        hello.to_str().unwrap(),
        "--name",
        "hello-e2e",
        "--server",
        &url,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("deployed app `hello-e2e` version"), "{said}");
    assert!(said.contains("square  (u64,) -> u64"), "{said}");

    let model = workspace_binary("model");
    let out = xtask(&[
        "deploy",
        "model",
        "--binary",
        model.to_str().unwrap(),
        "--name",
        "model-e2e",
        "--server",
        &url,
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let out = Command::new(workspace_binary("caller"))
        .envs(common::server_env(&url))
        .env("HELLO_APP", "hello-e2e")
        .env("MODEL_APP", "model-e2e")
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("model-e2e.Factorizer(\"caller\").factorize(360) = [2, 2, 2, 3, 3, 5]"),
        "{said}"
    );
    assert!(said.contains("hello-e2e.square(12) = 144"), "{said}");
    assert!(said.contains("hello-e2e.add(2, 3) = 5"), "{said}");
    assert!(
        said.contains("hello-e2e.withdraw(10, 25) refused: 25 is more than 10"),
        "{said}"
    );
    assert!(
        said.contains("hello-e2e.square.map([1, 2, 3]) = [1, 4, 9]"),
        "{said}"
    );

    let out = xtask(&["app", "list", "--server", &url]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let line = said
        .lines()
        .find(|l| l.starts_with("hello-e2e "))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(
        line.contains("running") && line.contains("square"),
        "{line}"
    );

    let out = xtask(&["app", "stop", "hello-e2e", "--server", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let out = Command::new(workspace_binary("caller"))
        .envs(common::server_env(&url))
        .env("HELLO_APP", "hello-e2e")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("app `hello-e2e` is stopped"),
        "{}",
        text(&out)
    );
}

#[test]
fn deploy_reports_a_binary_without_functions() {
    let url = env().url.clone();
    let out = xtask(&["deploy", "xtask", "--binary", "/bin/true", "--server", &url]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("did not print a manifest"),
        "{}",
        text(&out)
    );
}

#[test]
fn xtask_app_logs_follows_container_output() {
    let url = env().url.clone();
    let mut logs = Command::new(workspace_binary("xtask"))
        .args(["app", "logs", APP, "--server", &url])
        .env("MODAL_TOKEN", token_for(&url))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = logs.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut found = None;
    while found.is_none() && Instant::now() < deadline {
        runtime
            .block_on(on(shout::from_name).remote("follow".into()))
            .unwrap();
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            if line.ends_with("] stdout says follow") {
                found = Some(line);
                break;
            }
        }
    }
    let _ = logs.kill();
    let _ = logs.wait();
    let line = found.expect("the followed logs show the container's output");
    assert!(line.starts_with("[shout c-"), "{line}");
}

#[tokio::test]
async fn a_burst_never_exceeds_max_containers() {
    let pids = on(capped_pid::from_name)
        .map(vec![40_u64; 24])
        .collect_vec()
        .await
        .unwrap();
    let distinct: std::collections::BTreeSet<u32> = pids.into_iter().collect();
    assert!(
        !distinct.is_empty() && distinct.len() <= 2,
        "{} containers ran a function capped at 2",
        distinct.len()
    );
}

#[tokio::test]
async fn idle_containers_stop_after_the_scaledown_window() {
    let client = common::connect(&env().url).await.unwrap();
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    client
        .create_app(
            "scaledown",
            &manifest,
            AppBinary::LocalPath(&test_app()),
            false,
        )
        .await
        .unwrap();
    let containers = |apps: Vec<modal_runtime::proto::AppInfo>| {
        apps.into_iter()
            .find(|a| a.name == "scaledown")
            .map(|a| a.containers)
            .unwrap()
    };
    let handle = client.function::<(u64,), u64>("scaledown", "brief");
    assert_eq!(handle.remote((5,)).await.unwrap(), 5);
    assert_eq!(containers(client.list_apps().await.unwrap()), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while containers(client.list_apps().await.unwrap()) > 0 {
        assert!(
            Instant::now() < deadline,
            "the idle container was not stopped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Scaled to zero, it starts again on demand.
    assert_eq!(handle.remote((6,)).await.unwrap(), 6);
}
