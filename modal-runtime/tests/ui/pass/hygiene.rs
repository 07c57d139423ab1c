//! Generated code uses only absolute paths: it compiles without the prelude
//! and next to user items named like the prelude's.

#![no_implicit_prelude]
#![deny(missing_docs, warnings)]

#[allow(dead_code)]
struct Box;
#[allow(dead_code)]
struct Result;
#[allow(dead_code)]
struct Option;
#[allow(dead_code)]
struct Ok;
#[allow(dead_code)]
struct Err;
#[allow(dead_code)]
struct Some;
#[allow(dead_code)]
struct None;
#[allow(dead_code)]
struct Vec;
#[allow(dead_code)]
struct String;
#[allow(dead_code)]
struct Send;
#[allow(dead_code)]
struct Clone;
#[allow(dead_code)]
struct Future;
#[allow(dead_code)]
struct IntoIterator;
#[allow(dead_code)]
struct Iterator;
#[allow(dead_code)]
struct Default;
#[allow(dead_code)]
struct From;
#[allow(dead_code)]
struct Into;
#[allow(dead_code)]
struct Sync;
#[allow(dead_code)]
struct Arc;
#[allow(dead_code)]
struct Pin;
#[allow(dead_code)]
struct Self_;
#[allow(dead_code)]
mod core {}
#[allow(dead_code)]
mod std {}
#[allow(dead_code)]
mod modal_runtime {}

/// Sync, fallible, with options.
#[::modal_runtime::app::function(
    cpu = 1,
    timeout = 5,
    retries = 1,
    scaledown_window = 10,
    env = { "A": "b" },
    secrets = ["s"],
    gpu = "T4",
    region = "eu",
    cloud = "gcp",
    max_containers = 2,
    min_containers = 1,
    buffer_containers = 1,
    memory = 128
)]
pub fn sync_fn(
    x: ::std::primitive::u64,
) -> ::std::result::Result<::std::primitive::u64, ::std::string::String> {
    ::std::result::Result::Ok(x)
}

/// Async, one argument.
#[::modal_runtime::app::function]
pub async fn async_fn(x: ::std::vec::Vec<::std::primitive::u8>) -> ::std::primitive::usize {
    x.len()
}

/// Async, no arguments, no result.
#[::modal_runtime::app::function]
pub async fn unit() {}

/// Two arguments.
#[::modal_runtime::app::function]
pub fn two(a: ::std::primitive::u8, b: ::std::primitive::u8) -> ::std::primitive::u8 {
    a.wrapping_add(b)
}

/// Private and never called here (only by name, once deployed): no
/// dead-code warning.
#[::modal_runtime::app::function(name = "private-fn")]
fn private_fn(x: ::std::primitive::u8) -> ::std::primitive::u8 {
    x
}

/// Private, async, never called here.
#[::modal_runtime::app::function]
async fn private_async(x: ::std::primitive::u8) -> ::std::primitive::u8 {
    x
}

/// Batched, async, fallible.
#[::modal_runtime::app::function(max_inputs = 2, target_inputs = 1)]
#[::modal_runtime::app::batched(max_batch_size = 4, wait_ms = 10)]
pub async fn batched_fn(
    xs: ::std::vec::Vec<::std::primitive::u8>,
    ys: ::std::vec::Vec<::std::string::String>,
) -> ::std::result::Result<::std::vec::Vec<::std::primitive::usize>, ::std::string::String> {
    ::std::result::Result::Ok(
        ::std::iter::Iterator::collect(::std::iter::Iterator::map(
            ::std::iter::Iterator::zip(
                ::std::iter::IntoIterator::into_iter(xs),
                ::std::iter::IntoIterator::into_iter(ys),
            ),
            |(x, y)| <::std::primitive::usize as ::std::convert::From<::std::primitive::u8>>::from(x) + y.len(),
        )),
    )
}

/// Batched, sync.
#[::modal_runtime::app::function]
#[::modal_runtime::app::batched(max_batch_size = 4, wait_ms = 10)]
fn private_batched(xs: ::std::vec::Vec<::std::primitive::u8>) -> ::std::vec::Vec<::std::primitive::u8> {
    xs
}

/// A JSON endpoint, fallible.
#[::modal_runtime::app::function]
#[::modal_runtime::app::web_endpoint(method = "GET", label = "web-get", public)]
pub fn web_get(
    a: ::std::primitive::u8,
    b: ::std::string::String,
) -> ::std::result::Result<::std::primitive::usize, ::modal_runtime::web::HttpError> {
    ::std::result::Result::Ok(<::std::primitive::usize as ::std::convert::From<::std::primitive::u8>>::from(a) + b.len())
}

