//! The options of `#[app::function(...)]` and `#[app::cls(...)]`: parsed once
//! into [`Options`], every value checked on the token the user wrote.
//!
//! Parsing has two steps: the syntax (`key = value, ...`, where a value is an
//! expression, a `{ "K": "v" }` map or a `[...]` list) and then the meaning of
//! each key, so that a wrong value is reported on the value and a wrong key on
//! the key, and one bad option does not hide the others.

use std::collections::HashSet;
use std::ops::RangeInclusive;

use crate::tokens::ungroup;
use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, ExprUnary, Ident, Lit, LitStr, Token, UnOp, braced, bracketed, token};

use crate::container::{self, GpuRequest, ImageReference};
use crate::errors::Errors;

/// A value together with the span of the tokens it was read from.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

/// Every option of `#[app::function(...)]` (and of `#[app::cls(...)]`);
/// `None` where not given (the runtime's `FunctionOptions::DEFAULT` applies).
#[derive(Debug, Default)]
pub struct Options {
    pub name: Option<Spanned<String>>,
    /// The request of `cpu = request` or `cpu = (request, limit)`.
    pub cpu: Option<Spanned<f64>>,
    /// The limit of `cpu = (request, limit)`, checked to be at least the request.
    pub cpu_limit: Option<Spanned<f64>>,
    pub memory_mib: Option<Spanned<u32>>,
    pub memory_limit_mib: Option<Spanned<u32>>,
    /// In normal form (`"h100:2"` is stored as `"H100:2"`).
    pub gpu: Option<Spanned<String>>,
    pub image: Option<Spanned<String>>,
    pub timeout_secs: Option<Spanned<u32>>,
    pub retries: Option<Spanned<u32>>,
    /// `retries = { max_retries: .., backoff_coefficient: .., ... }`.
    pub retry_policy: Option<Spanned<RetryPolicy>>,
    pub startup_timeout_secs: Option<Spanned<u32>>,
    pub max_containers: Option<Spanned<u32>>,
    pub min_containers: Option<Spanned<u32>>,
    pub buffer_containers: Option<Spanned<u32>>,
    pub scaledown_window_secs: Option<Spanned<u32>>,
    pub env: Option<Spanned<Vec<(String, String)>>>,
    pub secrets: Option<Spanned<Vec<String>>>,
    /// `(mount path, volume name)`, in the order written.
    pub volumes: Option<Spanned<Vec<(String, String)>>>,
    pub region: Option<Spanned<String>>,
    pub cloud: Option<Spanned<String>>,
    pub max_inputs: Option<Spanned<u32>>,
    pub target_inputs: Option<Spanned<u32>>,
    pub schedule: Option<crate::schedule::Given>,
}

pub use crate::bounds::{MAX_INPUTS, RETRIES, SCALEDOWN_WINDOW_SECS, TIMEOUT_SECS};
use crate::bounds::{RETRY_BACKOFF_COEFFICIENT, RETRY_INITIAL_DELAY_MS, RETRY_MAX_DELAY_MS};
/// Longest function name accepted.
pub const NAME_MAX_LEN: usize = 64;

/// Each option and what its value should look like, in the order messages
/// list them.
const OPTIONS: &[(&str, &str)] = &[
    ("name", "a string, e.g. `name = \"resize-image\"`"),
    (
        "cpu",
        "a number of CPU cores, e.g. `cpu = 2` or `cpu = 0.5`, or a `(request, limit)` pair, e.g. `cpu = (0.5, 2.0)`",
    ),
    (
        "memory",
        "an integer number of MiB, e.g. `memory = 1024`, or a `(request, limit)` pair, e.g. `memory = (1024, 4096)`",
    ),
    (
        "gpu",
        "a string naming a GPU type and an optional count, e.g. `gpu = \"A100\"` or `gpu = \"H100:2\"`",
    ),
    (
        "image",
        "a string naming a Docker image the containers start from, e.g. `image = \"python:3.12-slim\"`",
    ),
    (
        "timeout",
        "an integer number of seconds, e.g. `timeout = 60`",
    ),
    (
        "retries",
        "an integer, e.g. `retries = 3`, or a policy, e.g. `retries = { max_retries: 3, backoff_coefficient: 2.0, initial_delay: 1.0, max_delay: 30.0 }` (delays in seconds)",
    ),
    (
        "startup_timeout",
        "an integer number of seconds, e.g. `startup_timeout = 120`",
    ),
    ("max_containers", "an integer, e.g. `max_containers = 10`"),
    ("min_containers", "an integer, e.g. `min_containers = 1`"),
    (
        "buffer_containers",
        "an integer, e.g. `buffer_containers = 1`",
    ),
    (
        "scaledown_window",
        "an integer number of seconds, e.g. `scaledown_window = 60`",
    ),
    (
        "env",
        "a map of string literals, e.g. `env = { \"RUST_LOG\": \"info\" }`",
    ),
    (
        "secrets",
        "a list of secret names, e.g. `secrets = [\"db-password\"]`",
    ),
    (
        "volumes",
        "a map of mount path to volume name, e.g. `volumes = { \"/data\": \"my-volume\" }`",
    ),
    ("region", "a string, e.g. `region = \"us-east\"`"),
    ("cloud", "a string, e.g. `cloud = \"aws\"`"),
    (
        "max_inputs",
        "an integer number of inputs one container runs at once, e.g. `max_inputs = 8`",
    ),
    (
        "target_inputs",
        "an integer number of inputs per container the autoscaler aims for, e.g. `target_inputs = 4`",
    ),
    ("schedule", crate::schedule::EXPECTS),
];

/// Names users may reach for (field names of `FunctionOptions`, Modal's
/// Python spellings) and the option they mean.
const ALIASES: &[(&str, &str)] = &[
    ("timeout_secs", "timeout"),
    ("memory_mib", "memory"),
    ("mem", "memory"),
    ("scaledown_window_secs", "scaledown_window"),
    ("container_idle_timeout", "scaledown_window"),
    ("concurrency_limit", "max_containers"),
    ("keep_warm", "min_containers"),
    ("secret", "secrets"),
    ("volume", "volumes"),
    ("mounts", "volumes"),
    ("gpus", "gpu"),
    ("cpus", "cpu"),
    ("allow_concurrent_inputs", "max_inputs"),
    ("max_concurrent_inputs", "max_inputs"),
    ("concurrency", "max_inputs"),
    ("target_concurrent_inputs", "target_inputs"),
    ("base_image", "image"),
    ("docker_image", "image"),
    ("container_image", "image"),
];

