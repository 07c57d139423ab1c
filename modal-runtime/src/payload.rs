//! Payload sizes: small arguments and results travel inside messages; large
//! ones (over [`INLINE_LIMIT`]) are streamed to the control plane's blob
//! store and travel as a reference; over [`MAX_PAYLOAD_BYTES`] they are
//! refused before anything is sent.

use bytes::{Bytes, BytesMut};
use tonic::transport::Channel;

use crate::proto::control_plane_client::ControlPlaneClient;
use crate::proto::{self, outcome};

/// Largest payload sent inline (4 MiB); larger ones go through the blob store.
pub const INLINE_LIMIT: usize = 4 << 20;
/// Largest gRPC message either side accepts (16 MiB): a few inline payloads.
/// A larger one is refused from its length prefix, before it is read, so no
/// client can make a control plane hold more than this per request.
pub const MAX_MESSAGE_BYTES: usize = 4 * INLINE_LIMIT;
/// Where a batch of many payloads (map inputs and outputs, container
/// inputs and outcomes) is cut: the batch, plus one inline payload that
/// goes alone, stays well under [`MAX_MESSAGE_BYTES`].
pub(crate) const BATCH_BYTES: usize = 2 * INLINE_LIMIT;
/// Longest failure message sent (64 KiB): a failure travels inline, in
/// batches, whatever the size of the error it reports.
pub(crate) const MAX_FAILURE_MESSAGE_BYTES: usize = 64 << 10;
/// Largest argument tuple or result accepted (1 GiB).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 30;
/// Size of one streamed piece of a blob.
const CHUNK: usize = 1 << 20;

/// Stores `bytes` as a blob; returns its id.
pub(crate) async fn upload(
    mut rpc: ControlPlaneClient<Channel>,
    bytes: Bytes,
) -> Result<String, tonic::Status> {
    let chunks: Vec<proto::BlobChunk> = (0..bytes.len())
        .step_by(CHUNK)
        .map(|start| proto::BlobChunk {
            data: bytes.slice(start..(start + CHUNK).min(bytes.len())),
        })
        .collect();
    let reply = rpc.put_blob(tokio_stream::iter(chunks)).await?;
    Ok(reply.into_inner().id)
}

/// Reads blob `id` whole.
pub(crate) async fn download(
    mut rpc: ControlPlaneClient<Channel>,
    id: &str,
) -> Result<Bytes, tonic::Status> {
    let mut stream = rpc
        .get_blob(proto::GetBlobRequest { id: id.to_owned() })
        .await?
        .into_inner();
    let mut all = BytesMut::new();
    while let Some(chunk) = stream.message().await? {
        all.extend_from_slice(&chunk.data);
    }
    Ok(all.freeze())
}

/// The outcome with a blob-stored value read back inline.
pub(crate) async fn inline_outcome(
    rpc: ControlPlaneClient<Channel>,
    outcome: proto::Outcome,
) -> Result<proto::Outcome, tonic::Status> {
    match outcome.result {
        Some(outcome::Result::ValueBlob(id)) => Ok(proto::Outcome {
            result: Some(outcome::Result::Value(download(rpc, &id).await?)),
        }),
        other => Ok(proto::Outcome { result: other }),
    }
}
