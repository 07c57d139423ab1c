//! The control plane's answer to a message over the size limit: tonic
//! refuses it from its length prefix (nothing of it is held), with a status
//! that names the limit; this layer adds what to do instead, in the
//! status of trailers-only responses and in trailers alike.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::NamedService;

use crate::message_size::explain_status;

/// Wraps a gRPC service; see the module docs.
#[derive(Clone)]
pub(crate) struct ExplainOversize<S>(pub S);

impl<S: NamedService> NamedService for ExplainOversize<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for ExplainOversize<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let response = self.0.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            explain(response.headers_mut());
            Ok(response.map(|inner| tonic::body::Body::new(Explained { inner })))
        })
    }
}

/// Rewrites the status in `headers` (or trailers) if it is a size refusal.
fn explain(headers: &mut http::HeaderMap) {
    let Some(status) = tonic::Status::from_header_map(headers) else {
        return;
    };
    if status.code() != tonic::Code::OutOfRange {
        return;
    }
    let explained = explain_status(status.clone());
    if explained.message() != status.message() {
        let _ = explained.add_header(headers);
    }
}

/// A response body whose trailers go through [`explain`].
struct Explained {
    inner: tonic::body::Body,
}

impl Body for Explained {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let polled = Pin::new(&mut self.get_mut().inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(mut frame))) = polled {
            if let Some(trailers) = frame.trailers_mut() {
                explain(trailers);
            }
            return Poll::Ready(Some(Ok(frame)));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
