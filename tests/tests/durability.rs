//! Nothing accepted is lost: detached calls, apps and their state survive a
//! SIGKILL of the control plane and a restart on the same store, on SQLite
//! and on PostgreSQL; outcomes and their payloads go when the retention
//! ends; a store that cannot be used stops the start, changing nothing.

mod common;

use std::time::{Duration, Instant};

use common::Standalone;
use modal_runtime::{Client, Error, FunctionCall};
use serde_bytes::ByteBuf;

/// The inputs' time: long enough that 11,000 of them on 256 slots build a
/// backlog while they are submitted, short enough to finish in seconds.
const INPUT_MS: u64 = 150;

fn marker(url: &str) -> String {
    format!("MODAL_CONTAINER_SERVER_URL={url}")
}

/// `attempt_of` on the tests' app deployed as `app`, through `client`.
fn attempt_of(client: &Client, app: &str) -> modal_runtime::Function<(u64,), u32> {
    client.function::<(u64,), u32>(app, "attempt_of")
}

/// A `spawn_map` of 10,000 inputs and 1,000 `spawn`s, then SIGKILL of the
/// control plane while ≥ 100 inputs run and ≥ 1,000 wait, then a restart
/// on the same store: every call gets its outcome; inputs that had been
/// handed to a container run again as attempt 2; no container of the dead
/// control plane is left.
async fn detached_calls_survive_a_sigkill(data_dir: std::path::PathBuf, args: &[&str]) {
    let mut first = Standalone::start_in(data_dir.clone(), args);
    let client = common::deploy(&first.url, "durable").await;
    let f = attempt_of(&client, "durable");
    let map = f.spawn_map((0..10_000).map(|_| (INPUT_MS,))).await.unwrap();
    let mut spawned = Vec::new();
    for _ in 0..10 {
        let batch = futures::future::join_all((0..100).map(|_| f.spawn((INPUT_MS,)))).await;
        spawned.extend(batch.into_iter().map(|c| c.unwrap().object_id().to_owned()));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = f.get_current_stats().await.unwrap();
        if stats.running_inputs >= 100 && stats.backlog >= 1_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no backlog built up to kill the control plane in: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill9();
    let left = common::wait_for_no_processes_with(&marker(&first.url), Duration::from_secs(10));
    assert!(
        left.is_empty(),
        "containers of the dead control plane are left: {left:?}"
    );

    let second = Standalone::start_in(data_dir, args);
    let client = common::connect(&second.url).await.unwrap();
    let results: Vec<u32> = FunctionCall::<Vec<u32>>::from_id_with(&client, map.object_id())
        .get(Some(Duration::from_secs(120)))
        .await
        .unwrap();
    assert_eq!(results.len(), 10_000);
    let mut attempts: Vec<u32> = results;
    for id in &spawned {
        let attempt = FunctionCall::<u32>::from_id_with(&client, id)
            .get(Some(Duration::from_secs(60)))
            .await
            .unwrap();
        attempts.push(attempt);
    }
    let reruns = attempts.iter().filter(|&&a| a == 2).count();
    eprintln!(
        "{reruns} of {} inputs ran again as attempt 2",
        attempts.len()
    );
    assert!(
        attempts.iter().all(|&a| a == 1 || a == 2),
        "attempts other than 1 and 2: {:?}",
        attempts.iter().filter(|&&a| a > 2).collect::<Vec<_>>()
    );
    assert!(
        reruns >= 100,
        "at least the ≥ 100 inputs running at the kill run again as attempt 2, not {reruns}"
    );
    assert!(
        attempts.iter().filter(|&&a| a == 1).count() >= 1_000,
        "the inputs never handed out run as attempt 1"
    );
}

#[tokio::test]
async fn detached_calls_survive_a_sigkill_on_sqlite() {
    detached_calls_survive_a_sigkill(common::scratch_dir("durable"), &[]).await;
}

#[tokio::test]
async fn detached_calls_survive_a_sigkill_on_postgres() {
    let Some(url) = common::postgres_db("durable") else {
        return;
    };
    detached_calls_survive_a_sigkill(common::scratch_dir("durable-pg"), &["--store", &url]).await;
}

/// The edge: the control plane dies the moment a `spawn` returns its id.
#[tokio::test]
async fn a_spawn_is_durable_once_acknowledged() {
    let data_dir = common::scratch_dir("acked");
    let mut first = Standalone::start_in(data_dir.clone(), &[]);
    let client = common::deploy(&first.url, "acked").await;
    let call = attempt_of(&client, "acked").spawn((0,)).await.unwrap();
    first.kill9();
    let second = Standalone::start_in(data_dir, &[]);
    let client = common::connect(&second.url).await.unwrap();
    let attempt = FunctionCall::<u32>::from_id_with(&client, call.object_id())
        .get(Some(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(attempt == 1 || attempt == 2, "{attempt}");
}

/// An outcome read after a restart and long after the call finished
/// comes from the store, and a stopped app stays stopped.
#[tokio::test]
async fn outcomes_and_stopped_apps_are_kept_across_restarts() {
    let data_dir = common::scratch_dir("kept");
    let mut first = Standalone::start_in(data_dir.clone(), &[]);
    let client = common::deploy(&first.url, "kept").await;
    common::deploy(&first.url, "halted").await;
    let call = attempt_of(&client, "kept").spawn((0,)).await.unwrap();
    assert_eq!(call.get(None).await.unwrap(), 1);
    client.stop_app("halted").await.unwrap();
    first.kill9();

    let second = Standalone::start_in(data_dir, &[]);
    let client = common::connect(&second.url).await.unwrap();
    let again = FunctionCall::<u32>::from_id_with(&client, call.object_id());
    assert_eq!(again.get(None).await.unwrap(), 1);
    let apps = client.list_apps().await.unwrap();
    let state = |name: &str| {
        apps.iter()
            .find(|a| a.name == name)
            .map(|a| a.state.clone())
            .unwrap_or_default()
    };
    assert_eq!(state("halted"), "stopped");
    assert_eq!(state("kept"), "running");
    let err = attempt_of(&client, "halted")
        .remote((0,))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AppStopped { .. }), "{err}");
    // A redeploy revives it.
    common::deploy(&second.url, "halted").await;
    assert_eq!(attempt_of(&client, "halted").remote((0,)).await.unwrap(), 1);
}

/// Outcomes, their blobs and the calls' inputs go when the retention ends;
/// `get` then says the call expired.
#[tokio::test]
async fn retention_removes_outcomes_and_their_payloads() {
    let data_dir = common::scratch_dir("retention");
    let cp = Standalone::start_in(data_dir.clone(), &["--retention", "2s"]);
    let client = common::deploy(&cp.url, "retained").await;
    // A result over 4 MiB is stored as a blob.
    let big = client.function::<(ByteBuf, usize), ByteBuf>("retained", "big_echo");
    let call = big.spawn((ByteBuf::new(), 5 << 20)).await.unwrap();
    assert_eq!(call.get(None).await.unwrap().len(), 5 << 20);
    let blobs = || {
        std::fs::read_dir(data_dir.join("blobs").join("main"))
            .unwrap()
            .count()
    };
    assert_eq!(blobs(), 1, "the result is a blob");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match call.get(Some(Duration::ZERO)).await {
            Err(Error::CallExpired { .. }) if blobs() == 0 => break,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("after 30 s, still {other:?} with {} blobs", blobs()),
        }
    }
    let err = call.get(None).await.unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
}

