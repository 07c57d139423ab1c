//! How arguments and results travel: MessagePack through serde, encoded once.
//!
//! Arguments are encoded as a tuple of the function's parameters, results as
//! the function's success value. A user error becomes a [`CallFailure`]
//! carrying the error's text and, when its type is serde's, the error itself
//! encoded, for a caller to decode and match on ([`crate::Error::user_error`]).

use std::fmt::Display;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::shape::Shape;

/// Why one input failed inside a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// The function returned `Err`.
    User(UserFailure),
    /// The function panicked; the text is the panic message.
    Panic(String),
    /// The arguments could not be decoded as the function's parameter types.
    BadInput(String),
    /// The result could not be encoded.
    BadOutput(String),
    /// The attempt ran past the function's `timeout`.
    Timeout(String),
}

/// A user's error as it travels: its text (`{:#}`, the whole cause chain of
/// anyhow-style errors) and, for an error type that is serde's, the error
/// itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFailure {
    pub message: String,
    /// The encoded error; `None` when its type is not `Serialize`, or when
    /// it encodes to more than [`MAX_FAILURE_MESSAGE_BYTES`] (the text still
    /// travels).
    ///
    /// [`MAX_FAILURE_MESSAGE_BYTES`]: crate::contract::MAX_FAILURE_MESSAGE_BYTES
    pub value: Option<Bytes>,
}

impl UserFailure {
    /// An error known by its text only.
    pub fn text(message: impl Into<String>) -> CallFailure {
        CallFailure::User(UserFailure {
            message: message.into(),
            value: None,
        })
    }
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
/// the value that travels and the error the caller gets.
pub trait Fallible {
    type Ok;
    type Err: Display;
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
}

impl<T, E: Display> Fallible for Result<T, E> {
    type Ok = T;
    type Err = E;
    fn into_result(self) -> Result<T, E> {
        self
    }
}

/// Container side: encodes a fallible function's return value.
/// `encode_error` gives the error's own encoding, if it has one: generated
/// code passes [`ErrorValue`]'s `encode_error`, which is the serde encoding
/// for an error type that is `Serialize` and nothing for any other.
pub fn encode_fallible<R>(
    ret: R,
    encode_error: impl FnOnce(&R::Err) -> Option<Bytes>,
) -> Result<Bytes, CallFailure>
where
    R: Fallible,
    R::Ok: Serialize,
{
    encode_fallible_with(ret, encode_output::<R::Ok>, encode_error)
}

/// [`encode_fallible`] with the success value's encoder given.
pub(crate) fn encode_fallible_with<R: Fallible>(
    ret: R,
    encode: fn(&R::Ok) -> Result<Bytes, CallFailure>,
    encode_error: impl FnOnce(&R::Err) -> Option<Bytes>,
) -> Result<Bytes, CallFailure> {
    match ret.into_result() {
        Ok(value) => encode(&value),
        Err(error) => Err(user_failure(&error, encode_error(&error))),
    }
}

/// The failure of a user's `error`, with its encoding if it has one.
pub fn user_failure<E: Display + ?Sized>(error: &E, value: Option<Bytes>) -> CallFailure {
    CallFailure::User(UserFailure {
        // `{:#}` shows the whole cause chain for anyhow-style errors and is
        // the plain `Display` for everything else.
        message: format!("{error:#}"),
        value: value.filter(|v| v.len() <= crate::contract::MAX_FAILURE_MESSAGE_BYTES),
    })
}

/// A user's error, to be encoded if its type allows: `(&ErrorValue(&e))
/// .encode_error()` with both [`EncodeSerdeError`] and
/// [`EncodeOpaqueError`] in scope picks the serde encoding when `E:
/// Serialize` and `None` otherwise (method lookup tries the impl on
/// `ErrorValue` before the one on `&ErrorValue`).
pub struct ErrorValue<'a, E: ?Sized>(pub &'a E);

/// See [`ErrorValue`].
pub trait EncodeSerdeError {
    fn encode_error(&self) -> Option<Bytes>;
}

impl<E: Serialize + ?Sized> EncodeSerdeError for ErrorValue<'_, E> {
    fn encode_error(&self) -> Option<Bytes> {
        encode(self.0).ok()
    }
}

/// See [`ErrorValue`].
pub trait EncodeOpaqueError {
    fn encode_error(&self) -> Option<Bytes>;
}

impl<E: ?Sized> EncodeOpaqueError for &ErrorValue<'_, E> {
    fn encode_error(&self) -> Option<Bytes> {
        None
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
    run_batch_with(&payloads, decode_batch::<Args>, encode_output::<O::Item>, f)
}