/// Keys for one half of a resource pair, which is written whole.
const LIMIT_KEYS: &[(&str, &str)] = &[
    ("cpu_limit", "cpu = (0.5, 2.0)"),
    ("cpu_request", "cpu = (0.5, 2.0)"),
    ("max_cpu", "cpu = (0.5, 2.0)"),
    ("memory_limit", "memory = (1024, 4096)"),
    ("memory_limit_mib", "memory = (1024, 4096)"),
    ("memory_request", "memory = (1024, 4096)"),
    ("max_memory", "memory = (1024, 4096)"),
];

/// Batching is not an option of the function but an attribute of its own;
/// these keys get a pointer to it.
const BATCHING_KEYS: &[&str] = &[
    "max_batch_size",
    "batch_max_size",
    "wait_ms",
    "batch_wait_ms",
    "batched",
    "batch",
];

/// Parses the tokens inside `#[app::function(...)]`. Every problem is pushed
/// to `errors`; the options that were valid are returned regardless.
pub fn parse_options(tokens: TokenStream, errors: &mut Errors) -> Options {
    let raw = match parse_raw(tokens) {
        Ok(raw) => raw,
        Err(error) => {
            errors.push(error);
            return Options::default();
        }
    };
    let mut options = Options::default();
    let mut seen = HashSet::new();
    for option in raw {
        options.apply(option, &mut seen, errors);
    }
    options
}

/// Checks a function name: non-empty, ASCII letters, digits, `_` and `-`, at
/// most [`NAME_MAX_LEN`] characters.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("`name` must not be empty".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "`{name}` is not a valid function name: it may contain only ASCII letters, digits, `_` and `-`, but contains `{}`",
            bad.escape_default()
        ));
    }
    let len = name.chars().count();
    if len > NAME_MAX_LEN {
        return Err(format!(
            "function name `{name}` is {len} characters long, but must be at most {NAME_MAX_LEN}"
        ));
    }
    Ok(())
}

/// `key = value, ...` as written, before any key is given a meaning.
pub fn parse_raw(tokens: TokenStream) -> syn::Result<Punctuated<RawOption, Token![,]>> {
    Punctuated::<RawOption, Token![,]>::parse_terminated.parse2(tokens)
}

/// `key` or `key = value`.
pub struct RawOption {
    pub key: Ident,
    pub value: Option<RawValue>,
}

/// The right-hand side of `key = ...`.
pub enum RawValue {
    Expr(Expr),
    Map {
        span: Span,
        entries: Punctuated<RawEntry, Token![,]>,
    },
    List {
        span: Span,
        items: Punctuated<Expr, Token![,]>,
    },
}

/// `"KEY": "value"` inside a map.
pub struct RawEntry {
    key: Expr,
    value: Expr,
}

impl Parse for RawOption {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        // `parse_any` so that keywords (`type`, `async`) are reported as
        // unknown options rather than as a syntax error.
        let key = input.call(Ident::parse_any)?;
        if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            let value = input.parse()?;
            Ok(RawOption {
                key,
                value: Some(value),
            })
        } else if input.is_empty() || input.peek(Token![,]) {
            Ok(RawOption { key, value: None })
        } else {
            Err(input.error(format!("expected `=` after `{}`", key.unraw())))
        }
    }
}

impl Parse for RawValue {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(token::Brace) {
            let content;
            let brace = braced!(content in input);
            Ok(RawValue::Map {
                span: brace.span.join(),
                entries: content.parse_terminated(RawEntry::parse, Token![,])?,
            })
        } else if input.peek(token::Bracket) {
            let content;
            let bracket = bracketed!(content in input);
            Ok(RawValue::List {
                span: bracket.span.join(),
                items: content.parse_terminated(Expr::parse, Token![,])?,
            })
        } else {
            Ok(RawValue::Expr(input.parse()?))
        }
    }
}

impl Parse for RawEntry {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key = input.parse()?;
        input.parse::<Token![:]>()?;
        let value = input.parse()?;
        Ok(RawEntry { key, value })
    }
}

impl RawValue {
    pub fn span(&self) -> Span {
        match self {
            RawValue::Expr(expr) => expr.span(),
            RawValue::Map { span, .. } | RawValue::List { span, .. } => *span,
        }
    }

    fn expr(&self) -> Option<&Expr> {
        match self {
            RawValue::Expr(expr) => Some(expr),
            _ => None,
        }
    }

    /// Error spanning the whole value.
    pub fn error(&self, message: String) -> syn::Error {
        match self {
            RawValue::Expr(expr) => syn::Error::new_spanned(expr, message),
            _ => syn::Error::new(self.span(), message),
        }
    }
}

