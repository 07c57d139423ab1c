//! A `Map` stream's window on the control plane: how many of its inputs,
//! and how many KiB of their inline arguments, may be accepted and not yet
//! answered, whatever the caller sends.

use std::sync::Arc;

use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::control::ControlPlane;
use super::pool::{Pool, Reply};
use crate::contract::{MAP_WINDOW_INPUTS, MAP_WINDOW_KIB};
use crate::proto;

/// Reads a map's inputs as they come, within its window: at most
/// [`MAP_WINDOW_INPUTS`] inputs and [`MAP_WINDOW_KIB`] of inline arguments
/// accepted and not yet answered to the caller, whatever the caller sends.
/// Beyond that the stream is not read, and HTTP/2 flow control holds the
/// caller back.
pub(super) async fn read_map_inputs(
    cp: Arc<ControlPlane>,
    mut requests: Streaming<proto::MapRequest>,
    sink: mpsc::UnboundedSender<(proto::MapOutput, u32)>,
    errors: mpsc::Sender<Status>,
    window: Arc<MapWindow>,
    function: Arc<std::sync::OnceLock<Arc<Pool>>>,
    caller: super::access::Caller,
) {
    let mut method = String::new();
    let mut trace = None;
    loop {
        let request = match requests.message().await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(status) => {
                let _ = errors.send(status).await;
                return;
            }
        };
        let f = match function.get() {
            Some(f) => f.clone(),
            None => match cp
                .callable_by(&caller, request.function_id, &request.method)
                .and_then(|f| Ok((f, super::service::request_trace(&request.traceparent)?)))
            {
                Ok((f, checked)) => {
                    method = request.method;
                    trace = checked;
                    function.get_or_init(|| f).clone()
                }
                Err(status) => {
                    let _ = errors.send(status).await;
                    return;
                }
            },
        };
        if request.inputs.len() > MAP_WINDOW_INPUTS {
            let status = Status::invalid_argument(format!(
                "a map message carries {} inputs; at most {MAP_WINDOW_INPUTS} are accepted at once",
                request.inputs.len()
            ));
            let _ = errors.send(status).await;
            return;
        }
        if let Err(status) = request
            .inputs
            .iter()
            .try_for_each(|i| cp.blobs.check_args(&caller.environment, &i.args_blob))
        {
            let _ = errors.send(status).await;
            return;
        }
        let sizes: Vec<u32> = request
            .inputs
            .iter()
            .map(|i| window_kib(i.args.len()))
            .collect();
        let kib = sizes.iter().sum::<u32>().min(MAP_WINDOW_KIB);
        if window.acquire(request.inputs.len(), kib).await.is_err() {
            // The caller is gone.
            return;
        }
        // Beyond the map's own window, all callers share the control
        // plane's inline budget.
        let inputs = cp
            .admit(
                &caller.environment,
                &method,
                trace,
                request.inputs,
                |k, input| Reply::Map {
                    index: input.index,
                    kib: sizes[k],
                    sink: sink.clone(),
                },
            )
            .await;
        cp.submit(&f, inputs);
    }
}

/// A map's window on the control plane: inputs and KiB of inline arguments
/// accepted but not yet answered.
pub(super) struct MapWindow {
    inputs: tokio::sync::Semaphore,
    kib: tokio::sync::Semaphore,
}

impl MapWindow {
    pub(super) fn new() -> Self {
        MapWindow {
            inputs: tokio::sync::Semaphore::new(MAP_WINDOW_INPUTS),
            kib: tokio::sync::Semaphore::new(MAP_WINDOW_KIB as usize),
        }
    }

    /// Waits for room; `Err` once the map is closed.
    async fn acquire(&self, inputs: usize, kib: u32) -> Result<(), ()> {
        self.inputs
            .acquire_many(inputs as u32)
            .await
            .map_err(|_| ())?
            .forget();
        self.kib.acquire_many(kib).await.map_err(|_| ())?.forget();
        Ok(())
    }

    pub(super) fn release(&self, inputs: usize, kib: u32) {
        self.inputs.add_permits(inputs);
        self.kib.add_permits(kib as usize);
    }

    pub(super) fn close(&self) {
        self.inputs.close();
        self.kib.close();
    }
}

/// The window share of one input's inline arguments, in KiB: at least 1,
/// so that empty arguments count too, and never more than the window.
fn window_kib(bytes: usize) -> u32 {
    bytes.div_ceil(1024).clamp(1, MAP_WINDOW_KIB as usize) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_counts_for_at_least_a_kib_and_at_most_the_window() {
        assert_eq!(window_kib(0), 1);
        assert_eq!(window_kib(1), 1);
        assert_eq!(window_kib(1025), 2);
        assert_eq!(window_kib(usize::MAX), MAP_WINDOW_KIB);
    }

    #[tokio::test]
    async fn a_full_window_waits_until_released_and_a_closed_one_refuses() {
        let window = Arc::new(MapWindow::new());
        window.acquire(MAP_WINDOW_INPUTS, 1).await.unwrap();
        let waiting = tokio::spawn({
            let window = window.clone();
            async move { window.acquire(1, 1).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        window.release(1, 1);
        assert!(waiting.await.unwrap().is_ok());
        window.close();
        assert!(window.acquire(1, 1).await.is_err());
    }
}