/// A JSON endpoint, async, infallible.
#[::modal_runtime::app::function]
#[::modal_runtime::app::web_endpoint]
pub async fn web_async(x: ::std::primitive::u8) -> ::std::primitive::u8 {
    x
}

/// A raw endpoint.
#[::modal_runtime::app::function]
#[::modal_runtime::app::web_endpoint(raw)]
pub fn web_raw(
    request: ::modal_runtime::web::http::Request<::modal_runtime::web::Bytes>,
) -> ::modal_runtime::web::http::Response<::modal_runtime::web::Bytes> {
    ::modal_runtime::web::http::Response::new(::std::clone::Clone::clone(request.body()))
}

/// A raw endpoint, async, fallible.
#[::modal_runtime::app::function]
#[::modal_runtime::app::web_endpoint(raw, label = "raw-async")]
async fn web_raw_async(
    request: ::modal_runtime::web::http::Request<::modal_runtime::web::Bytes>,
) -> ::std::result::Result<::modal_runtime::web::http::Response<::modal_runtime::web::Bytes>, ::std::string::String> {
    ::std::result::Result::Ok(::modal_runtime::web::http::Response::new(::std::clone::Clone::clone(request.body())))
}

/// A whole app.
#[::modal_runtime::app::function]
#[::modal_runtime::app::web_app(label = "app")]
pub fn web_app_fn() -> ::modal_runtime::web::axum::Router {
    ::modal_runtime::web::axum::Router::new()
}

/// A class: parameters with and without defaults, a field that is not one.
#[::modal_runtime::app::cls(cpu = 1, timeout = 5, max_inputs = 3)]
pub struct Model {
    /// The name.
    #[::modal_runtime::app::parameter]
    pub name: ::std::string::String,
    #[::modal_runtime::app::parameter(default = 3)]
    top_k: ::std::primitive::u32,
    #[::modal_runtime::app::parameter(default = "greedy")]
    mode: ::std::string::String,
    table: ::std::vec::Vec<::std::primitive::u64>,
}

#[::modal_runtime::app::cls]
impl Model {
    #[::modal_runtime::app::enter]
    fn load(&mut self) -> ::std::result::Result<(), ::std::string::String> {
        self.table = ::std::vec![<::std::primitive::u64 as ::std::convert::From<::std::primitive::u32>>::from(self.top_k)];
        ::std::result::Result::Ok(())
    }

    #[::modal_runtime::app::exit]
    async fn unload(&self) {}

    /// Sync, one argument.
    #[::modal_runtime::app::method]
    pub fn predict(&self, x: ::std::primitive::u64) -> ::std::primitive::u64 {
        x + self.table.len() as ::std::primitive::u64
    }

    /// Async, fallible, two arguments.
    #[::modal_runtime::app::method]
    async fn describe(
        &self,
        a: ::std::primitive::u8,
        b: ::std::string::String,
    ) -> ::std::result::Result<::std::string::String, ::std::string::String> {
        let _ = (a, b, &self.mode);
        ::std::result::Result::Ok(::std::clone::Clone::clone(&self.name))
    }

    /// No arguments, no result.
    #[::modal_runtime::app::method]
    fn nothing(&self) {}
}

/// A private batched class with async hooks and no parameters.
#[::modal_runtime::app::cls(name = "private-cls")]
struct PrivateBatched {
    ready: ::std::primitive::bool,
}

#[::modal_runtime::app::cls]
impl PrivateBatched {
    #[::modal_runtime::app::enter]
    async fn warm(&mut self) {
        self.ready = true;
    }

    #[::modal_runtime::app::exit]
    fn stop(&mut self) -> ::std::result::Result<(), ::std::string::String> {
        ::std::result::Result::Ok(())
    }

    #[::modal_runtime::app::method]
    #[::modal_runtime::app::batched(max_batch_size = 8, wait_ms = 0)]
    async fn embed(
        &self,
        xs: ::std::vec::Vec<::std::primitive::u8>,
    ) -> ::std::vec::Vec<::std::primitive::bool> {
        ::std::vec![self.ready; xs.len()]
    }
}

/// The entry point.
#[::modal_runtime::app::main]
async fn main() {}