impl Options {
    fn apply(&mut self, option: RawOption, seen: &mut HashSet<&'static str>, errors: &mut Errors) {
        let key_text = option.key.unraw().to_string();
        let Some(&(key, expects)) = OPTIONS.iter().find(|(name, _)| *name == key_text) else {
            errors.spanned(&option.key, unknown_option_message(&key_text));
            return;
        };
        if !seen.insert(key) {
            errors.spanned(
                &option.key,
                format!("duplicate option `{key}`; each option may be given once"),
            );
            return;
        }
        let Some(value) = option.value else {
            errors.spanned(
                &option.key,
                format!("option `{key}` needs a value: `{key}` expects {expects}"),
            );
            return;
        };
        let expected = || value.error(format!("`{key}` expects {expects}"));
        match key {
            "name" => {
                self.name =
                    string(&value, errors, expected).and_then(|s| match validate_name(&s.value) {
                        Ok(()) => Some(s),
                        Err(message) => {
                            errors.at(s.span, message);
                            None
                        }
                    })
            }
            "cpu" => {
                let pair = |request, limit| container::check_cpu(Some(request), Some(limit));
                if let Some((request, limit)) =
                    request_limit(key, expects, &value, errors, cpu_value, pair)
                {
                    self.cpu = Some(request);
                    self.cpu_limit = limit;
                }
            }
            "memory" => {
                let pair = |request, limit| container::check_memory(Some(request), Some(limit));
                if let Some((request, limit)) =
                    request_limit(key, expects, &value, errors, memory_value, pair)
                {
                    self.memory_mib = Some(request);
                    self.memory_limit_mib = limit;
                }
            }
            "gpu" => {
                self.gpu = string(&value, errors, expected).and_then(|s| {
                    match GpuRequest::parse(&s.value) {
                        Ok(gpu) => Some(Spanned::new(gpu.to_string(), s.span)),
                        Err(message) => {
                            errors.at(s.span, message);
                            None
                        }
                    }
                })
            }
            "image" => {
                self.image = string(&value, errors, expected).and_then(|s| {
                    match ImageReference::parse(&s.value) {
                        Ok(_) => Some(s),
                        Err(message) => {
                            errors.at(s.span, message);
                            None
                        }
                    }
                })
            }
            "timeout" => self.timeout_secs = integer(key, &value, TIMEOUT_SECS, errors, expected),
            "retries" => match &value {
                RawValue::Map { span, entries } => {
                    self.retry_policy = retry_policy(*span, entries, errors)
                }
                _ => self.retries = integer(key, &value, RETRIES, errors, expected),
            },
            "startup_timeout" => {
                self.startup_timeout_secs = integer(key, &value, TIMEOUT_SECS, errors, expected)
            }
            "max_containers" => {
                self.max_containers = integer(key, &value, 1..=u32::MAX, errors, expected)
            }
            "min_containers" => {
                self.min_containers = integer(key, &value, 0..=u32::MAX, errors, expected)
            }
            "buffer_containers" => {
                self.buffer_containers = integer(key, &value, 0..=u32::MAX, errors, expected)
            }
            "scaledown_window" => {
                self.scaledown_window_secs =
                    integer(key, &value, SCALEDOWN_WINDOW_SECS, errors, expected)
            }
            "env" => self.env = env(&value, errors, expected),
            "secrets" => self.secrets = secrets(&value, errors, expected),
            "volumes" => self.volumes = volumes(&value, errors, expected),
            "max_inputs" => self.max_inputs = integer(key, &value, MAX_INPUTS, errors, expected),
            "target_inputs" => {
                self.target_inputs = integer(key, &value, MAX_INPUTS, errors, expected)
            }
            "region" | "cloud" => {
                let parsed = string(&value, errors, expected).and_then(|s| {
                    if s.value.trim().is_empty() {
                        errors.at(s.span, format!("`{key}` must not be empty"));
                        None
                    } else {
                        Some(s)
                    }
                });
                if key == "region" {
                    self.region = parsed;
                } else {
                    self.cloud = parsed;
                }
            }
            "schedule" => self.schedule = crate::schedule::parse(&value, errors),
            _ => unreachable!("option `{key}` is listed but not handled"),
        }
    }
}

fn unknown_option_message(key: &str) -> String {
    let names: Vec<&str> = OPTIONS.iter().map(|(name, _)| *name).collect();
    let mut message = format!(
        "unknown option `{key}`; expected one of: {}",
        names.join(", ")
    );
    let lower = key.to_ascii_lowercase();
    if BATCHING_KEYS.contains(&lower.as_str()) {
        message.push_str("; batching has an attribute of its own: put `#[app::batched(max_batch_size = 8, wait_ms = 100)]` below `#[app::function]`, or on the method of an `#[app::cls]` impl");
    } else if let Some((_, pair)) = LIMIT_KEYS.iter().find(|(k, _)| *k == lower) {
        message.push_str(&format!(
            "; a request and its limit are one option, written as a `(request, limit)` pair: `{pair}`"
        ));
    } else if let Some(suggestion) = suggest(key) {
        message.push_str(&format!("; did you mean `{suggestion}`?"));
    }
    message
}

/// The option the user probably meant: a known alias, or the closest name
/// within a small edit distance.
fn suggest(key: &str) -> Option<&'static str> {
    crate::tokens::suggest(key, ALIASES, OPTIONS.iter().map(|(name, _)| *name))
}

/// The string literal a value is, if it is one.
pub fn string_literal(value: &RawValue) -> Option<&LitStr> {
    value.expr().and_then(lit_str)
}

pub(crate) fn lit_str(expr: &Expr) -> Option<&LitStr> {
    match ungroup(expr) {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s),
        _ => None,
    }
}

/// The literal and whether it is negated, for `1`, `-1`, `0.5`, `-0.5`.
fn numeric_literal(expr: &Expr) -> Option<(&Lit, bool)> {
    match ungroup(expr) {
        Expr::Lit(ExprLit { lit, .. }) => Some((lit, false)),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match ungroup(expr) {
            Expr::Lit(ExprLit { lit, .. }) => Some((lit, true)),
            _ => None,
        },
        _ => None,
    }
}

/// An integer literal (possibly negative); `None` if the value is not one.
fn int_literal(expr: &Expr) -> Option<syn::Result<i128>> {
    match numeric_literal(expr)? {
        (Lit::Int(int), negative) => Some(
            int.base10_parse::<i128>()
                .map(|v| if negative { -v } else { v }),
        ),
        _ => None,
    }
}

fn string(
    value: &RawValue,
    errors: &mut Errors,
    expected: impl FnOnce() -> syn::Error,
) -> Option<Spanned<String>> {
    match value.expr().and_then(lit_str) {
        Some(s) => Some(Spanned::new(s.value(), s.span())),
        None => {
            errors.push(expected());
            None
        }
    }
}

/// Whether `secs` seconds is within `ms`, a range of milliseconds.
fn seconds_in(ms: &RangeInclusive<u32>, secs: f64) -> bool {
    (f64::from(*ms.start()) / 1000.0..=f64::from(*ms.end()) / 1000.0).contains(&secs)
}

/// `ms`, a range of milliseconds, in seconds: "0 and 60".
fn seconds(ms: &RangeInclusive<u32>) -> String {
    format!(
        "{} and {}",
        f64::from(*ms.start()) / 1000.0,
        f64::from(*ms.end()) / 1000.0
    )
}

/// An integer literal within `range`; an error on the value otherwise.
pub fn integer(
    key: &str,
    value: &RawValue,
    range: RangeInclusive<u32>,
    errors: &mut Errors,
    expected: impl FnOnce() -> syn::Error,
) -> Option<Spanned<u32>> {
    let Some(expr) = value.expr() else {
        errors.push(expected());
        return None;
    };
    match int_literal(expr) {
        None => {
            errors.push(expected());
            None
        }
        Some(Err(error)) => {
            errors.push(error);
            None
        }
        Some(Ok(v)) if v < i128::from(*range.start()) || v > i128::from(*range.end()) => {
            let message = if *range.end() == u32::MAX {
                format!("`{key}` is {v}, but must be at least {}", range.start())
            } else {
                format!(
                    "`{key}` is {v}, but must be between {} and {}",
                    range.start(),
                    range.end()
                )
            };
            errors.spanned(expr, message);
            None
        }
        Some(Ok(v)) => Some(Spanned::new(
            u32::try_from(v).expect("checked against a u32 range"),
            expr.span(),
        )),
    }
}

