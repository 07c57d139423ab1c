//! How arguments and results travel: MessagePack through serde, encoded once.
//!
//! Arguments are encoded as a tuple of the function's parameters, results as
//! the function's success value. A user error never travels as a value: it
//! becomes a [`CallFailure`] carrying the error's text.

use std::fmt::Display;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why one input failed inside a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// The function returned `Err`; the text is the error's `Display`.
    User(String),
    /// The function panicked; the text is the panic message.
    Panic(String),
    /// The arguments could not be decoded as the function's parameter types.
    BadInput(String),
    /// The result could not be encoded.
    BadOutput(String),
    /// The attempt ran past the function's `timeout`.
    Timeout(String),
}

/// Encodes a value for the wire.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, rmp_serde::encode::Error> {
    rmp_serde::to_vec(value).map(Bytes::from)
}

/// Decodes a value from the wire.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

/// Container side: decodes the argument tuple of one input.
pub fn decode_args<A: DeserializeOwned>(payload: &[u8]) -> Result<A, CallFailure> {
    decode(payload).map_err(|e| {
        CallFailure::BadInput(format!(
            "the arguments do not decode as `{}`: {e}",
            std::any::type_name::<A>()
        ))
    })
}

/// Container side: encodes an infallible function's return value.
pub fn encode_output<T: Serialize>(value: &T) -> Result<Bytes, CallFailure> {
    encode(value).map_err(|e| {
        CallFailure::BadOutput(format!(
            "the result of type `{}` could not be encoded: {e}",
            std::any::type_name::<T>()
        ))
    })
}

/// Implemented for the `Result` a fallible function returns: splits it into
/// the value that travels and the error text that reaches the caller.
pub trait Fallible {
    type Ok;
    fn into_outcome(self) -> Result<Self::Ok, String>;
}

impl<T, E: Display> Fallible for Result<T, E> {
    type Ok = T;
    fn into_outcome(self) -> Result<T, String> {
        // `{:#}` shows the whole cause chain for anyhow-style errors and is
        // the plain `Display` for everything else.
        self.map_err(|e| format!("{e:#}"))
    }
}

/// Container side: encodes a fallible function's return value.
pub fn encode_fallible<R>(ret: R) -> Result<Bytes, CallFailure>
where
    R: Fallible,
    R::Ok: Serialize,
{
    match ret.into_outcome() {
        Ok(value) => encode_output(&value),
        Err(message) => Err(CallFailure::User(message)),
    }
}

/// The outcomes of one batch: one per input, in the inputs' order.
pub type BatchOutcomes = Vec<Result<Bytes, CallFailure>>;

/// What a batched function returns: `Vec<T>`, or `Result<Vec<T>, E>` with
/// `E: Display` (an `Err` fails every input of the batch).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid return type for a batched function",
    label = "a batched function returns `Vec<T>` or `Result<Vec<T>, E>`, one element per input"
)]
pub trait BatchOutput {
    /// The result of one input.
    type Item;
    fn into_items(self) -> Result<Vec<Self::Item>, String>;
}

impl<T> BatchOutput for Vec<T> {
    type Item = T;
    fn into_items(self) -> Result<Vec<T>, String> {
        Ok(self)
    }
}

impl<T, E: Display> BatchOutput for Result<Vec<T>, E> {
    type Item = T;
    fn into_items(self) -> Result<Vec<T>, String> {
        self.map_err(|e| format!("{e:#}"))
    }
}

/// Container side of a batched function: decodes each input's arguments
/// (a bad input fails alone), calls `f` once with the rest, and splits its
/// output into one outcome per input. A result of the wrong length fails
/// every input of the batch.
pub fn run_batch<Args, O>(
    payloads: Vec<Bytes>,
    f: impl FnOnce(Vec<Args>) -> O,
) -> Vec<Result<Bytes, CallFailure>>
where
    Args: DeserializeOwned,
    O: BatchOutput,
    O::Item: Serialize,
{
    let (decoded, mut outcomes) = decode_batch::<Args>(&payloads);
    if decoded.is_empty() {
        return outcomes;
    }
    let (slots, args): (Vec<usize>, Vec<Args>) = decoded.into_iter().unzip();
    split_batch(f(args), &slots, &mut outcomes);
    outcomes
}

/// [`run_batch`] for an `async fn`.
pub async fn run_batch_async<Args, O, Fut>(
    payloads: Vec<Bytes>,
    f: impl FnOnce(Vec<Args>) -> Fut,
) -> Vec<Result<Bytes, CallFailure>>
where
    Args: DeserializeOwned,
    Fut: std::future::Future<Output = O>,
    O: BatchOutput,
    O::Item: Serialize,
{
    let (decoded, mut outcomes) = decode_batch::<Args>(&payloads);
    if decoded.is_empty() {
        return outcomes;
    }
    let (slots, args): (Vec<usize>, Vec<Args>) = decoded.into_iter().unzip();
    split_batch(f(args).await, &slots, &mut outcomes);
    outcomes
}

