//! `#[app::web_endpoint(...)]` and `#[app::web_app(...)]` below
//! `#[app::function]`: how the function is served over HTTP.

use std::collections::HashSet;

use syn::ext::IdentExt;
use syn::{Attribute, Meta};

use crate::attr::{Spanned, parse_raw, string_literal};
use crate::errors::Errors;
use crate::markers::Marker;
use crate::web_rules;

/// What the endpoint takes and answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebKind {
    /// Typed arguments from JSON, the result as JSON.
    Json,
    /// `http::Request<Bytes>` in, `http::Response<Bytes>` out.
    Raw,
    /// A function building an `axum::Router`.
    App,
}

/// A parsed web marker; a wrong option is left at its default (and reported).
pub struct Web {
    /// The attribute as written, for errors about the whole of it.
    pub attr: Attribute,
    pub kind: WebKind,
    /// The method of a JSON endpoint, upper case (`POST` by default).
    pub method: &'static str,
    pub label: Option<Spanned<String>>,
    pub public: bool,
}

impl Web {
    pub fn parse(attr: &Attribute, marker: Marker, errors: &mut Errors) -> Web {
        let app = marker == Marker::WebApp;
        let mut web = Web {
            attr: attr.clone(),
            kind: if app { WebKind::App } else { WebKind::Json },
            method: "POST",
            label: None,
            public: false,
        };
        let tokens = match &attr.meta {
            Meta::List(list) => list.tokens.clone(),
            Meta::Path(_) => return web,
            Meta::NameValue(_) => {
                errors.spanned(
                    attr,
                    format!(
                        "expected `{}` or `{}(label = \"...\", public)`",
                        marker.written(),
                        marker.written().trim_end_matches(']')
                    ),
                );
                return web;
            }
        };
        let raw = match parse_raw(tokens) {
            Ok(raw) => raw,
            Err(error) => {
                errors.push(error);
                return web;
            }
        };
        let known: &[&str] = if app {
            &["label", "public"]
        } else {
            &["method", "label", "public", "raw"]
        };
        let mut seen = HashSet::new();
        let mut method_given = None;
        for option in raw {
            let key = option.key.unraw().to_string();
            if !known.contains(&key.as_str()) {
                errors.spanned(
                    &option.key,
                    format!(
                        "unknown option `{key}` of `{}`; expected {}",
                        marker.written(),
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                continue;
            }
            if !seen.insert(key.clone()) {
                errors.spanned(
                    &option.key,
                    format!("duplicate option `{key}`; each option may be given once"),
                );
                continue;
            }
            match key.as_str() {
                "public" | "raw" => {
                    if let Some(value) = &option.value {
                        errors.push(value.error(format!("`{key}` is a flag: write `{key}` alone")));
                        continue;
                    }
                    if key == "public" {
                        web.public = true;
                    } else {
                        web.kind = WebKind::Raw;
                    }
                }
                _ => {
                    let example = if key == "method" {
                        "method = \"GET\""
                    } else {
                        "label = \"my-endpoint\""
                    };
                    let Some(lit) = option.value.as_ref().and_then(string_literal) else {
                        errors.spanned(
                            &option.key,
                            format!("`{key}` expects a string, e.g. `{example}`"),
                        );
                        continue;
                    };
                    let value = lit.value();
                    if key == "method" {
                        match web_rules::parse_method(&value) {
                            Ok(method) => {
                                web.method = method;
                                method_given = Some(lit.clone());
                            }
                            Err(message) => errors.spanned(lit, message),
                        }
                    } else {
                        match web_rules::check_label(&value) {
                            Ok(()) => web.label = Some(Spanned::new(value, lit.span())),
                            Err(message) => errors.spanned(lit, message),
                        }
                    }
                }
            }
        }
        if let (WebKind::Raw, Some(method)) = (web.kind, method_given) {
            errors.spanned(
                method,
                "a `raw` endpoint answers every method (it sees the request's own): leave out `method`",
            );
        }
        web
    }

    /// The method in the deployed options: `*` for raw endpoints and apps.
    pub fn deployed_method(&self) -> &'static str {
        match self.kind {
            WebKind::Json => self.method,
            WebKind::Raw | WebKind::App => "*",
        }
    }
}
