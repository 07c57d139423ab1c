//! Functions that run in containers. The binary (`main.rs`) calls them; other
//! crates can call them too, once deployed (see `examples/caller`).

use modal_runtime::app;

/// Squares a number.
#[app::function]
pub fn square(x: u64) -> u64 {
    x * x
}

/// Adds two numbers.
#[app::function]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// An async function: it runs on the container's async runtime. What it
/// prints reaches the caller's terminal, marked with function and container.
#[app::function(timeout = 30)]
pub async fn greet(name: String) -> String {
    println!("greeting {name}");
    format!("Hello, {name}!")
}

/// A fallible function: the error's text reaches the caller.
#[app::function]
pub fn parse_port(text: String) -> Result<u16, std::num::ParseIntError> {
    text.trim().parse()
}

/// A web endpoint as well as a function: `GET <its URL>?name=you` answers
/// JSON, without a token (`public`), while the program runs.
#[app::function]
#[app::web_endpoint(method = "GET", public)]
pub fn hello_web(name: String) -> String {
    format!("Hello, {name}, over HTTP!")
}
