//! Containers: who they are (records, tokens, the last lines they printed),
//! and the control plane's actions on them: start, stop, and what follows
//! when one exits.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::Status;

use super::backend::{ContainerSpec, ExitCause, OutputStream, Placement, Resources};
use super::control::ControlPlane;
use super::pool::Pool;
use crate::contract::container_env;

/// Recent stderr lines kept per container, quoted when it fails to start.
const STDERR_TAIL: usize = 8;

/// Every container the control plane started and has not seen exit.
#[derive(Default)]
pub(crate) struct ContainerRegistry {
    records: Mutex<HashMap<String, ContainerRecord>>,
}

struct ContainerRecord {
    function: Arc<Pool>,
    token: String,
    stderr_tail: VecDeque<String>,
}

impl ContainerRegistry {
    pub(super) fn register(&self, id: &str, function: &Arc<Pool>, token: &str) {
        self.records.lock().unwrap().insert(
            id.to_owned(),
            ContainerRecord {
                function: function.clone(),
                token: token.to_owned(),
                stderr_tail: VecDeque::new(),
            },
        );
    }

    /// Checks a connecting container's credentials; returns its pool.
    pub(super) fn authenticate(
        &self,
        container_id: &str,
        token: &str,
    ) -> Result<Arc<Pool>, Status> {
        match self.records.lock().unwrap().get(container_id) {
            Some(c) if c.token == token => Ok(c.function.clone()),
            _ => Err(Status::unauthenticated(format!(
                "container `{container_id}` is unknown or its token is wrong"
            ))),
        }
    }

    /// A line a container printed: kept if it is among its last stderr
    /// lines. Returns the app and function it is logged under.
    pub(super) fn note_line(
        &self,
        container_id: &str,
        stream: OutputStream,
        line: &str,
    ) -> Option<(String, String)> {
        let mut records = self.records.lock().unwrap();
        let c = records.get_mut(container_id)?;
        if stream == OutputStream::Stderr {
            if c.stderr_tail.len() == STDERR_TAIL {
                c.stderr_tail.pop_front();
            }
            c.stderr_tail.push_back(line.to_owned());
        }
        Some((c.function.app.clone(), c.function.name.clone()))
    }

    /// Forgets an exited container. Returns its pool and `reason` with its
    /// last stderr lines, or `None` if it was already forgotten.
    pub(super) fn remove(&self, container_id: &str, reason: &str) -> Option<(Arc<Pool>, String)> {
        let record = self.records.lock().unwrap().remove(container_id)?;
        let mut reason = reason.to_owned();
        if !record.stderr_tail.is_empty() {
            reason.push_str("; its last output:\n  ");
            reason.push_str(&Vec::from(record.stderr_tail).join("\n  "));
        }
        Some((record.function, reason))
    }
}

