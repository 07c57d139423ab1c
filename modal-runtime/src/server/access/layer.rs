//! The check in front of the service: every request's caller is
//! identified from its `authorization` metadata and checked against the
//! table in `rules.rs` before the service sees it. A request that fails
//! gets `UNAUTHENTICATED` or `PERMISSION_DENIED` from here, and nothing of
//! it is read.

use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;

use super::{Caller, DEFAULT_ENVIRONMENT, Principal, names, rules};
use crate::contract::{AUTHORIZATION_HEADER, ENVIRONMENT_HEADER, container_token};
use crate::server::control::ControlPlane;

/// Wraps the gRPC service; see the module docs.
#[derive(Clone)]
pub(crate) struct Authenticate<S> {
    pub inner: S,
    pub cp: Arc<ControlPlane>,
}

impl<S: NamedService> NamedService for Authenticate<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for Authenticate<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().rsplit('/').next().unwrap_or("");
        match identify(&self.cp, request.headers(), method) {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                Box::pin(self.inner.call(request))
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}

/// The caller of a request to `method` with `headers`, if it may call it.
fn identify(cp: &ControlPlane, headers: &http::HeaderMap, method: &str) -> Result<Caller, Status> {
    let Some(need) = rules::need(method) else {
        return Err(Status::permission_denied(format!(
            "`{method}` is not a method this control plane serves to anyone"
        )));
    };
    let asked =
        match headers.get(ENVIRONMENT_HEADER) {
            None => None,
            Some(value) => Some(value.to_str().ok().filter(|v| !v.is_empty()).ok_or_else(
                || {
                    Status::invalid_argument(format!(
                        "the `{ENVIRONMENT_HEADER}` metadata is not an environment name"
                    ))
                },
            )?),
        };
    identify_in(cp, headers, method, need, asked)
}

/// The caller of a request to a web endpoint of `environment`: a token of
/// scope `invoke` or above, of that environment (or of none).
pub(crate) fn identify_web(
    cp: &ControlPlane,
    headers: &http::HeaderMap,
    environment: &str,
) -> Result<Caller, Status> {
    identify_in(
        cp,
        headers,
        "a web endpoint",
        rules::Need::Scope(super::tokens::Scope::Invoke),
        Some(environment),
    )
}

fn identify_in(
    cp: &ControlPlane,
    headers: &http::HeaderMap,
    method: &str,
    need: rules::Need,
    asked: Option<&str>,
) -> Result<Caller, Status> {
    let presented = bearer(headers)?;
    let principal = match container_token::parse(presented) {
        Some((container_id, secret)) => {
            let function = cp.authenticate(container_id, secret)?;
            Principal::Container {
                container_id: container_id.to_owned(),
                function,
            }
        }
        None => cp.access.principal(presented)?,
    };
    rules::permit(&principal, need, method)?;
    let environment = match &principal {
        // A container acts in its own app's environment, whatever it asks.
        Principal::Container { function, .. } => names::environment_of(&function.app).to_owned(),
        Principal::Token(token) => match (&token.environment, asked) {
            (Some(own), Some(asked)) if own != asked => {
                return Err(Status::permission_denied(format!(
                    "this token belongs to environment `{own}`, and this request asks for \
                     environment `{asked}`: use a token of `{asked}`"
                )));
            }
            (Some(own), _) => own.clone(),
            (None, asked) => asked.unwrap_or(DEFAULT_ENVIRONMENT).to_owned(),
        },
        Principal::Local => asked.unwrap_or(DEFAULT_ENVIRONMENT).to_owned(),
    };
    if rules::acts_in_environment(method) {
        cp.access.require_environment(&environment)?;
    }
    Ok(Caller {
        principal,
        environment,
    })
}

/// The token of `authorization: Bearer <token>`.
fn bearer(headers: &http::HeaderMap) -> Result<&str, Status> {
    let Some(value) = headers.get(AUTHORIZATION_HEADER) else {
        return Err(Status::unauthenticated(
            "this control plane needs a token, and the request carries none: set MODAL_TOKEN, \
             or `token` in the modal-rs config file (`cargo xtask server` writes an admin \
             token to the credentials file beside it at first start; an admin makes others \
             with `cargo xtask token new`)",
        ));
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Status::unauthenticated("the `authorization` metadata must be `Bearer <token>`")
        })
}
