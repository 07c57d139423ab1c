//! Classes end to end: instances built in real containers from their
//! parameters, `enter` once per container, `exit` on scale-down and stop,
//! option variants with their own containers, batching, warm pools.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use modal_runtime::{AppBinary, Cls, ClsOptions, Error, Manifest};
use modal_tests::{
    Batcher, BatcherParams, Broken, BrokenParams, Recorder, RecorderParams, batch_size,
    concurrent_pid, short_batch,
};

fn recorder(dir: &Path) -> RecorderParams {
    RecorderParams::new(dir.to_string_lossy().into_owned())
}

fn events(dir: &Path, event: &str) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(&format!("{event}-")))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn recorder_cls() -> Cls<Recorder> {
    env();
    Recorder::from_name(APP)
}

#[tokio::test]
async fn enter_runs_once_per_container_not_per_call() {
    let dir = scratch_dir("enter-once");
    let obj = recorder_cls().instance(recorder(&dir));
    let mut pids = BTreeSet::new();
    for _ in 0..20 {
        let (pid, enters) = obj.whoami.remote().await.unwrap();
        assert_eq!(enters, 1, "enter ran {enters} times in one container");
        pids.insert(pid);
    }
    assert_eq!(pids.len(), 1, "one container served the sequential calls");
    let pid = pids.into_iter().next().unwrap();
    assert_eq!(events(&dir, "enter"), [format!("enter-{pid}")]);
}

#[tokio::test]
async fn parameters_reach_the_instance_and_each_set_has_its_own_containers() {
    let dir = scratch_dir("params");
    let cls = recorder_cls();
    let default_factor = cls.instance(recorder(&dir));
    let tripled = cls.instance(RecorderParams {
        factor: 3,
        ..recorder(&dir)
    });
    assert_eq!(default_factor.scaled.remote(7).await.unwrap(), 7);
    assert_eq!(tripled.scaled.remote(7).await.unwrap(), 21);
    let (a, _) = default_factor.whoami.remote().await.unwrap();
    let (b, _) = tripled.whoami.remote().await.unwrap();
    assert_ne!(a, b, "two parameter sets shared a container");
    // The same values again name the same instance: no new container.
    let again = cls.instance(recorder(&dir));
    assert_eq!(again.whoami.remote().await.unwrap().0, a);
    assert_eq!(events(&dir, "enter").len(), 2);
}

