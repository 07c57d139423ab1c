//! Signing in to the dashboard: a token is checked once, at sign-in, and
//! the browser then holds only a random session id (an `HttpOnly`,
//! `SameSite=Strict` cookie), mapped here to the token's id with an
//! expiry. Every request looks the token up again, so a revoked token (or
//! a removed environment, which takes its tokens along) ends its sessions
//! at their next request.
//!
//! The decisions (what a sign-in attempt gives, whether a session still
//! holds, whether a POST comes from the dashboard's own pages) are plain
//! functions, tested below.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderMap;
use tonic::Status;

use crate::server::access::{Principal, Scope, TokenRecord};

/// The cookie that names a session.
pub(crate) const COOKIE: &str = "modal_session";
/// What the cookie is sent for: the dashboard's pages only.
pub(crate) const COOKIE_PATH: &str = "/dashboard";
/// How long a session lasts from its sign-in, whatever it does.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions held at once; past it, the one closest to its end goes.
const MAX_SESSIONS: usize = 4096;
/// Longest token a sign-in accepts: real ones are under 100 bytes.
pub(crate) const MAX_TOKEN_BYTES: usize = 512;
/// A session id: 64 hex digits.
const SESSION_ID_LEN: usize = 64;

/// Whose token a session stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Holder {
    /// The control plane's own token: every right while it runs.
    Local,
    /// A token, by id (its secret is never kept).
    Token(String),
}

/// Who is signed in, and so what the pages show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Viewer {
    /// The token's id, or `local` for the control plane's own.
    pub who: String,
    pub scope: Scope,
    /// The one environment shown; `None` (an admin): every one.
    pub environment: Option<String>,
}

impl Viewer {
    fn of_token(token: &TokenRecord) -> Viewer {
        Viewer {
            who: token.id.clone(),
            scope: token.scope,
            environment: match token.scope {
                Scope::Admin => None,
                _ => token.environment.clone(),
            },
        }
    }

    fn local() -> Viewer {
        Viewer {
            who: "local".to_owned(),
            scope: Scope::Admin,
            environment: None,
        }
    }

    /// Whether apps of `environment` are shown to this viewer.
    pub(crate) fn may_see(&self, environment: &str) -> bool {
        self.environment
            .as_deref()
            .is_none_or(|own| own == environment)
    }

    /// Whether this viewer may follow an app's logs: what `StreamLogs`
    /// asks of a token (`deploy`), since logs carry whatever functions print.
    pub(crate) fn may_follow_logs(&self) -> bool {
        self.scope >= Scope::Deploy
    }
}

/// What a request's session cookie stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    SignedIn(Viewer),
    /// No cookie, or one naming no session.
    NoSession,
    Expired,
    /// Its token was revoked (or its environment removed).
    Revoked,
}

impl Verdict {
    /// Why the browser is sent to sign in, as the sign-in page's `ended`
    /// query names it; `None` where nothing ended.
    pub(crate) fn ended(&self) -> Option<&'static str> {
        match self {
            Verdict::Expired => Some("expired"),
            Verdict::Revoked => Some("revoked"),
            Verdict::SignedIn(_) | Verdict::NoSession => None,
        }
    }
}

/// One signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub holder: Holder,
    pub expires: Instant,
}

/// Whether `session` (as found for a cookie, if it was) holds at `now`,
/// with `token` looking up a token by id as it is now.
pub(crate) fn judge(
    session: Option<&Session>,
    now: Instant,
    token: impl FnOnce(&str) -> Option<Arc<TokenRecord>>,
) -> Verdict {
    let Some(session) = session else {
        return Verdict::NoSession;
    };
    if now >= session.expires {
        return Verdict::Expired;
    }
    match &session.holder {
        Holder::Local => Verdict::SignedIn(Viewer::local()),
        Holder::Token(id) => match token(id) {
            Some(token) => Verdict::SignedIn(Viewer::of_token(&token)),
            None => Verdict::Revoked,
        },
    }
}

