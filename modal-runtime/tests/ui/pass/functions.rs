//! Every option, sync and async functions, zero to three arguments, plain,
//! `Result` and unit returns: the stubs compile, register the right
//! descriptors, and their handlers and `local` calls work.

use std::borrow::Cow;
use std::fmt;

use modal_runtime::app;
use modal_runtime::codec::{self, CallFailure};
use modal_runtime::registry::{self, FunctionDescriptor, Handler};
use modal_runtime::{FunctionCall, FunctionOptions, MapStream};

#[derive(Debug)]
pub struct MyErr(String);

impl fmt::Display for MyErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "my error: {}", self.0)
    }
}

/// Adds two numbers, failing on overflow.
#[app::function(
    name = "add-two",
    cpu = (0.5, 2.0),
    memory = (1024, 4096),
    gpu = "h100:2",
    image = "ghcr.io/org/adder:v1.2",
    timeout = 86400,
    startup_timeout = 600,
    retries = 10,
    max_containers = 4,
    min_containers = 1,
    buffer_containers = 2,
    scaledown_window = 3600,
    env = { "RUST_LOG": "info", "MODE": "test" },
    secrets = ["db", "api-key"],
    volumes = { "/data": "cache", "/models": "weights.v1" },
    region = "us-east",
    cloud = "aws",
)]
pub async fn add(a: i64, b: i64) -> Result<i64, MyErr> {
    a.checked_add(b).ok_or_else(|| MyErr("overflow".into()))
}

#[app::function(cpu = 2, timeout = 1, scaledown_window = 2, retries = 0)]
fn square(x: u64) -> u64 {
    x * x
}

#[app::function]
fn ping() {}

#[app::function]
async fn hello() -> String {
    "hello".to_string()
}

#[app::function(memory = 256)]
async fn shout(text: String) -> std::io::Result<String> {
    tokio::task::yield_now().await;
    Ok(text.to_uppercase())
}

/// Patterns, `mut`, and an unnamed argument.
#[app::function]
#[allow(unused_mut)]
fn patterns((a, b): (u8, u8), _: String, mut c: Vec<u8>) -> Result<Vec<u8>, String> {
    c.push(a);
    c.push(b);
    Ok(c)
}

/// Inside its body too, the name is the stub: `local` recurses in place.
#[app::function]
fn fib(n: u64) -> u64 {
    if n < 2 {
        n
    } else {
        fib.local(n - 1) + fib.local(n - 2)
    }
}

/// ... and `remote` fans out to containers.
#[app::function]
async fn total(values: Vec<u64>) -> Result<u64, modal_runtime::Error> {
    if values.len() <= 2 {
        return Ok(values.iter().sum());
    }
    let (left, right) = values.split_at(values.len() / 2);
    let (left, right) = futures::join!(total.remote(left.to_vec()), total.remote(right.to_vec()));
    Ok(left? + right?)
}

/// Named like a stub method: still works.
#[app::function]
fn map(x: u8) -> u8 {
    x + 1
}

mod nested {
    use modal_runtime::app;

    #[app::function(name = "nested_len")]
    pub(crate) fn len(s: Option<String>) -> usize {
        s.map_or(0, |s| s.len())
    }
}

/// `Result` aliases: the success type is the first type argument, or the
/// `Ok` type when none is written. Other names are plain values.
mod aliases {
    use modal_runtime::app;

    pub type Result<T> = std::result::Result<T, String>;
    pub type Outcome = std::result::Result<u8, String>;

    #[app::function]
    pub fn alias_one(x: u8) -> Result<u8> {
        Ok(x)
    }

    #[app::function]
    pub fn as_value(x: u8) -> Outcome {
        Err(format!("{x}"))
    }

    mod bare {
        use modal_runtime::app;

        type Result = std::result::Result<u16, std::fmt::Error>;

        #[app::function]
        pub fn no_arguments() -> Result {
            Ok(7)
        }
    }
}