#[tokio::test]
async fn exit_runs_when_an_idle_container_scales_down() {
    let dir = scratch_dir("exit-scaledown");
    let obj = recorder_cls().instance(recorder(&dir));
    let (pid, _) = obj.whoami.remote().await.unwrap();
    // `Recorder` scales down two seconds after its last input.
    wait_for("the exit hook", Duration::from_secs(15), || {
        events(&dir, "exit") == [format!("exit-{pid}")]
    })
    .await;
    // The hook runs just before the process exits; then the pool is empty.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = obj.get_current_stats().await.unwrap();
        if stats.num_total_runners == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still running: {stats:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn exit_runs_when_the_app_stops() {
    let url = env().url.clone();
    let client = common::connect(&url).await.unwrap();
    let manifest = Manifest::read_from_binary(&test_app()).unwrap();
    client
        .create_app(
            "cls-stop",
            &manifest,
            AppBinary::LocalPath(&test_app()),
            false,
        )
        .await
        .unwrap();
    let dir = scratch_dir("exit-stop");
    // A long window: only the stop can end this container.
    let obj = client
        .cls::<Recorder>("cls-stop", "Recorder")
        .with_options(ClsOptions::new().scaledown_window(Duration::from_secs(600)))
        .instance(recorder(&dir));
    let (pid, _) = obj.whoami.remote().await.unwrap();
    assert!(events(&dir, "exit").is_empty());
    client.stop_app("cls-stop").await.unwrap();
    // `stop_app` returns once the containers have exited.
    assert_eq!(events(&dir, "exit"), [format!("exit-{pid}")]);
}

#[tokio::test]
async fn a_failing_enter_is_reported_to_the_caller() {
    env();
    let started = Instant::now();
    let broken = Broken::from_name(APP).instance(BrokenParams::new("no such file".into()));
    let err = broken.never.remote().await.unwrap_err();
    assert!(matches!(err, Error::ContainerStart { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("`enter` of `Broken` failed: cannot load the weights: no such file"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // Every later call fails the same way; nothing hangs.
    let err = broken.never.remote().await.unwrap_err();
    assert!(err.to_string().contains("cannot load the weights"), "{err}");
}

#[tokio::test]
async fn each_variant_has_its_own_containers() {
    let dir = scratch_dir("variants");
    let base = recorder_cls().instance(recorder(&dir));
    let variant = base.with_options(ClsOptions::new().env([("MODE", "variant")]));
    let (base_pid, _) = base.whoami.remote().await.unwrap();
    let (variant_pid, _) = variant.whoami.remote().await.unwrap();
    assert_ne!(base_pid, variant_pid);
    assert_eq!(base.env_var.remote("MODE".into()).await.unwrap(), None);
    assert_eq!(
        variant
            .env_var
            .remote("MODE".into())
            .await
            .unwrap()
            .as_deref(),
        Some("variant")
    );
    // The same variant asked for again is the same pool.
    let same = base.with_options(ClsOptions::new().env([("MODE", "variant")]));
    assert_eq!(same.whoami.remote().await.unwrap().0, variant_pid);
}

#[tokio::test]
async fn with_options_stacks_later_values_over_earlier_ones() {
    let dir = scratch_dir("stacking");
    let obj = recorder_cls()
        .with_options(ClsOptions::new().env([("A", "1"), ("B", "1")]))
        .with_options(ClsOptions::new().env([("B", "2")]).max_containers(1))
        .instance(recorder(&dir));
    assert_eq!(
        obj.env_var.remote("A".into()).await.unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(
        obj.env_var.remote("B".into()).await.unwrap().as_deref(),
        Some("2")
    );
    // `max_containers(1)` holds under a burst.
    let pids: BTreeSet<u32> = obj
        .hold
        .map(vec![30_u64; 12])
        .collect_vec()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(pids.len(), 1, "{pids:?}");
    // Out-of-bounds options are refused with the option's name.
    let err = obj
        .with_options(ClsOptions::new().retries(11))
        .whoami
        .remote()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`retries` is 11"), "{err}");
}

#[tokio::test]
async fn with_concurrency_runs_inputs_of_one_instance_at_once() {
    let dir = scratch_dir("concurrency");
    let obj = recorder_cls()
        .with_options(ClsOptions::new().max_containers(1))
        .with_concurrency(10, 10)
        .instance(recorder(&dir));
    obj.hydrate().await.unwrap();
    obj.whoami.remote().await.unwrap();
    let started = Instant::now();
    let pids: BTreeSet<u32> = obj
        .hold
        .map(vec![500_u64; 10])
        .collect_vec()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(pids.len(), 1);
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "10 inputs of 500 ms took {took:?} in one container of concurrency 10"
    );
}

#[tokio::test]
async fn keep_warm_starts_containers_without_inputs() {
    let dir = scratch_dir("warm");
    let obj = recorder_cls()
        .with_options(ClsOptions::new().scaledown_window(Duration::from_secs(60)))
        .instance(recorder(&dir));
    obj.keep_warm(2).await.unwrap();
    wait_for("two warm containers", Duration::from_secs(15), || {
        events(&dir, "enter").len() == 2
    })
    .await;
    let stats = obj.get_current_stats().await.unwrap();
    assert_eq!(stats.num_total_runners, 2, "{stats:?}");
    assert_eq!(stats.backlog, 0);
    // Too many for the pool's bound is refused, naming the bound.
    let err = obj
        .with_options(ClsOptions::new().max_containers(1))
        .keep_warm(3)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_containers"), "{err}");
    obj.keep_warm(0).await.unwrap();
}

#[tokio::test]
async fn a_class_by_name_is_checked_against_its_type() {
    env();
    Cls::<Recorder>::from_name(APP, "Recorder")
        .hydrate()
        .await
        .unwrap();
    let err = Cls::<Broken>::from_name(APP, "Recorder")
        .hydrate()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err:?}");
    let err = Cls::<Recorder>::from_name(APP, "Nope")
        .hydrate()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::FunctionNotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_class_pinned_to_a_version_is_looked_up_at_that_version() {
    let dir = scratch_dir("pinned-class");
    let pinned = recorder_cls().version(1);
    pinned.hydrate().await.unwrap();
    pinned.instance(recorder(&dir)).hydrate().await.unwrap();
    let err = Cls::<Broken>::from_name(APP, "Recorder")
        .version(1)
        .hydrate()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err:?}");
    let err = recorder_cls()
        .version(99)
        .instance(recorder(&dir))
        .hydrate()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has no version 99"), "{err}");
}

#[test]
fn class_handles_show_what_they_call() {
    assert_eq!(format!("{:?}", Recorder::cls()), "Cls(Recorder)");
    let named = Recorder::from_name(APP).with_concurrency(2, 2);
    assert_eq!(format!("{named:?}"), "Cls(e2e/Recorder)");
    let obj = named.instance(recorder(Path::new("unused")));
    assert_eq!(format!("{obj:?}"), "Obj(Recorder)");
    assert_eq!(format!("{:?}", obj.whoami), "Method(Recorder.whoami)");
    assert_eq!(obj.whoami.name(), "whoami");
}

#[tokio::test]
async fn local_runs_enter_first_in_this_process() {
    let dir = scratch_dir("local");
    let obj = Recorder::with_params(RecorderParams {
        factor: 5,
        ..recorder(&dir)
    });
    assert_eq!(obj.scaled.local(2).await.unwrap(), 10);
    let (pid, enters) = obj.whoami.local().await.unwrap();
    assert_eq!((pid, enters), (std::process::id(), 1));
    assert_eq!(
        events(&dir, "enter"),
        [format!("enter-{}", std::process::id())]
    );
    let err = Broken::new("gone".into()).never.local().await.unwrap_err();
    assert!(matches!(err, Error::LocalInstance { .. }), "{err:?}");
    assert!(
        err.to_string().contains("cannot load the weights: gone"),
        "{err}"
    );
}

#[tokio::test]
async fn batches_form_when_full_and_each_caller_gets_its_own_element() {
    env();
    let batched = batch_size::from_name(APP);
    // One input alone waits `wait_ms`, then runs as a batch of one.
    assert_eq!(batched.remote(7).await.unwrap(), (7, 1));
    for n in [7_u64, 1000] {
        let results = batched.map(0..n).collect_vec().await.unwrap();
        let values: Vec<u64> = results.iter().map(|(x, _)| *x).collect();
        assert_eq!(values, (0..n).collect::<Vec<_>>());
        let largest = results.iter().map(|(_, size)| *size).max().unwrap();
        assert!(largest > 1, "{n} inputs never shared a batch");
        assert!(results.iter().all(|(_, size)| *size <= 1000));
    }
}

#[tokio::test]
async fn a_batch_of_the_wrong_length_fails_every_input() {
    env();
    let err = short_batch::from_name(APP).remote(1).await.unwrap_err();
    assert!(matches!(err, Error::BadOutput { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("returned 0 results for a batch of 1"),
        "{err}"
    );
}

#[tokio::test]
async fn with_batching_is_a_variant_of_a_batched_class() {
    env();
    let cls = Batcher::from_name(APP);
    let small = cls.instance(BatcherParams::new());
    let sizes = small.sized.map(0..8_u64).collect_vec().await.unwrap();
    assert!(sizes.iter().all(|(_, n)| *n <= 4), "{sizes:?}");
    let big = cls
        .with_batching(8, 500)
        .instance(BatcherParams { offset: 100 });
    let sizes = big.sized.map(0..8_u64).collect_vec().await.unwrap();
    assert_eq!(sizes[0].0, 100);
    assert!(sizes.iter().any(|(_, n)| *n > 4), "{sizes:?}");
    // A class without a batched method refuses batching.
    let err = recorder_cls()
        .with_batching(4, 10)
        .instance(recorder(&PathBuf::from("/tmp")))
        .whoami
        .remote()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no batched method"), "{err}");
}

#[tokio::test]
async fn a_function_with_max_inputs_runs_them_in_one_container() {
    env();
    let f = concurrent_pid::from_name(APP);
    f.remote(1).await.unwrap();
    let started = Instant::now();
    let pids: BTreeSet<u32> = f
        .map(vec![500_u64; 10])
        .collect_vec()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(pids.len(), 1);
    assert!(started.elapsed() < Duration::from_millis(2500));
    let stats = f.get_current_stats().await.unwrap();
    assert_eq!(stats.backlog, 0);
    assert_eq!(stats.running_inputs, 0);
}

#[tokio::test]
async fn update_autoscaler_changes_one_instance_now() {
    use modal_runtime::AutoscalerSettings;
    let dir = scratch_dir("autoscaled-instance");
    let obj = recorder_cls()
        .with_options(ClsOptions::new().scaledown_window(Duration::from_secs(60)))
        .instance(recorder(&dir));
    obj.update_autoscaler(AutoscalerSettings::min_containers(2))
        .await
        .unwrap();
    wait_for("two warm containers", Duration::from_secs(15), || {
        events(&dir, "enter").len() == 2
    })
    .await;
    let stats = obj.get_current_stats().await.unwrap();
    assert_eq!(stats.num_total_runners, 2, "{stats:?}");
    assert_eq!(stats.autoscaler.min_containers, 2);
    assert_eq!(stats.autoscaler.scaledown_window, Duration::from_secs(60));
    // Another instance keeps its own settings.
    let other = recorder_cls().instance(recorder(&scratch_dir("autoscaled-other")));
    assert_eq!(
        other
            .get_current_stats()
            .await
            .unwrap()
            .autoscaler
            .min_containers,
        0
    );
    // A maximum of 1: one container stops now (running `exit`), long
    // before the 60 s window.
    obj.update_autoscaler(AutoscalerSettings {
        min_containers: Some(1),
        max_containers: Some(1),
        ..AutoscalerSettings::default()
    })
    .await
    .unwrap();
    wait_for("one container to stop", Duration::from_secs(10), || {
        events(&dir, "exit").len() == 1
    })
    .await;
    let err = obj
        .update_autoscaler(AutoscalerSettings::min_containers(3))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("`min_containers` (3) exceeds `max_containers` (1)"),
        "{err}"
    );
    // `keep_warm` is `min_containers` alone.
    obj.keep_warm(0).await.unwrap();
    let stats = obj.get_current_stats().await.unwrap();
    assert_eq!(
        (
            stats.autoscaler.min_containers,
            stats.autoscaler.max_containers
        ),
        (0, 1)
    );
}

#[tokio::test]
async fn a_class_lookup_resolves_now() {
    env();
    let dir = scratch_dir("cls-lookup");
    let cls = Recorder::lookup(APP).await.unwrap();
    assert_eq!(
        cls.instance(recorder(&dir)).scaled.remote(4).await.unwrap(),
        4
    );
    Cls::<Recorder>::lookup(APP, "Recorder").await.unwrap();
    Cls::<Recorder>::lookup_in("main", APP, "Recorder")
        .await
        .unwrap();
    let err = Cls::<Broken>::lookup(APP, "Recorder").await.unwrap_err();
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err:?}");
    let err = Cls::<Recorder>::lookup(APP, "Nope").await.unwrap_err();
    assert!(matches!(err, Error::FunctionNotFound { .. }), "{err:?}");
    let err = Recorder::lookup("no-such-app").await.unwrap_err();
    assert!(matches!(err, Error::AppNotFound { .. }), "{err:?}");
}

/// Runs one `local` call on a fresh instance and checks that its `exit`
/// runs when the last handle on it goes, not before.
async fn local_exit_runs_on_drop(what: &str) {
    let dir = scratch_dir(what);
    let obj = Recorder::with_params(recorder(&dir));
    let method = obj.scaled.clone();
    assert_eq!(obj.scaled.local(2).await.unwrap(), 2);
    drop(obj);
    assert!(
        events(&dir, "exit").is_empty(),
        "a method handle still holds it"
    );
    drop(method);
    assert_eq!(
        events(&dir, "exit"),
        [format!("exit-{}", std::process::id())]
    );
}

#[tokio::test]
async fn a_local_instance_runs_exit_when_dropped_on_a_current_thread_runtime() {
    local_exit_runs_on_drop("local-exit-current").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_instance_runs_exit_when_dropped_on_a_multi_threaded_runtime() {
    local_exit_runs_on_drop("local-exit-multi").await;
}

#[test]
fn a_local_instance_runs_exit_when_dropped_outside_a_runtime() {
    let dir = scratch_dir("local-exit-none");
    let obj = Recorder::with_params(recorder(&dir));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(obj.scaled.local(3)).unwrap(), 3);
    drop(runtime);
    drop(obj);
    assert_eq!(
        events(&dir, "exit"),
        [format!("exit-{}", std::process::id())]
    );
}
