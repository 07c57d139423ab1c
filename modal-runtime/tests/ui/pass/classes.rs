//! Classes and batching: every accepted shape of `#[app::cls]` struct and
//! `impl` block (sync and async methods and hooks, `Result` hooks, defaults,
//! zero to three arguments), a batched class, batched functions and the
//! concurrency options. The descriptors, methods and fingerprints are
//! checked through the registry, the handlers are run directly, and `local`
//! calls run on an instance built (and entered) in this process.

use std::borrow::Cow;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use modal_runtime::__private::MethodHandler;
use modal_runtime::app;
use modal_runtime::codec::{self, CallFailure};
use modal_runtime::registry::{self, FunctionDescriptor, Handler, Manifest};
use modal_runtime::{
    Cls, ClsDef, ClsMethods, ClsOptions, FunctionCall, FunctionOptions, FunctionStats, MapStream,
    Method, Obj,
};

#[derive(Debug)]
pub struct MyErr(String);

impl fmt::Display for MyErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "my error: {}", self.0)
    }
}

static MODEL_ENTERED: AtomicU32 = AtomicU32::new(0);
static MODEL_EXITED: AtomicU32 = AtomicU32::new(0);

/// A model loaded once per container.
#[app::cls(max_containers = 2, scaledown_window = 10, max_inputs = 4, target_inputs = 2)]
pub struct Model {
    /// The model's name.
    #[app::parameter]
    name: String,
    #[app::parameter(default = 3)]
    top_k: u32,
    #[app::parameter(default = "greedy")]
    mode: String,
    table: Vec<u64>,
    calls: Mutex<u32>,
}

#[app::cls]
impl Model {
    #[app::enter]
    fn load(&mut self) {
        MODEL_ENTERED.fetch_add(1, Ordering::SeqCst);
        self.table = (0..u64::from(self.top_k)).collect();
    }

    #[app::exit]
    async fn unload(&self) -> Result<(), String> {
        MODEL_EXITED.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Adds `x` to the sum of the table.
    #[app::method]
    fn predict(&self, x: u64) -> u64 {
        *self.calls.lock().unwrap() += 1;
        self.table.iter().sum::<u64>() + x
    }

    #[app::method]
    async fn describe(&self) -> Result<String, MyErr> {
        tokio::task::yield_now().await;
        if self.name.is_empty() {
            return Err(MyErr("no name".into()));
        }
        Ok(format!("{}:{}:{}", self.name, self.top_k, self.mode))
    }

    #[app::method]
    fn nothing(&self) {}

    #[app::method]
    async fn pair(&self, a: u8, b: String) -> (u8, String) {
        (a, b)
    }

    #[app::method]
    fn three(&self, a: u8, (b, c): (u8, u8), d: Vec<u8>) -> std::io::Result<u32> {
        Ok(u32::from(a) + u32::from(b) + u32::from(c) + d.len() as u32)
    }

    /// Not remote: an ordinary method.
    fn helper(&self) -> usize {
        self.table.len()
    }
}

/// Async `Result` enter hook, sync `Result` exit hook, a custom name.
#[app::cls(name = "flaky-model")]
struct Flaky {
    #[app::parameter]
    fail: bool,
    ready: bool,
}

#[app::cls]
impl Flaky {
    #[app::enter]
    async fn start(&mut self) -> Result<(), MyErr> {
        if self.fail {
            return Err(MyErr("refused to start".into()));
        }
        self.ready = true;
        Ok(())
    }

    #[app::exit]
    fn stop(&mut self) -> Result<(), String> {
        self.ready = false;
        Ok(())
    }

    #[app::method]
    fn ready(&self) -> bool {
        self.ready
    }
}

/// No parameters, no hooks.
#[app::cls]
struct Counter {
    count: AtomicU32,
}

#[app::cls]
impl Counter {
    #[app::method]
    fn bump(&self) -> u32 {
        self.count.fetch_add(1, Ordering::SeqCst) + 1
    }
}

/// A batched class: its one method takes whole batches.
#[app::cls(cpu = 2, image = "localhost:5000/embedder@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
struct Embedder {
    #[app::parameter]
    scale: u64,
    warm: bool,
}

#[app::cls]
impl Embedder {
    #[app::enter]
    async fn warm_up(&mut self) {
        self.warm = true;
    }

