//! The dashboard, under `/dashboard` on the HTTP listener: the apps, and
//! for each its versions, functions with live numbers, containers, recent
//! calls and a log tail. Server-rendered pages (`pages.rs`) of what
//! `read.rs` reads from the control plane's state; the live parts are
//! server-sent events (`live.rs`).
//!
//! Every page needs a signed-in session (`session.rs`): a token's, shown
//! its own environment only unless it is an admin's. Form posts must come
//! from the dashboard's own origin, and every page is sent with a
//! `Content-Security-Policy` that runs no script but its own.

mod live;
mod pages;
mod read;
mod session;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::header::{self, HeaderMap, HeaderValue};
use http::{StatusCode, Uri};
use maud::Markup;
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::HttpState;
use crate::server::access::names::{app_key, check_environment_name};
use crate::server::catalog::valid_app_name;
use crate::server::control::ControlPlane;
use pages::{HOME, SIGN_IN};
use session::{SESSION_LIFETIME, Sessions, Verdict, Viewer};

/// Live streams (table refreshes and log tails) open at once, across
/// every viewer: each holds a task and a subscription.
const MAX_LIVE_STREAMS: usize = 256;
/// Largest sign-in form body.
const MAX_FORM_BYTES: usize = 16 << 10;

/// What the dashboard's routes share.
#[derive(Clone)]
pub(crate) struct Dashboard {
    cp: Arc<ControlPlane>,
    sessions: Arc<Sessions>,
    live_streams: Arc<Semaphore>,
}

/// The dashboard's routes, with sessions of their own.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(http: &HttpState) -> Router<S> {
    let dashboard = Dashboard {
        cp: http.cp.clone(),
        sessions: Arc::new(Sessions::new(SESSION_LIFETIME)),
        live_streams: Arc::new(Semaphore::new(MAX_LIVE_STREAMS)),
    };
    Router::new()
        .route(HOME, get(overview))
        .route("/dashboard/", get(|| async { Redirect::permanent(HOME) }))
        .route(
            SIGN_IN,
            get(sign_in_form)
                .post(sign_in)
                .layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(pages::SIGN_OUT, post(sign_out))
        .route("/dashboard/apps/{env}/{app}", get(app_page))
        .route("/dashboard/apps/{env}/{app}/live", get(live::tables))
        .route("/dashboard/apps/{env}/{app}/logs", get(live::logs))
        .with_state(dashboard)
}

impl Dashboard {
    /// What the request's session cookie stands for now.
    fn verdict(&self, headers: &HeaderMap) -> Verdict {
        self.check_session(session::session_id(headers))
    }

    fn check_session(&self, id: Option<&str>) -> Verdict {
        self.sessions
            .check(id, Instant::now(), |token| self.cp.access.token(token))
    }

    /// The signed-in viewer, or why the browser is sent to sign in (see
    /// [`Verdict::ended`]).
    fn viewer(&self, headers: &HeaderMap) -> Result<Viewer, Option<&'static str>> {
        match self.verdict(headers) {
            Verdict::SignedIn(viewer) => Ok(viewer),
            other => Err(other.ended()),
        }
    }
}

/// Why a request for an app's page reached none.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

/// The catalog key of app `app` of `environment`, if the names are
/// well formed and `viewer` may see that environment.
pub(crate) fn app_key_for(
    viewer: &Viewer,
    environment: &str,
    app: &str,
) -> Result<String, Refusal> {
    let not_found = |message: String| Refusal {
        status: StatusCode::NOT_FOUND,
        title: "Not found",
        message,
    };
    if check_environment_name(environment).is_err() {
        return Err(not_found(format!(
            "`{environment}` is not an environment name."
        )));
    }
    if !valid_app_name(app) {
        return Err(not_found(format!("`{app}` is not an app name.")));
    }
    if !viewer.may_see(environment) {
        return Err(Refusal {
            status: StatusCode::FORBIDDEN,
            title: "Not shown",
            message: format!(
                "This token belongs to environment `{}`: apps of `{environment}` are not shown \
                 to it. Sign in with a token of `{environment}`, or an admin token.",
                viewer.environment.as_deref().unwrap_or_default()
            ),
        });
    }
    Ok(app_key(environment, app))
}

/// A page, sent with headers that keep it out of caches and frames and
/// let it run no script and load nothing but its own inline style and
/// script (allowed by a fresh nonce) and its own event streams.
fn page(status: StatusCode, render: impl FnOnce(&str) -> Markup) -> Response {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut response = (status, render(&nonce)).into_response();
    let headers = response.headers_mut();
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; \
         connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'"
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp).expect("a nonce is hex"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // A window another page opened on the dashboard is not scriptable from it.
    headers.insert(
        http::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    // `same-origin`, not `no-referrer`: with the latter, browsers send
    // `Origin: null` on form posts, which the origin check refuses.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    no_store(response)
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// To the sign-in page, saying why where a session `ended` (and then
/// dropping its cookie).
fn to_sign_in(ended: Option<&str>) -> Response {
    let location = match ended {
        Some(why) => format!("{SIGN_IN}?ended={why}"),
        None => SIGN_IN.to_owned(),
    };
    let mut response = Redirect::to(&location).into_response();
    if ended.is_some() {
        set_cookie(&mut response, &session::cleared_cookie());
    }
    no_store(response)
}

fn set_cookie(response: &mut Response, cookie: &str) {
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(cookie).expect("a cookie of hex digits and fixed attributes"),
    );
}

/// The host a request was sent to: its `Host`, or over HTTP/2 its authority.
fn request_host<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}