/// What a sign-in with `presented` gives, `principal` telling who a
/// token stands for; `Err` is the message the sign-in page shows.
pub(crate) fn sign_in(
    presented: &str,
    principal: impl FnOnce(&str) -> Result<Principal, Status>,
) -> Result<(Holder, Viewer), String> {
    let presented = presented.trim();
    if presented.is_empty() {
        return Err(
            "Paste a token to sign in: `cargo xtask token new` makes one, and `cargo xtask \
             server` writes an admin token to its credentials file at first start."
                .to_owned(),
        );
    }
    if presented.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "That is not a token: a token is at most {MAX_TOKEN_BYTES} bytes."
        ));
    }
    match principal(presented) {
        Ok(Principal::Local) => Ok((Holder::Local, Viewer::local())),
        Ok(Principal::Token(token)) => {
            Ok((Holder::Token(token.id.clone()), Viewer::of_token(&token)))
        }
        Ok(Principal::Container { .. }) => Err(
            "A container's token cannot sign in: use a token made with `cargo xtask token new`."
                .to_owned(),
        ),
        Err(_) => Err(
            "This token is not valid here: it was revoked, belongs to another control plane, \
             or is mistyped (an admin lists tokens with `cargo xtask token list`)."
                .to_owned(),
        ),
    }
}

/// The dashboard's sessions, by id.
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
    lifetime: Duration,
}

impl Sessions {
    pub(crate) fn new(lifetime: Duration) -> Sessions {
        Sessions {
            by_id: Mutex::default(),
            lifetime,
        }
    }

    /// A new session for `holder`: its id, for the cookie.
    pub(crate) fn open(&self, holder: Holder, now: Instant) -> String {
        let id = crate::server::access::tokens::random_secret();
        let mut by_id = self.by_id.lock().unwrap();
        by_id.retain(|_, s| s.expires > now);
        if by_id.len() >= MAX_SESSIONS
            && let Some(soonest) = by_id
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone())
        {
            by_id.remove(&soonest);
        }
        by_id.insert(
            id.clone(),
            Session {
                holder,
                expires: now + self.lifetime,
            },
        );
        id
    }

    /// Ends session `id` (signing out).
    pub(crate) fn end(&self, id: &str) {
        self.by_id.lock().unwrap().remove(id);
    }

    /// Whether session `id` holds at `now`. One that no longer does is
    /// kept (until a sign-in makes room) so that every page and stream of
    /// its browser is told the same reason.
    pub(crate) fn check(
        &self,
        id: Option<&str>,
        now: Instant,
        token: impl FnOnce(&str) -> Option<Arc<TokenRecord>>,
    ) -> Verdict {
        let by_id = self.by_id.lock().unwrap();
        judge(id.and_then(|id| by_id.get(id)), now, token)
    }

    /// How many sessions are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_id.lock().unwrap().len()
    }
}

/// The `Set-Cookie` value that holds session `id` for `lifetime`.
pub(crate) fn session_cookie(id: &str, lifetime: Duration) -> String {
    format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path={COOKIE_PATH}; Max-Age={}",
        lifetime.as_secs()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn cleared_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path={COOKIE_PATH}; Max-Age=0")
}

/// The session id a request's cookies carry, if one has a session id's
/// shape (anything else names no session).
pub(crate) fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|id| id.len() == SESSION_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `Ok` if a state-changing request comes from a page of this very
/// origin: its `Origin` (or, where a browser sent none, `Referer`) names
/// the host the request was sent to. With the cookie's `SameSite=Strict`,
/// this refuses cross-site form posts (sign-in and sign-out included).
/// `host` is the request's `Host` header or, over HTTP/2, its authority.
pub(crate) fn check_same_origin(headers: &HeaderMap, host: Option<&str>) -> Result<(), String> {
    let Some(host) = host.filter(|h| !h.is_empty()) else {
        return Err("the request names no host".to_owned());
    };
    let header = |name: http::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let (what, sent) = match (header(http::header::ORIGIN), header(http::header::REFERER)) {
        (Some(origin), _) => ("Origin", origin),
        (None, Some(referer)) => ("Referer", referer),
        (None, None) => {
            return Err(
                "the request carries neither `Origin` nor `Referer`: the dashboard takes form \
                 posts from its own pages only"
                    .to_owned(),
            );
        }
    };
    match authority_of(sent) {
        Some(authority) if same_authority(&authority, host) => Ok(()),
        _ => Err(format!(
            "the request's `{what}` is not this dashboard's origin: the dashboard takes form \
             posts from its own pages only"
        )),
    }
}

