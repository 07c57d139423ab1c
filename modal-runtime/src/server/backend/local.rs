//! Containers as local processes of the user's binary.
//!
//! Each container runs in its own process group, so stopping it also stops
//! anything it started. Each holds a lifeline to this backend (see
//! [`crate::lifeline`]): when the backend's process dies, however it dies,
//! every container ends its own group, so nothing a container started
//! outlives the control plane.
//!
//! This backend isolates nothing: a container can read and write whatever the
//! control plane's user can. Use the Docker backend for isolation. Nor does
//! it mount: a container's volumes are folders of the control plane's data
//! folder, which the container finds through `modal_runtime::mounted`.

use std::collections::HashMap;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

use super::lines::MAX_LINE_BYTES;
use super::{ContainerBackend, ContainerEvent, ContainerSpec, ExitCause, OutputStream, Placement};
use crate::lifeline::Lifeline;

/// Runs containers as child processes of the control plane.
pub struct LocalProcessBackend {
    running: Arc<Mutex<HashMap<String, Running>>>,
    /// This machine's name: where every container runs.
    host: String,
    /// Breaks when this backend is dropped or its process dies; containers
    /// then end themselves. An error here is reported by every start.
    lifeline: std::io::Result<Lifeline>,
}

impl Default for LocalProcessBackend {
    fn default() -> Self {
        LocalProcessBackend {
            running: Arc::default(),
            host: machine_name(),
            lifeline: Lifeline::new(),
        }
    }
}

struct Running {
    /// The process group id (the container's pid).
    pgid: i32,
    /// Turns `true` once the process has exited and its output is drained.
    exited: watch::Receiver<bool>,
}

impl LocalProcessBackend {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn signal_group(pgid: i32, signal: i32) {
        // SAFETY: kill(2) with a negative pid signals a process group; no
        // memory is touched.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

impl ContainerBackend for LocalProcessBackend {
    fn start(
        &self,
        spec: ContainerSpec,
        events: mpsc::Sender<ContainerEvent>,
    ) -> BoxFuture<'_, Result<(), String>> {
        async move {
            let lifeline = self.lifeline.as_ref().map_err(|e| {
                format!(
                    "cannot tie containers to this control plane's life (a pipe could not be \
                     opened: {e}); free some file descriptors and restart it"
                )
            })?;
            let (lifeline_key, lifeline_fd) = lifeline.env();
            let mut command = Command::new(&spec.binary);
            if !spec.volumes.is_empty() {
                // No mounts here: the container finds each volume's folder
                // through `modal_runtime::mounted`.
                let mounts = crate::volume::encode_mounts(
                    spec.volumes
                        .iter()
                        .map(|m| (m.mount_path.as_str(), m.host_dir.as_path())),
                );
                command.env(crate::contract::container_env::VOLUME_MOUNTS, mounts);
            }
            command
                .envs(spec.env.iter().map(|(k, v)| (k, v)))
                .env(lifeline_key, lifeline_fd)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            let mut child = command
                .spawn()
                .map_err(|e| format!("cannot start `{}`: {e}", spec.binary.display()))?;
            let pid = child.id().ok_or("the container exited at once")? as i32;
            let (exited_tx, exited_rx) = watch::channel(false);
            self.running.lock().unwrap().insert(
                spec.container_id.clone(),
                Running {
                    pgid: pid,
                    exited: exited_rx,
                },
            );
            let stdout = child.stdout.take().map(|s| {
                forward_lines(
                    s,
                    spec.container_id.clone(),
                    OutputStream::Stdout,
                    events.clone(),
                )
            });
            let stderr = child.stderr.take().map(|s| {
                forward_lines(
                    s,
                    spec.container_id.clone(),
                    OutputStream::Stderr,
                    events.clone(),
                )
            });
            let id = spec.container_id;
            let running = self.running.clone();
            tokio::spawn(async move {
                let status = child.wait().await;
                // Whatever the container left running in its group goes too.
                Self::signal_group(pid, libc::SIGKILL);
                for reader in [stdout, stderr].into_iter().flatten() {
                    let _ = reader.await;
                }
                let reason = match status {
                    Ok(status) => describe_exit(status),
                    Err(e) => format!("was lost ({e})"),
                };
                running.lock().unwrap().remove(&id);
                let _ = events
                    .send(ContainerEvent::Exited {
                        container_id: id,
                        reason,
                        cause: ExitCause::Ended,
                    })
                    .await;
                let _ = exited_tx.send(true);
            });
            Ok(())
        }
        .boxed()
    }

