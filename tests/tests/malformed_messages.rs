//! Bytes that are not the protobuf message a call expects, sent as the body
//! of real gRPC calls: the control plane answers INVALID_ARGUMENT naming the
//! message it expected, and goes on serving.

mod common;

use bytes::{Buf, BufMut, Bytes};
use common::*;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Request, Status};

/// Not a protobuf message: an invalid wire type (7) in the first tag, and a
/// length running past the end.
const GARBAGE: &[u8] = b"\xff\xff\xff\xff\x0f\x0a\xff\xff\x03not protobuf";

/// Sends and receives message bodies as they are, unencoded.
#[derive(Debug, Clone, Copy, Default)]
struct RawBytes;

impl Codec for RawBytes {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }

    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

impl Encoder for RawBytes {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put(item);
        Ok(())
    }
}

impl Decoder for RawBytes {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining())))
    }
}

type RawGrpc = tonic::client::Grpc<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, WithToken>,
>;

/// A raw gRPC client with the control plane's token: what is malformed
/// here is the message, not the credentials.
async fn raw_client() -> RawGrpc {
    let channel = tonic::transport::Endpoint::from_shared(env().url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = format!("Bearer {}", token_for(&env().url)).parse().unwrap();
    tonic::client::Grpc::new(tonic::service::interceptor::InterceptedService::new(
        channel,
        WithToken(Some(token)),
    ))
}

fn assert_invalid_argument(path: &str, expected: &str, status: &Status) {
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{path}: {}: {}",
        status.code(),
        status.message()
    );
    assert!(
        status.message().contains(expected),
        "{path}: the message names `{expected}`: {}",
        status.message()
    );
}

#[tokio::test]
async fn a_malformed_request_is_an_invalid_argument_naming_its_message() {
    let mut grpc = raw_client().await;
    for (path, expected) in [
        ("/modal.v1.ControlPlane/Spawn", "InvokeRequest"),
        ("/modal.v1.ControlPlane/CreateApp", "CreateAppRequest"),
        (
            "/modal.v1.ControlPlane/GetCallOutcome",
            "GetCallOutcomeRequest",
        ),
    ] {
        grpc.ready().await.unwrap();
        let status = grpc
            .unary(
                Request::new(Bytes::from_static(GARBAGE)),
                PathAndQuery::from_static(path),
                RawBytes,
            )
            .await
            .expect_err("garbage is not a request");
        assert_invalid_argument(path, expected, &status);
    }
    // The control plane goes on serving, on a fresh connection and this one.
    let apps = common::connect(&env().url)
        .await
        .unwrap()
        .list_apps()
        .await
        .unwrap();
    assert!(apps.iter().any(|a| a.name == APP), "{apps:?}");
    grpc.ready().await.unwrap();
    grpc.unary(
        Request::new(Bytes::new()),
        PathAndQuery::from_static("/modal.v1.ControlPlane/ListApps"),
        RawBytes,
    )
    .await
    .expect("an empty ListAppsRequest is valid");
}

#[tokio::test]
async fn a_malformed_message_in_a_stream_is_an_invalid_argument() {
    let mut grpc = raw_client().await;
    let path = "/modal.v1.ControlPlane/PutBlob";
    grpc.ready().await.unwrap();
    let chunks = futures::stream::iter([Bytes::from_static(GARBAGE)]);
    let status = grpc
        .client_streaming(
            Request::new(chunks),
            PathAndQuery::from_static(path),
            RawBytes,
        )
        .await
        .expect_err("garbage is not a blob chunk");
    assert_invalid_argument(path, "BlobChunk", &status);
}
