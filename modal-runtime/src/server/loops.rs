//! The control plane's loops: backend events (container output becomes
//! logs, exits fail inputs) and upkeep (lapsed leases, idle, lost and
//! slow-starting containers, warm pools, expired calls).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::backend::{ContainerEvent, OutputStream};
use super::control::ControlPlane;
use super::pool::Retire;
use crate::proto::{self, LogStream};

impl ControlPlane {
    /// Handles backend events: output lines become logs, exits fail inputs.
    pub(crate) async fn run_events(self: Arc<Self>, mut events: mpsc::Receiver<ContainerEvent>) {
        while let Some(event) = events.recv().await {
            match event {
                ContainerEvent::Output {
                    container_id,
                    stream,
                    line,
                } => {
                    let target = self.containers.note_line(&container_id, stream, &line);
                    if let Some((app, function)) = target {
                        self.logs.publish(
                            &app,
                            proto::LogLine {
                                function,
                                container_id,
                                stream: match stream {
                                    OutputStream::Stdout => LogStream::Stdout,
                                    OutputStream::Stderr => LogStream::Stderr,
                                } as i32,
                                text: line,
                            },
                        );
                    }
                }
                ContainerEvent::Exited {
                    container_id,
                    reason,
                } => self.container_exited(&container_id, &reason),
                ContainerEvent::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    pub(super) async fn barrier(&self) {
        let (tx, rx) = oneshot::channel();
        if self.events.send(ContainerEvent::Barrier(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Periodic upkeep: scale down idle containers, replace lost ones, keep
    /// warm pools filled, forget expired calls.
    pub(crate) async fn run_upkeep(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.upkeep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tick_count: u64 = 0;
        loop {
            tick.tick().await;
            for app in self.catalog.lapsed(Instant::now()) {
                tracing::info!(%app, "the lease of an ephemeral app lapsed: stopping it");
                let cp = self.clone();
                tokio::spawn(async move {
                    let _ = cp.stop_app(&app).await;
                });
            }
            for f in self.catalog.all_functions() {
                let start_timeout = f.options.startup_timeout();
                for retire in f.retire(self.config.heartbeat_timeout, start_timeout) {
                    match retire {
                        Retire::Idle(id) => self.spawn_stop(id, self.config.stop_grace),
                        Retire::StartupTimeout(id) => {
                            tracing::warn!(container = %id, function = %f.name, "startup timeout");
                            self.container_exited(
                                &id,
                                &format!(
                                    "failed to start: it was not ready within its `startup_timeout` of {start_timeout:?} (which covers starting the process and running `enter`)"
                                ),
                            );
                            self.spawn_stop(id, Duration::ZERO);
                        }
                        Retire::Lost(id) => {
                            tracing::warn!(container = %id, function = %f.name, "container lost");
                            self.fail_lost(&id);
                            self.spawn_stop(id, Duration::ZERO);
                        }
                    }
                }
                let shortfall = f.warm_pool_shortfall();
                self.start_containers(&f, shortfall);
            }
            self.calls.expire(self.config.call_retention);
            if tick_count.is_multiple_of(120) {
                self.blobs.expire(self.config.call_retention);
            }
            tick_count += 1;
        }
    }

    /// Kills every container (server shutdown).
    pub(crate) async fn shutdown(&self) {
        for f in self.catalog.all_functions() {
            f.stop();
        }
        self.backend.kill_all().await;
        self.barrier().await;
    }
}
