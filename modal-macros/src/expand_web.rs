//! What `#[app::web_endpoint]` and `#[app::web_app]` add to a function's
//! expansion: its endpoint in the deployed options, and the handler that
//! answers HTTP requests in a container. A raw endpoint or an app cannot be
//! called with typed arguments, so its whole stub is generated here:
//! `web_url()`, `local` and the handle methods, no `remote`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::LitStr;
use syn::ext::IdentExt;

use crate::expand_function::{StubParts, handle_methods, raw_ident, stub_and_descriptor, user_fn};
use crate::expand_shared::{name_guard, options_expr, private};
use crate::model::{Function, Output};
use crate::web::{Web, WebKind};
use crate::web_rules;

/// The label of the endpoint: as given, or from the registered name.
fn label(f: &Function, web: &Web) -> String {
    match &web.label {
        Some(label) => label.value.clone(),
        None => web_rules::default_label(&f.name.value),
    }
}

/// `FunctionOptions::web` of the function.
pub fn endpoint_options(f: &Function, web: &Web) -> TokenStream {
    let p = private();
    let kind = match web.kind {
        WebKind::Json => quote!(Json),
        WebKind::Raw => quote!(Raw),
        WebKind::App => quote!(App),
    };
    let method = LitStr::new(web.deployed_method(), Span::call_site());
    let label = LitStr::new(&label(f, web), Span::call_site());
    let public = web.public;
    let streams = f.generator.is_some();
    quote! {
        #p::WebEndpoint {
            kind: #p::WebKind::#kind,
            method: #p::Cow::Borrowed(#method),
            label: #p::Cow::Borrowed(#label),
            public: #public,
            streams: #streams,
        }
    }
}

/// The `Handler` that answers one HTTP request (a `WireRequest` input)
/// with a `WireResponse` (or, for a generator, JSON items).
pub fn handler(f: &Function, web: &Web) -> TokenStream {
    match web.kind {
        WebKind::Json => json_handler(f),
        WebKind::Raw => raw_handler(f),
        WebKind::App => app_handler(f),
    }
}

fn json_handler(f: &Function) -> TokenStream {
    let p = private();
    let ident = &f.ident;
    let raw = raw_ident(f);
    let internals: Vec<_> = f.args.iter().map(|a| &a.internal).collect();
    let tys: Vec<_> = f.args.iter().map(|a| &a.ty).collect();
    let names: Vec<LitStr> = f
        .args
        .iter()
        .map(|a| LitStr::new(&a.binding.unraw().to_string(), a.binding.span()))
        .collect();
    let decode = quote! {
        let mut __request = #p::web::JsonRequest::decode(&__payload, &[#(#names),*])?;
        #( let #internals: #tys = __request.arg(#names)?; )*
    };
    let respond = |value: TokenStream| match &f.output {
        Output::Fallible { .. } => quote! {
            match #value {
                ::core::result::Result::Ok(__value) => #p::web::json_ok(&__value),
                ::core::result::Result::Err(__error) => {
                    #[allow(unused_imports)]
                    use #p::web::{ViaDisplay as _, ViaHttpError as _};
                    (&#p::web::ErrorStatus(&__error)).web_failure()
                }
            }
        },
        _ => quote!(#p::web::json_ok(&#value)),
    };
    match (f.is_async, f.generator.is_some()) {
        (false, false) => {
            let run = respond(quote!(#ident::#raw(#(#internals),*)));
            quote! {
                #p::Handler::Blocking(|__payload| {
                    #decode
                    #run
                })
            }
        }
        (true, false) => {
            let run = respond(quote!(#ident::__boxed(#(#internals),*).await));
            quote! {
                #p::Handler::Async(|__payload| {
                    ::std::boxed::Box::pin(async move {
                        #decode
                        #run
                    })
                })
            }
        }
        (false, true) => quote! {
            #p::Handler::Generator(|__payload| {
                #decode
                ::core::result::Result::Ok(#p::web::json_generator(#ident::#raw(#(#internals),*)))
            })
        },
        (true, true) => quote! {
            #p::Handler::Generator(|__payload| {
                #decode
                ::core::result::Result::Ok(#p::web::json_generator_future(
                    #ident::__boxed(#(#internals),*),
                ))
            })
        },
    }
}

