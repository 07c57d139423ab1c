//! Attribute macros of modal-rs. Use them through `modal_runtime::app`:
//! `#[app::function(...)]`, `#[app::main]`, `#[app::cls(...)]` with its
//! markers (`#[app::parameter]`, `#[app::enter]`, `#[app::exit]`,
//! `#[app::method]`) and `#[app::batched(...)]`; this crate is an
//! implementation detail (generated code refers only to
//! `::modal_runtime::__private` and `::modal_runtime::Method`).
//!
//! Structure, after `serde_derive`, in three layers, each using only those
//! before it:
//!
//! 1. **Model.** The input is parsed once into a typed model that keeps
//!    spans: `attr.rs` for the options, `model.rs` for a function,
//!    `model_batched.rs` for `#[app::batched]` (its options, and the element
//!    types of a batched signature), `model_cls.rs` for a class, `markers.rs`
//!    for recognising the markers, `web.rs` for the web attributes,
//!    `schedule.rs` for `schedule = Cron(..) | Period(..)`.
//! 2. **Check.** A separate pass collects every error (`errors.rs`):
//!    `check.rs` for functions, `main` and batched signatures, `check_cls.rs`
//!    for classes.
//! 3. **Expand.** Only then is code generated: `expand_function.rs` (one
//!    method per generated item, on `FunctionGenerator`), `expand_main.rs`,
//!    `expand_cls.rs` for a class's struct, `expand_cls_impl.rs` for its
//!    `impl` block, `expand_web.rs` for web endpoints, `expand_shared.rs` for
//!    what they share.
//!
//! `tokens.rs` holds what every layer uses on tokens: `ungroup`, printing
//! tokens as written, and `suggest` (the option a user probably meant).
//!
//! Rules shared with the runtime are the runtime's own std-only files,
//! compiled here with `#[path]` (this crate cannot depend on the runtime,
//! which depends on it), so that the control plane checks deployed options
//! with the same code: `options/bounds.rs` (numeric bounds: timeout,
//! retries, batch sizes, ...) as `bounds`, `options/container.rs` (a
//! container's image and resources) as `container`, `options/schedule.rs`
//! (cron expressions, time zones, periods) as `schedule_rules`, and
//! `options/web.rs` (an endpoint's label and method) as `web_rules`.
//!
//! Generated code asks for serde in one place per function:
//! `__private::calls::<Args, Ret>()`, whose result the stub calls through,
//! so that a type that cannot travel gives one error, on the user's tokens.

mod attr;
// The numeric bounds of the options, the runtime's own file.
#[path = "../../modal-runtime/src/options/bounds.rs"]
mod bounds;
mod check;
mod check_cls;
// The macro checks values and prints a GPU request back; the parsed parts of
// an image reference and the accessors are for the runtime.
#[allow(dead_code)]
#[path = "../../modal-runtime/src/options/container.rs"]
mod container;
mod errors;
mod expand_cls;
mod expand_cls_impl;
mod expand_function;
mod expand_main;
mod expand_shared;
mod expand_web;
mod markers;
mod model;
mod model_batched;
mod model_cls;
mod schedule;
mod tokens;
// The grammar of a schedule (cron expression, time zone, period), the
// runtime's own file; checking a period in milliseconds is for manifests.
#[allow(dead_code)]
#[path = "../../modal-runtime/src/options/schedule.rs"]
mod schedule_rules;
mod web;
// The grammar of an endpoint's label and method, the runtime's own file.
#[path = "../../modal-runtime/src/options/web.rs"]
mod web_rules;

use proc_macro::TokenStream;

