//! Keeping every gRPC message under [`MAX_MESSAGE_BYTES`]: batches of
//! payloads are cut by bytes as well as by count, and a message refused for
//! its size says what to do instead.
//!
//! Each inline payload is at most [`INLINE_LIMIT`]; a batch is cut at
//! [`BATCH_BYTES`], so a full batch plus one payload that goes alone still
//! fits in a message.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;

use crate::contract::{BATCH_BYTES, INLINE_LIMIT, MAX_FAILURE_MESSAGE_BYTES, MAX_MESSAGE_BYTES};
use crate::proto::{self, container_command};

/// Bytes `item` adds to a message as one entry of a repeated field: a
/// one-byte tag, the length prefix, the item.
pub(crate) fn entry_len<M: prost::Message>(item: &M) -> usize {
    bytes_entry_len(item.encoded_len())
}

/// Bytes a `bytes` value of `len` adds as one entry of a repeated field.
pub(crate) fn bytes_entry_len(len: usize) -> usize {
    1 + prost::length_delimiter_len(len) + len
}

/// Collects items into batches of at most `max_bytes` by `size` (an item
/// larger than that goes alone): push items in order, take each batch as
/// it fills.
pub(crate) struct Batcher<T> {
    max_bytes: usize,
    batch: Vec<T>,
    bytes: usize,
}

impl<T> Batcher<T> {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Batcher {
            max_bytes,
            batch: Vec::new(),
            bytes: 0,
        }
    }

    /// Whether an item of `size` bytes would overflow the batch begun.
    pub(crate) fn would_overflow(&self, size: usize) -> bool {
        !self.batch.is_empty() && self.bytes + size > self.max_bytes
    }

    /// Adds an item of `size` bytes; returns the batch it closed, if any.
    pub(crate) fn push(&mut self, item: T, size: usize) -> Option<Vec<T>> {
        let full = self.would_overflow(size).then(|| self.take());
        self.bytes += size;
        self.batch.push(item);
        full
    }

    /// The batch so far (maybe empty); the next one starts empty.
    pub(crate) fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        std::mem::take(&mut self.batch)
    }

    pub(crate) fn len(&self) -> usize {
        self.batch.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

/// Cuts `items` into batches of at most `max_bytes` by `size`.
pub(crate) fn cut_by_bytes<T>(
    items: impl IntoIterator<Item = T>,
    max_bytes: usize,
    size: impl Fn(&T) -> usize,
) -> Vec<Vec<T>> {
    let mut batcher = Batcher::new(max_bytes);
    let mut batches = Vec::new();
    for item in items {
        let n = size(&item);
        batches.extend(batcher.push(item, n));
    }
    if !batcher.is_empty() {
        batches.push(batcher.take());
    }
    batches
}

/// A stream's items in batches of what is ready now, at most `max_items`
/// and `max_bytes` each (by `size`): `ready_chunks` with a byte budget, for
/// streams of messages sent many per response.
pub(crate) struct ReadyBatches<S: Stream, F> {
    inner: S,
    size: F,
    max_items: usize,
    max_bytes: usize,
    /// The item that would have overflowed the last batch: it starts the next.
    held: Option<S::Item>,
    done: bool,
}

impl<S: Stream, F: Fn(&S::Item) -> usize> ReadyBatches<S, F> {
    pub(crate) fn new(inner: S, max_items: usize, max_bytes: usize, size: F) -> Self {
        ReadyBatches {
            inner,
            size,
            max_items: max_items.max(1),
            max_bytes,
            held: None,
            done: false,
        }
    }
}

impl<S, F> Stream for ReadyBatches<S, F>
where
    S: Stream + Unpin,
    S::Item: Unpin,
    F: Fn(&S::Item) -> usize + Unpin,
{
    type Item = Vec<S::Item>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut batch = Batcher::new(this.max_bytes);
        if let Some(item) = this.held.take() {
            let n = (this.size)(&item);
            batch.push(item, n);
        }
        while batch.len() < this.max_items && !this.done {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    let n = (this.size)(&item);
                    if batch.would_overflow(n) {
                        this.held = Some(item);
                        break;
                    }
                    batch.push(item, n);
                }
                Poll::Ready(None) => this.done = true,
                Poll::Pending => break,
            }
        }
        if !batch.is_empty() {
            Poll::Ready(Some(batch.take()))
        } else if this.done {
            Poll::Ready(None)
        } else {
            Poll::Pending
        }
    }
}

/// Bytes an input's encoding adds beyond its payloads, at most: its tags,
/// lengths, id and attempt.
const INPUT_OVERHEAD: usize = 48;

/// The commands that hand `inputs` to a container: one, or several when
/// they do not fit in one message (inputs keep their order). Sizing is a
/// sum of payload lengths; only a batch that may be too large is measured
/// exactly.
pub(crate) fn input_commands(inputs: Vec<proto::ContainerInput>) -> Vec<proto::ContainerCommand> {
    let command = |inputs| proto::ContainerCommand {
        cmd: Some(container_command::Cmd::Inputs(proto::InputBatch { inputs })),
    };
    let at_most: usize = inputs
        .iter()
        .map(|i| i.args.len() + i.method.len() + i.args_blob.len() + INPUT_OVERHEAD)
        .sum();
    if at_most <= BATCH_BYTES || inputs.len() == 1 {
        return vec![command(inputs)];
    }
    cut_by_bytes(inputs, BATCH_BYTES, entry_len)
        .into_iter()
        .map(command)
        .collect()
}

