//! Large payloads: arguments and results over
//! [`INLINE_LIMIT`](crate::contract::INLINE_LIMIT) are streamed to the
//! control plane's blob store and travel as a reference.

use bytes::{Bytes, BytesMut};

use crate::contract::STREAM_CHUNK_BYTES as CHUNK;
use crate::proto::{self, outcome};

/// Stores `bytes` as a blob; returns its id.
pub(crate) async fn upload(
    mut rpc: crate::connection::Rpc,
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
    mut rpc: crate::connection::Rpc,
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
    rpc: crate::connection::Rpc,
    outcome: proto::Outcome,
) -> Result<proto::Outcome, tonic::Status> {
    match outcome.result {
        Some(outcome::Result::ValueBlob(id)) => Ok(proto::Outcome {
            result: Some(outcome::Result::Value(download(rpc, &id).await?)),
        }),
        other => Ok(proto::Outcome { result: other }),
    }
}
