//! Callers ride through a control plane that is killed and started again
//! (same data folder, same address) or that moves to another of their
//! URLs: `remote`, class methods and ordered maps get every result once;
//! a control plane that never comes back is reported after the bound.
//! Connections cut while the control plane lives on (its ids still valid)
//! are ridden through the same way.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Standalone, free_addr, scratch_dir};
use futures::StreamExt;
use modal_runtime::{Client, Error, Function};
use modal_tests::{Recorder, RecorderParams};

/// Longest any of these tests may take: a restart, containers started
/// again, the calls finished.
const BOUND: Duration = Duration::from_secs(120);

/// A control plane at a fixed address with the tests' app deployed as `app`.
async fn deployed(app: &str) -> (Standalone, String, PathBuf) {
    let addr = free_addr();
    let data_dir = scratch_dir("restarts");
    let cp = Standalone::start_on(&addr, data_dir.clone(), &[]);
    common::deploy(&cp.url, app).await;
    (cp, addr, data_dir)
}

/// Kills `cp` (SIGKILL), waits `down`, and starts it again on `addr` with
/// the same data folder, on a blocking thread.
fn restart_later(
    mut cp: Standalone,
    addr: String,
    data_dir: PathBuf,
    down: Duration,
) -> tokio::task::JoinHandle<Standalone> {
    tokio::task::spawn_blocking(move || {
        cp.kill9();
        drop(cp);
        std::thread::sleep(down);
        Standalone::start_on(&addr, data_dir, &[])
    })
}

