//! Property tests of what clients send: any bytes, as any request that
//! carries client data, decode to a value or fail cleanly; and any numbers
//! in the options of a manifest or of class overrides are checked without a
//! panic, whatever they are.

use proptest::prelude::*;
use prost::Message;

use crate::options::{ClsOptions, FunctionOptions};
use crate::proto;
use crate::registry::Manifest;

/// The numeric fields of `FunctionOptions` as JSON.
const FUNCTION_NUMBERS: &[&str] = &[
    "cpu",
    "cpu_limit",
    "memory_mib",
    "memory_limit_mib",
    "timeout_secs",
    "retries",
    "retry_backoff_coefficient",
    "retry_initial_delay_ms",
    "retry_max_delay_ms",
    "startup_timeout_secs",
    "max_containers",
    "min_containers",
    "buffer_containers",
    "scaledown_window_secs",
    "max_inputs",
    "target_inputs",
    "batch_max_size",
    "batch_wait_ms",
];

/// The numeric fields of `ClsOptions` as JSON.
const OVERRIDE_NUMBERS: &[&str] = &[
    "cpu",
    "cpu_limit",
    "memory_mib",
    "memory_limit_mib",
    "retries",
    "startup_timeout_secs",
    "max_containers",
    "buffer_containers",
    "scaledown_window_secs",
    "timeout_secs",
    "max_inputs",
    "target_inputs",
    "batch_max_size",
    "batch_wait_ms",
];

/// A JSON number of any kind, mostly small (so that whole option sets
/// parse often and reach the checks), sometimes anything a hostile client
/// may send.
fn number() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        8 => (0_u32..200).prop_map(serde_json::Value::from),
        1 => any::<u64>().prop_map(serde_json::Value::from),
        1 => any::<i64>().prop_map(serde_json::Value::from),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::from(0), serde_json::Value::Number)),
    ]
}

/// For each numeric field, a new value or (`None`) the one it has.
fn numbers(fields: usize) -> impl Strategy<Value = Vec<Option<serde_json::Value>>> {
    proptest::collection::vec(proptest::option::weighted(0.5, number()), fields)
}

/// `base` with its fields `keys` set to `numbers` where given.
fn with_numbers(
    mut base: serde_json::Value,
    keys: &[&str],
    numbers: &[Option<serde_json::Value>],
) -> serde_json::Value {
    if let serde_json::Value::Object(fields) = &mut base {
        for (key, value) in keys.iter().zip(numbers) {
            if let Some(value) = value {
                fields.insert((*key).to_owned(), value.clone());
            }
        }
    }
    base
}

fn manifest_with(options: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "functions": [{
            "name": "f",
            "rust_path": "f",
            "fingerprint": "",
            "arity": 1,
            "options": options,
        }]
    })
}

proptest! {
    #[test]
    fn any_bytes_decode_as_any_request_or_fail_cleanly(
        bytes in proptest::collection::vec(any::<u8>(), 0..512)
    ) {
        let bytes = bytes.as_slice();
        if let Ok(r) = proto::CreateAppRequest::decode(bytes)
            && let Ok(manifest) = serde_json::from_str::<Manifest>(&r.manifest_json)
        {
            let _ = manifest.validate();
        }
        if let Ok(r) = proto::BindInstanceRequest::decode(bytes)
            && let Ok(overrides) = serde_json::from_str::<ClsOptions>(&r.options_json)
        {
            let _ = overrides.apply(&FunctionOptions::DEFAULT);
        }
        if let Ok(r) = proto::GetCallOutcomeRequest::decode(bytes) {
            let cap = std::time::Duration::from_secs(55);
            prop_assert!(super::calls::long_poll(r.timeout_ms, cap) <= cap);
        }
        let _ = proto::InvokeRequest::decode(bytes);
        let _ = proto::SetWarmPoolRequest::decode(bytes);
        let _ = proto::UpdateAutoscalerRequest::decode(bytes);
        let _ = proto::HoldAppRequest::decode(bytes);
        let _ = proto::RollbackAppRequest::decode(bytes);
        let _ = proto::ContainerMessage::decode(bytes);
    }

    #[test]
    fn any_numbers_in_a_manifest_s_options_are_checked(
        numbers in numbers(FUNCTION_NUMBERS.len())
    ) {
        let defaults = serde_json::to_value(FunctionOptions::DEFAULT).unwrap();
        let options = with_numbers(defaults, FUNCTION_NUMBERS, &numbers);
        if let Ok(manifest) = serde_json::from_value::<Manifest>(manifest_with(options)) {
            let _ = manifest.validate();
        }
    }

    #[test]
    fn any_numbers_in_class_overrides_are_checked(
        numbers in numbers(OVERRIDE_NUMBERS.len())
    ) {
        let overrides = with_numbers(serde_json::json!({}), OVERRIDE_NUMBERS, &numbers);
        if let Ok(overrides) = serde_json::from_value::<ClsOptions>(overrides) {
            let _ = overrides.apply(&FunctionOptions::DEFAULT);
        }
    }
}

/// The properties above reach `validate` and `apply`: small numbers parse.
#[test]
fn options_of_small_numbers_parse_and_are_checked() {
    let small: Vec<_> = FUNCTION_NUMBERS
        .iter()
        .map(|_| Some(serde_json::Value::from(1)))
        .collect();
    let defaults = serde_json::to_value(FunctionOptions::DEFAULT).unwrap();
    let options = with_numbers(defaults, FUNCTION_NUMBERS, &small);
    let manifest: Manifest = serde_json::from_value(manifest_with(options)).unwrap();
    let err = manifest.validate().unwrap_err();
    assert!(err.contains("function `f`"), "{err}");
    let overrides: ClsOptions = serde_json::from_value(with_numbers(
        serde_json::json!({}),
        OVERRIDE_NUMBERS,
        &small,
    ))
    .unwrap();
    assert!(overrides.apply(&FunctionOptions::DEFAULT).is_err());
}
