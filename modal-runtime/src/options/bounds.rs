//! The numeric bounds of a function's options, in one place: the runtime
//! checks deployed options against them (`FunctionOptions::validate`) and the
//! macros check options as written, at compile time, with this same file
//! (`modal-macros` compiles it with `#[path]`, as it cannot depend on the
//! runtime). Standard library only.

use std::ops::RangeInclusive;

/// `timeout` and `startup_timeout`, seconds.
pub const TIMEOUT_SECS: RangeInclusive<u32> = 1..=86_400;
/// `retries`, and a retry policy's `max_retries`.
pub const RETRIES: RangeInclusive<u32> = 0..=10;
/// A retry policy's `backoff_coefficient`.
pub const RETRY_BACKOFF_COEFFICIENT: RangeInclusive<f64> = 1.0..=10.0;
/// A retry policy's `initial_delay`, milliseconds (written in seconds).
pub const RETRY_INITIAL_DELAY_MS: RangeInclusive<u32> = 0..=60_000;
/// A retry policy's `max_delay`, milliseconds (written in seconds).
pub const RETRY_MAX_DELAY_MS: RangeInclusive<u32> = 1_000..=60_000;
/// `scaledown_window`, seconds.
pub const SCALEDOWN_WINDOW_SECS: RangeInclusive<u32> = 2..=3_600;
/// `max_inputs` (and `target_inputs`, at most `max_inputs`).
pub const MAX_INPUTS: RangeInclusive<u32> = 1..=1_000;
/// `#[app::batched(max_batch_size = ...)]`.
pub const BATCH_MAX_SIZE: RangeInclusive<u32> = 1..=1_000;
/// `#[app::batched(wait_ms = ...)]`.
pub const BATCH_WAIT_MS: RangeInclusive<u32> = 0..=600_000;
