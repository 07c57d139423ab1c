//! The model of `#[app::batched(max_batch_size = N, wait_ms = M)]`: the
//! attribute's options, and the element types of a batched signature (what
//! it asks of a signature is checked in `check.rs`).
//!
//! A batched function (or method) takes one `Vec` per argument and returns
//! one result per input, in order (`Vec<R>` or `Result<Vec<R>, E>`). Callers
//! never see the batches: they call it one input at a time, so its stub is
//! typed with the element types.

use std::collections::HashSet;

use syn::ext::IdentExt;
use syn::{Attribute, GenericArgument, Meta, PathArguments, Type, TypePath};

use crate::attr::{Spanned, integer, parse_raw};
use crate::errors::Errors;
use crate::model::Output;
use crate::tokens::ungroup;

pub use crate::bounds::{BATCH_MAX_SIZE as MAX_BATCH_SIZE, BATCH_WAIT_MS as WAIT_MS};

const USAGE: &str = "`#[app::batched(max_batch_size = 8, wait_ms = 100)]`";

/// A parsed `#[app::batched(...)]`; an option is `None` when it was missing
/// or wrong (already reported).
pub struct Batched {
    /// The attribute as written, for errors about the whole of it.
    pub attr: Attribute,
    pub max_batch_size: Option<Spanned<u32>>,
    pub wait_ms: Option<Spanned<u32>>,
}

impl Batched {
    /// Reads the attribute's options; both are required.
    pub fn parse(attr: &Attribute, errors: &mut Errors) -> Batched {
        let mut batched = Batched {
            attr: attr.clone(),
            max_batch_size: None,
            wait_ms: None,
        };
        let tokens = match &attr.meta {
            Meta::List(list) => list.tokens.clone(),
            Meta::Path(_) => Default::default(),
            Meta::NameValue(_) => {
                errors.spanned(attr, format!("expected {USAGE}"));
                return batched;
            }
        };
        let raw = match parse_raw(tokens) {
            Ok(raw) => raw,
            Err(error) => {
                errors.push(error);
                return batched;
            }
        };
        let mut seen = HashSet::new();
        let mut missing_reported = HashSet::new();
        for option in raw {
            let key = option.key.unraw().to_string();
            let (name, range, example) = match key.as_str() {
                "max_batch_size" => ("max_batch_size", MAX_BATCH_SIZE, "max_batch_size = 8"),
                "wait_ms" => ("wait_ms", WAIT_MS, "wait_ms = 100"),
                _ => {
                    let mut message = format!(
                        "unknown option `{key}` of `#[app::batched]`; expected `max_batch_size` and `wait_ms`"
                    );
                    if let Some(meant) = suggest(&key) {
                        message.push_str(&format!("; did you mean `{meant}`?"));
                    }
                    errors.spanned(&option.key, message);
                    continue;
                }
            };
            if !seen.insert(name) {
                errors.spanned(
                    &option.key,
                    format!("duplicate option `{name}`; each option may be given once"),
                );
                continue;
            }
            let Some(value) = option.value else {
                errors.spanned(
                    &option.key,
                    format!("option `{name}` needs a value, e.g. `{example}`"),
                );
                missing_reported.insert(name);
                continue;
            };
            let expected = || value.error(format!("`{name}` expects an integer, e.g. `{example}`"));
            let parsed = integer(name, &value, range, errors, expected);
            if parsed.is_none() {
                missing_reported.insert(name);
            }
            match name {
                "max_batch_size" => batched.max_batch_size = parsed,
                _ => batched.wait_ms = parsed,
            }
        }
        for (name, meaning) in [
            ("max_batch_size", "the most inputs in one batch, 1 to 1000"),
            (
                "wait_ms",
                "how long a batch waits for more inputs after its first, 0 to 600000 milliseconds",
            ),
        ] {
            if !seen.contains(name) && !missing_reported.contains(name) {
                errors.spanned(
                    attr,
                    format!("`#[app::batched]` needs `{name}` ({meaning}): write {USAGE}"),
                );
            }
        }
        batched
    }

    /// Both options, when both were given and valid.
    pub fn values(&self) -> Option<(u32, u32)> {
        Some((
            self.max_batch_size.as_ref()?.value,
            self.wait_ms.as_ref()?.value,
        ))
    }
}

/// The option of `#[app::batched]` the user probably meant.
fn suggest(key: &str) -> Option<&'static str> {
    const ALIASES: &[(&str, &str)] = &[
        ("batch_max_size", "max_batch_size"),
        ("max_size", "max_batch_size"),
        ("size", "max_batch_size"),
        ("batch_size", "max_batch_size"),
        ("max_batch", "max_batch_size"),
        ("batch_wait_ms", "wait_ms"),
        ("wait", "wait_ms"),
        ("wait_time", "wait_ms"),
        ("timeout_ms", "wait_ms"),
        ("wait_millis", "wait_ms"),
    ];
    crate::tokens::suggest(key, ALIASES, ["max_batch_size", "wait_ms"])
}