    /// One number per text.
    #[app::method]
    #[app::batched(max_batch_size = 8, wait_ms = 100)]
    async fn embed(&self, texts: Vec<String>, weights: Vec<u32>) -> Result<Vec<u64>, MyErr> {
        if !self.warm {
            return Err(MyErr("cold".into()));
        }
        if texts.iter().any(|t| t == "bad") {
            return Err(MyErr("bad text".into()));
        }
        Ok(texts
            .iter()
            .zip(weights)
            .map(|(t, w)| t.len() as u64 * u64::from(w) * self.scale)
            .collect())
    }
}

/// A synchronous batched class method.
#[app::cls]
struct Doubler {}

#[app::cls]
impl Doubler {
    #[app::method]
    #[app::batched(max_batch_size = 2, wait_ms = 0)]
    fn double(&self, xs: Vec<u32>) -> Vec<u32> {
        xs.into_iter().map(|x| x * 2).collect()
    }
}

/// A batched function.
#[app::function(max_inputs = 2)]
#[app::batched(max_batch_size = 4, wait_ms = 0)]
fn lengths(texts: Vec<String>) -> Vec<usize> {
    texts.iter().map(String::len).collect()
}

/// An async, fallible batched function with two arguments.
#[app::function]
#[app::batched(max_batch_size = 1000, wait_ms = 600000)]
async fn weighted(xs: Vec<u64>, ws: Vec<u64>) -> Result<Vec<u64>, String> {
    if xs.contains(&0) {
        return Err("zero".into());
    }
    Ok(xs.iter().zip(&ws).map(|(x, w)| x * w).collect())
}

/// The concurrency options.
#[app::function(max_inputs = 8, target_inputs = 4)]
fn concurrent(x: u8) -> u8 {
    x
}

/// Type-checks the remote API; never run (it needs a control plane).
#[allow(dead_code)]
async fn remote_api() -> Result<(), modal_runtime::Error> {
    let m: Obj<Model> = Model::new("fine-tuned".into());
    let _: u64 = m.predict.remote(3).await?;
    let _: FunctionCall<u64> = m.predict.spawn(3).await?;
    let _: MapStream<u64> = m.predict.map(vec![1, 2]);
    let _: MapStream<u64> = m.predict.starmap(vec![(1,)]);
    m.predict.for_each(vec![1, 2]).await?;
    let _: String = m.describe.remote().await?;
    m.nothing.remote().await?;
    m.nothing.for_each(vec![(), ()]).await?;
    let _: (u8, String) = m.pair.remote(1, "x".into()).await?;
    m.pair.for_each(vec![(1, "a".to_string())]).await?;
    let _: u32 = m.three.remote(1, (2, 3), vec![]).await?;
    let _: &Method<Model, (u64,), u64, u64> = &m.predict;
    let m2 = Model::with_params(ModelParams {
        top_k: 5,
        ..ModelParams::new("x".into())
    });
    m2.hydrate().await?;
    m2.keep_warm(1).await?;
    let _: FunctionStats = m2.get_current_stats().await?;
    let c: Cls<Model> = Model::cls().with_options(ClsOptions::new().cpu(2.0));
    let _: Cls<Model> = c.with_options(
        ClsOptions::new()
            .cpu_limits(1.0, 4.0)
            .memory_limits(512, 2048)
            .gpu("any:2")
            .image("python:3.12-slim"),
    );
    let _: Obj<Model> = c.instance(ModelParams::new("x".into()));
    let named: Obj<Model> = Model::from_name("deployed-app").instance(ModelParams::new("x".into()));
    let _ = named.with_concurrency(4, 2).with_batching(2, 10);
    let e = Embedder::new(2);
    let _: u64 = e.embed.remote("a".into(), 1).await?;
    let _: MapStream<u64> = e.embed.starmap(vec![("a".to_string(), 1)]);
    let _: u32 = Doubler::new().double.remote(2).await?;
    let _: MapStream<u32> = Doubler::new().double.map(0..4);
    let _: usize = lengths.remote("abc".into()).await?;
    let _: MapStream<usize> = lengths.map(vec!["a".to_string()]);
    lengths.for_each(vec!["a".to_string()]).await?;
    let _: u64 = weighted.remote(1, 2).await?;
    let _: MapStream<u64> = weighted.starmap(vec![(1, 2)]);
    concurrent.keep_warm(2).await?;
    let _: FunctionStats = concurrent.get_current_stats().await?;
    // Calls do not borrow their handles: their futures can be spawned.
    let _ = tokio::spawn(m.predict.remote(1));
    let _ = tokio::spawn(m.describe.local());
    let _ = tokio::spawn(concurrent.keep_warm(1));
    let _ = tokio::spawn(concurrent.get_current_stats());
    Ok(())
}

fn find(name: &str) -> &'static FunctionDescriptor {
    registry::find(name).unwrap_or_else(|| panic!("`{name}` is not registered"))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &Result<bytes::Bytes, CallFailure>) -> T {
    codec::decode(bytes.as_ref().unwrap()).unwrap()
}