/// `key = value` or `key = (request, limit)`: each number read by `one`
/// (`None`: not a literal of its type; `Err`: out of bounds), then the two
/// checked together by `pair`. Every error is on the token at fault; both
/// halves of a pair are read even if one is wrong.
fn request_limit<T: Copy>(
    key: &str,
    expects: &str,
    value: &RawValue,
    errors: &mut Errors,
    one: impl Fn(&Expr, &str) -> Option<Result<T, String>>,
    pair: impl Fn(T, T) -> Result<(), String>,
) -> Option<(Spanned<T>, Option<Spanned<T>>)> {
    let Some(expr) = value.expr() else {
        errors.push(value.error(format!("`{key}` expects {expects}")));
        return None;
    };
    let read = |expr: &Expr, what: &str, errors: &mut Errors| match one(expr, what) {
        None => {
            errors.spanned(expr, format!("`{key}` expects {expects}"));
            None
        }
        Some(Err(message)) => {
            errors.spanned(expr, message);
            None
        }
        Some(Ok(v)) => Some(Spanned::new(v, expr.span())),
    };
    match ungroup(expr) {
        Expr::Tuple(tuple) if tuple.elems.len() == 2 => {
            let request = read(&tuple.elems[0], &format!("`{key}`"), errors);
            let limit = read(&tuple.elems[1], &format!("the `{key}` limit"), errors);
            let (request, limit) = (request?, limit?);
            if let Err(message) = pair(request.value, limit.value) {
                errors.spanned(tuple, message);
                return None;
            }
            Some((request, Some(limit)))
        }
        Expr::Tuple(tuple) => {
            errors.spanned(
                tuple,
                format!(
                    "`{key}` expects {expects}; this tuple has {} values, not 2",
                    tuple.elems.len()
                ),
            );
            None
        }
        _ => read(expr, &format!("`{key}`"), errors).map(|v| (v, None)),
    }
}

/// A number of cores (integer or float literal, maybe negated), in bounds.
fn cpu_value(expr: &Expr, what: &str) -> Option<Result<f64, String>> {
    let (parsed, negative) = match numeric_literal(expr)? {
        (Lit::Int(int), negative) => (int.base10_parse::<f64>(), negative),
        (Lit::Float(float), negative) => (float.base10_parse::<f64>(), negative),
        _ => return None,
    };
    Some(parsed.map_err(|e| e.to_string()).and_then(|v| {
        let v = if negative { -v } else { v };
        container::check_cpu_cores(what, v).map(|()| v)
    }))
}

/// A number of MiB (integer literal, maybe negated), in bounds.
fn memory_value(expr: &Expr, what: &str) -> Option<Result<u32, String>> {
    let parsed = int_literal(expr)?;
    Some(parsed.map_err(|e| e.to_string()).and_then(|v| {
        container::check_memory_mib(what, v)?;
        Ok(u32::try_from(v).expect("checked against MEMORY_MIB"))
    }))
}

/// A retry policy as written in `retries = { ... }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub backoff_coefficient: f64,
    pub initial_delay_ms: u32,
    pub max_delay_ms: u32,
}

/// `{ max_retries: 3, backoff_coefficient: 2.0, initial_delay: 1.0, max_delay: 30.0 }`:
/// `max_retries` required, the rest defaulting as in Modal (2.0, 1 s, 60 s).
fn retry_policy(
    span: Span,
    entries: &Punctuated<RawEntry, Token![,]>,
    errors: &mut Errors,
) -> Option<Spanned<RetryPolicy>> {
    let mut policy = RetryPolicy {
        max_retries: 0,
        backoff_coefficient: 2.0,
        initial_delay_ms: 1_000,
        max_delay_ms: 60_000,
    };
    let mut has_max = false;
    let mut ok = true;
    let mut seen = HashSet::new();
    for entry in entries {
        let key = match ungroup(&entry.key) {
            Expr::Path(p) if p.path.get_ident().is_some() => {
                p.path.get_ident().expect("checked").to_string()
            }
            other => {
                errors.spanned(
                    other,
                    "a retry policy's keys are `max_retries`, `backoff_coefficient`, `initial_delay` and `max_delay`",
                );
                ok = false;
                continue;
            }
        };
        if !seen.insert(key.clone()) {
            errors.spanned(&entry.key, format!("`{key}` is given twice"));
            ok = false;
            continue;
        }
        let number = number_literal(&entry.value);
        let mut bad = |message: String| {
            errors.spanned(&entry.value, message);
            false
        };
        let valid = match (key.as_str(), number) {
            ("max_retries", Some(v))
                if v.fract() == 0.0 && RETRIES.contains(&(v as u32)) && v >= 0.0 =>
            {
                policy.max_retries = v as u32;
                has_max = true;
                true
            }
            ("max_retries", _) => {
                // Given, if wrong: no second error about it missing.
                has_max = true;
                bad(format!(
                    "`max_retries` must be an integer between {} and {}",
                    RETRIES.start(),
                    RETRIES.end()
                ))
            }
            ("backoff_coefficient", Some(v)) if RETRY_BACKOFF_COEFFICIENT.contains(&v) => {
                policy.backoff_coefficient = v;
                true
            }
            ("backoff_coefficient", _) => bad(format!(
                "`backoff_coefficient` must be a number between {} and {}",
                RETRY_BACKOFF_COEFFICIENT.start(),
                RETRY_BACKOFF_COEFFICIENT.end()
            )),
            ("initial_delay", Some(v)) if seconds_in(&RETRY_INITIAL_DELAY_MS, v) => {
                policy.initial_delay_ms = (v * 1000.0).round() as u32;
                true
            }
            ("initial_delay", _) => bad(format!(
                "`initial_delay` must be a number of seconds between {}",
                seconds(&RETRY_INITIAL_DELAY_MS)
            )),
            ("max_delay", Some(v)) if seconds_in(&RETRY_MAX_DELAY_MS, v) => {
                policy.max_delay_ms = (v * 1000.0).round() as u32;
                true
            }
            ("max_delay", _) => bad(format!(
                "`max_delay` must be a number of seconds between {}",
                seconds(&RETRY_MAX_DELAY_MS)
            )),
            (other, _) => {
                errors.spanned(
                    &entry.key,
                    format!("unknown retry policy key `{other}`; expected `max_retries`, `backoff_coefficient`, `initial_delay` or `max_delay`"),
                );
                false
            }
        };
        ok &= valid;
    }
    if !has_max {
        errors.at(
            span,
            "a retry policy needs `max_retries`, e.g. `retries = { max_retries: 3 }`",
        );
        return None;
    }
    ok.then(|| Spanned::new(policy, span))
}