    fn stop(&self, container_id: &str, grace: Duration) -> BoxFuture<'_, ()> {
        let running = self
            .running
            .lock()
            .unwrap()
            .get(container_id)
            .map(|r| (r.pgid, r.exited.clone()));
        async move {
            let Some((pgid, mut exited)) = running else {
                return;
            };
            let exited_in_grace = !grace.is_zero()
                && tokio::time::timeout(grace, exited.wait_for(|e| *e))
                    .await
                    .is_ok();
            if !exited_in_grace {
                Self::signal_group(pgid, libc::SIGKILL);
            }
            let _ = exited.wait_for(|e| *e).await;
        }
        .boxed()
    }

    fn kill_all(&self) -> BoxFuture<'_, ()> {
        let all: Vec<_> = self
            .running
            .lock()
            .unwrap()
            .values()
            .map(|r| (r.pgid, r.exited.clone()))
            .collect();
        async move {
            for (pgid, _) in &all {
                Self::signal_group(*pgid, libc::SIGKILL);
            }
            for (_, mut exited) in all {
                let _ = exited.wait_for(|e| *e).await;
            }
        }
        .boxed()
    }

    fn placement(&self, container_id: &str) -> Option<Placement> {
        self.running
            .lock()
            .unwrap()
            .contains_key(container_id)
            .then(|| Placement {
                image: "process".to_owned(),
                host: self.host.clone(),
            })
    }
}

/// The machine's host name, or `localhost` where it has none.
fn machine_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if rc == 0 && !name.is_empty() => name.to_owned(),
        _ => "localhost".to_owned(),
    }
}

fn forward_lines(
    stream: impl AsyncRead + Unpin + Send + 'static,
    container_id: String,
    which: OutputStream,
    events: mpsc::Sender<ContainerEvent>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        while let Ok(true) = next_line(&mut reader, &mut line).await {
            // Waiting for room here leaves the container's pipe full, so a
            // container printing faster than its lines are published waits.
            let sent = events
                .send(ContainerEvent::Output {
                    container_id: container_id.clone(),
                    stream: which,
                    line: String::from_utf8_lossy(&line).into_owned(),
                })
                .await;
            if sent.is_err() {
                return;
            }
        }
    })
}

/// Reads the next line into `line` (without its end), or the next
/// [`MAX_LINE_BYTES`] of a longer one. `false` at the end of the stream.
async fn next_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    line.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(!line.is_empty());
        }
        let room = MAX_LINE_BYTES - line.len();
        let window = &available[..available.len().min(room)];
        if let Some(end) = window.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&window[..end]);
            reader.consume(end + 1);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(true);
        }
        let taken = window.len();
        line.extend_from_slice(window);
        reader.consume(taken);
        if line.len() == MAX_LINE_BYTES {
            return Ok(true);
        }
    }
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "exited".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &[u8]) -> Vec<Vec<u8>> {
        let mut reader = BufReader::with_capacity(1000, input);
        let mut line = Vec::new();
        let mut lines = Vec::new();
        while next_line(&mut reader, &mut line).await.unwrap() {
            lines.push(line.clone());
        }
        lines
    }

    #[tokio::test]
    async fn lines_are_split_at_their_ends_and_long_ones_are_cut() {
        assert_eq!(
            lines_of(b"a\nbc\r\n\nd").await,
            vec![b"a".to_vec(), b"bc".to_vec(), vec![], b"d".to_vec()]
        );
        let long = vec![b'x'; MAX_LINE_BYTES * 2 + 10];
        let lines = lines_of(&[long.as_slice(), b"\nend\n"].concat()).await;
        let sizes: Vec<usize> = lines.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![MAX_LINE_BYTES, MAX_LINE_BYTES, 10, 3]);
    }
}