impl ControlPlane {
    /// Starts `count` containers of `function`, all at once.
    pub(super) fn start_containers(self: &Arc<Self>, function: &Arc<Pool>, count: usize) {
        if count == 0 {
            return;
        }
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            match self.catalog.next_id() {
                Ok(id) => ids.push(format!("c-{id}")),
                Err(e) => {
                    tracing::error!("no container started: {}", e.message());
                    break;
                }
            }
        }
        function.starting(&ids);
        for id in ids {
            let token = uuid::Uuid::new_v4().simple().to_string();
            self.containers.register(&id, function, &token);
            let spec = self.container_spec(function, &id, &token);
            let cp = self.clone();
            tokio::spawn(async move {
                // What the backend can never give (a variant's GPU, say)
                // fails this start, naming it.
                let checked = spec.and_then(|spec| {
                    cp.backend.check(&spec.function, &spec.resources)?;
                    Ok(spec)
                });
                let started = match checked {
                    Ok(spec) => cp.backend.start(spec, cp.events.clone()).await,
                    Err(reason) => Err(reason),
                };
                if let Err(reason) = started {
                    cp.container_exited(&id, &format!("could not be started ({reason})"));
                }
            });
        }
    }

    /// How to start container `id` of `f`: its variables are the function's
    /// `env`, then its secrets' (read now, so a changed secret reaches new
    /// containers), then the runtime's own; its volumes are looked up now
    /// too. `Err` names a secret or volume that is gone.
    pub(super) fn container_spec(
        &self,
        f: &Pool,
        id: &str,
        token: &str,
    ) -> Result<ContainerSpec, String> {
        use container_env as env;
        let mut vars: Vec<(String, String)> = f
            .options
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.extend(self.access.secret_env(
            super::access::names::environment_of(&f.app),
            &f.options.secrets,
        )?);
        vars.extend(
            [
                (env::ROLE, env::ROLE_CONTAINER.to_owned()),
                (env::SERVER_URL, self.url.clone()),
                (env::CONTAINER_ID, id.to_owned()),
                (env::TOKEN, token.to_owned()),
                (env::FUNCTION, f.name.clone()),
                (
                    env::APP,
                    super::access::names::app_name_of(&f.app).to_owned(),
                ),
                (
                    env::HEARTBEAT_MS,
                    self.config.heartbeat_interval.as_millis().to_string(),
                ),
                (env::MAX_INPUTS, f.options.max_inputs.max(1).to_string()),
                (env::TIMEOUT_SECS, f.options.timeout_secs.to_string()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        if let Some(size) = f.options.batch_max_size {
            vars.push((env::BATCH_MAX_SIZE.to_owned(), size.to_string()));
            vars.push((
                env::BATCH_WAIT_MS.to_owned(),
                f.options.batch_wait_ms.to_string(),
            ));
        }
        if self.config.tls.is_some() {
            let ca = super::tls::container_ca_path(&self.config.data_dir);
            vars.push((env::TLS_CA.to_owned(), ca.display().to_string()));
        }
        let volumes = self.volumes.mounts(
            super::access::names::environment_of(&f.app),
            &f.options.volumes,
        )?;
        Ok(ContainerSpec {
            container_id: id.to_owned(),
            app: f.app.clone(),
            version: f.version,
            function: f.name.clone(),
            binary: f.binary.clone(),
            env: vars,
            resources: Resources::of(&f.options),
            volumes,
        })
    }

    /// Where container `container_id` runs (its image and host), while the
    /// backend runs it.
    pub(crate) fn container_placement(&self, container_id: &str) -> Option<Placement> {
        self.backend.placement(container_id)
    }

    /// Checks a connecting container's credentials; returns its function.
    pub(crate) fn authenticate(
        &self,
        container_id: &str,
        token: &str,
    ) -> Result<Arc<Pool>, Status> {
        self.containers.authenticate(container_id, token)
    }

    /// A class's container could not build its instance or run `enter`.
    pub(crate) fn container_start_failed(self: &Arc<Self>, container_id: &str, message: &str) {
        self.container_exited(container_id, &format!("failed to start: {message}"));
        self.spawn_stop(container_id.to_owned(), Duration::ZERO);
    }

    /// A container's stream ended while it was meant to be running.
    pub(crate) fn container_disconnected(self: &Arc<Self>, container_id: &str) {
        // Its process is killed; the exit event fails its inputs.
        self.spawn_stop(container_id.to_owned(), Duration::ZERO);
    }

    pub(super) fn spawn_stop(&self, container_id: String, grace: Duration) {
        let backend = self.backend.clone();
        tokio::spawn(async move { backend.stop(&container_id, grace).await });
    }

    pub(super) fn container_exited(self: &Arc<Self>, container_id: &str, reason: &str) {
        self.container_ended(container_id, reason, ExitCause::Ended);
    }

    /// A container is gone, for `reason` and `cause` as its backend tells.
    pub(super) fn container_ended(
        self: &Arc<Self>,
        container_id: &str,
        reason: &str,
        cause: ExitCause,
    ) {
        let Some((function, reason)) = self.containers.remove(container_id, reason) else {
            return;
        };
        let replacements = function.container_gone(container_id, &reason, cause);
        self.start_containers(&function, replacements);
    }

    pub(super) fn fail_lost(self: &Arc<Self>, container_id: &str) {
        let timeout = self.config.heartbeat_timeout;
        self.container_exited(
            container_id,
            &format!("stopped answering (no heartbeat for {timeout:?}) and was killed"),
        );
    }
}