/// `T` for `Vec<T>` as written: any path ending in `Vec` with one type
/// argument (`Vec<T>`, `std::vec::Vec<T>`).
pub fn vec_element(ty: &Type) -> Option<&Type> {
    let Type::Path(TypePath { qself: None, path }) = ungroup(ty) else {
        return None;
    };
    let last = path.segments.last()?;
    if last.ident != "Vec" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    let element = types.next()?;
    types.next().is_none().then_some(element)
}

/// The result of one input: `R` for `-> Vec<R>` and `-> Result<Vec<R>, E>`.
pub fn output_element(output: &Output) -> Option<&Type> {
    match output {
        Output::Plain(ty) => vec_element(ty),
        Output::Fallible { ok: Some(ok), .. } => vec_element(ok),
        Output::Fallible { ok: None, .. } | Output::Unit => None,
    }
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    fn parse(attr: Attribute) -> (Batched, Vec<String>) {
        let mut errors = Errors::new();
        let batched = Batched::parse(&attr, &mut errors);
        (batched, errors.messages())
    }

    #[test]
    fn options() {
        let (b, errors) = parse(parse_quote!(#[app::batched(max_batch_size = 8, wait_ms = 0)]));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(b.values(), Some((8, 0)));
        let (b, errors) = parse(parse_quote!(#[batched(wait_ms = 600000, max_batch_size = 1000,)]));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(b.values(), Some((1000, 600000)));
    }

    #[test]
    fn both_options_are_required() {
        let (b, errors) = parse(parse_quote!(#[app::batched]));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("`#[app::batched]` needs `max_batch_size`"));
        assert!(errors[1].starts_with("`#[app::batched]` needs `wait_ms`"));
        assert_eq!(b.values(), None);
        let (_, errors) = parse(parse_quote!(#[app::batched(max_batch_size = 2)]));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("`#[app::batched]` needs `wait_ms`"));
    }

    #[test]
    fn out_of_range_and_wrong_options() {
        let (_, errors) =
            parse(parse_quote!(#[app::batched(max_batch_size = 0, wait_ms = 600001)]));
        assert_eq!(
            errors,
            [
                "`max_batch_size` is 0, but must be between 1 and 1000",
                "`wait_ms` is 600001, but must be between 0 and 600000"
            ]
        );
        let (_, errors) =
            parse(parse_quote!(#[app::batched(batch_max_size = 2, wait_ms = 1, wait_ms = 2)]));
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].ends_with("did you mean `max_batch_size`?"),
            "{errors:?}"
        );
        assert!(errors[1].starts_with("duplicate option `wait_ms`"));
        assert!(errors[2].starts_with("`#[app::batched]` needs `max_batch_size`"));
        let (_, errors) = parse(parse_quote!(#[app::batched(max_batch_size = "8", wait_ms)]));
        assert_eq!(
            errors,
            [
                "`max_batch_size` expects an integer, e.g. `max_batch_size = 8`",
                "option `wait_ms` needs a value, e.g. `wait_ms = 100`"
            ]
        );
        let (_, errors) = parse(parse_quote!(#[app::batched = 3]));
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn elements() {
        let element =
            |ty: Type| vec_element(&ty).map(|t| quote::ToTokens::to_token_stream(t).to_string());
        assert_eq!(element(parse_quote!(Vec<u8>)).as_deref(), Some("u8"));
        assert_eq!(
            element(parse_quote!(std::vec::Vec<(u8, String)>)).as_deref(),
            Some("(u8 , String)")
        );
        assert_eq!(element(parse_quote!(Vec)), None);
        assert_eq!(element(parse_quote!(Vec<u8, A>)), None);
        assert_eq!(element(parse_quote!([u8; 2])), None);
        assert_eq!(element(parse_quote!(VecDeque<u8>)), None);
    }

    #[test]
    fn output_elements() {
        let out = |ty: syn::ReturnType| {
            output_element(&Output::from_return_type(&ty))
                .map(|t| quote::ToTokens::to_token_stream(t).to_string())
        };
        assert_eq!(out(parse_quote!(-> Vec<u8>)).as_deref(), Some("u8"));
        assert_eq!(
            out(parse_quote!(-> Result<Vec<u8>, E>)).as_deref(),
            Some("u8")
        );
        assert_eq!(
            out(parse_quote!(-> anyhow::Result<Vec<u8>>)).as_deref(),
            Some("u8")
        );
        assert_eq!(out(parse_quote!(-> Result)), None);
        assert_eq!(out(parse_quote!()), None);
        assert_eq!(out(parse_quote!(-> Option<Vec<u8>>)), None);
    }
}