/// [`run_batch`] with the decoder and encoder given.
pub(crate) fn run_batch_with<Args, O: BatchOutput>(
    payloads: &[Bytes],
    decode: fn(&[Bytes]) -> (BatchSlots<Args>, BatchOutcomes),
    encode: fn(&O::Item) -> Result<Bytes, CallFailure>,
    f: impl FnOnce(Vec<Args>) -> O,
) -> BatchOutcomes {
    let (decoded, mut outcomes) = decode(payloads);
    if decoded.is_empty() {
        return outcomes;
    }
    let (slots, args): (Vec<usize>, Vec<Args>) = decoded.into_iter().unzip();
    split_batch(f(args), &slots, &mut outcomes, encode);
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
    run_batch_async_with(&payloads, decode_batch::<Args>, encode_output::<O::Item>, f).await
}

/// [`run_batch_async`] with the decoder and encoder given.
pub(crate) async fn run_batch_async_with<Args, O, Fut>(
    payloads: &[Bytes],
    decode: fn(&[Bytes]) -> (BatchSlots<Args>, BatchOutcomes),
    encode: fn(&O::Item) -> Result<Bytes, CallFailure>,
    f: impl FnOnce(Vec<Args>) -> Fut,
) -> BatchOutcomes
where
    Fut: std::future::Future<Output = O>,
    O: BatchOutput,
{
    let (decoded, mut outcomes) = decode(payloads);
    if decoded.is_empty() {
        return outcomes;
    }
    let (slots, args): (Vec<usize>, Vec<Args>) = decoded.into_iter().unzip();
    split_batch(f(args).await, &slots, &mut outcomes, encode);
    outcomes
}

pub(crate) type BatchSlots<Args> = Vec<(usize, Args)>;

pub(crate) fn decode_batch<Args: DeserializeOwned>(
    payloads: &[Bytes],
) -> (BatchSlots<Args>, BatchOutcomes) {
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

/// Fills the outcomes of a batch's decoded inputs (`slots`) from its output,
/// encoding each item with `encode`.
fn split_batch<O: BatchOutput>(
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
                outcomes[*slot] = Err(UserFailure::text(message.clone()));
            }
        }
    }
}

/// The signature callers are checked against: the serde shapes
/// ([`crate::shape`]) of the argument tuple and of the success type,
/// `ARGS -> RET`.
pub fn fingerprint<Args: DeserializeOwned, Ret: DeserializeOwned>() -> String {
    let (args, ret) = (Shape::of::<Args>(), Shape::of::<Ret>());
    Shape::written(
        &format!("{} -> {}", args.format, ret.format),
        &[&args, &ret],
    )
}

/// [`fingerprint`] of a generator yielding `Item` and returning `R`:
/// `ARGS -> Generator<ITEM, R>`.
pub fn fingerprint_generator<Args, Item, R>() -> String
where
    Args: DeserializeOwned,
    Item: DeserializeOwned,
    R: DeserializeOwned,
{
    let (args, item, r) = (Shape::of::<Args>(), Shape::of::<Item>(), Shape::of::<R>());
    Shape::written(
        &format!(
            "{} -> Generator<{}, {}>",
            args.format, item.format, r.format
        ),
        &[&args, &item, &r],
    )
}

/// `signature` (a [`fingerprint`]) with an error type's shape, if it has one.
pub fn with_error_shape(signature: String, error: Option<String>) -> String {
    match error {
        Some(error) => format!("{signature}{ERROR_SEPARATOR}{error}"),
        None => signature,
    }
}

/// Between a fingerprint's signature and its error type's shape. No shape
/// or type path holds it.
const ERROR_SEPARATOR: &str = " | error: ";

/// Whether a caller that expects `expected` may call a function deployed
/// as `deployed`: the signatures must be the same; so must the error types,
/// unless the caller names none (a plain `Function<Args, Ret>` handle, which
/// can decode no error value, or a function whose error type is not serde's).
pub fn fingerprints_match(deployed: &str, expected: &str) -> bool {
    let split = |f: &'_ str| -> (String, Option<String>) {
        match f.split_once(ERROR_SEPARATOR) {
            Some((signature, error)) => (signature.to_owned(), Some(error.to_owned())),
            None => (f.to_owned(), None),
        }
    };
    let (deployed_signature, deployed_error) = split(deployed);
    let (expected_signature, expected_error) = split(expected);
    deployed_signature == expected_signature
        && (expected_error.is_none() || expected_error == deployed_error)
}

/// The shape of a function's error type, if it is serde's: `(&ErrorShape::
/// <E>::new()).error_shape()` with both [`TracedErrorShape`] and
/// [`OpaqueErrorShape`] in scope gives `Some(shape)` when `E:
/// DeserializeOwned` and `None` otherwise.
pub struct ErrorShape<E: ?Sized>(std::marker::PhantomData<fn() -> Box<E>>);

