//! The live parts of an app page, as server-sent events whose data is
//! markup rendered (and escaped) by `pages.rs`:
//!
//! - `…/live`: every second, the rows of the functions, containers and
//!   calls tables (`functions`, `containers`, `calls`), then `refreshed`.
//! - `…/logs`: `reset`, the lines the log hub holds, then each new line as
//!   it is printed (`line`), and `end` when the app stops.
//!
//! Both end with `signed-out` once the session no longer holds (expired,
//! signed out, its token revoked), and at most [`super::MAX_LIVE_STREAMS`]
//! are open at once.

use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use maud::Markup;
use tokio::sync::{OwnedSemaphorePermit, broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::session::{self, Verdict};
use super::{Dashboard, app_key_for, pages, read};
use crate::server::logs::LogEvent;

/// How often the tables refresh.
const REFRESH: Duration = Duration::from_secs(1);
/// How often a log tail checks that its session still holds.
const SESSION_RECHECK: Duration = Duration::from_secs(5);
/// Events queued for a slow browser; past it, a log tail falls behind
/// (and says how many lines it missed) rather than hold more.
const QUEUED_EVENTS: usize = 64;

type Events = mpsc::Sender<Result<Event, Infallible>>;

/// What a live stream follows: a session and an app it may see.
struct Target {
    session: String,
    key: String,
    permit: OwnedSemaphorePermit,
}

impl Dashboard {
    /// The session and app a live stream of `environment`/`app` follows,
    /// or why there is none: plain-text refusals, since an `EventSource`
    /// shows no page.
    fn live_target(
        &self,
        headers: &HeaderMap,
        environment: &str,
        app: &str,
        needs_logs: bool,
    ) -> Result<Target, (StatusCode, String)> {
        let refuse = |status: StatusCode, message: String| (status, message);
        let id = session::session_id(headers);
        let viewer = match self.check_session(id) {
            Verdict::SignedIn(viewer) => viewer,
            _ => {
                return Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "sign in to the dashboard first".into(),
                ));
            }
        };
        let key = app_key_for(&viewer, environment, app)
            .map_err(|refusal| refuse(refusal.status, refusal.message))?;
        if needs_logs && !viewer.may_follow_logs() {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "following logs needs a token of scope deploy".into(),
            ));
        }
        if self.cp.catalog.require_app(&key).is_err() {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                format!("no app `{app}` in environment `{environment}`"),
            ));
        }
        let permit = self.live_streams.clone().try_acquire_owned().map_err(|_| {
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many live views are open on this control plane: close some".into(),
            )
        })?;
        Ok(Target {
            session: id.unwrap_or_default().to_owned(),
            key,
            permit,
        })
    }

    fn still_signed_in(&self, session: &str) -> bool {
        matches!(self.check_session(Some(session)), Verdict::SignedIn(_))
    }
}

/// The refreshing tables of an app page.
pub(super) async fn tables(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    Path((environment, app)): Path<(String, String)>,
) -> Response {
    let target = match d.live_target(&headers, &environment, &app, false) {
        Ok(target) => target,
        Err(refused) => return refused.into_response(),
    };
    let (tx, rx) = mpsc::channel(QUEUED_EVENTS);
    tokio::spawn(async move {
        let _permit = target.permit;
        let mut every = tokio::time::interval(REFRESH);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = tx.closed() => return,
            }
            if !d.still_signed_in(&target.session) {
                let _ = send(&tx, word("signed-out")).await;
                return;
            }
            let Some(tables) = read::live_tables(&d.cp, &target.key) else {
                let _ = send(&tx, word("gone")).await;
                return;
            };
            let now = SystemTime::now();
            let events = [
                markup("functions", pages::function_rows(&tables.functions)),
                markup("containers", pages::container_rows(&tables.containers)),
                markup("calls", pages::call_rows(&tables.calls, now)),
                Event::default().event("refreshed").data(pages::clock(now)),
            ];
            for event in events {
                if send(&tx, event).await.is_err() {
                    return;
                }
            }
        }
    });
    stream(rx)
}

/// The log tail of an app page.
pub(super) async fn logs(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    Path((environment, app)): Path<(String, String)>,
) -> Response {
    let target = match d.live_target(&headers, &environment, &app, true) {
        Ok(target) => target,
        Err(refused) => return refused.into_response(),
    };
    let (tx, rx) = mpsc::channel(QUEUED_EVENTS);
    tokio::spawn(async move {
        let _permit = target.permit;
        // What `StreamLogs` does: the lines held, then each new one.
        let (past, mut lines, closed) = d.cp.logs.subscribe(&target.key, true);
        if send(&tx, word("reset")).await.is_err() {
            return;
        }
        for line in &past {
            if send(&tx, markup("line", pages::log_line(line)))
                .await
                .is_err()
            {
                return;
            }
        }
        if closed {
            let _ = send(&tx, word("end")).await;
            return;
        }
        let mut recheck = tokio::time::interval(SESSION_RECHECK);
        loop {
            let event = tokio::select! {
                got = lines.recv() => match got {
                    Ok(LogEvent::Line(line)) => markup("line", pages::log_line(&line)),
                    Ok(LogEvent::Closed) | Err(broadcast::error::RecvError::Closed) => {
                        let _ = send(&tx, word("end")).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        markup("line", pages::missed_lines(missed))
                    }
                },
                _ = recheck.tick() => {
                    if d.still_signed_in(&target.session) {
                        continue;
                    }
                    let _ = send(&tx, word("signed-out")).await;
                    return;
                }
                _ = tx.closed() => return,
            };
            if send(&tx, event).await.is_err() {
                return;
            }
        }
    });
    stream(rx)
}

fn stream(rx: mpsc::Receiver<Result<Event, Infallible>>) -> Response {
    Sse::new(ReceiverStream::new(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn send(tx: &Events, event: Event) -> Result<(), ()> {
    tx.send(Ok(event)).await.map_err(|_| ())
}

/// An event of markup. A carriage return (which a log line may hold)
/// would end an event's data line: it travels as a character reference.
fn markup(name: &str, markup: Markup) -> Event {
    Event::default()
        .event(name)
        .data(markup.into_string().replace('\r', "&#13;"))
}

/// An event that only says something happened (browsers drop events
/// without data, so it carries its own name).
fn word(name: &str) -> Event {
    Event::default().event(name).data(name)
}
