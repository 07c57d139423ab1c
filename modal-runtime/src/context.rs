//! What user code can learn about the input it is running.

use std::cell::Cell;

/// The input a function or method is running now, inside a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputInfo {
    /// The input's id on the control plane.
    pub input_id: u64,
    /// Which run of the input this is: 1 for the first, higher after a
    /// retry or after a container was lost under it.
    pub attempt: u32,
    /// The trace the input runs in (its `modal.input` span's context):
    /// what [`trace::current`](crate::trace::current) gives, and what calls
    /// made from the input join.
    pub trace: Option<crate::trace::TraceParent>,
}

tokio::task_local! {
    static ASYNC_INPUT: InputInfo;
}

thread_local! {
    static BLOCKING_INPUT: Cell<Option<InputInfo>> = const { Cell::new(None) };
}

/// The input being run, when called from a function or method running in a
/// container (`None` elsewhere, e.g. in `local` calls).
pub fn current_input() -> Option<InputInfo> {
    ASYNC_INPUT
        .try_with(|info| *info)
        .ok()
        .or_else(|| BLOCKING_INPUT.with(Cell::get))
}

/// Runs `future` with `info` as its current input.
pub(crate) async fn scope_async<F: std::future::Future>(info: InputInfo, future: F) -> F::Output {
    ASYNC_INPUT.scope(info, future).await
}

/// Runs `run` on this (blocking) thread with `info` as its current input.
pub(crate) fn scope_blocking<T>(info: InputInfo, run: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            BLOCKING_INPUT.with(|c| c.set(None));
        }
    }
    BLOCKING_INPUT.with(|c| c.set(Some(info)));
    let _reset = Reset;
    run()
}