/// A store that cannot be used stops the start with a message naming it,
/// and is left as it was.
#[test]
fn a_bad_store_stops_the_start_and_is_left_as_it_was() {
    let data_dir = common::scratch_dir("bad-store");
    let store = data_dir.join("store.sqlite3");
    std::fs::write(&store, vec![0x55; 4096]).unwrap();
    let output = common::xtask(&[
        "server",
        "--addr",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    let text = common::text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("cannot be opened as the control plane's store"),
        "{text}"
    );
    assert!(text.contains("store.sqlite3"), "{text}");
    assert_eq!(std::fs::read(&store).unwrap(), vec![0x55; 4096]);

    let output = common::xtask(&[
        "server",
        "--addr",
        "127.0.0.1:0",
        "--store",
        "postgres://nobody@127.0.0.1:1/none",
    ]);
    let text = common::text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("cannot reach the PostgreSQL store"), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
}

/// A PostgreSQL store with a schema newer than this control plane knows
/// stops the start, and is left as it was.
#[test]
fn a_newer_postgres_schema_stops_the_start() {
    let Some(url) = common::postgres_db("newer") else {
        return;
    };
    let data_dir = common::scratch_dir("newer-pg");
    let args = |data_dir: &std::path::Path| {
        vec![
            "server".to_owned(),
            "--addr".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            data_dir.to_string_lossy().into_owned(),
            "--store".into(),
            url.clone(),
        ]
    };
    let schema = |sql: &'static str| {
        let url = url.clone();
        std::thread::spawn(move || {
            let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            db.batch_execute(sql).unwrap();
        })
        .join()
        .unwrap()
    };
    schema(
        "CREATE TABLE modal_schema (version INTEGER NOT NULL); INSERT INTO modal_schema VALUES (99)",
    );
    let args = args(&data_dir);
    let output = common::xtask(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let text = common::text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("schema version 99"), "{text}");
    assert!(text.contains("left as it is"), "{text}");
}