fn raw_handler(f: &Function) -> TokenStream {
    let p = private();
    let ident = &f.ident;
    let raw = raw_ident(f);
    // A wrong argument or return type is reported on the user's own type.
    let call_span = f
        .args
        .first()
        .map_or_else(Span::call_site, |a| syn::spanned::Spanned::span(&a.ty));
    let respond = match &f.output {
        Output::Fallible { .. } => quote!(#p::web::raw_response_fallible),
        _ => quote!(#p::web::raw_response),
    };
    if f.is_async {
        let call = quote_spanned!(call_span=> #ident::#raw(__request).await);
        quote! {
            #p::Handler::Async(|__payload| {
                ::std::boxed::Box::pin(async move {
                    let __request = #p::web::raw_request(&__payload)?;
                    #respond(#call)
                })
            })
        }
    } else {
        let call = quote_spanned!(call_span=> #ident::#raw(__request));
        quote! {
            #p::Handler::Blocking(|__payload| {
                let __request = #p::web::raw_request(&__payload)?;
                #respond(#call)
            })
        }
    }
}

fn app_handler(f: &Function) -> TokenStream {
    let p = private();
    let ident = &f.ident;
    let raw = raw_ident(f);
    let build = quote_spanned!(f.item.sig.output_span()=> #ident::#raw);
    quote! {
        #p::Handler::Async(|__payload| {
            // Built on the container's first request, then shared.
            static __ROUTER: ::std::sync::OnceLock<#p::web::axum::Router> =
                ::std::sync::OnceLock::new();
            ::std::boxed::Box::pin(#p::web::serve_router(__payload, &__ROUTER, #build))
        })
    }
}

/// The span of a signature's return type (or its name, when it has none).
trait OutputSpan {
    fn output_span(&self) -> Span;
}

impl OutputSpan for syn::Signature {
    fn output_span(&self) -> Span {
        match &self.output {
            syn::ReturnType::Type(_, ty) => syn::spanned::Spanned::span(&**ty),
            syn::ReturnType::Default => self.ident.span(),
        }
    }
}

/// The whole stub of a raw endpoint or an app.
pub fn generate_untyped(f: &Function, web: &Web) -> TokenStream {
    let p = private();
    let ident = &f.ident;
    let cfgs = &f.cfgs;
    let options = options_expr(&f.options, None, Some(endpoint_options(f, web)));
    let handler = handler(f, web);
    let name_guard = name_guard(&f.name, &f.cfgs);
    let raw_fn = user_fn(f);
    let raw = raw_ident(f);
    let bindings: Vec<_> = f.args.iter().map(|a| &a.binding).collect();
    let tys: Vec<_> = f.args.iter().map(|a| &a.ty).collect();
    let output = &f.item.sig.output;
    let local = if f.is_async {
        quote! {
            /// Runs the function here, in this process, without a container.
            pub async fn local(&self, #(#bindings: #tys),*) #output {
                #ident::#raw(#(#bindings),*).await
            }
        }
    } else {
        quote! {
            /// Runs the function here, in this process, without a container.
            pub fn local(&self, #(#bindings: #tys),*) #output {
                #ident::#raw(#(#bindings),*)
            }
        }
    };
    let unit = quote!(());
    let handle_methods = handle_methods(f, &unit, &unit);
    // Its only inputs are HTTP requests: the same handler either way.
    let stub = stub_and_descriptor(
        f,
        StubParts {
            args_ty: &unit,
            ret: &unit,
            options,
            handler: handler.clone(),
            web: quote!(::core::option::Option::Some(#handler)),
            fingerprint: None,
            assoc: raw_fn,
        },
    );
    quote! {
        #name_guard

        #stub

        #(#cfgs)*
        #[allow(dead_code)]
        impl #ident {
            #local

            #handle_methods
        }

        #(#cfgs)*
        #p::inventory::submit! {
            #p::Registration(#ident::__DESCRIPTOR)
        }
    }
}
