//! Connections to the control plane, made the same way by the caller's
//! client and by containers.
//!
//! Every connection is pinged when it has been silent for
//! [`KEEPALIVE_INTERVAL`], even with no call in flight, and dropped when a
//! ping goes unanswered for [`KEEPALIVE_TIMEOUT`]: a control plane that stops
//! answering (hung, or its machine gone without closing the connection) fails
//! the calls waiting on it instead of holding them forever. A busy connection
//! sends no pings, so calls pay nothing for this.
//!
//! An `https://` control plane is reached over TLS (rustls), its certificate
//! verified against the CA certificate(s) given, for the URL's host. There
//! are no default roots: an `https://` URL without a CA is refused, saying
//! where to give one.

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::contract::{
    CONNECT_TIMEOUT, CONNECTION_WINDOW_BYTES, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT,
    STREAM_WINDOW_BYTES,
};

/// How to connect to the control plane at `url`; an `https://` one is
/// verified against the PEM CA certificate(s) `ca`.
pub(crate) fn endpoint(url: &str, ca: Option<&[u8]>) -> Result<Endpoint, String> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("`{url}` is not a valid control plane URL: {e}"))?;
    let endpoint = if endpoint.uri().scheme_str() == Some("https") {
        let ca = ca.ok_or_else(|| {
            format!(
                "`{url}` is a TLS control plane, and no CA certificate to verify it with is \
                 configured: set {} to the path of its CA certificate (PEM), or `tls_ca = \"PATH\"` \
                 in the modal-rs config file",
                crate::config::TLS_CA_ENV
            )
        })?;
        endpoint
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
            .map_err(|e| format!("cannot set up TLS for `{url}`: {e}"))?
    } else {
        endpoint
    };
    Ok(endpoint
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES))
}

/// Whether a call failed because its connection went unanswered for the
/// keepalive timeout (rather than being refused or reset).
pub(crate) fn went_silent(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(status);
    while let Some(e) = source {
        // hyper's error for an unanswered keepalive ping.
        if e.to_string().contains("keep-alive timed out") {
            return true;
        }
        source = e.source();
    }
    false
}

/// What every request to the control plane carries: the caller's token
/// (`authorization: Bearer …`) and, when set, the environment it acts in.
/// Made once per client: a request pays two header inserts.
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    authorization: Option<tonic::metadata::AsciiMetadataValue>,
    environment: Option<tonic::metadata::AsciiMetadataValue>,
}

impl Credentials {
    pub(crate) fn new(token: Option<&str>, environment: Option<&str>) -> Result<Self, String> {
        let value = |text: String, what: &str| {
            text.parse::<tonic::metadata::AsciiMetadataValue>()
                .map_err(|_| format!("the {what} holds characters a request cannot carry"))
        };
        Ok(Credentials {
            authorization: token
                .map(|t| value(format!("Bearer {}", t.trim()), "token"))
                .transpose()?,
            environment: environment
                .map(|e| value(e.to_owned(), "environment name"))
                .transpose()?,
        })
    }

    /// The same token, acting in `environment`.
    pub(crate) fn in_environment(&self, environment: &str) -> Result<Self, String> {
        let mut c = self.clone();
        c.environment = Some(
            environment
                .parse()
                .map_err(|_| format!("`{environment}` is not an environment name"))?,
        );
        Ok(c)
    }

    pub(crate) fn environment(&self) -> Option<&str> {
        self.environment.as_ref().and_then(|e| e.to_str().ok())
    }
}

impl tonic::service::Interceptor for Credentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let metadata = request.metadata_mut();
        if let Some(token) = &self.authorization {
            metadata.insert(crate::contract::AUTHORIZATION_HEADER, token.clone());
        }
        if let Some(environment) = &self.environment {
            metadata.insert(crate::contract::ENVIRONMENT_HEADER, environment.clone());
        }
        Ok(request)
    }
}

/// A gRPC client of the control plane whose requests carry credentials.
pub(crate) type Rpc = crate::proto::control_plane_client::ControlPlaneClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Credentials>,
>;

/// A client on `channel` sending `credentials`, with the shared message limits.
pub(crate) fn rpc(channel: tonic::transport::Channel, credentials: Credentials) -> Rpc {
    crate::proto::control_plane_client::ControlPlaneClient::with_interceptor(channel, credentials)
        .max_decoding_message_size(crate::contract::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(crate::contract::MAX_MESSAGE_BYTES)
}