/// Turns a function into a remote function: each call runs in a container.
///
/// ```ignore
/// use modal_runtime::app;
///
/// /// Resizes one image.
/// #[app::function(cpu = 2, memory = 1024, timeout = 60, retries = 3)]
/// async fn resize(image: Vec<u8>, width: u32) -> Result<Vec<u8>, MyError> { ... }
///
/// // elsewhere, inside `#[app::main]`:
/// let small = resize.remote(bytes, 128).await?;
/// ```
///
/// The function may be `fn` or `async fn` (whose future must be `Send`), with
/// any number of arguments, each of a concrete, owned type that implements
/// serde's `Serialize` and `DeserializeOwned`; so must the result. It returns
/// `T` (infallible), `Result<T, E>` with `E: Display` (any path whose last
/// segment is `Result`, e.g. `io::Result<T>`, `anyhow::Result<T>`: an `Err`
/// becomes a user error on the caller's side) or nothing. Generic functions,
/// methods (`self`), `impl Trait` and borrowed arguments are refused.
///
/// # Options
///
/// | option | value | meaning |
/// |---|---|---|
/// | `name = "resize"` | `[A-Za-z0-9_-]`, at most 64 | name registered in the app (default: the identifier; unique per crate) |
/// | `cpu = 2` / `cpu = (0.5, 2.0)` | > 0, at most 1,024; limit ≥ request | CPU cores per container: requested, or `(request, limit)`; one value is both |
/// | `memory = 1024` / `memory = (1024, 4096)` | 1 to 4,194,304 (4 TiB); limit ≥ request | memory per container, MiB: requested, or `(request, limit)`; one value is both |
/// | `gpu = "A100"` / `gpu = "H100:2"` / `gpu = "any"` | type (letters, digits, `-`; any case) and count 1 to 8 | GPU type and count |
/// | `image = "python:3.12-slim"` | Docker reference, at most 255 characters | base image of the containers, already in the engine |
/// | `timeout = 60` | 1 to 86,400 | per-attempt timeout, seconds (default 300) |
/// | `retries = 3` | 0 to 10 | retries after a failed attempt (default 0) |
/// | `max_containers = 10` | ≥ 1 | upper bound on containers |
/// | `min_containers = 1` | ≤ `max_containers` | containers kept warm |
/// | `buffer_containers = 1` | integer | extra idle containers while busy |
/// | `scaledown_window = 60` | 2 to 3,600 | idle seconds before a container stops |
/// | `env = { "KEY": "value" }` | string map | environment of every container |
/// | `secrets = ["db"]` | string list | secrets injected into every container |
/// | `volumes = { "/data": "my-volume" }` | map of absolute path to volume name | volumes mounted in every container (see `modal_runtime::mounted`) |
/// | `region = "..."`, `cloud = "..."` | string | placement |
/// | `max_inputs = 8` | 1 to 1,000 | inputs one container runs at once (default 1) |
/// | `target_inputs = 4` | 1 to `max_inputs` | inputs per container the autoscaler aims for (default: `max_inputs`) |
/// | `schedule = Cron("0 9 * * 1-5", timezone = "Europe/Paris")` / `schedule = Period(60)` | five cron fields and an IANA time zone (default UTC); a period of 1 s to 366 days | runs by itself once the app is deployed; only on a function without arguments (not a class, web endpoint, batched function or generator) |
///
/// # Batching
///
/// `#[app::batched(max_batch_size = 8, wait_ms = 100)]` *below*
/// `#[app::function]` makes the function take whole batches: every argument
/// is a `Vec` (one element per input) and it returns `Vec<R>` or
/// `Result<Vec<R>, E>` (one result per input, in order; an `Err` fails the
/// whole batch). Callers still call it one input at a time:
///
/// ```ignore
/// #[app::function]
/// #[app::batched(max_batch_size = 8, wait_ms = 100)]
/// fn embed(texts: Vec<String>) -> Vec<Vec<f32>> { ... }
///
/// let v: Vec<f32> = embed.remote("hello".into()).await?;
/// ```
///
/// # What it generates
///
/// For `fn add(a: i64, b: i64) -> R` (success type `T`: `R` itself, or the
/// `Ok` type when `R` is a `Result`), a stub struct and a constant of the
/// same name, `add`, with:
///
/// - `add.remote(a, b).await -> Result<T, Error>`: runs in a container.
/// - `add.spawn(a, b).await -> Result<FunctionCall<T>, Error>`: starts it.
/// - `add.starmap(tuples) -> MapStream<T>`; for one-argument functions also
///   `map(items)` (on others, calling `map` is an error that names
///   `starmap`); `for_each(...)` takes items (one argument) or tuples.
/// - `add.local(a, b) -> R` (`async` for async functions): runs it here.
/// - `add.get_raw_f()`: the function as a `fn` pointer (async functions:
///   returning a `BoxFuture`).
/// - `add.hydrate()`, `add.keep_warm(n)`, `add.update_autoscaler(settings)`,
///   `add.get_current_stats()`, `add::from_name("app")`,
///   `add::lookup("app").await` (looked up now), `add.version(v)`,
///   `add.handle()`.
///
/// A batched function's stub is typed with the element types: `remote`,
/// `spawn`, `map`, `starmap` and `for_each` take one input's arguments;
/// `local` and `get_raw_f` keep the function's own `Vec` signature.
///
/// The name means the stub everywhere, the function's own body included:
/// recurse with `add.local(...)`, fan out with `add.remote(...)`.
///
/// The function is registered (through `inventory`) so that a container of
/// this binary can run it and `cargo xtask deploy` can list it. Two
/// functions (or a function and a class) registered under one name in a
/// crate are a compile error.
#[proc_macro_attribute]
pub fn function(options: TokenStream, item: TokenStream) -> TokenStream {
    expand_function::expand(options.into(), item.into()).into()
}

