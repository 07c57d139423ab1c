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
    fn fingerprint_names_both_sides() {
        assert_eq!(
            fingerprint::<(i64, String), u64>(),
            "(i64, alloc::string::String) -> u64"
        );
    }
}