async fn overview(State(d): State<Dashboard>, headers: HeaderMap) -> Response {
    let viewer = match d.viewer(&headers) {
        Ok(viewer) => viewer,
        Err(ended) => return to_sign_in(ended),
    };
    let apps = read::apps(&d.cp, &viewer);
    page(StatusCode::OK, |nonce| {
        pages::overview(&viewer, nonce, &apps)
    })
}

async fn app_page(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    Path((environment, app)): Path<(String, String)>,
) -> Response {
    let viewer = match d.viewer(&headers) {
        Ok(viewer) => viewer,
        Err(ended) => return to_sign_in(ended),
    };
    let shown = app_key_for(&viewer, &environment, &app).and_then(|key| {
        read::app_page(&d.cp, &environment, &app, &key, &viewer).ok_or_else(|| Refusal {
            status: StatusCode::NOT_FOUND,
            title: "Not found",
            message: format!("No app `{app}` in environment `{environment}`."),
        })
    });
    match shown {
        Ok(shown) => page(StatusCode::OK, |nonce| {
            pages::app(&viewer, nonce, &shown, SystemTime::now())
        }),
        Err(refusal) => page(refusal.status, |nonce| {
            pages::problem(Some(&viewer), nonce, refusal.title, &refusal.message)
        }),
    }
}

#[derive(Deserialize)]
struct SignInQuery {
    ended: Option<String>,
}

/// What the sign-in page says about a session that `ended`.
fn ended_message(ended: &str) -> Option<&'static str> {
    match ended {
        "expired" => Some("Your session expired: sign in again."),
        "revoked" => Some(
            "The token of your session was revoked (or its environment removed): sign in \
             with another.",
        ),
        "signed-out" => Some("Signed out."),
        _ => None,
    }
}

async fn sign_in_form(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    query: Result<Query<SignInQuery>, QueryRejection>,
) -> Response {
    if let Verdict::SignedIn(_) = d.verdict(&headers) {
        return no_store(Redirect::to(HOME).into_response());
    }
    let problem = query
        .ok()
        .and_then(|Query(q)| q.ended)
        .and_then(|ended| ended_message(&ended));
    page(StatusCode::OK, |nonce| pages::sign_in(nonce, problem))
}

#[derive(Deserialize)]
struct SignInForm {
    token: String,
}

async fn sign_in(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    uri: Uri,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    if let Err(why) = session::check_same_origin(&headers, request_host(&headers, &uri)) {
        return page(StatusCode::FORBIDDEN, |nonce| {
            pages::problem(None, nonce, "Refused", &format!("Not signed in: {why}."))
        });
    }
    let Ok(Form(form)) = form else {
        return page(StatusCode::BAD_REQUEST, |nonce| {
            pages::sign_in(
                nonce,
                Some("The form was not understood: send `token` as a form field."),
            )
        });
    };
    // The token itself is never logged, nor echoed back.
    match session::sign_in(&form.token, |presented| d.cp.access.principal(presented)) {
        Ok((holder, viewer)) => {
            let id = d.sessions.open(holder, Instant::now());
            tracing::info!(who = %viewer.who, "signed in to the dashboard");
            let mut response = no_store(Redirect::to(HOME).into_response());
            set_cookie(
                &mut response,
                &session::session_cookie(&id, SESSION_LIFETIME),
            );
            response
        }
        Err(message) => page(StatusCode::UNAUTHORIZED, |nonce| {
            pages::sign_in(nonce, Some(&message))
        }),
    }
}

async fn sign_out(State(d): State<Dashboard>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(why) = session::check_same_origin(&headers, request_host(&headers, &uri)) {
        return page(StatusCode::FORBIDDEN, |nonce| {
            pages::problem(None, nonce, "Refused", &format!("Not signed out: {why}."))
        });
    }
    if let Some(id) = session::session_id(&headers) {
        d.sessions.end(id);
    }
    to_sign_in(Some("signed-out"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::access::Scope;

    fn viewer(environment: Option<&str>) -> Viewer {
        Viewer {
            who: "tk-1".into(),
            scope: Scope::Invoke,
            environment: environment.map(str::to_owned),
        }
    }

    #[test]
    fn an_app_is_shown_only_in_the_viewers_environment() {
        let staging = viewer(Some("staging"));
        assert_eq!(
            app_key_for(&staging, "staging", "shop"),
            Ok("staging/shop".into())
        );
        let refused = app_key_for(&staging, "main", "shop").unwrap_err();
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(
            refused.message.contains("belongs to environment `staging`"),
            "{refused:?}"
        );
        let admin = viewer(None);
        assert_eq!(app_key_for(&admin, "main", "shop"), Ok("shop".into()));
        assert_eq!(
            app_key_for(&admin, "staging", "shop"),
            Ok("staging/shop".into())
        );
    }

    #[test]
    fn malformed_names_name_no_app() {
        let admin = viewer(None);
        for (env, app) in [
            ("Main", "shop"),
            ("main", "a/b"),
            ("main", ""),
            ("", "shop"),
        ] {
            let refused = app_key_for(&admin, env, app).unwrap_err();
            assert_eq!(refused.status, StatusCode::NOT_FOUND, "{env}/{app}");
        }
        // Checked before the environment is: a name never reaches the catalog.
        let refused = app_key_for(&viewer(Some("main")), "main", "<x>").unwrap_err();
        assert!(refused.message.contains("not an app name"), "{refused:?}");
    }

    #[test]
    fn only_known_reasons_are_shown_on_the_sign_in_page() {
        assert!(ended_message("expired").unwrap().contains("expired"));
        assert!(ended_message("revoked").unwrap().contains("revoked"));
        assert_eq!(ended_message("<script>"), None);
    }
}