/// A non-negative integer or float literal, as `f64`.
fn number_literal(expr: &Expr) -> Option<f64> {
    match numeric_literal(expr)? {
        (Lit::Int(int), false) => int.base10_parse::<f64>().ok(),
        (Lit::Float(float), false) => float.base10_parse::<f64>().ok(),
        _ => None,
    }
}

fn env(
    value: &RawValue,
    errors: &mut Errors,
    expected: impl FnOnce() -> syn::Error,
) -> Option<Spanned<Vec<(String, String)>>> {
    let RawValue::Map { span, entries } = value else {
        errors.push(expected());
        return None;
    };
    let mut vars: Vec<(String, String)> = Vec::new();
    for entry in entries {
        let key = match lit_str(&entry.key) {
            Some(key) => key,
            None => {
                errors.spanned(
                    &entry.key,
                    "environment variable names must be string literals, e.g. `env = { \"RUST_LOG\": \"info\" }`",
                );
                continue;
            }
        };
        let value = match lit_str(&entry.value) {
            Some(value) => value,
            None => {
                errors.spanned(
                    &entry.value,
                    "environment variable values must be string literals, e.g. `env = { \"RUST_LOG\": \"info\" }`",
                );
                continue;
            }
        };
        let name = key.value();
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            errors.at(
                key.span(),
                format!("`{}` is not a valid environment variable name: it must be non-empty and contain neither `=` nor NUL", name.escape_default()),
            );
            continue;
        }
        // Kept in step with `modal_runtime::options::RESERVED_ENV_PREFIXES`,
        // which the control plane checks again at deploy.
        if let Some(prefix) = ["LD_", "MODAL_"]
            .iter()
            .find(|p| name.to_ascii_uppercase().starts_with(*p))
        {
            errors.at(
                key.span(),
                format!("`{name}` cannot be set through `env`: variables starting with `{prefix}` are reserved (`LD_*` changes how the binary is loaded, `MODAL_*` are the runtime's own); choose another name"),
            );
            continue;
        }
        if value.value().contains('\0') {
            errors.at(
                value.span(),
                "environment variable values cannot contain NUL",
            );
            continue;
        }
        if vars.iter().any(|(existing, _)| *existing == name) {
            errors.at(
                key.span(),
                format!("environment variable `{name}` is set twice"),
            );
            continue;
        }
        vars.push((name, value.value()));
    }
    Some(Spanned::new(vars, *span))
}

/// `volumes = { "/data": "name" }`. The rules are checked in full again by
/// the runtime (`modal_runtime::volume::check_mounts`, at deploy); here the
/// mistakes a reader sees at a glance: a relative path, a path given twice,
/// a name outside the volume name rule.
fn volumes(
    value: &RawValue,
    errors: &mut Errors,
    expected: impl FnOnce() -> syn::Error,
) -> Option<Spanned<Vec<(String, String)>>> {
    let RawValue::Map { span, entries } = value else {
        errors.push(expected());
        return None;
    };
    let example = "e.g. `volumes = { \"/data\": \"my-volume\" }`";
    let mut mounts: Vec<(String, String)> = Vec::new();
    for entry in entries {
        let (Some(path), Some(name)) = (lit_str(&entry.key), lit_str(&entry.value)) else {
            errors.spanned(
                &entry.key,
                format!("mount paths and volume names must be string literals, {example}"),
            );
            continue;
        };
        let (path_text, name_text) = (path.value(), name.value());
        if !path_text.starts_with('/') || path_text == "/" {
            errors.at(
                path.span(),
                format!("`{path_text}` cannot be a mount path: it must be absolute and not `/`, {example}"),
            );
            continue;
        }
        // Kept in step with `modal_runtime::volume::check_volume_name`.
        let valid_name = (1..=63).contains(&name_text.len())
            && name_text.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name_text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid_name {
            errors.at(
                name.span(),
                format!("`{name_text}` is not a valid volume name: use 1 to 63 letters, digits, `.`, `_` or `-`, starting with a letter or digit"),
            );
            continue;
        }
        if mounts.iter().any(|(p, _)| *p == path_text) {
            errors.at(path.span(), format!("`{path_text}` is mounted twice"));
            continue;
        }
        mounts.push((path_text, name_text));
    }
    Some(Spanned::new(mounts, *span))
}

