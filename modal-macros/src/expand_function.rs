//! Code generation for `#[app::function(...)]`.
//!
//! For `fn add(a: i64, b: i64) -> i64` this emits a unit-like stub: a struct
//! `add` and a constant `add` of that type, so `add.remote(1, 2)` reads like a
//! call; the user's function lives on as `add::add`, a descriptor is
//! registered through `inventory`, and compile-time checks point rustc at the
//! user's own tokens. Every path is absolute (`::modal_runtime::__private`,
//! `::core`, `::std`), so user items named `Box` or `Result` change nothing.
//!
//! A function marked `#[app::batched(...)]` below takes `Vec`s; its stub is
//! typed with their elements (`embed.remote(text)`), its handler runs whole
//! batches, and only `local` and `get_raw_f` keep the `Vec` signature.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{Ident, ItemFn, LitStr, Type};

use crate::attr::parse_options;
use crate::batched::{output_element, vec_element};
use crate::check::{check_options, check_signature};
use crate::errors::Errors;
use crate::expand_shared::{
    TypeChecks, decode_payload, encode, name_guard, option_checks, options_expr, private,
    return_type, split_batch, success_type,
};
use crate::model::Function;

/// Entry point: options tokens and item tokens in, items out. Errors come out
/// as `compile_error!`s next to the user's function (or the full stub, when
/// only options were wrong), so no second, confusing error follows.
pub fn expand(options: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let options = parse_options(options, &mut errors);
    let item: ItemFn = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            errors.at(
                Span::call_site(),
                "`#[app::function]` can only be applied to a function (`fn` or `async fn`)",
            );
            let errors = errors.to_compile_errors();
            return quote!(#input #errors);
        }
    };
    let function = Function::from_item(item, options, &mut errors);
    let mut fatal = Errors::new();
    check_signature(&function, &mut fatal);
    check_options(&function, &mut errors);
    if !fatal.is_empty() {
        errors.append(fatal);
        let item = &function.item;
        let errors = errors.to_compile_errors();
        return quote!(#item #errors);
    }
    let generated = match &function.web {
        Some(web) if web.kind != crate::web::WebKind::Json => {
            crate::expand_web::generate_untyped(&function, web)
        }
        _ => generate(&function),
    };
    let errors = errors.to_compile_errors();
    quote!(#generated #errors)
}

/// The element types a batched function's stub is typed with: one per
/// argument, and the result of one input. `None` for other functions.
fn batch_elements(f: &Function) -> Option<(Vec<&Type>, &Type)> {
    f.batched.as_ref()?;
    let args = f
        .args
        .iter()
        .map(|a| vec_element(&a.ty))
        .collect::<Option<Vec<_>>>()?;
    Some((args, output_element(&f.output)?))
}

/// All the items for one function.
pub fn generate(f: &Function) -> TokenStream {
    let p = private();
    let ident = &f.ident;
    let cfgs = &f.cfgs;
    let batch = batch_elements(f);
    // The user's own argument types (`local`, `get_raw_f`), and the types
    // of one input as it travels (the elements, for a batched function).
    let tys: Vec<&Type> = f.args.iter().map(|a| &a.ty).collect();
    let (wire_tys, ret) = match (&batch, &f.generator) {
        (Some((elements, element)), _) => (elements.clone(), quote!(#element)),
        // A generator's handle is typed with the generator itself: it has
        // `remote_gen`, and no `remote` (a `Generator` does not decode).
        (None, Some(g)) => {
            let item = &g.item;
            let r = g.ret.as_ref().map_or_else(|| quote!(()), |r| quote!(#r));
            (tys.clone(), quote!(#p::Generator<#item, #r>))
        }
        (None, None) => (tys.clone(), success_type(&f.output)),
    };
    let bindings: Vec<_> = f.args.iter().map(|a| &a.binding).collect();
    let internals: Vec<_> = f.args.iter().map(|a| &a.internal).collect();
    let args_ty = quote!((#(#wire_tys,)*));
    let orig_ret = return_type(&f.output);
    let output = &f.item.sig.output;
    let options = options_expr(
        &f.options,
        f.batched.as_ref().and_then(|b| b.values()),
        f.web
            .as_ref()
            .map(|web| crate::expand_web::endpoint_options(f, web)),
    );
    let web_handler = match &f.web {
        Some(web) => {
            let handler = crate::expand_web::handler(f, web);
            quote!(::core::option::Option::Some(#handler))
        }
        None => quote!(::core::option::Option::None),
    };
    let checks = compile_time_checks(f, batch.as_ref());
    let name_guard = name_guard(&f.name, &f.cfgs);

    let raw = raw_ident(f);
    let raw_fn = user_fn(f);

    let decode = decode_payload(&internals, &args_ty);
    let batch_call = |call: TokenStream| {
        let elements = batch.as_ref().map(|(e, _)| e.as_slice()).unwrap_or(&[]);
        split_batch(elements, &internals, call)
    };

    let (raw_fns, handler, local, raw_f) = if f.is_async {
        // Boxing into `BoxFuture` is where a future that is not `Send` is
        // refused; span it on the user's signature so the error lands there.
        let send_span = f.item.sig.ident.span();
        let boxed =
            quote_spanned!(send_span=> ::std::boxed::Box::pin(#ident::#raw(#(#internals),*)));
        let handler = if batch.is_some() {
            let split = batch_call(quote!(#ident::__boxed(#(#internals),*)));
            quote! {
                #p::Handler::BatchAsync(|__payloads| {
                    ::std::boxed::Box::pin(#p::run_batch_async(__payloads, #split))
                })
            }
        } else if f.generator.is_some() {
            quote! {
                #p::Handler::Generator(|__payload| {
                    #decode
                    ::core::result::Result::Ok(#p::encode_generator_future(
                        #ident::__boxed(#(#internals),*),
                    ))
                })
            }
        } else {
            let run = encode(&f.output, quote!(#ident::__boxed(#(#internals),*).await));
            quote! {
                #p::Handler::Async(|__payload| {
                    ::std::boxed::Box::pin(async move {
                        #decode
                        #run
                    })
                })
            }
        };
        (
            quote! {
                #raw_fn

                #[doc(hidden)]
                pub fn __boxed(#(#internals: #tys),*) -> #p::BoxFuture<'static, #orig_ret> {
                    #boxed
                }
            },
            handler,
            quote! {
                /// Runs the function here, in this process, without a container.
                pub fn local(&self, #(#bindings: #tys),*)
                    -> impl ::core::future::Future<Output = #orig_ret> + use<>
                {
                    #ident::#raw(#(#bindings),*)
                }
            },
            quote! {
                /// The function itself, as a plain function pointer returning a boxed future.
                pub fn get_raw_f(&self) -> fn(#(#tys),*) -> #p::BoxFuture<'static, #orig_ret> {
                    #ident::__boxed
                }
            },
        )
    } else {
        let handler = if batch.is_some() {
            let split = batch_call(quote!(#ident::#raw(#(#internals),*)));
            quote! {
                #p::Handler::BatchBlocking(|__payloads| #p::run_batch(__payloads, #split))
            }
        } else if f.generator.is_some() {
            quote! {
                #p::Handler::Generator(|__payload| {
                    #decode
                    ::core::result::Result::Ok(#p::encode_generator(#ident::#raw(#(#internals),*)))
                })
            }
        } else {
            let run = encode(&f.output, quote!(#ident::#raw(#(#internals),*)));
            quote! {
                #p::Handler::Blocking(|__payload| {
                    #decode
                    #run
                })
            }
        };
        (
            raw_fn,
            handler,
            quote! {
                /// Runs the function here, in this process, without a container.
                pub fn local(&self, #(#bindings: #tys),*) #output {
                    #ident::#raw(#(#bindings),*)
                }
            },
            quote! {
                /// The function itself, as a plain function pointer.
                pub fn get_raw_f(&self) -> fn(#(#tys),*) #output {
                    #ident::#raw
                }
            },
        )
    };

    // One-argument functions take plain items in `map` and `for_each`; the
    // others take argument tuples.
    let one_arg = f.args.len() == 1;
    let (item_ty, to_tuples) = if one_arg {
        let ty = wire_tys[0];
        (
            quote!(#ty),
            quote! {
                ::core::iter::Iterator::map(
                    ::core::iter::IntoIterator::into_iter(inputs),
                    |__arg| (__arg,),
                )
            },
        )
    } else {
        (args_ty.clone(), quote!(inputs))
    };
    // What `for_each` keeps: the iterator, never the `IntoIterator` itself.
    let to_iter = if one_arg {
        to_tuples.clone()
    } else {
        quote!(::core::iter::IntoIterator::into_iter(inputs))
    };
    let map = one_arg.then(|| {
        quote! {
            /// Runs the function once per input, in parallel containers; results stream back.
            pub fn map<__I>(&self, inputs: __I) -> #p::MapStream<#ret>
            where
                __I: ::core::iter::IntoIterator<Item = #item_ty>,
                <__I as ::core::iter::IntoIterator>::IntoIter: ::core::marker::Send + 'static,
            {
                self.__handle.map(#to_tuples)
            }
        }
    });

    let remote_doc = if batch.is_some() {
        format!(
            "Runs `{}` on one input in a container, batched with other inputs there, and waits for its result.",
            f.name.value
        )
    } else {
        format!(
            "Runs `{}` in a container and waits for its result.",
            f.name.value
        )
    };

    let calls = if let Some(g) = &f.generator {
        let item = &g.item;
        let r = g.ret.as_ref().map_or_else(|| quote!(()), |r| quote!(#r));
        let doc = format!(
            "Runs generator `{}` in a container: its items arrive as they are produced, then `finish()` gives its return value.",
            f.name.value
        );
        quote! {
            #[doc = #doc]
            pub fn remote_gen(&self, #(#bindings: #wire_tys),*) -> #p::GenStream<#item, #r> {
                self.__handle.remote_gen((#(#bindings,)*))
            }
        }
    } else {
        quote! {
            #[doc = #remote_doc]
            pub fn remote(&self, #(#bindings: #wire_tys),*)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<#ret, #p::Error>,
                > + ::core::marker::Send + use<>
            {
                let __handle = ::core::clone::Clone::clone(&self.__handle);
                async move { __handle.remote((#(#bindings,)*)).await }
            }

            /// Starts the function in a container without waiting; the returned call gives the result later.
            pub fn spawn(&self, #(#bindings: #wire_tys),*)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<#p::FunctionCall<#ret>, #p::Error>,
                > + ::core::marker::Send + use<>
            {
                let __handle = ::core::clone::Clone::clone(&self.__handle);
                async move { __handle.spawn((#(#bindings,)*)).await }
            }

            /// Runs the function once per argument tuple, in parallel containers; results stream back.
            pub fn starmap<__I>(&self, inputs: __I) -> #p::MapStream<#ret>
            where
                __I: ::core::iter::IntoIterator<Item = #args_ty>,
                <__I as ::core::iter::IntoIterator>::IntoIter: ::core::marker::Send + 'static,
            {
                self.__handle.map(inputs)
            }

            #map

            /// Runs the function once per input, in parallel containers, discarding the results; fails on the first failed input.
            pub fn for_each<__I>(&self, inputs: __I)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<(), #p::Error>,
                > + ::core::marker::Send + use<__I>
            where
                __I: ::core::iter::IntoIterator<Item = #item_ty>,
                <__I as ::core::iter::IntoIterator>::IntoIter: ::core::marker::Send + 'static,
            {
                let __handle = ::core::clone::Clone::clone(&self.__handle);
                let __inputs = #to_iter;
                async move { __handle.for_each(__inputs).await }
            }

        }
    };

    let handle_methods = handle_methods(f, &args_ty, &ret);
    let stub = stub_and_descriptor(
        f,
        StubParts {
            args_ty: &args_ty,
            ret: &ret,
            options,
            handler,
            web: web_handler,
            assoc: raw_fns,
        },
    );

    // The checks come first: rustc then tends to report their clear errors
    // before any that follow from the same mistake inside the stub.
    quote! {
        #checks
        #name_guard

        #stub

        #(#cfgs)*
        #[allow(dead_code)]
        impl #ident {
            #calls

            #local

            #raw_f

            #handle_methods
        }

        #(#cfgs)*
        #p::inventory::submit! {
            #p::Registration(#ident::__DESCRIPTOR)
        }
    }
}

/// The stub's methods that never encode a value: finding the function,
/// its warm pool and stats, its URL, and handles by name and version.
pub(crate) fn handle_methods(
    f: &Function,
    args_ty: &TokenStream,
    ret: &TokenStream,
) -> TokenStream {
    let p = private();
    let ident = &f.ident;
    let name = LitStr::new(&f.name.value, f.name.span);
    let from_name_doc = format!(
        "A handle on function `{}` of a deployed app (lazy: looked up on first use).",
        f.name.value
    );
    quote! {
            /// Looks the function up on the control plane now rather than on first call.
            pub fn hydrate(&self)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<(), #p::Error>,
                > + ::core::marker::Send + use<>
            {
                let __handle = ::core::clone::Clone::clone(&self.__handle);
                async move { __handle.hydrate().await }
            }

            /// Keeps at least `min_containers` containers running (the warm pool), until the app is deployed again.
            pub fn keep_warm(&self, min_containers: u32)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<(), #p::Error>,
                > + ::core::marker::Send + use<>
            {
                let __handle = ::core::clone::Clone::clone(&self.__handle);
                async move { __handle.keep_warm(min_containers).await }
            }

            /// Changes the function's autoscaler now, until the app is deployed again; each setting left `None` keeps its value.
            pub fn update_autoscaler(&self, settings: #p::AutoscalerSettings)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<(), #p::Error>,
                > + ::core::marker::Send + use<>
            {
                let __handle = ::core::clone::Clone::clone(&self.__handle);
                async move { __handle.update_autoscaler(settings).await }
            }

            /// Queued inputs, containers and running inputs of the function, now.
            pub fn get_current_stats(&self)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<#p::FunctionStats, #p::Error>,
                > + ::core::marker::Send + use<>
            {
                let __handle = ::core::clone::Clone::clone(&self.__handle);
                async move { __handle.get_current_stats().await }
            }

            #[doc = #from_name_doc]
            pub fn from_name(app: &str) -> Self {
                #ident {
                    __handle: #p::Function::from_name(app, #name),
                }
            }

            /// `from_name`, looked up now: fails at once if the app or the function is missing, or its types differ.
            pub fn lookup(app: &str)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<Self, #p::Error>,
                > + ::core::marker::Send + use<>
            {
                let __stub = Self::from_name(app);
                async move {
                    __stub.__handle.hydrate().await?;
                    ::core::result::Result::Ok(__stub)
                }
            }

            /// The same function, pinned to one deployed version.
            pub fn version(self, version: u32) -> Self {
                #ident {
                    __handle: self.__handle.version(version),
                }
            }

            /// The typed handle behind this stub.
            pub fn handle(&self) -> &#p::Function<#args_ty, #ret> {
                &self.__handle
            }

            /// The URL this function is served at if it is a web endpoint (`#[app::web_endpoint]`, `#[app::web_app]`), the same across redeploys; `None` otherwise.
            pub fn web_url(&self)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<::core::option::Option<::std::string::String>, #p::Error>,
                > + ::core::marker::Send + use<>
            {
                let __handle = ::core::clone::Clone::clone(&self.__handle);
                async move { __handle.web_url().await }
            }

            /// `web_url`, by Modal's newer name.
            pub fn get_web_url(&self)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<::core::option::Option<::std::string::String>, #p::Error>,
                > + ::core::marker::Send + use<>
            {
                let __handle = ::core::clone::Clone::clone(&self.__handle);
                async move { __handle.web_url().await }
            }
    }
}

/// What [`stub_and_descriptor`] puts in a stub besides its name.
pub(crate) struct StubParts<'a> {
    /// The handle's types: the arguments' tuple and the result.
    pub args_ty: &'a TokenStream,
    pub ret: &'a TokenStream,
    pub options: TokenStream,
    pub handler: TokenStream,
    /// `Option<Handler>` for HTTP requests.
    pub web: TokenStream,
    /// More associated items of the stub (the user's function).
    pub assoc: TokenStream,
}

/// The stub struct, its constant and its registered descriptor.
pub(crate) fn stub_and_descriptor(f: &Function, parts: StubParts) -> TokenStream {
    let p = private();
    let ident = &f.ident;
    let vis = &f.vis;
    let cfgs = &f.cfgs;
    let docs = stub_docs(f);
    let name = LitStr::new(&f.name.value, f.name.span);
    // `module_path!()` plus the identifier as written (`r#type` stays raw).
    let rust_name = LitStr::new(&format!("::{ident}"), Span::call_site());
    let arity = Literal::usize_unsuffixed(f.args.len());
    let StubParts {
        args_ty,
        ret,
        options,
        handler,
        web,
        assoc,
    } = parts;
    quote! {
        #(#cfgs)*
        #docs
        // A function may be registered only to be called by name from
        // elsewhere: never using the stub in this crate is not dead code.
        #[allow(non_camel_case_types, dead_code)]
        #[derive(::core::clone::Clone)]
        #vis struct #ident {
            __handle: #p::Function<#args_ty, #ret>,
        }

        #(#cfgs)*
        #docs
        #[allow(non_upper_case_globals, dead_code)]
        #vis const #ident: #ident = #ident {
            __handle: #p::Function::from_descriptor(#ident::__DESCRIPTOR),
        };

        #(#cfgs)*
        impl #ident {
            #[doc(hidden)]
            pub const __DESCRIPTOR: &'static #p::FunctionDescriptor = &#p::FunctionDescriptor {
                name: #name,
                rust_path: ::core::concat!(::core::module_path!(), #rust_name),
                options: #options,
                fingerprint: #p::fingerprint::<#args_ty, #ret>,
                arity: #arity,
                handler: #handler,
                web: #web,
            };

            #assoc
        }
    }
}

/// The stub's documentation: the user's `///` comments, or a line naming it.
pub(crate) fn stub_docs(f: &Function) -> TokenStream {
    if f.docs.is_empty() {
        let doc = format!(
            "Remote function `{}`: call it with `.remote(...)`.",
            f.name.value
        );
        quote!(#[doc = #doc])
    } else {
        let docs = &f.docs;
        quote!(#(#docs)*)
    }
}

/// The user's function itself, as an associated function of the stub:
/// same signature, attributes and body (every span the user's). Inside the
/// body, as everywhere else, the function's name is the stub:
/// `name.remote(...)` fans out to containers, `name.local(...)` recurses.
pub(crate) fn user_fn(f: &Function) -> TokenStream {
    let attrs = &f.attrs;
    let mut sig = f.item.sig.clone();
    sig.ident = raw_ident(f);
    let block = &f.item.block;
    quote! {
        #(#attrs)*
        #[doc(hidden)]
        pub #sig #block
    }
}

/// Names the stub's own methods and constants use.
const RESERVED: &[&str] = &[
    "remote",
    "remote_gen",
    "spawn",
    "starmap",
    "map",
    "for_each",
    "local",
    "get_raw_f",
    "hydrate",
    "keep_warm",
    "update_autoscaler",
    "get_current_stats",
    "from_name",
    "lookup",
    "version",
    "handle",
    "web_url",
    "get_web_url",
    "clone",
    "__boxed",
    "__DESCRIPTOR",
];

/// The name of the user's function inside the stub: its own (`add::add`), so
/// that compiler notes ("future returned by `add`"), tracing spans and
/// backtraces name it as written; `__raw` if that would clash with a method.
pub(crate) fn raw_ident(f: &Function) -> Ident {
    let name = f.ident.unraw().to_string();
    if RESERVED.contains(&name.as_str()) {
        Ident::new("__raw", f.ident.span())
    } else {
        f.ident.clone()
    }
}

/// `const` assertions, each spanned on the user's token so that rustc's
/// error lands there: arguments and result can travel, a `Result` return
/// type is one the runtime understands, and option values are within the
/// runtime's own bounds.
fn compile_time_checks(f: &Function, batch: Option<&(Vec<&Type>, &Type)>) -> TokenStream {
    let mut checks = TypeChecks::default();
    match batch {
        Some((elements, element)) => {
            for ty in elements {
                checks.remote(ty);
            }
            if let Some(ty) = f.output.ty() {
                checks.batch_output(ty, element);
            }
        }
        None => {
            for arg in &f.args {
                checks.remote(&arg.ty);
            }
            match &f.generator {
                Some(g) => {
                    checks.remote(&g.item);
                    if let Some(r) = &g.ret {
                        checks.remote(r);
                    }
                }
                None => checks.output(&f.output),
            }
        }
    }
    checks.finish(&f.cfgs, option_checks(&f.options, f.batched.as_ref()))
}

#[cfg(test)]
pub(crate) mod tests {
    use proc_macro2::TokenTree;
    use quote::quote;

    use super::*;

    /// Names a user may define, so generated code must never use them bare.
    const PRELUDE_NAMES: &[&str] = &[
        "Box",
        "Pin",
        "Result",
        "Ok",
        "Err",
        "Option",
        "Some",
        "None",
        "Vec",
        "String",
        "Send",
        "Sync",
        "Clone",
        "Future",
        "IntoIterator",
        "Iterator",
        "Default",
        "From",
        "Into",
        "assert",
        "concat",
        "module_path",
        "unimplemented",
    ];

    /// Every use of a prelude name in `tokens` that does not follow `::`.
    pub(crate) fn bare_prelude_names(tokens: TokenStream) -> Vec<String> {
        let mut bare = Vec::new();
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, token) in tokens.iter().enumerate() {
            match token {
                TokenTree::Group(group) => bare.extend(bare_prelude_names(group.stream())),
                TokenTree::Ident(ident) if PRELUDE_NAMES.contains(&ident.to_string().as_str()) => {
                    let colon =
                        |j: usize| matches!(&tokens[j], TokenTree::Punct(p) if p.as_char() == ':');
                    if !(i >= 2 && colon(i - 1) && colon(i - 2)) {
                        bare.push(ident.to_string());
                    }
                }
                _ => {}
            }
        }
        bare
    }

    fn expand_ok(options: TokenStream, item: TokenStream) -> (String, syn::File) {
        let out = expand(options, item);
        let text = out.to_string();
        assert!(!text.contains("compile_error"), "unexpected error: {text}");
        let file = syn::parse2(out).unwrap_or_else(|e| panic!("not valid Rust ({e}): {text}"));
        (text, file)
    }

    fn method_names(file: &syn::File) -> Vec<String> {
        let mut names = Vec::new();
        for item in &file.items {
            if let syn::Item::Impl(imp) = item {
                for item in &imp.items {
                    match item {
                        syn::ImplItem::Fn(f) => names.push(f.sig.ident.to_string()),
                        syn::ImplItem::Const(c) => names.push(c.ident.to_string()),
                        _ => {}
                    }
                }
            }
        }
        names.sort();
        names
    }

    #[test]
    fn generated_paths_are_absolute() {
        let (_, file) = expand_ok(
            quote!(cpu = 1, env = { "A": "b" }, secrets = ["s"], gpu = "T4", timeout = 5),
            quote!(
                pub async fn f(a: u8, b: u8) -> ::core::result::Result<u8, ::std::string::String> {
                    ::core::result::Result::Ok(a + b)
                }
            ),
        );
        let tokens = quote::ToTokens::into_token_stream(file);
        assert_eq!(bare_prelude_names(tokens), Vec::<String>::new());
        for item in [
            quote!(
                fn g() {}
            ),
            quote!(
                fn g(x: u8) -> u8 {
                    x
                }
            ),
            quote!(
                async fn g(x: u8) {}
            ),
        ] {
            let (_, file) = expand_ok(quote!(), item);
            let tokens = quote::ToTokens::into_token_stream(file);
            assert_eq!(bare_prelude_names(tokens), Vec::<String>::new());
        }
    }

    #[test]
    fn stub_api_by_arity() {
        let common = [
            "__DESCRIPTOR",
            "f",
            "for_each",
            "from_name",
            "get_current_stats",
            "get_raw_f",
            "get_web_url",
            "handle",
            "hydrate",
            "keep_warm",
            "local",
            "lookup",
            "remote",
            "spawn",
            "starmap",
            "update_autoscaler",
            "version",
            "web_url",
        ];
        let (_, zero) = expand_ok(
            quote!(),
            quote!(
                fn f() {}
            ),
        );
        assert_eq!(method_names(&zero), common);
        let (_, two) = expand_ok(
            quote!(),
            quote!(
                fn f(a: u8, b: u8) {}
            ),
        );
        assert_eq!(method_names(&two), common);
        let (_, one) = expand_ok(
            quote!(),
            quote!(
                fn f(a: u8) {}
            ),
        );
        let mut with_map = common.to_vec();
        with_map.push("map");
        with_map.sort();
        assert_eq!(method_names(&one), with_map);
        let (_, one_async) = expand_ok(
            quote!(),
            quote!(
                async fn f(a: u8) {}
            ),
        );
        with_map.push("__boxed");
        with_map.sort();
        assert_eq!(method_names(&one_async), with_map);
        // A function named like a stub method keeps its body as `__raw`.
        let (_, map) = expand_ok(
            quote!(),
            quote!(
                fn map(a: u8) {}
            ),
        );
        let names = method_names(&map);
        assert!(names.contains(&"__raw".to_string()), "{names:?}");
        assert_eq!(names.iter().filter(|n| *n == "map").count(), 1);
    }

    #[test]
    fn sync_and_async_handlers() {
        let (sync, _) = expand_ok(
            quote!(),
            quote!(
                fn f(a: u8) -> u8 {
                    a
                }
            ),
        );
        assert!(sync.contains("Handler :: Blocking"));
        assert!(sync.contains("encode_output"));
        let (asyn, _) = expand_ok(
            quote!(),
            quote!(
                async fn f(a: u8) -> Result<u8, E> {
                    a
                }
            ),
        );
        assert!(asyn.contains("Handler :: Async"));
        assert!(asyn.contains("encode_fallible"));
        assert!(asyn.contains("BoxFuture < 'static , Result < u8 , E > >"));
        assert!(
            asyn.contains("__handle : :: modal_runtime :: __private :: Function < (u8 ,) , u8 >")
        );
        assert!(asyn.contains("fn __ok_type_is_first_argument_0 (result : Result < u8 , E >)"));
        // Without a written success type, it is the `Ok` of `Fallible`.
        let (alias, _) = expand_ok(
            quote!(),
            quote!(
                fn f() -> Result {
                    a
                }
            ),
        );
        assert!(alias.contains(
            "Function < () , < Result as :: modal_runtime :: __private :: Fallible > :: Ok >"
        ));
    }

    #[test]
    fn batched_functions() {
        let (text, file) = expand_ok(
            quote!(max_inputs = 2),
            quote!(
                #[app::batched(max_batch_size = 8, wait_ms = 100)]
                fn embed(texts: Vec<String>, scale: Vec<u32>) -> Vec<u64> {
                    todo!()
                }
            ),
        );
        // The stub is typed with one input's elements.
        assert!(
            text.contains(
                "__handle : :: modal_runtime :: __private :: Function < (String , u32 ,) , u64 >"
            ),
            "{text}"
        );
        assert!(
            text.contains("pub fn remote (& self , texts : String , scale : u32)"),
            "{text}"
        );
        assert!(text.contains("fingerprint : :: modal_runtime :: __private :: fingerprint :: < (String , u32 ,) , u64 >"), "{text}");
        assert!(text.contains("arity : 2"), "{text}");
        // `local` and `get_raw_f` keep the user's own signature.
        assert!(text.contains("pub fn local (& self , texts : Vec < String > , scale : Vec < u32 >) -> Vec < u64 >"), "{text}");
        assert!(
            text.contains(
                "pub fn get_raw_f (& self) -> fn (Vec < String > , Vec < u32 >) -> Vec < u64 >"
            ),
            "{text}"
        );
        // A whole batch per call, split into one `Vec` per argument.
        assert!(text.contains("handler : :: modal_runtime :: __private :: Handler :: BatchBlocking (| __payloads | :: modal_runtime :: __private :: run_batch (__payloads , move | __batch : :: std :: vec :: Vec < (String , u32 ,) > |"), "{text}");
        assert!(text.contains("embed :: embed (__arg0 , __arg1)"), "{text}");
        assert!(
            text.contains(
                "batch_max_size : :: core :: option :: Option :: Some (8) , batch_wait_ms : 100 ,"
            ),
            "{text}"
        );
        assert!(text.contains("max_inputs : 2 ,"), "{text}");
        assert!(
            text.contains("__AssertBatchOutput < Vec < u64 > >"),
            "{text}"
        );
        assert!(text.contains("__AssertRemote < String >"), "{text}");
        assert!(!text.contains("app :: batched"), "{text}");
        let tokens = quote::ToTokens::into_token_stream(file);
        let bare = bare_prelude_names(tokens);
        assert!(bare.iter().all(|n| n == "Vec" || n == "String"), "{bare:?}");

        let (text, file) = expand_ok(
            quote!(),
            quote!(
                #[app::batched(max_batch_size = 8, wait_ms = 0)]
                async fn one(
                    xs: ::std::vec::Vec<u8>,
                ) -> ::core::result::Result<::std::vec::Vec<u8>, E> {
                    todo!()
                }
            ),
        );
        assert!(text.contains("Handler :: BatchAsync (| __payloads | { :: std :: boxed :: Box :: pin (:: modal_runtime :: __private :: run_batch_async (__payloads ,"), "{text}");
        assert!(text.contains("one :: __boxed (__arg0)"), "{text}");
        assert!(text.contains("pub fn map < __I > (& self , inputs : __I) -> :: modal_runtime :: __private :: MapStream < u8 >"), "{text}");
        let tokens = quote::ToTokens::into_token_stream(file);
        assert_eq!(bare_prelude_names(tokens), Vec::<String>::new());
    }

    #[test]
    fn batched_signature_errors_emit_only_the_function() {
        let text = expand(
            quote!(),
            quote!(
                #[app::batched(max_batch_size = 8, wait_ms = 0)]
                fn f(x: u8) -> u8 {
                    x
                }
            ),
        )
        .to_string();
        assert!(text.contains("compile_error"));
        assert!(text.starts_with("fn f (x : u8) -> u8 { x }"), "{text}");
    }

    #[test]
    fn descriptor_fields() {
        let (text, _) = expand_ok(
            quote!(name = "add-two"),
            quote!(
                fn add(a: i64, b: i64) -> i64 {
                    a + b
                }
            ),
        );
        assert!(text.contains(r#"name : "add-two""#), "{text}");
        assert!(
            text.contains(
                r#"rust_path : :: core :: concat ! (:: core :: module_path ! () , "::add")"#
            ),
            "{text}"
        );
        assert!(text.contains("fingerprint : :: modal_runtime :: __private :: fingerprint :: < (i64 , i64 ,) , i64 >"), "{text}");
        assert!(text.contains("arity : 2"), "{text}");
        assert!(
            text.contains("macro_rules ! __modal_function_named_add_h_two"),
            "{text}"
        );
        assert!(
            text.contains(r#"Function :: from_name (app , "add-two")"#),
            "{text}"
        );
    }

    #[test]
    fn only_given_options_are_emitted() {
        let (text, _) = expand_ok(
            quote!(),
            quote!(
                fn f() {}
            ),
        );
        assert!(text.contains("options : :: modal_runtime :: __private :: FunctionOptions { .. :: modal_runtime :: __private :: FunctionOptions :: DEFAULT }"), "{text}");
        let (text, _) = expand_ok(
            quote!(cpu = 2, memory = 512, timeout = 60, max_containers = 3, env = { "K": "v" }, secrets = ["s"], region = "r", max_inputs = 8, target_inputs = 4),
            quote!(
                fn f() {}
            ),
        );
        for field in [
            "cpu : :: core :: option :: Option :: Some (2f64)",
            "memory_mib : :: core :: option :: Option :: Some (512)",
            "timeout_secs : 60",
            "max_containers : :: core :: option :: Option :: Some (3)",
            r#"env : :: modal_runtime :: __private :: Cow :: Borrowed (& [(:: modal_runtime :: __private :: Cow :: Borrowed ("K") , :: modal_runtime :: __private :: Cow :: Borrowed ("v"))])"#,
            r#"secrets : :: modal_runtime :: __private :: Cow :: Borrowed (& [:: modal_runtime :: __private :: Cow :: Borrowed ("s")])"#,
            r#"region : :: core :: option :: Option :: Some (:: modal_runtime :: __private :: Cow :: Borrowed ("r"))"#,
            "max_inputs : 8 ,",
            "target_inputs : :: core :: option :: Option :: Some (4) ,",
        ] {
            assert!(text.contains(field), "missing `{field}` in {text}");
        }
        let start = text.find("options :").unwrap();
        let options = &text[start..start + text[start..].find("DEFAULT").unwrap()];
        for absent in [
            "gpu :",
            "retries :",
            "min_containers :",
            "cloud :",
            "batch_max_size :",
            "cpu_limit :",
            "memory_limit_mib :",
            "image :",
        ] {
            assert!(
                !options.contains(absent),
                "unexpected `{absent}` in {options}"
            );
        }
        let (pairs, _) = expand_ok(
            quote!(
                cpu = (0.5, 2),
                memory = (512, 1024),
                gpu = "h100:2",
                image = "python:3.12"
            ),
            quote!(
                fn f() {}
            ),
        );
        for field in [
            "cpu : :: core :: option :: Option :: Some (0.5f64)",
            "cpu_limit : :: core :: option :: Option :: Some (2f64)",
            "memory_mib : :: core :: option :: Option :: Some (512)",
            "memory_limit_mib : :: core :: option :: Option :: Some (1024)",
            // In normal form: what the control plane and backends compare.
            r#"gpu : :: core :: option :: Option :: Some (:: modal_runtime :: __private :: Cow :: Borrowed ("H100:2"))"#,
            r#"image : :: core :: option :: Option :: Some (:: modal_runtime :: __private :: Cow :: Borrowed ("python:3.12"))"#,
        ] {
            assert!(pairs.contains(field), "missing `{field}` in {pairs}");
        }
        // Bounded options are re-checked against the runtime's constants.
        assert!(text.contains("FunctionOptions :: TIMEOUT_SECS . start ()"));
        assert!(text.contains("FunctionOptions :: MAX_INPUTS . start ()"));
    }

    #[test]
    fn option_errors_still_generate_the_stub() {
        let text = expand(
            quote!(timeout = "x", retries = 2),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(text.contains("compile_error"));
        assert!(text.contains("struct f"));
        assert!(text.contains("retries : 2"));
        assert!(!text.contains("timeout_secs"));
    }

    #[test]
    fn signature_errors_emit_only_the_function() {
        let text = expand(
            quote!(),
            quote!(
                fn f<T>(x: T) -> T {
                    x
                }
            ),
        )
        .to_string();
        assert!(text.contains("compile_error"));
        assert!(text.starts_with("fn f < T > (x : T) -> T { x }"), "{text}");
        assert!(!text.contains("struct"));
        let text = expand(
            quote!(),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(text.starts_with("struct S ;"), "{text}");
        assert!(text.contains("can only be applied to a function"));
    }

    #[test]
    fn attributes_are_distributed() {
        let (text, _) = expand_ok(
            quote!(),
            quote!(
                /// Docs.
                #[cfg(unix)]
                #[inline]
                fn f() {}
            ),
        );
        // The docs document the stub struct and constant.
        assert_eq!(text.matches(r#"# [doc = r" Docs."]"#).count(), 2, "{text}");
        // `cfg` guards every generated item.
        assert!(text.matches("# [cfg (unix)]").count() >= 7, "{text}");
        // Other attributes stay on the user's function.
        assert_eq!(text.matches("# [inline]").count(), 1);
        let (text, _) = expand_ok(
            quote!(),
            quote!(
                fn f() {}
            ),
        );
        assert!(text.contains("Remote function `f`"));
    }

    #[test]
    fn invalid_identifier_names_skip_the_name_guard() {
        let text = expand(
            quote!(),
            quote!(
                fn größe() {}
            ),
        )
        .to_string();
        assert!(text.contains("compile_error"));
        assert!(!text.contains("macro_rules"));
        assert!(text.contains("struct größe"));
    }

    #[test]
    fn web_endpoints() {
        let (text, json) = expand_ok(
            quote!(),
            quote!(
                #[app::web_endpoint(method = "GET", label = "sq", public)]
                fn f(a: u8, b: String) -> u8 {
                    a
                }
            ),
        );
        assert!(method_names(&json).contains(&"remote".to_owned()), "{text}");
        assert!(
            text.contains("kind : :: modal_runtime :: __private :: WebKind :: Json"),
            "{text}"
        );
        assert!(
            text.contains("method : :: modal_runtime :: __private :: Cow :: Borrowed (\"GET\")"),
            "{text}"
        );
        assert!(
            text.contains("JsonRequest :: decode (& __payload , & [\"a\" , \"b\"])"),
            "{text}"
        );
        assert!(text.contains("public : true"), "{text}");
        let (text, raw) = expand_ok(
            quote!(),
            quote!(
                #[app::web_endpoint(raw)]
                fn f(r: Request<Bytes>) -> Response<Bytes> {
                    todo!()
                }
            ),
        );
        let names = method_names(&raw);
        assert!(!names.contains(&"remote".to_owned()), "{names:?}");
        assert!(names.contains(&"web_url".to_owned()), "{names:?}");
        assert!(text.contains("WebKind :: Raw"), "{text}");
        assert!(text.contains("Cow :: Borrowed (\"*\")"), "{text}");
        let (text, _) = expand_ok(
            quote!(),
            quote!(
                #[app::web_app]
                fn make_api() -> Router {
                    todo!()
                }
            ),
        );
        assert!(
            text.contains("serve_router (__payload , & __ROUTER"),
            "{text}"
        );
        assert!(
            text.contains(
                "label : :: modal_runtime :: __private :: Cow :: Borrowed (\"make-api\")"
            ),
            "{text}"
        );
    }
}