/// Calls `call(i)` for i = 0, 1, ... until `stop`, checking each answer
/// and counting the calls in `calls`.
fn keep_calling<F, Fut>(
    calls: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    call: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(u64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(u64, u64), Error>> + Send,
{
    tokio::spawn(async move {
        let mut i = 0;
        while !stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            let (got, want) = call(i)
                .await
                .unwrap_or_else(|e| panic!("call {i} failed after {:?}: {e}", started.elapsed()));
            assert_eq!(got, want, "call {i}");
            i += 1;
            calls.store(i, Ordering::SeqCst);
        }
    })
}

/// Runs `caller` across a restart of `cp`: waits for some calls before it,
/// restarts, waits for some calls after the control plane is back.
async fn across_a_restart(
    cp: Standalone,
    addr: String,
    data_dir: PathBuf,
    calls: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    caller: tokio::task::JoinHandle<()>,
) -> Standalone {
    let calls_now = || calls.load(Ordering::SeqCst);
    while calls_now() < 20 {
        assert!(
            !caller.is_finished(),
            "the caller stopped before the restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let restarted = restart_later(cp, addr, data_dir, Duration::from_secs(1))
        .await
        .unwrap();
    let back = calls_now();
    while calls_now() < back + 20 {
        assert!(
            !caller.is_finished(),
            "the caller stopped after the restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    caller.await.unwrap();
    restarted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_calls_keep_going_through_a_restart() {
    tokio::time::timeout(BOUND, async {
        let (cp, addr, data_dir) = deployed("restart-remote").await;
        let client = common::connect(&cp.url).await.unwrap();
        let square: Function<(u64,), u64> = client.function("restart-remote", "square");
        let (calls, stop) = (Arc::default(), Arc::default());
        let caller = keep_calling(Arc::clone(&calls), Arc::clone(&stop), move |i| {
            let square = square.clone();
            async move { Ok((square.remote((i,)).await?, i * i)) }
        });
        across_a_restart(cp, addr, data_dir, calls, stop, caller).await;
    })
    .await
    .expect("still running after the bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_methods_keep_going_through_a_restart() {
    tokio::time::timeout(BOUND, async {
        let (cp, addr, data_dir) = deployed("restart-cls").await;
        let client = common::connect(&cp.url).await.unwrap();
        let dir = scratch_dir("restart-cls-events");
        let obj = client
            .cls::<Recorder>("restart-cls", "Recorder")
            .instance(RecorderParams {
                factor: 3,
                ..RecorderParams::new(dir.to_string_lossy().into_owned())
            });
        let (calls, stop) = (Arc::default(), Arc::default());
        let caller = keep_calling(Arc::clone(&calls), Arc::clone(&stop), move |i| {
            let obj = obj.clone();
            async move { Ok((obj.scaled.remote(i).await?, 3 * i)) }
        });
        across_a_restart(cp, addr, data_dir, calls, stop, caller).await;
    })
    .await
    .expect("still running after the bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_map_yields_every_result_once_in_order_through_a_restart() {
    const INPUTS: u64 = 2000;
    tokio::time::timeout(BOUND, async {
        let (cp, addr, data_dir) = deployed("restart-map").await;
        let client = common::connect(&cp.url).await.unwrap();
        let sleep_ms: Function<(u64,), u64> = client.function("restart-map", "sleep_ms");
        // A few milliseconds each, in a pattern that shows any result
        // missing, repeated or out of place.
        let ms = |i: u64| 1 + (i * 7919) % 5;
        let mut results = sleep_ms.map((0..INPUTS).map(move |i| (ms(i),)));
        let mut got = Vec::new();
        let mut cp = Some(cp);
        let mut restart = None;
        while let Some(result) = results.next().await {
            let at = got.len();
            got.push(result.unwrap_or_else(|e| panic!("result {at}: {e}")));
            if got.len() == 400 {
                let cp = cp.take().unwrap();
                restart = Some(restart_later(
                    cp,
                    addr.clone(),
                    data_dir.clone(),
                    Duration::from_secs(1),
                ));
            }
        }
        let restarted = restart.expect("the map ended before the restart").await;
        restarted.unwrap();
        let want: Vec<u64> = (0..INPUTS).map(ms).collect();
        assert_eq!(got.len(), want.len(), "every result, once");
        assert!(got == want, "results out of order or repeated");
    })
    .await
    .expect("still running after the bound");
}

#[tokio::test]
async fn a_control_plane_that_never_comes_back_is_reported_after_the_bound() {
    let (mut cp, _, _) = deployed("restart-lost").await;
    let url = cp.url.clone();
    let client = common::connect(&url)
        .await
        .unwrap()
        .with_reconnect_timeout(Duration::from_secs(2));
    let square: Function<(u64,), u64> = client.function("restart-lost", "square");
    assert_eq!(square.remote((3,)).await.unwrap(), 9);
    cp.kill9();
    let started = Instant::now();
    let err = tokio::time::timeout(BOUND, square.remote((4,)))
        .await
        .expect("still waiting after the bound")
        .expect_err("no control plane answers");
    let elapsed = started.elapsed();
    let Error::ServerLost { urls, waited } = &err else {
        panic!("not ServerLost: {err}");
    };
    assert_eq!(urls, std::slice::from_ref(&url));
    assert!(
        *waited >= Duration::from_secs(2) && elapsed < Duration::from_secs(10),
        "waited {waited:?}, returned after {elapsed:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&url), "names the URL: {text}");
    assert!(
        text.contains(&format!("for {:.1}s", waited.as_secs_f64())),
        "says how long it waited: {text}"
    );
    assert!(
        text.contains("check that it is running"),
        "says what to check: {text}"
    );
}

#[tokio::test]
async fn waiting_on_a_spawned_call_rides_through_a_restart() {
    tokio::time::timeout(BOUND, async {
        let (cp, addr, data_dir) = deployed("restart-get").await;
        let client = common::connect(&cp.url).await.unwrap();
        let nap: Function<(u64,), u64> = client.function("restart-get", "nap");
        let call = nap.spawn((3000,)).await.unwrap();
        let waiting = tokio::spawn(async move { call.get(None).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _restarted = restart_later(cp, addr, data_dir, Duration::from_secs(1))
            .await
            .unwrap();
        // The restarted control plane resumes the call from its store; the
        // caller sees neither the lost connection nor the restart.
        assert_eq!(waiting.await.unwrap().unwrap(), 3000);
    })
    .await
    .expect("still running after the bound");
}

#[tokio::test]
async fn spawning_is_not_resent() {
    let (mut cp, _, _) = deployed("restart-spawn").await;
    let client = common::connect(&cp.url).await.unwrap();
    let square: Function<(u64,), u64> = client.function("restart-spawn", "square");
    square.hydrate().await.unwrap();
    cp.kill9();
    let started = Instant::now();
    let err = square.spawn((2,)).await.expect_err("no control plane");
    assert!(matches!(err, Error::ServerUnreachable { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "it waited");
}

#[tokio::test]
async fn a_client_given_several_urls_uses_the_one_that_answers() {
    let (cp, _, _) = deployed("several").await;
    let dead = format!("http://{}", free_addr());
    let list = format!("{dead}, {}", cp.url);
    for client in [
        common::connect(&list).await.unwrap(),
        // Connects on first use: the dead URL fails, the next answers.
        common::lazy(&list).unwrap(),
    ] {
        assert_eq!(client.urls(), [dead.clone(), cp.url.clone()]);
        let square: Function<(u64,), u64> = client.function("several", "square");
        assert_eq!(square.remote((5,)).await.unwrap(), 25);
        assert_eq!(client.url(), cp.url);
    }
    let err = match common::connect(&format!("{dead},{dead}")).await {
        Err(e) => e,
        Ok(_) => panic!("connected to no control plane"),
    };
    assert!(matches!(err, Error::ServerUnreachable { .. }), "{err}");
    assert!(err.to_string().contains(&dead), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_follow_a_control_plane_that_moves_to_another_url() {
    tokio::time::timeout(BOUND, async {
        let (mut leader, _, data_dir) = deployed("moves").await;
        let standby_addr = free_addr();
        let list = format!("{},{standby_addr}", leader.url);
        let client = common::connect(&list).await.unwrap();
        let square: Function<(u64,), u64> = client.function("moves", "square");
        let (calls, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let caller = keep_calling(Arc::clone(&calls), Arc::clone(&stop), move |i| {
            let square = square.clone();
            async move { Ok((square.remote((i,)).await?, i * i)) }
        });
        while calls.load(Ordering::SeqCst) < 20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let standby = tokio::task::spawn_blocking(move || {
            leader.kill9();
            Standalone::start_on(&standby_addr, data_dir, &[])
        })
        .await
        .unwrap();
        let moved = calls.load(Ordering::SeqCst);
        while calls.load(Ordering::SeqCst) < moved + 20 {
            assert!(!caller.is_finished(), "the caller stopped after the move");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.store(true, Ordering::SeqCst);
        caller.await.unwrap();
        assert_eq!(client.url(), standby.url);
    })
    .await
    .expect("still running after the bound");
}

/// A TCP relay to a control plane, on a port of its own: [`Relay::cut`]
/// drops every connection through it, as a network failure would, while
/// the control plane lives on.
struct Relay {
    url: String,
    cuts: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn to(target: &str) -> Relay {
        let target = target.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (cuts, watch) = tokio::sync::watch::channel(0_u64);
        tokio::spawn(async move {
            while let Ok((mut caller, _)) = listener.accept().await {
                let target = target.clone();
                let mut watch = watch.clone();
                watch.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut caller, &mut server) => {}
                        _ = watch.changed() => {}
                    }
                });
            }
        });
        Relay { url, cuts }
    }

    fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_ride_through_cut_connections_to_a_live_control_plane() {
    const INPUTS: u64 = 2000;
    tokio::time::timeout(BOUND, async {
        let (cp, _, _) = deployed("cut").await;
        let relay = Arc::new(Relay::to(&cp.url).await);
        let client = Client::connect_with_token(&relay.url, &cp.token)
            .await
            .unwrap();
        let sleep_ms: Function<(u64,), u64> = client.function("cut", "sleep_ms");
        sleep_ms.hydrate().await.unwrap();
        // Cut every 300 ms, whatever is in flight.
        let cutting = {
            let relay = relay.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    relay.cut();
                }
            })
        };
        for i in 0..20 {
            assert_eq!(sleep_ms.remote((50 + i,)).await.unwrap(), 50 + i);
        }
        let ms = |i: u64| 1 + (i * 7919) % 5;
        let mut results = sleep_ms.map((0..INPUTS).map(move |i| (ms(i),)));
        let mut got = Vec::new();
        while let Some(result) = results.next().await {
            let at = got.len();
            got.push(result.unwrap_or_else(|e| panic!("result {at}: {e}")));
        }
        cutting.abort();
        let want: Vec<u64> = (0..INPUTS).map(ms).collect();
        assert_eq!(got.len(), want.len(), "every result, once");
        assert!(got == want, "results out of order or repeated");
        assert!(*relay.cuts.borrow() >= 3, "too few cuts to tell");
    })
    .await
    .expect("still running after the bound");
}

/// Cancelling a call, asking for stats and keeping containers warm are
/// safe to send again: they ride through a restart too.
#[tokio::test]
async fn cancel_stats_and_keep_warm_ride_through_a_restart() {
    tokio::time::timeout(BOUND, async {
        let (cp, addr, data_dir) = deployed("restart-admin").await;
        let client = common::connect(&cp.url).await.unwrap();
        let nap: Function<(u64,), u64> = client.function("restart-admin", "nap");
        let call = nap.spawn((60_000,)).await.unwrap();
        let restarting = restart_later(cp, addr, data_dir, Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Sent while the control plane is down.
        call.cancel(false).await.unwrap();
        nap.keep_warm(1).await.unwrap();
        let stats = nap.get_current_stats().await.unwrap();
        let _restarted = restarting.await.unwrap();
        assert!(stats.num_total_runners <= 1, "{stats:?}");
        let err = call.get(None).await.unwrap_err();
        assert!(matches!(err, Error::Cancelled { .. }), "{err}");
    })
    .await
    .expect("still running after the bound");
}

/// Kills `cp` (SIGKILL) and starts it again on `addr` with the same data
/// folder and `store` arguments, on a blocking thread.
async fn restarted(
    mut cp: Standalone,
    addr: &str,
    data_dir: &std::path::Path,
    store: &[&str],
) -> Standalone {
    let (addr, data_dir) = (addr.to_owned(), data_dir.to_owned());
    let store: Vec<String> = store.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        cp.kill9();
        drop(cp);
        let store: Vec<&str> = store.iter().map(String::as_str).collect();
        Standalone::start_on(&addr, data_dir, &store)
    })
    .await
    .unwrap()
}

/// What `update_autoscaler` changed of a function and of a class instance
/// stands after a restart (the settings, and the warm pools they keep),
/// until the app is deployed again.
async fn autoscaler_settings_survive_a_restart(store: &[&str]) {
    use modal_runtime::AutoscalerSettings;
    let app = "restart-autoscaler";
    let addr = free_addr();
    let data_dir = scratch_dir("restart-autoscaler");
    let cp = Standalone::start_on(&addr, data_dir.clone(), store);
    common::deploy(&cp.url, app).await;
    let client = common::connect(&cp.url).await.unwrap();
    let nap: Function<(u64,), u64> = client.function(app, "nap");
    let dir = scratch_dir("restart-autoscaler-events");
    let obj = client
        .cls::<Recorder>(app, "Recorder")
        .instance(RecorderParams::new(dir.to_string_lossy().into_owned()));
    let deployed = (
        nap.get_current_stats().await.unwrap().autoscaler,
        obj.get_current_stats().await.unwrap().autoscaler,
    );
    nap.update_autoscaler(AutoscalerSettings {
        min_containers: Some(1),
        max_containers: Some(3),
        buffer_containers: Some(1),
        scaledown_window: Some(Duration::from_secs(45)),
    })
    .await
    .unwrap();
    obj.update_autoscaler(AutoscalerSettings::min_containers(1))
        .await
        .unwrap();
    let before = (
        nap.get_current_stats().await.unwrap().autoscaler,
        obj.get_current_stats().await.unwrap().autoscaler,
    );
    assert_eq!(before.0.max_containers, 3);
    assert_eq!(before.1.min_containers, 1);
    let cp = restarted(cp, &addr, &data_dir, store).await;
    let after = (
        nap.get_current_stats().await.unwrap().autoscaler,
        obj.get_current_stats().await.unwrap().autoscaler,
    );
    assert_eq!(after, before);
    // The restarted control plane fills the warm pools again.
    loop {
        let running = (
            nap.get_current_stats().await.unwrap().num_total_runners,
            obj.get_current_stats().await.unwrap().num_total_runners,
        );
        if running == (1, 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A redeploy resets them, and so does the restart after it.
    common::deploy(&cp.url, app).await;
    let cp = restarted(cp, &addr, &data_dir, store).await;
    let client = common::connect(&cp.url).await.unwrap();
    let nap: Function<(u64,), u64> = client.function(app, "nap");
    let obj = client
        .cls::<Recorder>(app, "Recorder")
        .instance(RecorderParams::new(dir.to_string_lossy().into_owned()));
    let redeployed = (
        nap.get_current_stats().await.unwrap().autoscaler,
        obj.get_current_stats().await.unwrap().autoscaler,
    );
    assert_eq!(redeployed, deployed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_settings_survive_a_restart_on_sqlite() {
    tokio::time::timeout(BOUND, autoscaler_settings_survive_a_restart(&[]))
        .await
        .expect("still running after the bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaler_settings_survive_a_restart_on_postgres() {
    let Some(url) = common::postgres_db("autoscaler") else {
        return;
    };
    tokio::time::timeout(
        BOUND,
        autoscaler_settings_survive_a_restart(&["--store", &url]),
    )
    .await
    .expect("still running after the bound");
}
