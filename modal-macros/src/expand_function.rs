//! Code generation for `#[app::function(...)]`.
//!
//! For `fn add(a: i64, b: i64) -> i64` this emits a unit-like stub: a struct
//! `add` and a constant `add` of that type, so `add.remote(1, 2)` reads like a
//! call; the user's function lives on inside `add::__raw`, a descriptor is
//! registered through `inventory`, and compile-time checks point rustc at the
//! user's own tokens. Every path is absolute (`::modal_runtime::__private`,
//! `::core`, `::std`), so user items named `Box` or `Result` change nothing.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{ItemFn, LitStr};

use crate::attr::{Options, parse_options, validate_name};
use crate::check::{check_options, check_signature};
use crate::errors::Errors;
use crate::model::{Function, Output};

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
    let function = Function::from_item(item, options);
    let mut fatal = Errors::new();
    check_signature(&function, &mut fatal);
    check_options(&function, &mut errors);
    if !fatal.is_empty() {
        errors.append(fatal);
        let item = &function.item;
        let errors = errors.to_compile_errors();
        return quote!(#item #errors);
    }
    let generated = generate(&function);
    let errors = errors.to_compile_errors();
    quote!(#generated #errors)
}

fn private() -> TokenStream {
    quote!(::modal_runtime::__private)
}

/// All the items for one function.
pub fn generate(f: &Function) -> TokenStream {
    let p = private();
    let ident = &f.ident;
    let vis = &f.vis;
    let cfgs = &f.cfgs;
    let name = LitStr::new(&f.name.value, f.name.span);
    // `module_path!()` plus the identifier as written (`r#type` stays raw).
    let rust_name = LitStr::new(&format!("::{ident}"), Span::call_site());
    let tys: Vec<_> = f.args.iter().map(|a| &a.ty).collect();
    let bindings: Vec<_> = f.args.iter().map(|a| &a.binding).collect();
    let internals: Vec<_> = f.args.iter().map(|a| &a.internal).collect();
    let arity = Literal::usize_unsuffixed(f.args.len());
    let args_ty = quote!((#(#tys,)*));
    let ret = success_type(f);
    let orig_ret = match f.output.ty() {
        Some(ty) => quote!(#ty),
        None => quote!(()),
    };
    let output = &f.item.sig.output;
    let options = options_expr(&f.options);
    let checks = compile_time_checks(f);
    let name_guard = name_guard(f);

    let docs = if f.docs.is_empty() {
        let doc = format!("Remote function `{}`: call it with `.remote(...)`.", f.name.value);
        quote!(#[doc = #doc])
    } else {
        let docs = &f.docs;
        quote!(#(#docs)*)
    };

    // The user's function, unchanged but for its visibility and its docs
    // (which document the stub), nested inside `__raw`: its body still sees
    // its own name as a plain function (recursion works) and its module's
    // items, and every span in it is the user's.
    let user_fn = {
        let attrs = &f.attrs;
        let sig = &f.item.sig;
        let block = &f.item.block;
        quote!(#(#attrs)* #sig #block)
    };

    let decode = quote! {
        let (#(#internals,)*): #args_ty = match #p::decode_args(&__payload) {
            ::core::result::Result::Ok(__args) => __args,
            ::core::result::Result::Err(__failure) => {
                return ::core::result::Result::Err(__failure);
            }
        };
    };
    let encode = |value: TokenStream| match f.output {
        Output::Fallible { .. } => quote!(#p::encode_fallible(#value)),
        _ => quote!(#p::encode_output(&#value)),
    };

    let (raw_fns, handler, local, raw_f) = if f.is_async {
        // Boxing into `BoxFuture` is where a future that is not `Send` is
        // refused; span it on the user's signature so the error lands there.
        let send_span = f.item.sig.ident.span();
        let boxed = quote_spanned!(send_span=> ::std::boxed::Box::pin(#ident::__raw(#(#internals),*)));
        let run = encode(quote!(#ident::__boxed(#(#internals),*).await));
        (
            quote! {
                #[doc(hidden)]
                pub fn __raw(#(#internals: #tys),*)
                    -> impl ::core::future::Future<Output = #orig_ret> + 'static
                {
                    #user_fn
                    #ident(#(#internals),*)
                }

                #[doc(hidden)]
                pub fn __boxed(#(#internals: #tys),*) -> #p::BoxFuture<'static, #orig_ret> {
                    #boxed
                }
            },
            quote! {
                #p::Handler::Async(|__payload| {
                    ::std::boxed::Box::pin(async move {
                        #decode
                        #run
                    })
                })
            },
            quote! {
                /// Runs the function here, in this process, without a container.
                pub async fn local(&self, #(#bindings: #tys),*) #output {
                    #ident::__raw(#(#bindings),*).await
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
        let run = encode(quote!(#ident::__raw(#(#internals),*)));
        (
            quote! {
                #[doc(hidden)]
                pub fn __raw(#(#internals: #tys),*) #output {
                    #user_fn
                    #ident(#(#internals),*)
                }
            },
            quote! {
                #p::Handler::Blocking(|__payload| {
                    #decode
                    #run
                })
            },
            quote! {
                /// Runs the function here, in this process, without a container.
                pub fn local(&self, #(#bindings: #tys),*) #output {
                    #ident::__raw(#(#bindings),*)
                }
            },
            quote! {
                /// The function itself, as a plain function pointer.
                pub fn get_raw_f(&self) -> fn(#(#tys),*) #output {
                    #ident::__raw
                }
            },
        )
    };

    // One-argument functions take plain items in `map` and `for_each`; the
    // others take argument tuples.
    let one_arg = f.args.len() == 1;
    let (item_ty, to_tuples) = if one_arg {
        let ty = tys[0];
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

    let remote_doc = format!(
        "Runs `{}` in a container and waits for its result.",
        f.name.value
    );
    let from_name_doc = format!(
        "A handle on function `{}` of a deployed app (lazy: looked up on first use).",
        f.name.value
    );

    quote! {
        #(#cfgs)*
        #docs
        #[allow(non_camel_case_types)]
        #[derive(::core::clone::Clone)]
        #vis struct #ident {
            __handle: #p::Function<#args_ty, #ret>,
        }

        #(#cfgs)*
        #docs
        #[allow(non_upper_case_globals)]
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
            };

            #raw_fns
        }

        #(#cfgs)*
        #[allow(dead_code)]
        impl #ident {
            #[doc = #remote_doc]
            pub async fn remote(&self, #(#bindings: #tys),*)
                -> ::core::result::Result<#ret, #p::Error>
            {
                self.__handle.remote((#(#bindings,)*)).await
            }

            /// Starts the function in a container without waiting; the returned call gives the result later.
            pub async fn spawn(&self, #(#bindings: #tys),*)
                -> ::core::result::Result<#p::FunctionCall<#ret>, #p::Error>
            {
                self.__handle.spawn((#(#bindings,)*)).await
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
            pub async fn for_each<__I>(&self, inputs: __I) -> ::core::result::Result<(), #p::Error>
            where
                __I: ::core::iter::IntoIterator<Item = #item_ty>,
                <__I as ::core::iter::IntoIterator>::IntoIter: ::core::marker::Send + 'static,
            {
                self.__handle.for_each(#to_tuples).await
            }

            #local

            #raw_f

            /// Looks the function up on the control plane now rather than on first call.
            pub async fn hydrate(&self) -> ::core::result::Result<(), #p::Error> {
                self.__handle.hydrate().await
            }

            #[doc = #from_name_doc]
            pub fn from_name(app: &str) -> Self {
                #ident {
                    __handle: #p::Function::from_name(app, #name),
                }
            }

            /// The same function, pinned to one deployed version.
            pub fn version(self, version: u32) -> Self {
                #ident {
                    __handle: self.__handle.version(version),
                }
            }

            /// The untyped-by-name handle behind this stub.
            pub fn handle(&self) -> &#p::Function<#args_ty, #ret> {
                &self.__handle
            }
        }

        #(#cfgs)*
        #p::inventory::submit! {
            #p::Registration(#ident::__DESCRIPTOR)
        }

        #checks
        #name_guard
    }
}

/// The type a successful call yields: `T` for `-> T`, `Ok` of the `Result`
/// for `-> Result<T, E>`, `()` for no return type.
fn success_type(f: &Function) -> TokenStream {
    let p = private();
    match &f.output {
        Output::Unit => quote!(()),
        Output::Plain(ty) => quote!(#ty),
        Output::Fallible { ty, ok_span } => {
            quote_spanned!(*ok_span=> <#ty as #p::Fallible>::Ok)
        }
    }
}

/// `const` assertions, each spanned on the user's token so that rustc's
/// error lands there: arguments and result can travel, a `Result` return
/// type is one the runtime understands, and option values are within the
/// runtime's own bounds.
fn compile_time_checks(f: &Function) -> TokenStream {
    let p = private();
    let mut checks = Vec::new();
    for arg in &f.args {
        let ty = &arg.ty;
        checks.push(quote_spanned!(ty.span()=> #p::assert_remote::<#ty>();));
    }
    match &f.output {
        Output::Unit => {}
        Output::Plain(ty) => checks.push(quote_spanned!(ty.span()=> #p::assert_remote::<#ty>();)),
        Output::Fallible { ty, ok_span } => {
            checks.push(quote_spanned! {ty.span()=>
                {
                    const fn __assert_fallible<R: #p::Fallible>() {}
                    __assert_fallible::<#ty>();
                }
            });
            checks.push(quote_spanned!(*ok_span=> #p::assert_remote::<<#ty as #p::Fallible>::Ok>();));
        }
    }
    let o = &f.options;
    for (option, bounds, message) in [
        (&o.timeout_secs, quote!(TIMEOUT_SECS), "`timeout` is outside the bounds of this version of modal-runtime"),
        (&o.retries, quote!(RETRIES), "`retries` is outside the bounds of this version of modal-runtime"),
        (
            &o.scaledown_window_secs,
            quote!(SCALEDOWN_WINDOW_SECS),
            "`scaledown_window` is outside the bounds of this version of modal-runtime",
        ),
    ] {
        if let Some(value) = option {
            let v = Literal::u32_suffixed(value.value);
            checks.push(quote_spanned! {value.span=>
                ::core::assert!(
                    *#p::FunctionOptions::#bounds.start() <= #v
                        && #v <= *#p::FunctionOptions::#bounds.end(),
                    #message
                );
            });
        }
    }
    let cfgs = &f.cfgs;
    quote! {
        #(#cfgs)*
        const _: () = {
            #(#checks)*
        };
    }
}

/// A `macro_rules!` named after the function's registered name: two
/// functions registered under one name in a crate make rustc report "the
/// name ... is defined multiple times" on the second one's name.
fn name_guard(f: &Function) -> TokenStream {
    if validate_name(&f.name.value).is_err() {
        return TokenStream::new();
    }
    let guard = format_ident!(
        "__modal_function_named_{}",
        f.name.value.replace('-', "_h_"),
        span = f.name.span
    );
    let cfgs = &f.cfgs;
    quote! {
        #(#cfgs)*
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #guard {
            () => {};
        }
    }
}

/// `FunctionOptions { given fields, ..FunctionOptions::DEFAULT }`.
fn options_expr(o: &Options) -> TokenStream {
    let p = private();
    let some = |value: TokenStream| quote!(::core::option::Option::Some(#value));
    let string = |s: &str| {
        let s = LitStr::new(s, Span::call_site());
        quote!(#p::Cow::Borrowed(#s))
    };
    let int = |v: u32| {
        let v = Literal::u32_unsuffixed(v);
        quote!(#v)
    };
    let mut fields = Vec::new();
    if let Some(cpu) = &o.cpu {
        let v = Literal::f64_suffixed(cpu.value);
        fields.push(("cpu", some(quote!(#v))));
    }
    if let Some(v) = &o.memory_mib {
        fields.push(("memory_mib", some(int(v.value))));
    }
    if let Some(v) = &o.gpu {
        fields.push(("gpu", some(string(&v.value))));
    }
    if let Some(v) = &o.timeout_secs {
        fields.push(("timeout_secs", int(v.value)));
    }
    if let Some(v) = &o.retries {
        fields.push(("retries", int(v.value)));
    }
    if let Some(v) = &o.max_containers {
        fields.push(("max_containers", some(int(v.value))));
    }
    if let Some(v) = &o.min_containers {
        fields.push(("min_containers", int(v.value)));
    }
    if let Some(v) = &o.buffer_containers {
        fields.push(("buffer_containers", int(v.value)));
    }
    if let Some(v) = &o.scaledown_window_secs {
        fields.push(("scaledown_window_secs", int(v.value)));
    }
    if let Some(v) = &o.env {
        let pairs = v.value.iter().map(|(key, value)| {
            let (key, value) = (string(key), string(value));
            quote!((#key, #value))
        });
        fields.push(("env", quote!(#p::Cow::Borrowed(&[#(#pairs),*]))));
    }
    if let Some(v) = &o.secrets {
        let names = v.value.iter().map(|s| string(s));
        fields.push(("secrets", quote!(#p::Cow::Borrowed(&[#(#names),*]))));
    }
    if let Some(v) = &o.region {
        fields.push(("region", some(string(&v.value))));
    }
    if let Some(v) = &o.cloud {
        fields.push(("cloud", some(string(&v.value))));
    }
    let fields = fields.into_iter().map(|(field, value)| {
        let field = format_ident!("{}", field);
        quote!(#field: #value,)
    });
    quote! {
        #p::FunctionOptions {
            #(#fields)*
            ..#p::FunctionOptions::DEFAULT
        }
    }
}