/// Type-checks the remote API; never run (it needs a control plane).
#[allow(dead_code)]
async fn remote_api() -> Result<(), modal_runtime::Error> {
    let _: i64 = add.remote(1, 2).await?;
    let _: FunctionCall<i64> = add.spawn(1, 2).await?;
    let _: MapStream<i64> = add.starmap(vec![(1, 2), (3, 4)]);
    add.for_each(vec![(1, 2)]).await?;
    let _: u64 = square.remote(3).await?;
    let _: MapStream<u64> = square.map(0..10);
    let _: MapStream<u64> = square.starmap(vec![(1,)]);
    square.for_each(0..10).await?;
    ping.remote().await?;
    let _: FunctionCall<()> = ping.spawn().await?;
    ping.for_each(vec![(), ()]).await?;
    let _: String = shout.remote("a".into()).await?;
    let _: MapStream<String> = shout.map(vec!["a".to_string()]);
    let _: Vec<u8> = patterns.remote((1, 2), String::new(), vec![]).await?;
    let _: usize = nested::len.remote(None).await?;
    hello.hydrate().await?;
    // Calls do not borrow the stub: their futures can be kept and spawned.
    let later = add.remote(3, 4);
    let task = tokio::spawn(square.remote(5));
    let spawned = tokio::spawn(add.spawn(1, 1));
    let _: i64 = later.await?;
    let _: u64 = task.await.unwrap()?;
    let _: FunctionCall<i64> = spawned.await.unwrap()?;
    let _ = tokio::spawn(square.for_each(vec![1, 2]));
    let _ = tokio::spawn(add.for_each(vec![(1, 2)]));
    let _ = tokio::spawn(hello.hydrate());
    let deployed = square::from_name("other-app").version(3);
    let _: u64 = deployed.remote(2).await?;
    let _: &modal_runtime::Function<(u64,), u64> = deployed.handle();
    Ok(())
}

fn find(name: &str) -> &'static FunctionDescriptor {
    registry::find(name).unwrap_or_else(|| panic!("`{name}` is not registered"))
}