fn secrets(
    value: &RawValue,
    errors: &mut Errors,
    expected: impl FnOnce() -> syn::Error,
) -> Option<Spanned<Vec<String>>> {
    let RawValue::List { span, items } = value else {
        errors.push(expected());
        return None;
    };
    let mut names: Vec<String> = Vec::new();
    for item in items {
        let Some(name) = lit_str(item) else {
            errors.spanned(
                item,
                "secret names must be string literals, e.g. `secrets = [\"db-password\"]`",
            );
            continue;
        };
        let text = name.value();
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.at(
                name.span(),
                "a secret name must be non-empty and contain no whitespace",
            );
            continue;
        }
        if names.contains(&text) {
            errors.at(name.span(), format!("secret `{text}` is listed twice"));
            continue;
        }
        names.push(text);
    }
    Some(Spanned::new(names, *span))
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn parse(tokens: TokenStream) -> (Options, Vec<String>) {
        let mut errors = Errors::new();
        let options = parse_options(tokens, &mut errors);
        (options, errors.messages())
    }

    fn ok(tokens: TokenStream) -> Options {
        let (options, errors) = parse(tokens);
        assert!(errors.is_empty(), "unexpected errors: {errors:?}");
        options
    }

    fn one_error(tokens: TokenStream) -> String {
        let (_, errors) = parse(tokens);
        assert_eq!(
            errors.len(),
            1,
            "expected exactly one error, got {errors:?}"
        );
        errors.into_iter().next().unwrap()
    }

    fn value<T: Clone>(option: &Option<Spanned<T>>) -> T {
        option.as_ref().expect("option was not set").value.clone()
    }

    #[test]
    fn no_options() {
        let options = ok(quote!());
        assert!(options.name.is_none() && options.cpu.is_none() && options.env.is_none());
    }

    #[test]
    fn every_option() {
        let options = ok(quote!(
            name = "resize-image_2",
            cpu = 0.5,
            memory = 1024,
            gpu = "H100:2",
            image = "python:3.12-slim",
            timeout = 86400,
            retries = 10,
            max_containers = 4,
            min_containers = 1,
            buffer_containers = 2,
            scaledown_window = 2,
            env = { "RUST_LOG": "info", "B": "" },
            secrets = ["db", "api-key"],
            region = "us-east",
            cloud = "aws",
            max_inputs = 1000,
            target_inputs = 3,
        ));
        assert_eq!(value(&options.name), "resize-image_2");
        assert_eq!(value(&options.cpu), 0.5);
        assert_eq!(value(&options.memory_mib), 1024);
        assert_eq!(value(&options.gpu), "H100:2");
        assert_eq!(value(&options.image), "python:3.12-slim");
        assert_eq!(value(&options.timeout_secs), 86400);
        assert_eq!(value(&options.retries), 10);
        assert_eq!(value(&options.max_containers), 4);
        assert_eq!(value(&options.min_containers), 1);
        assert_eq!(value(&options.buffer_containers), 2);
        assert_eq!(value(&options.scaledown_window_secs), 2);
        assert_eq!(
            value(&options.env),
            vec![
                ("RUST_LOG".to_string(), "info".to_string()),
                ("B".to_string(), String::new())
            ]
        );
        assert_eq!(value(&options.secrets), vec!["db", "api-key"]);
        assert_eq!(value(&options.region), "us-east");
        assert_eq!(value(&options.cloud), "aws");
        assert_eq!(value(&options.max_inputs), 1000);
        assert_eq!(value(&options.target_inputs), 3);
    }

    #[test]
    fn cpu_accepts_integers_and_floats() {
        assert_eq!(value(&ok(quote!(cpu = 2)).cpu), 2.0);
        assert_eq!(value(&ok(quote!(cpu = 0.25)).cpu), 0.25);
    }

    #[test]
    fn empty_collections_are_fine() {
        let options = ok(quote!(env = {}, secrets = []));
        assert!(value(&options.env).is_empty());
        assert!(value(&options.secrets).is_empty());
    }

    #[test]
    fn raw_identifiers_and_trailing_commas() {
        assert_eq!(value(&ok(quote!(r#timeout = 5,)).timeout_secs), 5);
    }

    #[test]
    fn unknown_option_lists_the_known_ones() {
        let message = one_error(quote!(foo = 1));
        assert!(
            message.starts_with("unknown option `foo`; expected one of: name, cpu, memory, gpu, image, timeout, retries, startup_timeout, max_containers, min_containers, buffer_containers, scaledown_window, env, secrets, volumes, region, cloud"),
            "{message}"
        );
        assert!(!message.contains("did you mean"), "{message}");
    }

    #[test]
    fn unknown_option_suggests_the_closest() {
        assert!(one_error(quote!(timout = 1)).ends_with("did you mean `timeout`?"));
        assert!(one_error(quote!(timeout_secs = 1)).ends_with("did you mean `timeout`?"));
        assert!(one_error(quote!(keep_warm = 1)).ends_with("did you mean `min_containers`?"));
        assert!(one_error(quote!(type = 1)).starts_with("unknown option `type`"));
        assert!(
            one_error(quote!(allow_concurrent_inputs = 4)).ends_with("did you mean `max_inputs`?")
        );
        assert!(one_error(quote!(max_input = 4)).ends_with("did you mean `max_inputs`?"));
        assert!(
            one_error(quote!(target_concurrent_inputs = 4))
                .ends_with("did you mean `target_inputs`?")
        );
    }

    #[test]
    fn batching_keys_point_to_the_batched_attribute() {
        for key in ["max_batch_size", "wait_ms", "batch_wait_ms"] {
            let key = Ident::new(key, Span::call_site());
            let message = one_error(quote!(#key = 1));
            assert!(
                message.ends_with(
                    "below `#[app::function]`, or on the method of an `#[app::cls]` impl"
                ),
                "{message}"
            );
            assert!(!message.contains("did you mean"), "{message}");
        }
    }

    #[test]
    fn concurrency_bounds() {
        assert_eq!(
            one_error(quote!(max_inputs = 0)),
            "`max_inputs` is 0, but must be between 1 and 1000"
        );
        assert_eq!(
            one_error(quote!(max_inputs = 1001)),
            "`max_inputs` is 1001, but must be between 1 and 1000"
        );
        assert_eq!(
            one_error(quote!(target_inputs = 0)),
            "`target_inputs` is 0, but must be between 1 and 1000"
        );
        assert!(one_error(quote!(max_inputs = "8")).starts_with("`max_inputs` expects an integer"));
    }

    #[test]
    fn duplicate_option_is_reported_once() {
        let (options, errors) = parse(quote!(timeout = 1, retries = 2, timeout = 3));
        assert_eq!(
            errors,
            vec!["duplicate option `timeout`; each option may be given once"]
        );
        assert_eq!(value(&options.timeout_secs), 1);
    }

    #[test]
    fn ill_typed_values() {
        assert_eq!(
            one_error(quote!(timeout = "60")),
            "`timeout` expects an integer number of seconds, e.g. `timeout = 60`"
        );
        assert_eq!(
            one_error(quote!(timeout = 1.5)),
            "`timeout` expects an integer number of seconds, e.g. `timeout = 60`"
        );
        assert_eq!(
            one_error(quote!(memory = "1GiB")),
            "`memory` expects an integer number of MiB, e.g. `memory = 1024`, or a `(request, limit)` pair, e.g. `memory = (1024, 4096)`"
        );
        assert!(one_error(quote!(name = my_fn)).starts_with("`name` expects a string"));
        assert!(one_error(quote!(gpu = A100)).starts_with("`gpu` expects a string"));
        assert!(one_error(quote!(cpu = "2")).starts_with("`cpu` expects a number"));
        assert!(one_error(quote!(env = ["A"])).starts_with("`env` expects a map"));
        assert!(one_error(quote!(secrets = "a")).starts_with("`secrets` expects a list"));
        assert!(one_error(quote!(region = 1)).starts_with("`region` expects a string"));
        assert!(one_error(quote!(cloud = [])).starts_with("`cloud` expects a string"));
        assert!(one_error(quote!(retries = 1 + 1)).starts_with("`retries` expects an integer"));
    }

    #[test]
    fn retry_policies() {
        let options = ok(
            quote!(retries = { max_retries: 3, backoff_coefficient: 2, initial_delay: 0.5, max_delay: 30 }),
        );
        assert_eq!(
            value(&options.retry_policy),
            RetryPolicy {
                max_retries: 3,
                backoff_coefficient: 2.0,
                initial_delay_ms: 500,
                max_delay_ms: 30_000,
            }
        );
        assert_eq!(
            value(&ok(quote!(retries = { max_retries: 1 })).retry_policy).max_retries,
            1
        );
        assert!(
            one_error(quote!(retries = { backoff_coefficient: 2 })).contains("needs `max_retries`")
        );
        assert!(one_error(quote!(retries = { max_retries: 11 })).contains("between 0 and 10"));
        assert!(
            one_error(quote!(retries = { max_retries: 1, backoff_coefficient: 0.5 }))
                .contains("between 1 and 10")
        );
        assert!(
            one_error(quote!(retries = { max_retries: 1, jitter: 1 }))
                .contains("unknown retry policy key `jitter`")
        );
        assert_eq!(
            value(&ok(quote!(startup_timeout = 120)).startup_timeout_secs),
            120
        );
    }

    #[test]
    fn option_without_value() {
        assert!(one_error(quote!(gpu)).starts_with("option `gpu` needs a value"));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            one_error(quote!(timeout: 60)),
            "expected `=` after `timeout`"
        );
        assert!(!one_error(quote!(env = { RUST_LOG = "x" })).is_empty());
        assert!(!one_error(quote!("name" = "x")).is_empty());
    }

    #[test]
    fn out_of_range_values() {
        assert_eq!(
            one_error(quote!(timeout = 0)),
            "`timeout` is 0, but must be between 1 and 86400"
        );
        assert_eq!(
            one_error(quote!(timeout = 86401)),
            "`timeout` is 86401, but must be between 1 and 86400"
        );
        assert_eq!(
            one_error(quote!(retries = 11)),
            "`retries` is 11, but must be between 0 and 10"
        );
        assert_eq!(
            one_error(quote!(retries = -1)),
            "`retries` is -1, but must be between 0 and 10"
        );
        assert_eq!(
            one_error(quote!(scaledown_window = 1)),
            "`scaledown_window` is 1, but must be between 2 and 3600"
        );
        assert_eq!(
            one_error(quote!(max_containers = 0)),
            "`max_containers` is 0, but must be at least 1"
        );
        assert_eq!(
            one_error(quote!(memory = 0)),
            "`memory` is 0 MiB, but must be between 1 and 4194304 MiB (4 TiB)"
        );
        assert_eq!(
            one_error(quote!(memory = 4294967296)),
            "`memory` is 4294967296 MiB, but must be between 1 and 4194304 MiB (4 TiB)"
        );
        assert_eq!(
            one_error(quote!(cpu = 1025)),
            "`cpu` is 1025, but must be at most 1024 cores"
        );
        assert_eq!(
            one_error(quote!(cpu = 0)),
            "`cpu` is 0, but must be greater than 0"
        );
        assert_eq!(
            one_error(quote!(cpu = -0.5)),
            "`cpu` is -0.5, but must be greater than 0"
        );
        assert!(
            !one_error(quote!(
                min_containers = 99999999999999999999999999999999999999999
            ))
            .is_empty()
        );
    }

    #[test]
    fn bounds_match_the_documented_ones() {
        // The resource bounds are the runtime's own file; these are the
        // numbers the docs (`lib.rs`, the README) state.
        assert_eq!(container::CPU_CORES_MAX, 1024.0);
        assert_eq!(container::MEMORY_MIB, 1..=4_194_304);
        assert_eq!(container::GPU_COUNT, 1..=8);
        assert_eq!(container::IMAGE_REFERENCE_MAX_LEN, 255);
        assert_eq!(TIMEOUT_SECS, 1..=86_400);
        assert_eq!(RETRIES, 0..=10);
        assert_eq!(SCALEDOWN_WINDOW_SECS, 2..=3_600);
        assert_eq!(MAX_INPUTS, 1..=1_000);
    }

    #[test]
    fn names() {
        assert!(validate_name("a").is_ok());
        assert!(validate_name("Resize-image_2").is_ok());
        assert!(validate_name(&"x".repeat(64)).is_ok());
        assert_eq!(one_error(quote!(name = "")), "`name` must not be empty");
        assert!(one_error(quote!(name = "a b")).contains("contains ` `"));
        assert!(one_error(quote!(name = "a.b")).contains("contains `.`"));
        assert!(one_error(quote!(name = "größe")).contains("contains `\\u{f6}`"));
        let long = "x".repeat(65);
        assert_eq!(
            one_error(quote!(name = #long)),
            format!("function name `{long}` is 65 characters long, but must be at most 64")
        );
    }

    #[test]
    fn gpus_are_parsed_and_stored_in_normal_form() {
        for (written, stored) in [
            ("A100", "A100"),
            ("any", "any"),
            ("Any:2", "any:2"),
            ("a100-80gb:8", "A100-80GB:8"),
            ("L40S:1", "L40S"),
        ] {
            assert_eq!(value(&ok(quote!(gpu = #written)).gpu), stored);
        }
        assert!(one_error(quote!(gpu = "")).contains("does not name a GPU type"));
        assert!(one_error(quote!(gpu = ":2")).contains("does not name a GPU type"));
        assert!(
            one_error(quote!(gpu = "H100:0"))
                .contains("the count after `:` is `0`, but must be an integer between 1 and 8")
        );
        assert!(one_error(quote!(gpu = "H100:x")).contains("is `x`"));
        assert!(one_error(quote!(gpu = "H100:9")).contains("is `9`"));
        assert!(one_error(quote!(gpu = "H 100")).contains("the GPU type `H 100`"));
    }

    #[test]
    fn images_are_checked() {
        let reference = "ghcr.io/org/app:v1";
        assert_eq!(value(&ok(quote!(image = #reference)).image), reference);
        let message = one_error(quote!(image = "Ubuntu:22.04"));
        assert!(
            message.starts_with(
                "`image = \"Ubuntu:22.04\"` is not a valid image reference: `Ubuntu` is not a valid name component: names are lowercase; expected e.g. `ubuntu:22.04`"
            ),
            "{message}"
        );
        assert!(one_error(quote!(image = "")).contains("it is empty"));
        assert!(one_error(quote!(image = "app@sha256:12")).contains("64 lowercase hex digits"));
        assert!(one_error(quote!(image = python)).starts_with("`image` expects a string"));
        assert!(one_error(quote!(base_image = "x")).ends_with("did you mean `image`?"));
    }

    #[test]
    fn resource_pairs() {
        let options = ok(quote!(cpu = (0.5, 2), memory = (512, 1024)));
        assert_eq!(value(&options.cpu), 0.5);
        assert_eq!(value(&options.cpu_limit), 2.0);
        assert_eq!(value(&options.memory_mib), 512);
        assert_eq!(value(&options.memory_limit_mib), 1024);
        let options = ok(quote!(cpu = (1, 1), memory = (4194304, 4194304)));
        assert_eq!(value(&options.cpu_limit), 1.0);
        let options = ok(quote!(cpu = 2, memory = 64));
        assert!(options.cpu_limit.is_none() && options.memory_limit_mib.is_none());
        assert_eq!(
            one_error(quote!(cpu = (2.0, 0.5))),
            "`cpu = (2, 0.5)`: the limit (0.5) is below the request (2); write `(request, limit)` with the limit at least the request"
        );
        assert_eq!(
            one_error(quote!(memory = (1024, 512))),
            "`memory = (1024, 512)`: the limit (512 MiB) is below the request (1024 MiB); write `(request, limit)` with the limit at least the request"
        );
        assert_eq!(
            one_error(quote!(cpu = (0.5, 2000))),
            "the `cpu` limit is 2000, but must be at most 1024 cores"
        );
        assert_eq!(
            one_error(quote!(memory = (512, 5000000))),
            "the `memory` limit is 5000000 MiB, but must be between 1 and 4194304 MiB (4 TiB)"
        );
        // Both halves are read, each error on its own.
        let (options, errors) = parse(quote!(memory = (0, "1G")));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("`memory` is 0 MiB"), "{}", errors[0]);
        assert!(
            errors[1].starts_with("`memory` expects an integer number of MiB"),
            "{}",
            errors[1]
        );
        assert!(options.memory_mib.is_none());
        for arity in [
            quote!(memory = (512,)),
            quote!(memory = (1, 2, 3)),
            quote!(memory = ()),
        ] {
            let message = one_error(arity);
            assert!(message.contains("; this tuple has "), "{message}");
        }
        assert!(one_error(quote!(memory = (512, 1.5))).starts_with("`memory` expects"));
        assert!(one_error(quote!(cpu = [1, 2])).starts_with("`cpu` expects"));
        assert!(
            one_error(quote!(cpu_limit = 2))
                .ends_with("a request and its limit are one option, written as a `(request, limit)` pair: `cpu = (0.5, 2.0)`")
        );
        assert!(one_error(quote!(memory_limit_mib = 2)).ends_with("`memory = (1024, 4096)`"));
    }

    #[test]
    fn reserved_env_names_are_refused_at_their_key() {
        let (_, errors) = parse(quote!(env = { "LD_PRELOAD": "/x.so", "MODAL_ROLE": "container" }));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].contains("`LD_PRELOAD` cannot be set"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].contains("`MODAL_ROLE` cannot be set"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn env_entries_are_checked_one_by_one() {
        let (options, errors) = parse(
            quote!(env = { "A": "1", "A": "2", "": "x", "B=C": "x", K: "v", "D": 1, "E": "5" }),
        );
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert_eq!(errors[0], "environment variable `A` is set twice");
        assert!(errors[1].contains("not a valid environment variable name"));
        assert!(errors[2].contains("not a valid environment variable name"));
        assert!(errors[3].starts_with("environment variable names must be string literals"));
        assert!(errors[4].starts_with("environment variable values must be string literals"));
        assert_eq!(
            value(&options.env),
            vec![
                ("A".to_string(), "1".to_string()),
                ("E".to_string(), "5".to_string())
            ]
        );
    }

    #[test]
    fn volumes_are_a_map_of_absolute_paths_to_valid_names() {
        let options = ok(quote!(volumes = { "/data": "cache", "/models": "m.v1" }));
        assert_eq!(
            value(&options.volumes),
            vec![
                ("/data".to_owned(), "cache".to_owned()),
                ("/models".to_owned(), "m.v1".to_owned())
            ]
        );
        let (options, errors) = parse(
            quote!(volumes = { "data": "a", "/": "b", "/x": "no such", "/y": 3, "/z": "c", "/z": "d" }),
        );
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].contains("must be absolute"), "{}", errors[0]);
        assert!(errors[1].contains("must be absolute"), "{}", errors[1]);
        assert!(
            errors[2].contains("not a valid volume name"),
            "{}",
            errors[2]
        );
        assert!(errors[3].contains("string literals"), "{}", errors[3]);
        assert!(errors[4].contains("mounted twice"), "{}", errors[4]);
        assert_eq!(
            value(&options.volumes),
            vec![("/z".to_owned(), "c".to_owned())]
        );
        assert!(one_error(quote!(volumes = ["a"])).starts_with("`volumes` expects a map"));
    }

    #[test]
    fn secrets_are_checked_one_by_one() {
        let (options, errors) = parse(quote!(secrets = ["a", "a", "", 3, "b c", "d"]));
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert_eq!(errors[0], "secret `a` is listed twice");
        assert!(errors[1].contains("non-empty"));
        assert!(errors[2].starts_with("secret names must be string literals"));
        assert!(errors[3].contains("no whitespace"));
        assert_eq!(value(&options.secrets), vec!["a", "d"]);
    }

    #[test]
    fn one_bad_option_does_not_hide_the_others() {
        let (options, errors) = parse(quote!(foo = 1, timeout = "x", retries = 3, cpu = 0));
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(value(&options.retries), 3);
        assert!(options.timeout_secs.is_none());
    }
}
