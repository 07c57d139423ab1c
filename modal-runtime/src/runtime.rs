//! The library's own tokio runtime, for work that must outlive any one of the
//! user's runtimes: the embedded control plane and the default client's
//! connection (a tonic channel's worker lives on the runtime it was made on).

use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

/// The shared background runtime, started on first use.
pub(crate) fn background() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("modal-io")
            .enable_all()
            .build()
            .expect("start the modal-rs background runtime")
    })
}
