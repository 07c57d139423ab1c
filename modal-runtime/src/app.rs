//! The attributes users write: `#[app::function]` and `#[app::main]`.
//!
//! ```ignore
//! use modal_runtime::app;
//! #[app::function(cpu = 1, timeout = 30)]
//! async fn fetch(url: String) -> Result<String, MyError> { ... }
//! ```

pub use modal_macros::{function, main};