fn call(name: &str, args: impl serde::Serialize) -> Result<bytes::Bytes, CallFailure> {
    let payload = codec::encode(&args).unwrap();
    match find(name).handler {
        Handler::Blocking(run) => run(payload),
        Handler::Async(run) => futures::executor::block_on(run(payload)),
        Handler::BatchAsync(_)
        | Handler::BatchBlocking(_)
        | Handler::Generator(_)
        | Handler::Class(_) => {
            panic!("`{name}` is not a plain function")
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: Result<bytes::Bytes, CallFailure>) -> T {
    codec::decode(&bytes.unwrap()).unwrap()
}

/// Runs at 09:00 on weekdays, Paris time, once deployed.
#[app::function(schedule = Cron("0 9 * * 1-5", timezone = "Europe/Paris"))]
fn weekday_report() {}

/// Runs every 1.5 s once deployed; its stub works like any other.
#[app::function(schedule = Period(1.5), timeout = 10)]
async fn heartbeat() -> Result<u32, MyErr> {
    Ok(1)
}

fn main() {
    let names: Vec<&str> = registry::functions().iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        [
            "add-two",
            "alias_one",
            "as_value",
            "fib",
            "heartbeat",
            "hello",
            "map",
            "nested_len",
            "no_arguments",
            "patterns",
            "ping",
            "shout",
            "square",
            "total",
            "weekday_report"
        ]
    );

    let d = find("add-two");
    assert!(d.rust_path.ends_with("::add"), "{}", d.rust_path);
    assert_eq!(d.arity, 2);
    assert_eq!((d.fingerprint)(), "(i64, i64) -> i64");
    assert!(matches!(d.handler, Handler::Async(_)));
    assert_eq!(
        d.options,
        FunctionOptions {
            cpu: Some(0.5),
            cpu_limit: Some(2.0),
            memory_mib: Some(1024),
            memory_limit_mib: Some(4096),
            gpu: Some(Cow::Borrowed("H100:2")),
            image: Some(Cow::Borrowed("ghcr.io/org/adder:v1.2")),
            timeout_secs: 86400,
            retries: 10,
            retry_backoff_coefficient: 1.0,
            retry_initial_delay_ms: 1000,
            retry_max_delay_ms: 60000,
            startup_timeout_secs: Some(600),
            max_containers: Some(4),
            min_containers: 1,
            buffer_containers: 2,
            scaledown_window_secs: 3600,
            env: Cow::Borrowed(&[
                (Cow::Borrowed("RUST_LOG"), Cow::Borrowed("info")),
                (Cow::Borrowed("MODE"), Cow::Borrowed("test")),
            ]),
            secrets: Cow::Borrowed(&[Cow::Borrowed("db"), Cow::Borrowed("api-key")]),
            region: Some(Cow::Borrowed("us-east")),
            cloud: Some(Cow::Borrowed("aws")),
            volumes: Cow::Borrowed(&[
                (Cow::Borrowed("/data"), Cow::Borrowed("cache")),
                (Cow::Borrowed("/models"), Cow::Borrowed("weights.v1")),
            ]),
            max_inputs: 1,
            target_inputs: None,
            batch_max_size: None,
            batch_wait_ms: 0,
            web: None,
            schedule: None,
        }
    );
    d.options.validate().unwrap();
    assert_eq!(d.options.cpu_limit_cores(), Some(2.0));
    assert_eq!(d.options.memory_limit_bytes(), Some(4096 << 20));
    let gpu = d.options.gpu_request().unwrap();
    assert_eq!((gpu.kind.as_deref(), gpu.count), (Some("H100"), 2));

    let d = find("square");
    assert!(matches!(d.handler, Handler::Blocking(_)));
    assert_eq!(d.arity, 1);
    assert_eq!((d.fingerprint)(), "(u64,) -> u64");
    assert_eq!(
        d.options,
        FunctionOptions {
            cpu: Some(2.0),
            timeout_secs: 1,
            scaledown_window_secs: 2,
            retries: 0,
            ..FunctionOptions::DEFAULT
        }
    );
    assert_eq!(find("ping").options, FunctionOptions::DEFAULT);
    assert_eq!(find("ping").arity, 0);
    assert_eq!((find("ping").fingerprint)(), "() -> ()");
    assert_eq!(
        (find("shout").fingerprint)(),
        "(String,) -> String"
    );
    assert!(find("nested_len").rust_path.ends_with("::nested::len"));
    // A `String` error is serde's: its shape joins the fingerprint.
    assert_eq!(
        (find("alias_one").fingerprint)(),
        "(u8,) -> u8 | error: String"
    );
    assert_eq!((find("no_arguments").fingerprint)(), "() -> u16");
    assert_eq!(
        (find("as_value").fingerprint)(),
        "(u8,) -> Result where enum Result { Ok(u8), Err(String) }"
    );
    registry::Manifest::of_this_binary().validate().unwrap();

    // Handlers: decode the argument tuple, run, encode the result or error.
    assert_eq!(decode::<i64>(call("add-two", (2_i64, 3_i64))), 5);
    assert_eq!(
        call("add-two", (i64::MAX, 1_i64)),
        Err(codec::UserFailure::text("my error: overflow"))
    );
    assert!(matches!(
        call("add-two", ("x",)),
        Err(CallFailure::BadInput(_))
    ));
    assert_eq!(decode::<u64>(call("square", (7_u64,))), 49);
    decode::<()>(call("ping", ()));
    assert_eq!(decode::<String>(call("hello", ())), "hello");
    assert_eq!(decode::<String>(call("shout", ("hi",))), "HI");
    assert_eq!(
        decode::<Vec<u8>>(call("patterns", ((1_u8, 2_u8), "", vec![0_u8]))),
        [0, 1, 2]
    );
    assert_eq!(decode::<u64>(call("fib", (10_u64,))), 55);
    assert_eq!(decode::<u64>(call("total", (vec![1_u64, 2],))), 3);
    assert_eq!(decode::<usize>(call("nested_len", (Some("abc"),))), 3);
    assert_eq!(decode::<u8>(call("alias_one", (4_u8,))), 4);
    assert_eq!(decode::<u16>(call("no_arguments", ())), 7);
    // A `Result` under another name travels as a value, `Err` included.
    assert_eq!(
        decode::<Result<u8, String>>(call("as_value", (5_u8,))),
        Err("5".to_string())
    );

    // Local calls and raw function pointers.
    assert_eq!(square.local(4), 16);
    let raw: fn(u64) -> u64 = square.get_raw_f();
    assert_eq!(raw(5), 25);
    assert_eq!(fib.local(20), 6765);
    ping.local();
    assert_eq!(futures::executor::block_on(add.local(1, 2)).unwrap(), 3);
    let local = hello.local();
    assert_eq!(futures::executor::block_on(local), "hello");
    let raw: fn(i64, i64) -> futures::future::BoxFuture<'static, Result<i64, MyErr>> =
        add.get_raw_f();
    assert_eq!(futures::executor::block_on(raw(2, 2)).unwrap(), 4);
    assert_eq!(futures::executor::block_on(hello.local()), "hello");
    assert_eq!(nested::len.local(Some("ab".into())), 2);
    assert_eq!(map.local(1), 2);
    assert_eq!(decode::<u8>(call("map", (1_u8,))), 2);
    let _: MapStream<u8> = map.map(vec![1, 2]);

    // Stubs are values: cloned, passed around, made by name.
    let copy = square.clone();
    assert_eq!(copy.handle().name(), "square");
    assert_eq!(add.handle().name(), "add-two");
    assert_eq!(
        square::from_name("deployed").version(2).handle().name(),
        "square"
    );

    // Schedules are options like the others.
    use modal_runtime::Schedule;
    let d = find("weekday_report");
    assert_eq!(
        d.options.schedule,
        Some(Schedule::Cron {
            expression: Cow::Borrowed("0 9 * * 1-5"),
            timezone: Some(Cow::Borrowed("Europe/Paris")),
        })
    );
    d.options.validate().unwrap();
    let d = find("heartbeat");
    assert_eq!(d.options.schedule, Some(Schedule::Period { millis: 1500 }));
    assert_eq!(d.options.timeout_secs, 10);
    assert_eq!(d.options.schedule.as_ref().unwrap().to_string(), "Period(1.5)");
    weekday_report.local();
    assert_eq!(futures::executor::block_on(heartbeat.local()).unwrap(), 1);
}