/// `message` cut to [`MAX_FAILURE_MESSAGE_BYTES`] (at a character
/// boundary), saying how much was cut.
pub(crate) fn bound_failure_message(mut message: String) -> String {
    if message.len() <= MAX_FAILURE_MESSAGE_BYTES {
        return message;
    }
    let total = message.len();
    let mut end = MAX_FAILURE_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(&format!(" … ({} of {total} bytes cut)", total - end));
    message
}

/// The refusal of a message over the size limit (tonic's own wording),
/// with what to do instead; `None` for any other status.
pub(crate) fn explain_oversize(code: tonic::Code, message: &str) -> Option<String> {
    if code != tonic::Code::OutOfRange
        || !message.contains("message length too large")
        || message.contains("blob store")
    {
        return None;
    }
    Some(format!(
        "{message}. A gRPC message to or from a modal-rs control plane may be at most \
         {MAX_MESSAGE_BYTES} bytes ({} MiB): payloads over {INLINE_LIMIT} bytes ({} MiB) must \
         travel through the control plane's blob store by id (upload with `PutBlob`, then send \
         the id in `args_blob`), as modal-rs clients do",
        MAX_MESSAGE_BYTES >> 20,
        INLINE_LIMIT >> 20,
    ))
}

/// `status` with [`explain_oversize`]'s wording when it is a size refusal.
pub(crate) fn explain_status(status: tonic::Status) -> tonic::Status {
    match explain_oversize(status.code(), status.message()) {
        Some(message) => tonic::Status::new(status.code(), message),
        None => status,
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[test]
    fn batches_are_cut_by_bytes_and_a_large_item_goes_alone() {
        let batches = cut_by_bytes([3, 3, 3, 10, 1, 1], 7, |n| *n);
        assert_eq!(batches, vec![vec![3, 3], vec![3], vec![10], vec![1, 1]]);
        assert!(cut_by_bytes(Vec::<usize>::new(), 7, |n| *n).is_empty());
    }

    #[test]
    fn entry_len_is_what_the_item_adds_to_its_message() {
        let output = |len: usize| proto::MapOutput {
            index: 7,
            outcome: Some(proto::Outcome {
                result: Some(proto::outcome::Result::Value(vec![0; len].into())),
            }),
        };
        for len in [0, 100, 1 << 20] {
            let items = vec![output(len), output(len + 1)];
            let sum: usize = items.iter().map(entry_len).sum();
            let message = proto::MapResponse { outputs: items };
            assert_eq!(prost::Message::encoded_len(&message), sum);
        }
    }

    #[tokio::test]
    async fn ready_batches_take_what_is_ready_up_to_the_byte_budget() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
        for n in [4, 4, 4, 1, 9, 1] {
            tx.send(n).unwrap();
        }
        let rx = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
        let mut batches = ReadyBatches::new(rx, 3, 8, |n: &usize| *n);
        assert_eq!(batches.next().await.unwrap(), vec![4, 4]);
        assert_eq!(batches.next().await.unwrap(), vec![4, 1]);
        assert_eq!(batches.next().await.unwrap(), vec![9]);
        assert_eq!(batches.next().await.unwrap(), vec![1]);
        // Nothing ready: it waits, then takes what came, up to the count.
        tx.send(1).unwrap();
        tx.send(1).unwrap();
        tx.send(1).unwrap();
        tx.send(1).unwrap();
        assert_eq!(batches.next().await.unwrap(), vec![1, 1, 1]);
        drop(tx);
        assert_eq!(batches.next().await.unwrap(), vec![1]);
        assert!(batches.next().await.is_none());
    }

    #[test]
    fn a_large_input_batch_goes_to_a_container_in_several_commands() {
        let input = |id: u64| proto::ContainerInput {
            input_id: id,
            args: vec![0; 3 << 20].into(),
            ..Default::default()
        };
        let commands = input_commands((0..10).map(input).collect());
        assert!(commands.len() > 1);
        let mut ids = Vec::new();
        for command in commands {
            assert!(prost::Message::encoded_len(&command) <= BATCH_BYTES);
            let Some(container_command::Cmd::Inputs(batch)) = command.cmd else {
                panic!("an input batch")
            };
            ids.extend(batch.inputs.iter().map(|i| i.input_id));
        }
        assert_eq!(ids, (0..10).collect::<Vec<_>>());
        let small = input_commands(vec![proto::ContainerInput::default(); 3]);
        assert_eq!(small.len(), 1);
    }

    #[test]
    fn a_long_failure_message_is_cut_at_a_character_boundary() {
        assert_eq!(bound_failure_message("short".into()), "short");
        let long = "é".repeat(MAX_FAILURE_MESSAGE_BYTES);
        let cut = bound_failure_message(long);
        assert!(cut.len() < MAX_FAILURE_MESSAGE_BYTES + 64);
        assert!(cut.ends_with(&format!(
            "({} of {} bytes cut)",
            MAX_FAILURE_MESSAGE_BYTES,
            2 * MAX_FAILURE_MESSAGE_BYTES
        )));
    }

    #[test]
    fn a_size_refusal_says_to_use_the_blob_store() {
        let tonic = "Error, decoded message length too large: found 314572815 bytes, \
                     the limit is: 16777216 bytes";
        let text = explain_oversize(tonic::Code::OutOfRange, tonic).unwrap();
        assert!(text.starts_with(tonic));
        assert!(text.contains("16777216 bytes (16 MiB)") && text.contains("blob store"));
        // Explaining twice changes nothing; other statuses are left alone.
        assert!(explain_oversize(tonic::Code::OutOfRange, &text).is_none());
        assert!(explain_oversize(tonic::Code::Internal, tonic).is_none());
    }
}