/// Marks the program's `async fn main()`, optionally returning a value
/// (`Result<(), E>`, anything `Termination`).
///
/// The runtime then decides what this run of the binary is: the program
/// itself (running `main` with an app whose functions run in containers), a
/// container serving inputs, or the manifest printer used by deploy.
///
/// ```ignore
/// #[app::main]
/// async fn main() -> Result<(), modal_runtime::Error> {
///     println!("{}", square.remote(7).await?);
///     Ok(())
/// }
/// ```
#[proc_macro_attribute]
pub fn main(options: TokenStream, item: TokenStream) -> TokenStream {
    expand_main::expand(options.into(), item.into()).into()
}

/// Turns a struct and its `impl` block into a class: each container builds
/// one instance (from parameters given by the caller), runs its
/// `#[app::enter]` hook once, then serves many calls of its remote methods.
///
/// ```ignore
/// use modal_runtime::app;
///
/// #[app::cls(gpu = "A100", scaledown_window = 300)]
/// pub struct Model {
///     #[app::parameter]
///     name: String,
///     #[app::parameter(default = 3)]
///     top_k: u32,
///     weights: Vec<f32>, // not a parameter: starts as `Default::default()`
/// }
///
/// #[app::cls]
/// impl Model {
///     #[app::enter]
///     fn load(&mut self) -> Result<(), io::Error> { ... }
///     #[app::method]
///     fn predict(&self, prompt: String) -> Vec<String> { ... }
///     #[app::exit]
///     async fn unload(&self) { ... }
/// }
///
/// // inside `#[app::main]`:
/// let model = Model::new("tiny".into());
/// let out = model.predict.remote("hi".into()).await?;
/// ```
///
/// # On the struct
///
/// Takes the options of [`macro@function`] (`name = "..."` included; the
/// default name is the struct's identifier, registered in the same namespace
/// as functions). The struct must have named fields and no generics. Fields
/// marked [`macro@parameter`] are given per instance and travel to the
/// containers, so their types must be owned and serde-serializable; every
/// other field starts as `Default::default()` (set it in `#[app::enter]`).
///
/// For `struct Model` it generates:
///
/// - `ModelParams`, one public field per parameter, and
///   `ModelParams::new(required...)` filling in the defaults;
/// - `Model::new(required...) -> Obj<Model>` (the parameters without a
///   default, in declaration order), `Model::with_params(ModelParams) ->
///   Obj<Model>`, `Model::cls() -> Cls<Model>` (to set options:
///   `Model::cls().with_options(ClsOptions::new().cpu(2.0)).instance(..)`)
///   `Model::from_name(app) -> Cls<Model>` (the class of a deployed app) and
///   `Model::lookup(app).await -> Result<Cls<Model>, Error>` (the same,
///   looked up now);
/// - the `ClsDef` implementation the runtime builds instances with.
///
/// # On the `impl` block
///
/// Takes no options. Marks, on its functions:
///
/// - [`macro@method`]: a remote method, taking `&self` (one instance serves
///   many inputs, possibly at once), sync or `async`, with arguments and
///   results as for [`macro@function`]. At least one is required.
/// - [`macro@enter`] / [`macro@exit`]: at most one each, taking `&self` or
///   `&mut self` and nothing else, sync or `async`, returning `()` or
///   `Result<(), E>` with `E: Display` (an `Err` from `enter` fails the
///   container's start, and the calls waiting on it).
/// - [`macro@batched`] below `#[app::method]`: the class's one method takes
///   batches.
///
/// Unmarked functions stay ordinary methods. It generates `ModelMethods`,
/// one public `Method<Model, Args, T, R>` field per remote method (with the
/// method's docs), reached through `Obj<Model>`: `model.predict.remote(x)`,
/// `.spawn(x)`, `.map(xs)`, `.starmap(tuples)`, `.for_each(xs)`, and
/// `.local(x)`, which runs the method on an instance built and entered in
/// this process. The class is registered like a function.
///
/// Refused: tuple, unit, generic structs, enums and unions; generic or
/// trait `impl` blocks; remote methods without `&self` (`self`, `&mut self`,
/// none), generic, with `impl Trait` or borrowed arguments or results; two
/// `enter` (or `exit`) hooks; hooks with arguments; a function with two
/// roles; a batched method beside another method.
#[proc_macro_attribute]
pub fn cls(options: TokenStream, item: TokenStream) -> TokenStream {
    expand_cls::expand(options.into(), item.into()).into()
}