type BatchSlots<Args> = Vec<(usize, Args)>;

pub(crate) fn decode_batch<Args: DeserializeOwned>(
    payloads: &[Bytes],
) -> (BatchSlots<Args>, Vec<Result<Bytes, CallFailure>>) {
    let mut decoded = Vec::with_capacity(payloads.len());
    let mut outcomes = Vec::with_capacity(payloads.len());
    for (slot, payload) in payloads.iter().enumerate() {
        match decode_args::<Args>(payload) {
            Ok(args) => {
                decoded.push((slot, args));
                // Filled in once the batch has run.
                outcomes.push(Ok(Bytes::new()));
            }
            Err(failure) => outcomes.push(Err(failure)),
        }
    }
    (decoded, outcomes)
}

fn split_batch<O>(output: O, slots: &[usize], outcomes: &mut [Result<Bytes, CallFailure>])
where
    O: BatchOutput,
    O::Item: Serialize,
{
    split_batch_with(output, slots, outcomes, encode_output::<O::Item>);
}

/// Fills the outcomes of a batch's decoded inputs (`slots`) from its output,
/// encoding each item with `encode`.
pub(crate) fn split_batch_with<O: BatchOutput>(
    output: O,
    slots: &[usize],
    outcomes: &mut [Result<Bytes, CallFailure>],
    encode: fn(&O::Item) -> Result<Bytes, CallFailure>,
) {
    match output.into_items() {
        Ok(items) if items.len() == slots.len() => {
            for (slot, item) in slots.iter().zip(items) {
                outcomes[*slot] = encode(&item);
            }
        }
        Ok(items) => {
            let message = format!(
                "the batched function returned {} results for a batch of {} inputs; it must return exactly one per input, in order",
                items.len(),
                slots.len()
            );
            for slot in slots {
                outcomes[*slot] = Err(CallFailure::BadOutput(message.clone()));
            }
        }
        Err(message) => {
            for slot in slots {
                outcomes[*slot] = Err(CallFailure::User(message.clone()));
            }
        }
    }
}

/// The type signature callers are checked against: argument tuple and
/// success type, with full paths.
pub fn fingerprint<Args: ?Sized, Ret: ?Sized>() -> String {
    format!(
        "{} -> {}",
        std::any::type_name::<Args>(),
        std::any::type_name::<Ret>()
    )
}

/// Best-effort text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip_as_tuples() {
        let bytes = encode(&(3_i64, "x".to_string())).unwrap();
        let (a, b): (i64, String) = decode_args(&bytes).unwrap();
        assert_eq!((a, b.as_str()), (3, "x"));
    }

    #[test]
    fn wrong_argument_types_name_the_expected_type() {
        let bytes = encode(&("not a number",)).unwrap();
        let err = decode_args::<(u64,)>(&bytes).unwrap_err();
        match err {
            CallFailure::BadInput(m) => assert!(m.contains("(u64,)"), "{m}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn user_errors_keep_their_text() {
        let r: Result<u8, String> = Err("boom".into());
        assert_eq!(encode_fallible(r), Err(CallFailure::User("boom".into())));
    }

    #[test]
    fn batches_split_into_one_outcome_per_input() {
        let payloads = vec![
            encode(&(2_u32,)).unwrap(),
            encode(&("bad",)).unwrap(),
            encode(&(5_u32,)).unwrap(),
        ];
        let out = run_batch(payloads, |xs: Vec<(u32,)>| {
            xs.into_iter().map(|(x,)| x * 10).collect::<Vec<u32>>()
        });
        assert_eq!(decode::<u32>(out[0].as_ref().unwrap()).unwrap(), 20);
        assert!(matches!(out[1], Err(CallFailure::BadInput(_))));
        assert_eq!(decode::<u32>(out[2].as_ref().unwrap()).unwrap(), 50);
    }

    #[test]
    fn a_batch_of_the_wrong_length_fails_every_input() {
        let payloads = vec![encode(&(1_u8,)).unwrap(), encode(&(2_u8,)).unwrap()];
        let out = run_batch(payloads, |_: Vec<(u8,)>| vec![0_u8]);
        for o in out {
            match o {
                Err(CallFailure::BadOutput(m)) => {
                    assert!(m.contains("returned 1 results for a batch of 2"), "{m}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn fingerprint_names_both_sides() {
        assert_eq!(
            fingerprint::<(i64, String), u64>(),
            "(i64, alloc::string::String) -> u64"
        );
    }
}