fn encode(value: impl serde::Serialize) -> bytes::Bytes {
    codec::encode(&value).unwrap()
}

/// Runs method `name` of `instance` through its container handler.
async fn call<C: ClsMethods>(
    instance: std::sync::Arc<C>,
    name: &str,
    payloads: Vec<bytes::Bytes>,
) -> Vec<Result<bytes::Bytes, CallFailure>> {
    let method = C::METHODS
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no method `{name}`"));
    match method.handler {
        MethodHandler::Blocking(run) => payloads.into_iter().map(|p| run(&instance, p)).collect(),
        MethodHandler::Async(run) => {
            let mut out = Vec::new();
            for p in payloads {
                out.push(run(instance.clone(), p).await);
            }
            out
        }
        MethodHandler::BatchBlocking(run) => run(&instance, payloads),
        MethodHandler::BatchAsync(run) => run(instance, payloads).await,
    }
}

fn main() {
    let names: Vec<&str> = registry::functions().iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        [
            "Counter",
            "Doubler",
            "Embedder",
            "Model",
            "concurrent",
            "flaky-model",
            "lengths",
            "weighted"
        ]
    );

    // Classes register like functions, with their options and fingerprints.
    let d = find("Model");
    assert!(d.rust_path.ends_with("::Model"), "{}", d.rust_path);
    assert_eq!(d.arity, 0);
    assert!(matches!(d.handler, Handler::Class(_)));
    assert_eq!(
        d.options,
        FunctionOptions {
            max_containers: Some(2),
            scaledown_window_secs: 10,
            max_inputs: 4,
            target_inputs: Some(2),
            ..FunctionOptions::DEFAULT
        }
    );
    assert_eq!(
        (d.fingerprint)(),
        "class(name: String, top_k: u32, mode: String) { \
         predict: (u64,) -> u64; \
         describe: () -> String; \
         nothing: () -> (); \
         pair: (u8, String) -> (u8, String); \
         three: (u8, (u8, u8), Vec<u8>) -> u32 }"
    );
    assert_eq!(<Model as ClsDef>::NAME, "Model");
    assert_eq!(find("flaky-model").options, FunctionOptions::DEFAULT);
    assert!(find("flaky-model").rust_path.ends_with("::Flaky"));
    assert_eq!((find("Counter").fingerprint)(), "class() { bump: () -> u32 }");
    let d = find("Embedder");
    assert_eq!(
        d.options,
        FunctionOptions {
            cpu: Some(2.0),
            image: Some(Cow::Borrowed(
                "localhost:5000/embedder@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            )),
            batch_max_size: Some(8),
            batch_wait_ms: 100,
            ..FunctionOptions::DEFAULT
        }
    );
    assert_eq!(
        (d.fingerprint)(),
        "class(scale: u64) { embed: (String, u32) -> u64 }"
    );
    assert_eq!(find("Doubler").options.batch_max_size, Some(2));

    // Batched functions: element-wise fingerprints, batch handlers, options.
    let d = find("lengths");
    assert!(matches!(d.handler, Handler::BatchBlocking(_)));
    assert_eq!(d.arity, 1);
    // serde sends a `usize` as a `u64`.
    assert_eq!((d.fingerprint)(), "(String,) -> u64");
    assert_eq!(
        d.options,
        FunctionOptions {
            max_inputs: 2,
            batch_max_size: Some(4),
            batch_wait_ms: 0,
            ..FunctionOptions::DEFAULT
        }
    );
    let d = find("weighted");
    assert!(matches!(d.handler, Handler::BatchAsync(_)));
    assert_eq!((d.fingerprint)(), "(u64, u64) -> u64");
    assert_eq!(d.options.batch_max_size, Some(1000));
    assert_eq!(d.options.batch_wait_ms, 600000);
    let d = find("concurrent");
    assert_eq!(d.options.max_inputs, 8);
    assert_eq!(d.options.target_inputs, Some(4));

    // The manifest lists each class's methods.
    let manifest = Manifest::of_this_binary();
    manifest.validate().unwrap();
    let model = manifest.functions.iter().find(|f| f.name == "Model").unwrap();
    let methods: Vec<(&str, usize)> = model
        .methods
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| (m.name.as_str(), m.arity))
        .collect();
    assert_eq!(
        methods,
        [
            ("predict", 1),
            ("describe", 0),
            ("nothing", 0),
            ("pair", 2),
            ("three", 3)
        ]
    );
    assert_eq!(model.methods.as_ref().unwrap()[0].fingerprint, "(u64,) -> u64");
    assert!(
        manifest
            .functions
            .iter()
            .find(|f| f.name == "lengths")
            .unwrap()
            .methods
            .is_none()
    );

    // Batched function handlers: one outcome per input, a bad input alone fails.
    match find("lengths").handler {
        Handler::BatchBlocking(run) => {
            let out = run(vec![encode(("ab",)), encode((1,)), encode(("abcd",))]);
            assert_eq!(decode::<usize>(&out[0]), 2);
            assert!(matches!(out[1], Err(CallFailure::BadInput(_))));
            assert_eq!(decode::<usize>(&out[2]), 4);
        }
        _ => unreachable!(),
    }
    match find("weighted").handler {
        Handler::BatchAsync(run) => {
            let out = futures::executor::block_on(run(vec![encode((2, 3)), encode((4, 5))]));
            assert_eq!(decode::<u64>(&out[0]), 6);
            assert_eq!(decode::<u64>(&out[1]), 20);
            let out = futures::executor::block_on(run(vec![encode((0, 3)), encode((4, 5))]));
            assert_eq!(out[1], Err(codec::UserFailure::text("zero")));
        }
        _ => unreachable!(),
    }
    // `local` and `get_raw_f` keep the function's own signature.
    assert_eq!(lengths.local(vec!["a".into(), "bc".into()]), [1, 2]);
    let raw: fn(Vec<String>) -> Vec<usize> = lengths.get_raw_f();
    assert_eq!(raw(vec!["abc".into()]), [3]);
    assert_eq!(
        futures::executor::block_on(weighted.local(vec![2], vec![3])),
        Ok(vec![6])
    );
    assert_eq!(concurrent.local(7), 7);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // Container handlers, on an instance built and entered like a container does.
        let wire = <Model as ClsDef>::to_wire(ModelParams::new("m".into()));
        let (model, entered) = <Model as ClsMethods>::enter(<Model as ClsDef>::build(wire)).await;
        entered.unwrap();
        assert_eq!(model.helper(), 3);
        assert_eq!(model.mode, "greedy");
        let model = std::sync::Arc::new(model);
        let out = call(model.clone(), "predict", vec![encode((4_u64,)), encode(("x",))]).await;
        assert_eq!(decode::<u64>(&out[0]), 7);
        assert!(matches!(out[1], Err(CallFailure::BadInput(_))));
        let out = call(model.clone(), "describe", vec![encode(())]).await;
        assert_eq!(decode::<String>(&out[0]), "m:3:greedy");
        let out = call(model.clone(), "three", vec![encode((1, (2, 3), vec![0_u8; 4]))]).await;
        assert_eq!(decode::<u32>(&out[0]), 10);
        let out = call(model.clone(), "nothing", vec![encode(())]).await;
        decode::<()>(&out[0]);
        assert_eq!(*model.calls.lock().unwrap(), 1);
        let exited = MODEL_EXITED.load(Ordering::SeqCst);
        let model = std::sync::Arc::try_unwrap(model).ok().unwrap();
        <Model as ClsMethods>::exit(model).await.unwrap();
        assert_eq!(MODEL_EXITED.load(Ordering::SeqCst), exited + 1);

        let wire = <Embedder as ClsDef>::to_wire(EmbedderParams::new(10));
        let (embedder, entered) =
            <Embedder as ClsMethods>::enter(<Embedder as ClsDef>::build(wire)).await;
        entered.unwrap();
        let embedder = std::sync::Arc::new(embedder);
        let out = call(
            embedder.clone(),
            "embed",
            vec![encode(("ab", 1)), encode(("abc", 2))],
        )
        .await;
        assert_eq!(decode::<u64>(&out[0]), 20);
        assert_eq!(decode::<u64>(&out[1]), 60);
        let out = call(embedder, "embed", vec![encode(("bad", 1)), encode(("ok", 1))]).await;
        assert_eq!(out[0], Err(codec::UserFailure::text("my error: bad text")));
        let doubler = std::sync::Arc::new(<Doubler as ClsDef>::build(()));
        let out = call(doubler, "double", vec![encode((1,)), encode((5,))]).await;
        assert_eq!(decode::<u32>(&out[1]), 10);

        // `local` builds an instance here, runs `enter` once, then the method.
        let before = MODEL_ENTERED.load(Ordering::SeqCst);
        let m = Model::new("fine".into());
        assert_eq!(MODEL_ENTERED.load(Ordering::SeqCst), before);
        assert_eq!(m.predict.local(3).await.unwrap(), 6);
        assert_eq!(MODEL_ENTERED.load(Ordering::SeqCst), before + 1);
        assert_eq!(m.describe.local().await.unwrap().unwrap(), "fine:3:greedy");
        m.nothing.local().await.unwrap();
        assert_eq!(
            m.pair.local_tuple((1, "x".into())).await.unwrap(),
            (1, "x".to_string())
        );
        assert_eq!(m.three.local(1, (1, 1), vec![1]).await.unwrap().unwrap(), 4);
        // One instance per handle: `enter` ran once for all of the above.
        assert_eq!(MODEL_ENTERED.load(Ordering::SeqCst), before + 1);
        let m = Model::with_params(ModelParams {
            top_k: 5,
            mode: "beam".into(),
            ..ModelParams::new("x".into())
        });
        assert_eq!(m.predict.local(0).await.unwrap(), 10);
        assert_eq!(m.describe.local().await.unwrap().unwrap(), "x:5:beam");
        let e = m.describe.local().await.unwrap();
        assert!(e.is_ok());
        let m = Model::new(String::new());
        assert_eq!(
            m.describe.local().await.unwrap().unwrap_err().to_string(),
            "my error: no name"
        );

        // A failing `enter` fails the local call, naming the hook's error.
        let err = Flaky::new(true).ready.local().await.unwrap_err();
        assert!(err.to_string().contains("my error: refused to start"), "{err}");
        assert!(Flaky::new(false).ready.local().await.unwrap());
        assert_eq!(Counter::new().bump.local().await.unwrap(), 1);

        // A batched method's `local` runs a batch of one.
        let e = Embedder::new(10);
        assert_eq!(e.embed.local("ab".into(), 2).await.unwrap().unwrap(), [40]);
        assert_eq!(Doubler::new().double.local(21).await.unwrap(), [42]);
    });

    // Handles are values: cloned, named.
    let m = Model::new("x".into());
    let copy = m.clone();
    assert_eq!(copy.predict.name(), "predict");
    assert_eq!(format!("{:?}", m.describe), "Method(Model.describe)");
    assert_eq!(format!("{:?}", Model::cls()), "Cls(Model)");
    assert_eq!(
        format!("{:?}", Model::from_name("deployed")),
        "Cls(deployed/Model)"
    );
    assert_eq!(concurrent.handle().name(), "concurrent");
}
