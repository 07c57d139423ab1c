//! The attributes users write: `#[app::function]`, `#[app::main]`,
//! `#[app::cls]` with `#[app::parameter]`, `#[app::enter]`, `#[app::exit]`
//! and `#[app::method]`, and `#[app::batched]`.
//!
//! ```ignore
//! use modal_runtime::app;
//! #[app::function(cpu = 1, timeout = 30)]
//! async fn fetch(url: String) -> Result<String, MyError> { ... }
//!
//! #[app::cls(gpu = "A100")]
//! struct Model {
//!     #[app::parameter]
//!     name: String,
//! }
//!
//! #[app::cls]
//! impl Model {
//!     #[app::method]
//!     fn predict(&self, x: u64) -> u64 { x }
//! }
//! ```

pub use modal_macros::{
    batched, cls, enter, exit, function, main, method, parameter, web_app, web_endpoint,
};