/// A full store fails the request that needed the commit, saying so;
/// what was acknowledged before is kept.
#[tokio::test]
async fn a_full_store_refuses_new_calls_and_keeps_the_acknowledged_ones() {
    let data_dir = common::scratch_dir("full");
    let cp = Standalone::start_in(data_dir, &["--max-store-mib", "2"]);
    let client = common::deploy(&cp.url, "full").await;
    let f = attempt_of(&client, "full");
    let kept = f.spawn((0,)).await.unwrap();
    assert_eq!(kept.get(None).await.unwrap(), 1);
    let echo = client.function::<(ByteBuf, usize), ByteBuf>("full", "big_echo");
    let mut refused = None;
    for _ in 0..64 {
        match echo.spawn((ByteBuf::from(vec![7u8; 1 << 20]), 0)).await {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let err = refused.expect("a 2 MiB store refuses a spawn before 64 MiB of arguments");
    let text = err.to_string();
    assert!(text.contains("store is full"), "{text}");
    assert!(text.contains("--max-store-mib"), "{text}");
    assert_eq!(
        FunctionCall::<u32>::from_id_with(&client, kept.object_id())
            .get(None)
            .await
            .unwrap(),
        1
    );
}

/// Two control planes on one PostgreSQL database: the second waits (it
/// does not even listen) while the first leads; SIGKILL the leader and the
/// standby leads within 10 s and finishes every detached call. A leader
/// that loses its database exits rather than serve unfenced.
#[tokio::test]
async fn a_standby_takes_over_when_the_leader_is_killed() {
    let Some(url) = common::postgres_db("failover") else {
        return;
    };
    let data_dir = common::scratch_dir("failover");
    let store = ["--store", url.as_str()];
    let (a, b) = (common::free_addr(), common::free_addr());
    let mut leader = common::Spawned::start(&a, &data_dir, &store);
    leader
        .wait_for("listening on", Duration::from_secs(30))
        .expect("the first control plane leads");
    // Its admin token is the standby's too: they share the store.
    common::learn_token(&data_dir, &format!("http://{a}"));
    let standby = common::Spawned::start(&b, &data_dir, &store);
    standby
        .wait_for("another control plane leads", Duration::from_secs(30))
        .expect("the second one waits");
    assert!(
        std::net::TcpStream::connect(&b).is_err(),
        "a standby does not listen"
    );

    common::deploy(&format!("http://{a}"), "failover").await;
    // A client given both URLs follows the lead.
    let client = common::connect(&format!("http://{a},http://{b}"))
        .await
        .unwrap();
    let f = attempt_of(&client, "failover");
    let map = f.spawn_map((0..2_000).map(|_| (INPUT_MS,))).await.unwrap();
    let single = f.spawn((INPUT_MS,)).await.unwrap();
    let calls = f.clone();
    let remote_loop = tokio::spawn(async move {
        let started = Instant::now();
        let mut done = 0;
        while started.elapsed() < Duration::from_secs(3) {
            assert_eq!(calls.remote((0,)).await.unwrap(), 1);
            done += 1;
        }
        done
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    leader.child.kill().unwrap();
    let killed = Instant::now();
    leader.child.wait().unwrap();
    standby
        .wait_for("listening on", Duration::from_secs(10))
        .expect("the standby leads within 10 s of the leader's death");
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    eprintln!("the standby listened {took:?} after the leader was killed");

    let results = FunctionCall::<Vec<u32>>::from_id_with(&client, map.object_id())
        .get(Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(results.len(), 2_000);
    let one = FunctionCall::<u32>::from_id_with(&client, single.object_id())
        .get(Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(one == 1 || one == 2, "{one}");
    let remotes = remote_loop.await.unwrap();
    assert!(remotes > 0);
    assert!(
        client.url().contains(&b),
        "the client moved to the standby: {}",
        client.url()
    );

    // Its database session ends under it: the leader exits (code 75)
    // instead of serving what it can no longer record.
    let terminate = url.clone();
    std::thread::spawn(move || {
        let mut db = postgres::Client::connect(&terminate, postgres::NoTls).unwrap();
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
             AND granted AND pid <> pg_backend_pid() \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .unwrap();
    })
    .join()
    .unwrap();
    let mut standby = standby;
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = standby.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "a leader that lost its database still runs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(75), "{status:?}");
}

/// A class instance keeps its id across a restart: a call spawned on it
/// just before the control plane dies (held 50 ms in its container for a
/// batch) runs on it after.
#[tokio::test]
async fn a_class_instance_s_spawned_call_survives_a_restart() {
    let data_dir = common::scratch_dir("instance");
    let mut first = Standalone::start_in(data_dir.clone(), &[]);
    let client = common::deploy(&first.url, "classy").await;
    let instance = |client: &Client| {
        client
            .cls::<modal_tests::Batcher>("classy", "Batcher")
            .instance(modal_tests::BatcherParams { offset: 10 })
    };
    let call = instance(&client).sized.spawn(5).await.unwrap();
    first.kill9();
    let second = Standalone::start_in(data_dir, &[]);
    let client = common::connect(&second.url).await.unwrap();
    let again = FunctionCall::<(u64, usize)>::from_id_with(&client, call.object_id());
    assert_eq!(
        again.get(Some(Duration::from_secs(30))).await.unwrap(),
        (15, 1)
    );
    // Bound again by the same values, it is the same instance.
    assert_eq!(instance(&client).sized.remote(2).await.unwrap(), (12, 1));
}
