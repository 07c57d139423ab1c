//! The marker attributes: `#[app::parameter]`, `#[app::enter]`,
//! `#[app::exit]`, `#[app::method]` and `#[app::batched]`.
//!
//! They mean something only inside an item that `#[app::cls]` or
//! `#[app::function]` expands: those read and remove them before rustc sees
//! them. So when one of these macros does run, it stands somewhere it means
//! nothing, and says where it belongs.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Attribute, ItemFn};

use crate::errors::Errors;

/// One marker, recognised by the last segment of the attribute's path, so
/// that `#[app::method]`, `#[modal_runtime::app::method]` and an imported
/// `#[method]` are all seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Parameter,
    Enter,
    Exit,
    Method,
    Batched,
    WebEndpoint,
    WebApp,
}

impl Marker {
    pub fn of(attr: &Attribute) -> Option<Marker> {
        let last = attr.path().segments.last()?;
        Some(match last.ident.to_string().as_str() {
            "parameter" => Marker::Parameter,
            "enter" => Marker::Enter,
            "exit" => Marker::Exit,
            "method" => Marker::Method,
            "batched" => Marker::Batched,
            "web_endpoint" => Marker::WebEndpoint,
            "web_app" => Marker::WebApp,
            _ => return None,
        })
    }

    /// The attribute as users write it, for messages.
    pub fn written(self) -> &'static str {
        match self {
            Marker::Parameter => "#[app::parameter]",
            Marker::Enter => "#[app::enter]",
            Marker::Exit => "#[app::exit]",
            Marker::Method => "#[app::method]",
            Marker::Batched => "#[app::batched]",
            Marker::WebEndpoint => "#[app::web_endpoint]",
            Marker::WebApp => "#[app::web_app]",
        }
    }
}

/// Whether `attr` is `#[app::function]` (by the last segment of its path).
pub fn is_function_attr(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "function")
}

/// A marker that ran on its own: the item unchanged, and an error saying
/// where the marker belongs.
pub fn expand_stray(marker: Marker, input: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    errors.at(Span::call_site(), stray_message(marker, &input));
    let errors = errors.to_compile_errors();
    quote!(#input #errors)
}

fn stray_message(marker: Marker, input: &TokenStream) -> String {
    match marker {
        Marker::Parameter => "`#[app::parameter]` marks a field of a struct marked `#[app::cls]`: that field becomes a parameter of the class, given when an instance is made".into(),
        Marker::Enter | Marker::Exit | Marker::Method => {
            let what = match marker {
                Marker::Enter => "the hook that runs once when a container has built its instance",
                Marker::Exit => "the hook that runs once when a container stops",
                _ => "a remote method",
            };
            format!(
                "`{}` marks {what}, in an `impl` block marked `#[app::cls]`: add `#[app::cls]` to the `impl` block (and to its struct)",
                marker.written()
            )
        }
        Marker::WebEndpoint | Marker::WebApp => {
            let above_function = syn::parse2::<ItemFn>(input.clone())
                .is_ok_and(|f| f.attrs.iter().any(is_function_attr));
            if above_function {
                format!(
                    "`{}` goes below `#[app::function(...)]`, not above it: `#[app::function]` must see it",
                    marker.written()
                )
            } else {
                format!(
                    "`{}` marks a function served over HTTP: put it below `#[app::function(...)]` on a free function",
                    marker.written()
                )
            }
        }
        Marker::Batched => {
            let above_function = syn::parse2::<ItemFn>(input.clone())
                .is_ok_and(|f| f.attrs.iter().any(is_function_attr));
            if above_function {
                "`#[app::batched(...)]` goes below `#[app::function(...)]`, not above it: `#[app::function]` must see it".into()
            } else {
                "`#[app::batched(...)]` goes below `#[app::function(...)]`, or on the one method of an `impl` block marked `#[app::cls]`".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::parse_quote;

    use super::*;

    #[test]
    fn markers_are_recognised_by_their_last_segment() {
        let marker = |attr: Attribute| Marker::of(&attr);
        assert_eq!(marker(parse_quote!(#[app::method])), Some(Marker::Method));
        assert_eq!(
            marker(parse_quote!(#[::modal_runtime::app::enter])),
            Some(Marker::Enter)
        );
        assert_eq!(marker(parse_quote!(#[exit])), Some(Marker::Exit));
        assert_eq!(
            marker(parse_quote!(#[app::batched(max_batch_size = 1)])),
            Some(Marker::Batched)
        );
        assert_eq!(
            marker(parse_quote!(#[app::parameter(default = 1)])),
            Some(Marker::Parameter)
        );
        assert_eq!(marker(parse_quote!(#[inline])), None);
        assert_eq!(marker(parse_quote!(#[doc = "method"])), None);
        assert!(is_function_attr(&parse_quote!(#[app::function(cpu = 1)])));
        assert!(!is_function_attr(&parse_quote!(#[app::main])));
    }

    #[test]
    fn stray_markers_keep_the_item() {
        let out = expand_stray(
            Marker::Method,
            quote!(
                fn f(&self) {}
            ),
        )
        .to_string();
        assert!(out.starts_with("fn f (& self) { }"), "{out}");
        assert!(
            out.contains("add `#[app::cls]` to the `impl` block"),
            "{out}"
        );
        let out = expand_stray(
            Marker::Parameter,
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(
            out.contains("marks a field of a struct marked `#[app::cls]`"),
            "{out}"
        );
    }

    #[test]
    fn batched_above_function_says_so() {
        let out = expand_stray(
            Marker::Batched,
            quote!(
                #[app::function]
                fn f(x: Vec<u8>) -> Vec<u8> {
                    x
                }
            ),
        )
        .to_string();
        assert!(out.contains("not above it"), "{out}");
        let out = expand_stray(
            Marker::Batched,
            quote!(
                fn f(x: Vec<u8>) -> Vec<u8> {
                    x
                }
            ),
        )
        .to_string();
        assert!(out.contains("or on the one method"), "{out}");
    }
}
