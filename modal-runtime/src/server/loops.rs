//! The control plane's loops: backend events (container output becomes
//! logs, exits fail inputs) and upkeep (lapsed leases, idle, lost and
//! slow-starting containers, warm pools, expired calls).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::backend::{ContainerEvent, OutputStream};
use super::control::ControlPlane;
use super::pool::{Pool, Retire};
use crate::proto::{self, LogStream};

/// How often expired outcomes and blobs are swept: a quarter of the
/// retention, between 1 s and 60 s.
pub(crate) fn sweep_interval(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

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
                    cause,
                } => self.container_ended(&container_id, &reason, cause),
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
        let sweep = sweep_interval(self.config.call_retention);
        let mut last_sweep = Instant::now();
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
                self.upkeep_pool(&f);
            }
            if last_sweep.elapsed() >= sweep {
                last_sweep = Instant::now();
                self.sweep_expired();
            }
            self.calls.expire(self.config.call_retention);
        }
    }

    /// One pool's upkeep: retires idle containers (past the scale-down
    /// window beyond its minimum, at once beyond its maximum), stops lost
    /// and never-ready ones, and fills its warm pool.
    pub(crate) fn upkeep_pool(self: &Arc<Self>, f: &Arc<Pool>) {
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
        self.start_containers(f, shortfall);
    }

    /// Drops outcomes past the retention from the store (remembering for as
    /// long again, and a day at least, that they expired), and their blobs
    /// one sweep later: a blob is never newer than the outcome naming it.
    fn sweep_expired(&self) {
        let retention = self.config.call_retention;
        let retention_ms = retention.as_millis() as i64;
        let now = super::store::now_ms();
        self.store.record(super::store::Write::Expire {
            finished_before_ms: now - retention_ms,
            forget_before_ms: now - 2 * retention_ms.max(24 * 3600 * 1000),
        });
        let blobs = self.blobs.clone();
        let margin = retention + 2 * sweep_interval(retention);
        // Listing a large folder is not for the threads serving calls.
        tokio::task::spawn_blocking(move || {
            for dir in blobs.dirs() {
                super::blobs::expire_in(&dir, margin);
            }
        });
    }

    /// Kills every container (server shutdown). The store is closed first:
    /// what the shutdown does to detached calls is not recorded, so the
    /// next control plane on the same store runs them.
    pub(crate) async fn shutdown(&self) {
        self.store.close();
        self.blobs.keep_input_blobs();
        for f in self.catalog.all_functions() {
            f.stop();
        }
        self.backend.kill_all().await;
        self.barrier().await;
    }
}
