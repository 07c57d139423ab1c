//! Attribute macros of modal-rs. Use them through `modal_runtime::app`:
//! `#[app::function(...)]` and `#[app::main]`; this crate is an
//! implementation detail (generated code refers only to
//! `::modal_runtime::__private`).
//!
//! Structure, after `serde_derive`: the input is parsed once into a typed
//! model that keeps spans (`attr.rs` for the options, `model.rs` for the
//! function), checked in a separate pass (`check.rs`) that collects every
//! error (`errors.rs`), and only then expanded (`expand_function.rs`,
//! `expand_main.rs`).

mod attr;
mod check;
mod errors;
mod expand_function;
mod expand_main;
mod model;

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
/// | `cpu = 2` / `cpu = 0.5` | number > 0 | CPU cores reserved per container |
/// | `memory = 1024` | integer ≥ 1 | memory per container, MiB |
/// | `gpu = "A100"` / `gpu = "H100:2"` | string | GPU type and count |
/// | `timeout = 60` | 1 to 86,400 | per-attempt timeout, seconds (default 300) |
/// | `retries = 3` | 0 to 10 | retries after a failed attempt (default 0) |
/// | `max_containers = 10` | ≥ 1 | upper bound on containers |
/// | `min_containers = 1` | ≤ `max_containers` | containers kept warm |
/// | `buffer_containers = 1` | integer | extra idle containers while busy |
/// | `scaledown_window = 60` | 2 to 3,600 | idle seconds before a container stops |
/// | `env = { "KEY": "value" }` | string map | environment of every container |
/// | `secrets = ["db"]` | string list | secrets injected into every container |
/// | `region = "..."`, `cloud = "..."` | string | placement |
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
///   `map(items)`; `for_each(...)` takes items (one argument) or tuples.
/// - `add.local(a, b) -> R` (`async` for async functions): runs it here.
/// - `add.get_raw_f()`: the function as a `fn` pointer (async functions:
///   returning a `BoxFuture`).
/// - `add.hydrate()`, `add::from_name("app")`, `add.version(v)`,
///   `add.handle()`.
///
/// The name means the stub everywhere, the function's own body included:
/// recurse with `add.local(...)`, fan out with `add.remote(...)`.
///
/// The function is registered (through `inventory`) so that a container of
/// this binary can run it and `cargo xtask deploy` can list it. Two
/// functions registered under one name in a crate are a compile error.
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