impl<E: ?Sized> ErrorShape<E> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        ErrorShape(std::marker::PhantomData)
    }
}

/// See [`ErrorShape`].
pub trait TracedErrorShape {
    fn error_shape(&self) -> Option<String>;
}

impl<E: DeserializeOwned> TracedErrorShape for ErrorShape<E> {
    fn error_shape(&self) -> Option<String> {
        Some(crate::shape::of::<E>())
    }
}

/// See [`ErrorShape`].
pub trait OpaqueErrorShape {
    fn error_shape(&self) -> Option<String>;
}

impl<E: ?Sized> OpaqueErrorShape for &ErrorShape<E> {
    fn error_shape(&self) -> Option<String> {
        None
    }
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
        assert_eq!(encode_fallible(r, |_| None), Err(UserFailure::text("boom")));
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    enum Refusal {
        TooBig { limit: u32 },
    }

    impl std::fmt::Display for Refusal {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "too big")
        }
    }

    struct Opaque;

    impl std::fmt::Display for Opaque {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "opaque")
        }
    }

    #[test]
    fn an_error_value_over_the_failure_limit_travels_as_text_only() {
        let big = "x".repeat(crate::contract::MAX_FAILURE_MESSAGE_BYTES + 1);
        let value = encode(&big).unwrap();
        let CallFailure::User(failure) = user_failure(&big, Some(value)) else {
            panic!("not a user failure");
        };
        assert_eq!(failure.value, None);
        assert_eq!(failure.message.len(), big.len());
        let small = encode(&"ok").unwrap();
        let CallFailure::User(failure) = user_failure("ok", Some(small.clone())) else {
            panic!("not a user failure");
        };
        assert_eq!(failure.value, Some(small));
    }

    #[test]
    // The borrow picks the impl; it is needless only where the serde one applies.
    #[allow(clippy::needless_borrow)]
    fn serde_errors_travel_as_values_and_others_as_text() {
        #[allow(unused_imports)]
        use super::{EncodeOpaqueError as _, EncodeSerdeError as _};
        let r: Result<u8, Refusal> = Err(Refusal::TooBig { limit: 3 });
        let Err(CallFailure::User(failure)) =
            encode_fallible(r, |e| (&ErrorValue(e)).encode_error())
        else {
            panic!("not a user failure");
        };
        assert_eq!(failure.message, "too big");
        let value = failure.value.expect("a serde error travels as a value");
        assert_eq!(
            decode::<Refusal>(&value).unwrap(),
            Refusal::TooBig { limit: 3 }
        );

        let r: Result<u8, Opaque> = Err(Opaque);
        assert_eq!(
            encode_fallible(r, |e| (&ErrorValue(e)).encode_error()),
            Err(UserFailure::text("opaque"))
        );
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

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Point {
        x: i64,
        y: i64,
    }

    #[test]
    fn fingerprint_names_both_sides() {
        assert_eq!(fingerprint::<(i64, String), u64>(), "(i64, String) -> u64");
        assert_eq!(
            fingerprint::<(Point, u8), Vec<Point>>(),
            "(Point, u8) -> Vec<Point> where struct Point { x: i64, y: i64 }"
        );
        assert_eq!(
            fingerprint_generator::<(u8,), Point, ()>(),
            "(u8,) -> Generator<Point, ()> where struct Point { x: i64, y: i64 }"
        );
    }

    #[test]
    #[allow(clippy::needless_borrow)]
    fn error_shapes_join_the_fingerprint_when_serde() {
        #[allow(unused_imports)]
        use super::{OpaqueErrorShape as _, TracedErrorShape as _};
        let typed = with_error_shape(
            fingerprint::<(u8,), u8>(),
            (&ErrorShape::<Refusal>::new()).error_shape(),
        );
        assert_eq!(
            typed,
            "(u8,) -> u8 | error: Refusal where enum Refusal { TooBig { limit: u32 } }"
        );
        let opaque = with_error_shape(
            fingerprint::<(u8,), u8>(),
            (&ErrorShape::<Opaque>::new()).error_shape(),
        );
        assert_eq!(opaque, "(u8,) -> u8");

        // A caller naming no error type matches any; one naming an error
        // type matches only the same.
        assert!(fingerprints_match(&typed, "(u8,) -> u8"));
        assert!(fingerprints_match(&typed, &typed));
        assert!(!fingerprints_match(&typed, "(u8,) -> u8 | error: String"));
        assert!(!fingerprints_match("(u8,) -> u8", &typed));
        assert!(!fingerprints_match(&typed, "(u16,) -> u8"));
    }
}
