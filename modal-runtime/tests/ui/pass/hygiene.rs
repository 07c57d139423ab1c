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

/// The entry point.
#[::modal_runtime::app::main]
async fn main() {}