/// Marks a field of an [`macro@cls`] struct as a parameter of the class:
/// given when an instance is made (`Model::new(..)`, `ModelParams`), sent to
/// its containers, and part of what identifies the instance (each distinct
/// set of values gets its own containers).
///
/// `#[app::parameter]` makes it required; `#[app::parameter(default =
/// expr)]` gives a default (a string literal fills a `String` through
/// `From`). Only meaningful on a field of a struct marked `#[app::cls]`,
/// which reads and removes it; anywhere else it is an error.
#[proc_macro_attribute]
pub fn parameter(_options: TokenStream, item: TokenStream) -> TokenStream {
    markers::expand_stray(markers::Marker::Parameter, item.into()).into()
}

/// Marks the hook of an [`macro@cls`] `impl` block that runs once in each
/// container, after its instance is built and before any input: load a
/// model, open a connection. Takes `&self` or `&mut self`, sync or `async`,
/// and returns `()` or `Result<(), E>` with `E: Display`. Only meaningful
/// inside an `#[app::cls]` `impl` block; anywhere else it is an error.
#[proc_macro_attribute]
pub fn enter(_options: TokenStream, item: TokenStream) -> TokenStream {
    markers::expand_stray(markers::Marker::Enter, item.into()).into()
}

/// Marks the hook of an [`macro@cls`] `impl` block that runs once when a
/// container stops, after its last input. Same shapes as [`macro@enter`].
/// Only meaningful inside an `#[app::cls]` `impl` block; anywhere else it is
/// an error.
#[proc_macro_attribute]
pub fn exit(_options: TokenStream, item: TokenStream) -> TokenStream {
    markers::expand_stray(markers::Marker::Exit, item.into()).into()
}

/// Marks a remote method of an [`macro@cls`] `impl` block: `fn` or `async fn`
/// taking `&self` and arguments as for [`macro@function`]. Callers reach it
/// as a field of an instance handle: `model.predict.remote(x)`. Only
/// meaningful inside an `#[app::cls]` `impl` block; anywhere else it is an
/// error.
#[proc_macro_attribute]
pub fn method(_options: TokenStream, item: TokenStream) -> TokenStream {
    markers::expand_stray(markers::Marker::Method, item.into()).into()
}