/// `host[:port]` of an `http(s)://` URL (or origin), with the scheme's
/// default port left out; `None` for anything else (`null`, say).
fn authority_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    Some(
        authority
            .strip_suffix(default_port)
            .map(str::to_owned)
            .unwrap_or(authority),
    )
}

/// Whether `authority` (of an origin, default port left out) is `host`
/// (a `Host` header, perhaps with a default port).
fn same_authority(authority: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let host = host
        .strip_suffix(":80")
        .or_else(|| host.strip_suffix(":443"))
        .unwrap_or(&host);
    authority == host
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::access::tokens::new_token;

    fn token(scope: Scope, environment: Option<&str>) -> Arc<TokenRecord> {
        Arc::new(new_token(scope, environment.map(str::to_owned), "test", 1).0)
    }

    #[test]
    fn a_session_holds_until_it_expires() {
        let now = Instant::now();
        let t = token(Scope::Invoke, Some("staging"));
        let session = Session {
            holder: Holder::Token(t.id.clone()),
            expires: now + Duration::from_secs(60),
        };
        let lookup = |id: &str| (id == t.id).then(|| t.clone());
        assert_eq!(
            judge(Some(&session), now, lookup),
            Verdict::SignedIn(Viewer {
                who: t.id.clone(),
                scope: Scope::Invoke,
                environment: Some("staging".into()),
            })
        );
        let later = now + Duration::from_secs(60);
        assert_eq!(judge(Some(&session), later, lookup), Verdict::Expired);
        assert_eq!(judge(None, now, lookup), Verdict::NoSession);
    }

    #[test]
    fn a_revoked_token_ends_its_sessions() {
        let now = Instant::now();
        let sessions = Sessions::new(Duration::from_secs(60));
        let t = token(Scope::Deploy, Some("main"));
        let id = sessions.open(Holder::Token(t.id.clone()), now);
        let verdict = sessions.check(Some(&id), now, |_| Some(t.clone()));
        assert!(matches!(verdict, Verdict::SignedIn(_)), "{verdict:?}");
        // Revoked: the token is no longer found, for every request.
        assert_eq!(sessions.check(Some(&id), now, |_| None), Verdict::Revoked);
        assert_eq!(sessions.check(Some(&id), now, |_| None), Verdict::Revoked);
        assert_eq!(Verdict::Revoked.ended(), Some("revoked"));
    }

    #[test]
    fn an_expired_session_is_forgotten_at_the_next_sign_in_and_signing_out_ends_one() {
        let now = Instant::now();
        let sessions = Sessions::new(Duration::from_secs(60));
        let id = sessions.open(Holder::Local, now);
        let other = sessions.open(Holder::Local, now);
        assert_ne!(id, other);
        sessions.end(&other);
        assert_eq!(
            sessions.check(Some(&other), now, |_| None),
            Verdict::NoSession
        );
        let later = now + Duration::from_secs(61);
        assert_eq!(sessions.check(Some(&id), later, |_| None), Verdict::Expired);
        assert_eq!(sessions.check(Some(&id), later, |_| None), Verdict::Expired);
        sessions.open(Holder::Local, later);
        assert_eq!(
            sessions.check(Some(&id), later, |_| None),
            Verdict::NoSession
        );
        assert_eq!(sessions.len(), 1);
    }

    #[test]
    fn sessions_are_bounded() {
        let now = Instant::now();
        let sessions = Sessions::new(Duration::from_secs(60));
        let first = sessions.open(Holder::Local, now);
        for k in 1..=MAX_SESSIONS as u64 {
            sessions.open(Holder::Local, now + Duration::from_millis(k));
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        // The one closest to its end made room.
        assert_eq!(
            sessions.check(Some(&first), now, |_| None),
            Verdict::NoSession
        );
    }

    #[test]
    fn signing_in_needs_a_valid_token() {
        let refuse = |_: &str| Err(Status::unauthenticated("no"));
        let empty = sign_in("  ", refuse).unwrap_err();
        assert!(empty.contains("Paste a token"), "{empty}");
        let long = sign_in(&"x".repeat(MAX_TOKEN_BYTES + 1), refuse).unwrap_err();
        assert!(long.contains("at most 512 bytes"), "{long}");
        let wrong = sign_in("tk-000000000000.00", refuse).unwrap_err();
        assert!(wrong.contains("not valid here"), "{wrong}");
        // The token is trimmed, and never echoed back.
        let secret = "tk-123456789abc.s3cr3t";
        let mut seen = String::new();
        let refused = sign_in(&format!(" {secret}\n"), |t| {
            seen = t.to_owned();
            Err(Status::unauthenticated("no"))
        })
        .unwrap_err();
        assert_eq!(seen, secret);
        assert!(!refused.contains("s3cr3t"), "{refused}");
    }

    #[test]
    fn a_token_signs_in_to_its_environment_and_an_admin_to_all() {
        let deploy = token(Scope::Deploy, Some("staging"));
        let (holder, viewer) = sign_in("tk-x.y", |_| Ok(Principal::Token(deploy.clone()))).unwrap();
        assert_eq!(holder, Holder::Token(deploy.id.clone()));
        assert!(viewer.may_see("staging") && !viewer.may_see("main"));
        assert!(viewer.may_follow_logs());
        let admin = token(Scope::Admin, None);
        let (_, viewer) = sign_in("tk-x.y", |_| Ok(Principal::Token(admin.clone()))).unwrap();
        assert!(viewer.may_see("staging") && viewer.may_see("main"));
        let (holder, viewer) = sign_in("local.x", |_| Ok(Principal::Local)).unwrap();
        assert_eq!(holder, Holder::Local);
        assert_eq!(viewer.environment, None);
        let invoke = token(Scope::Invoke, Some("main"));
        let (_, viewer) = sign_in("tk-x.y", |_| Ok(Principal::Token(invoke.clone()))).unwrap();
        assert!(viewer.may_see("main") && !viewer.may_follow_logs());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_for_the_dashboard_only() {
        let cookie = session_cookie("ab", Duration::from_secs(90));
        assert_eq!(
            cookie,
            "modal_session=ab; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age=90"
        );
        assert!(cleared_cookie().contains("Max-Age=0"));
    }

    #[test]
    fn the_session_id_is_read_from_the_cookies() {
        let id = "a".repeat(64);
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::COOKIE,
            format!("theme=dark; {COOKIE}={id}; other=1")
                .parse()
                .unwrap(),
        );
        assert_eq!(session_id(&headers), Some(id.as_str()));
        for bad in ["modal_session=short", "modal_session=", "modal_sessions=x"] {
            let mut headers = HeaderMap::new();
            headers.append(http::header::COOKIE, bad.parse().unwrap());
            assert_eq!(session_id(&headers), None, "{bad}");
        }
        let mut odd = HeaderMap::new();
        odd.append(
            http::header::COOKIE,
            format!("{COOKIE}={}", "g".repeat(64)).parse().unwrap(),
        );
        assert_eq!(session_id(&odd), None);
        assert_eq!(session_id(&HeaderMap::new()), None);
    }

    #[test]
    fn posts_must_come_from_the_same_origin() {
        let with = |name: &str, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
            h
        };
        let host = Some("127.0.0.1:7471");
        assert!(check_same_origin(&with("origin", "http://127.0.0.1:7471"), host).is_ok());
        assert!(
            check_same_origin(&with("referer", "http://127.0.0.1:7471/dashboard"), host).is_ok()
        );
        assert!(
            check_same_origin(
                &with("origin", "HTTP://Dash.Example"),
                Some("dash.example:80")
            )
            .is_ok()
        );
        assert!(
            check_same_origin(
                &with("origin", "https://dash.example:443"),
                Some("dash.example")
            )
            .is_ok()
        );
        for (name, value) in [
            ("origin", "http://evil.example"),
            ("origin", "http://127.0.0.1:7472"),
            ("origin", "null"),
            ("origin", "http://127.0.0.1:7471@evil.example"),
            ("referer", "http://evil.example/http://127.0.0.1:7471"),
            ("origin", "file://127.0.0.1:7471"),
        ] {
            let refused = check_same_origin(&with(name, value), host).unwrap_err();
            assert!(refused.contains("own pages only"), "{value}: {refused}");
        }
        let missing = check_same_origin(&HeaderMap::new(), host).unwrap_err();
        assert!(
            missing.contains("neither `Origin` nor `Referer`"),
            "{missing}"
        );
        assert!(check_same_origin(&with("origin", "http://x"), None).is_err());
    }
}