/// Dynamic batching: inputs are gathered into batches of up to
/// `max_batch_size`, formed when full or `wait_ms` milliseconds after their
/// first input, and the function runs once per batch.
///
/// ```ignore
/// #[app::function(gpu = "T4")]
/// #[app::batched(max_batch_size = 32, wait_ms = 50)]
/// async fn embed(texts: Vec<String>, scales: Vec<f32>) -> Result<Vec<Vec<f32>>, Error> { ... }
///
/// let v = embed.remote("hello".into(), 1.0).await?; // one input
/// ```
///
/// Both options are required: `max_batch_size` 1 to 1,000, `wait_ms` 0 to
/// 600,000. Every argument is a `Vec` (the batch's values of that argument,
/// in input order) and the result is `Vec<R>` or `Result<Vec<R>, E>`, one
/// `R` per input in the same order; a result of the wrong length fails every
/// input of the batch, and so does an `Err`.
///
/// It goes *below* `#[app::function(...)]`, or below `#[app::method]` on the
/// one remote method of an [`macro@cls`] `impl` block (a class with a
/// batched method has no other methods). Anywhere else, above
/// `#[app::function]` included, it is an error.
#[proc_macro_attribute]
pub fn batched(_options: TokenStream, item: TokenStream) -> TokenStream {
    markers::expand_stray(markers::Marker::Batched, item.into()).into()
}

/// Serves a function over HTTP: *below* `#[app::function]`.
///
/// ```ignore
/// #[app::function]
/// #[app::web_endpoint(method = "POST", label = "square", public)]
/// fn square(x: u64) -> u64 { x * x }
/// // POST {"x": 3}… or just `3`: one argument is the whole body.
/// ```
///
/// | option | value | meaning |
/// |---|---|---|
/// | `method = "POST"` | `GET`, `POST`, `PUT`, `PATCH`, `DELETE` | the method it answers (default `POST`); `GET`, `DELETE`: arguments from the query |
/// | `label = "square"` | 1 to 63 lowercase letters, digits, `-` | the last segment of its URL (default: the registered name, `_` as `-`) |
/// | `public` | flag | reachable without a token (by default, `Authorization: Bearer` with an invoke token) |
/// | `raw` | flag | takes an `http::Request<Bytes>` and returns an `http::Response<Bytes>` (or a `Result` of one), answering every method and path below its URL |
///
/// Its JSON body (or query) decodes into the arguments: one argument is the
/// whole body, several are an object keyed by their names. Its result is
/// the JSON response; an `Err` is a 500 with `{"error": {...}}` unless it
/// is a `modal_runtime::web::HttpError`, which answers with its own status.
/// A generator's items stream as server-sent events (`Accept:
/// text/event-stream`) or JSON lines. The stub gains nothing but
/// `web_url()`: it is still called with `remote`, `map`, … (except `raw`
/// endpoints, whose stub has `web_url()` and `local` only).
#[proc_macro_attribute]
pub fn web_endpoint(_options: TokenStream, item: TokenStream) -> TokenStream {
    markers::expand_stray(markers::Marker::WebEndpoint, item.into()).into()
}

/// Serves a whole `axum` app, *below* `#[app::function]`: the function
/// takes nothing and returns a `modal_runtime::web::axum::Router`, built
/// once per container; every request under its URL (the prefix taken off)
/// is routed through it.
///
/// ```ignore
/// #[app::function(max_inputs = 32)]
/// #[app::web_app(label = "api")]
/// fn api() -> axum::Router {
///     axum::Router::new().route("/hello", axum::routing::get(|| async { "hi" }))
/// }
/// ```
///
/// Options: `label = "..."` and `public`, as for [`macro@web_endpoint`].
#[proc_macro_attribute]
pub fn web_app(_options: TokenStream, item: TokenStream) -> TokenStream {
    markers::expand_stray(markers::Marker::WebApp, item.into()).into()
}
