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
//!
//! Serde is asked for once: the stub's `__CALLS` constant is
//! `__private::calls::<Args, Ret>()`, bounded on `Remote`, and everything
//! that encodes or decodes (calls, maps, the handler, the fingerprint) goes
//! through its function pointers, so a type that cannot travel gives one
//! error, on the user's tokens, and no follow-on errors. A function that
//! cannot be registered at all (generic, borrowing, ...) gets a stand-in
//! stub beside its errors ([`stand_in`]).

use proc_macro2::{Delimiter, Group, Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned as _;
use syn::{Ident, ItemFn, LitStr, Type};

use crate::attr::parse_options;
use crate::check::{check_options, check_signature};
use crate::errors::Errors;
use crate::expand_shared::{
    TypeChecks, decode_payload_with, fingerprint, name_guard, options_expr, private, return_type,
    split_batch, success_type,
};
use crate::model::{Function, Output};
use crate::model_batched::{output_element, vec_element};

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
        let errors = errors.to_compile_errors();
        // A method stays as written: as an associated function of a stub its
        // `self` would be the stub.
        if function.receiver.is_some() {
            let item = &function.item;
            return quote!(#item #errors);
        }
        let stand_in = stand_in(&function);
        return quote!(#stand_in #errors);
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

/// What a function that cannot be registered expands to, beside its
/// errors: the user's function inside a stub whose methods exist, with the
/// signature's own types, but never run (nothing is registered, and the
/// program does not compile), so that calls to `.remote(...)` or `.map(...)`
/// further on add no "no method found" errors to the one that matters.
fn stand_in(f: &Function) -> TokenStream {
    let p = private();
    let (ident, vis, cfgs) = (&f.ident, &f.vis, &f.cfgs);
    let docs = stub_docs(f);
    let raw_fn = user_fn(f);
    let generics = &f.item.sig.generics;
    let (params, where_clause) = (&generics.params, &generics.where_clause);
    let params = if params.is_empty() {
        quote!()
    } else {
        quote!(<#params>)
    };
    let bindings: Vec<_> = f.args.iter().map(|a| &a.binding).collect();
    let tys: Vec<_> = f.args.iter().map(|a| &a.ty).collect();
    let ret = success_type(&f.output);
    let orig_ret = return_type(&f.output);
    let local_ret = if f.is_async {
        quote!(#p::BoxFuture<'static, #orig_ret>)
    } else {
        orig_ret
    };
    // A map's results are typed as the function's when that can be named
    // (no generic parameters), and inferred from their use otherwise.
    let (map_generics, map_ret) = if generics.params.is_empty() {
        (quote!(<__I>), ret.clone())
    } else {
        (quote!(<__I, __R>), quote!(__R))
    };
    let unreachable = quote! {
        ::core::unreachable!("this function could not be registered; see the compile errors")
    };
    quote! {
        #(#cfgs)*
        #docs
        #[allow(non_camel_case_types, dead_code)]
        #[derive(::core::clone::Clone, ::core::marker::Copy)]
        #vis struct #ident {
            __stand_in: (),
        }

        #(#cfgs)*
        #docs
        #[allow(non_upper_case_globals, dead_code)]
        #vis const #ident: #ident = #ident { __stand_in: () };

        #(#cfgs)*
        #[allow(dead_code, unused_variables, clippy::all)]
        impl #ident {
            #raw_fn

            pub fn remote #params (&self, #(#bindings: #tys),*)
                -> #p::BoxFuture<'static, ::core::result::Result<#ret, #p::Error>> #where_clause
            {
                #unreachable
            }

            pub fn spawn #params (&self, #(#bindings: #tys),*)
                -> #p::BoxFuture<'static, ::core::result::Result<#p::FunctionCall<#ret>, #p::Error>>
                #where_clause
            {
                #unreachable
            }

            pub fn map #map_generics (&self, inputs: __I) -> #p::MapStream<#map_ret> {
                #unreachable
            }

            pub fn starmap #map_generics (&self, inputs: __I) -> #p::MapStream<#map_ret> {
                #unreachable
            }

            pub fn for_each<__I>(&self, inputs: __I)
                -> #p::BoxFuture<'static, ::core::result::Result<(), #p::Error>>
            {
                #unreachable
            }

            pub fn local #params (&self, #(#bindings: #tys),*) -> #local_ret #where_clause {
                #unreachable
            }
        }
    }
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
    FunctionGenerator::new(f).generate()
}

/// What every generated item of one function is made from, computed once;
/// one method per generated item (after tarpc's `ServiceGenerator`).
struct FunctionGenerator<'a> {
    f: &'a Function,
    p: TokenStream,
    ident: &'a Ident,
    /// For a batched function, the element types of its arguments.
    batch: Option<(Vec<&'a Type>, &'a Type)>,
    /// The user's own argument types (`local`, `get_raw_f`).
    tys: Vec<&'a Type>,
    /// The types of one input as it travels (the elements, when batched).
    wire_tys: Vec<&'a Type>,
    /// What one call yields.
    ret: TokenStream,
    bindings: Vec<&'a Ident>,
    internals: Vec<&'a Ident>,
    /// `(A, B,)`: the tuple of one input's arguments.
    args_ty: TokenStream,
    /// The user's function inside the stub (`add::add`, or `__raw`).
    raw: Ident,
}

impl<'a> FunctionGenerator<'a> {
    fn new(f: &'a Function) -> Self {
        let p = private();
        let batch = batch_elements(f);
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
        let args_ty = quote!((#(#wire_tys,)*));
        FunctionGenerator {
            f,
            p,
            ident: &f.ident,
            batch,
            tys,
            wire_tys,
            ret,
            bindings: f.args.iter().map(|a| &a.binding).collect(),
            internals: f.args.iter().map(|a| &a.internal).collect(),
            args_ty,
            raw: raw_ident(f),
        }
    }

    fn generate(&self) -> TokenStream {
        let p = &self.p;
        let ident = self.ident;
        let cfgs = &self.f.cfgs;
        let checks = self.compile_time_checks();
        let name_guard = name_guard(&self.f.name, cfgs);
        let stub = self.stub();
        let calls = self.call_methods();
        let local = self.local();
        let raw_f = self.raw_f();
        let handle_methods = handle_methods(self.f, &self.args_ty, &self.ret);
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

    /// The stub struct, its constant, its descriptor, and its associated
    /// items: the user's function (boxed, when async) and `__CALLS`.
    fn stub(&self) -> TokenStream {
        let f = self.f;
        let options = options_expr(
            &f.options,
            f.batched.as_ref().and_then(|b| b.values()),
            f.web
                .as_ref()
                .map(|web| crate::expand_web::endpoint_options(f, web)),
        );
        let web = match &f.web {
            Some(web) => {
                let handler = crate::expand_web::handler(f, web);
                quote!(::core::option::Option::Some(#handler))
            }
            None => quote!(::core::option::Option::None),
        };
        let raw_fn = user_fn(f);
        let boxed = self.boxed_fn();
        let calls = self.calls_const();
        let ident = self.ident;
        // A generator's error is its return value's business: no error shape.
        let fingerprint = Some(fingerprint(
            &f.output,
            f.batched.is_none() && f.generator.is_none(),
            quote!(#ident::__CALLS.fingerprint()),
        ));
        stub_and_descriptor(
            f,
            StubParts {
                args_ty: &self.args_ty,
                ret: &self.ret,
                options,
                handler: self.handler(),
                web,
                fingerprint,
                assoc: quote!(#raw_fn #boxed #calls),
            },
        )
    }

    /// `__CALLS`: the stub's one use of serde bounds (see
    /// `modal_runtime::__private::calls`). The argument tuple is spanned on
    /// the user's parameter list and the result is the user's own tokens,
    /// so a type that cannot travel is reported there, once.
    fn calls_const(&self) -> TokenStream {
        let p = &self.p;
        let (args_ty, ret) = (&self.args_ty, &self.ret);
        let wire_tys = &self.wire_tys;
        let mut spanned_args = Group::new(Delimiter::Parenthesis, quote!(#(#wire_tys,)*));
        spanned_args.set_span(match self.f.args.as_slice() {
            [one] => one.ty.span(),
            _ => self.f.item.sig.paren_token.span.join(),
        });
        // A generator's: its items and return value travel too.
        if let Some(g) = &self.f.generator {
            let item = &g.item;
            let r = g.ret.as_ref().map_or_else(|| quote!(()), |r| quote!(#r));
            return quote! {
                #[doc(hidden)]
                pub const __CALLS: &'static #p::GenCalls<#args_ty, #item, #r> =
                    &#p::gen_calls::<#spanned_args, #item, #r>();
            };
        }
        quote! {
            #[doc(hidden)]
            pub const __CALLS: &'static #p::Calls<#args_ty, #ret> =
                &#p::calls::<#spanned_args, #ret>();
        }
    }

    /// `__boxed`, an async function's future as a `BoxFuture`.
    fn boxed_fn(&self) -> Option<TokenStream> {
        if !self.f.is_async {
            return None;
        }
        let (p, ident, raw) = (&self.p, self.ident, &self.raw);
        let (internals, tys) = (&self.internals, &self.tys);
        let orig_ret = return_type(&self.f.output);
        // Boxing into `BoxFuture` is where a future that is not `Send` is
        // refused; span it on the user's signature so the error lands there.
        let send_span = self.f.item.sig.ident.span();
        let boxed =
            quote_spanned!(send_span=> ::std::boxed::Box::pin(#ident::#raw(#(#internals),*)));
        Some(quote! {
            #[doc(hidden)]
            pub fn __boxed(#(#internals: #tys),*) -> #p::BoxFuture<'static, #orig_ret> {
                #boxed
            }
        })
    }

    /// The user's function called with the decoded arguments: its future
    /// (boxed) when async.
    fn call_user(&self) -> TokenStream {
        let (ident, raw, internals) = (self.ident, &self.raw, &self.internals);
        if self.f.is_async {
            quote!(#ident::__boxed(#(#internals),*))
        } else {
            quote!(#ident::#raw(#(#internals),*))
        }
    }

    /// The handler the container runs an input (or a batch) with.
    fn handler(&self) -> TokenStream {
        let (p, ident) = (&self.p, self.ident);
        let internals = &self.internals;
        let call = self.call_user();
        if let Some((elements, _)) = &self.batch {
            let split = split_batch(elements, internals, call);
            return if self.f.is_async {
                quote! {
                    #p::Handler::BatchAsync(|__payloads| {
                        ::std::boxed::Box::pin(#ident::__CALLS.run_batch_async(__payloads, #split))
                    })
                }
            } else {
                quote! {
                    #p::Handler::BatchBlocking(|__payloads| #ident::__CALLS.run_batch(__payloads, #split))
                }
            };
        }
        let decode = decode_payload_with(
            internals,
            &self.args_ty,
            quote!(#ident::__CALLS.decode_args(&__payload)),
        );
        if self.f.generator.is_some() {
            let encode = if self.f.is_async {
                quote!(#ident::__CALLS.encode_future(#call))
            } else {
                quote!(#ident::__CALLS.encode(#call))
            };
            return quote! {
                #p::Handler::Generator(|__payload| {
                    #decode
                    ::core::result::Result::Ok(#encode)
                })
            };
        }
        let value = if self.f.is_async {
            quote!(#call.await)
        } else {
            call
        };
        let run = match &self.f.output {
            // Spanned on the return type: an error type that is not
            // `Display`, or an alias whose `Ok` is not its first argument,
            // is reported there, once.
            Output::Fallible { ty, .. } => {
                let encode = quote_spanned! {ty.span()=>
                    #ident::__CALLS.encode_fallible(__ret, |__error| {
                        #[allow(unused_imports)]
                        use #p::{EncodeOpaqueError as _, EncodeSerdeError as _};
                        (&#p::ErrorValue(__error)).encode_error()
                    })
                };
                quote! {
                    let __ret = #value;
                    #encode
                }
            }
            _ => quote!(#ident::__CALLS.encode_output(&#value)),
        };
        if self.f.is_async {
            quote! {
                #p::Handler::Async(|__payload| {
                    ::std::boxed::Box::pin(async move {
                        #decode
                        #run
                    })
                })
            }
        } else {
            quote! {
                #p::Handler::Blocking(|__payload| {
                    #decode
                    #run
                })
            }
        }
    }

    /// `local`: the function run here, in this process.
    fn local(&self) -> TokenStream {
        let (ident, raw) = (self.ident, &self.raw);
        let (bindings, tys) = (&self.bindings, &self.tys);
        if self.f.is_async {
            let orig_ret = return_type(&self.f.output);
            quote! {
                /// Runs the function here, in this process, without a container.
                pub fn local(&self, #(#bindings: #tys),*)
                    -> impl ::core::future::Future<Output = #orig_ret> + use<>
                {
                    #ident::#raw(#(#bindings),*)
                }
            }
        } else {
            let output = &self.f.item.sig.output;
            quote! {
                /// Runs the function here, in this process, without a container.
                pub fn local(&self, #(#bindings: #tys),*) #output {
                    #ident::#raw(#(#bindings),*)
                }
            }
        }
    }

    /// `get_raw_f`: the function as a plain function pointer.
    fn raw_f(&self) -> TokenStream {
        let (p, ident, raw, tys) = (&self.p, self.ident, &self.raw, &self.tys);
        if self.f.is_async {
            let orig_ret = return_type(&self.f.output);
            quote! {
                /// The function itself, as a plain function pointer returning a boxed future.
                pub fn get_raw_f(&self) -> fn(#(#tys),*) -> #p::BoxFuture<'static, #orig_ret> {
                    #ident::__boxed
                }
            }
        } else {
            let output = &self.f.item.sig.output;
            quote! {
                /// The function itself, as a plain function pointer.
                pub fn get_raw_f(&self) -> fn(#(#tys),*) #output {
                    #ident::#raw
                }
            }
        }
    }

    /// The calling methods: `remote_gen` for a generator; `remote`,
    /// `spawn`, `starmap`, `map` and `for_each` for the others.
    fn call_methods(&self) -> TokenStream {
        if self.f.generator.is_some() {
            return self.remote_gen();
        }
        let remote = self.remote();
        let spawn = self.spawn();
        let starmap = self.starmap();
        let map = self.map();
        let for_each = self.for_each();
        quote!(#remote #spawn #starmap #map #for_each)
    }

    fn remote_gen(&self) -> TokenStream {
        let (p, ident) = (&self.p, self.ident);
        let Some(g) = &self.f.generator else {
            return TokenStream::new();
        };
        let (bindings, wire_tys) = (&self.bindings, &self.wire_tys);
        let item = &g.item;
        let r = g.ret.as_ref().map_or_else(|| quote!(()), |r| quote!(#r));
        let doc = format!(
            "Runs generator `{}` in a container: its items arrive as they are produced, then `finish()` gives its return value.",
            self.f.name.value
        );
        quote! {
            #[doc = #doc]
            pub fn remote_gen(&self, #(#bindings: #wire_tys),*) -> #p::GenStream<#item, #r> {
                #ident::__CALLS.remote_gen(&self.__handle, (#(#bindings,)*))
            }
        }
    }

    fn remote(&self) -> TokenStream {
        let (p, ident, ret) = (&self.p, self.ident, &self.ret);
        let (bindings, wire_tys) = (&self.bindings, &self.wire_tys);
        let doc = if self.batch.is_some() {
            format!(
                "Runs `{}` on one input in a container, batched with other inputs there, and waits for its result.",
                self.f.name.value
            )
        } else {
            format!(
                "Runs `{}` in a container and waits for its result.",
                self.f.name.value
            )
        };
        quote! {
            #[doc = #doc]
            pub fn remote(&self, #(#bindings: #wire_tys),*)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<#ret, #p::Error>,
                > + ::core::marker::Send + use<>
            {
                #ident::__CALLS.remote(&self.__handle, (#(#bindings,)*))
            }
        }
    }

    fn spawn(&self) -> TokenStream {
        let (p, ident, ret) = (&self.p, self.ident, &self.ret);
        let (bindings, wire_tys) = (&self.bindings, &self.wire_tys);
        quote! {
            /// Starts the function in a container without waiting; the returned call gives the result later.
            pub fn spawn(&self, #(#bindings: #wire_tys),*)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<#p::FunctionCall<#ret>, #p::Error>,
                > + ::core::marker::Send + use<>
            {
                #ident::__CALLS.spawn(&self.__handle, (#(#bindings,)*))
            }
        }
    }

    fn starmap(&self) -> TokenStream {
        let (p, ident, ret, args_ty) = (&self.p, self.ident, &self.ret, &self.args_ty);
        quote! {
            /// Runs the function once per argument tuple, in parallel containers; results stream back.
            pub fn starmap<__I>(&self, inputs: __I) -> #p::MapStream<#ret>
            where
                __I: ::core::iter::IntoIterator<Item = #args_ty>,
                <__I as ::core::iter::IntoIterator>::IntoIter: ::core::marker::Send + 'static,
            {
                #ident::__CALLS.map(
                    &self.__handle,
                    ::std::boxed::Box::new(::core::iter::IntoIterator::into_iter(inputs)),
                )
            }
        }
    }

    /// One-argument functions take plain items in `map` and `for_each`;
    /// the others take argument tuples, and their `map` is refused with a
    /// message naming `starmap` (rather than rustc's "not an iterator").
    fn one_arg(&self) -> bool {
        self.wire_tys.len() == 1
    }

    /// `inputs` as the boxed iterator of argument tuples `__CALLS` takes.
    fn input_tuples(&self) -> TokenStream {
        let into_iter = quote!(::core::iter::IntoIterator::into_iter(inputs));
        if self.one_arg() {
            quote!(::std::boxed::Box::new(::core::iter::Iterator::map(#into_iter, |__arg| (__arg,))))
        } else {
            quote!(::std::boxed::Box::new(#into_iter))
        }
    }

    /// What `map` and `for_each` take one of per input.
    fn item_ty(&self) -> TokenStream {
        if self.one_arg() {
            let ty = self.wire_tys[0];
            quote!(#ty)
        } else {
            self.args_ty.clone()
        }
    }

    fn map(&self) -> TokenStream {
        let (p, ident, ret) = (&self.p, self.ident, &self.ret);
        if !self.one_arg() {
            return quote! {
                #[doc(hidden)]
                pub fn map<__I>(&self, _: __I) -> #p::MapStream<#ret>
                where
                    __I: #p::MapNeedsOneArgument,
                {
                    ::core::unreachable!()
                }
            };
        }
        let item_ty = self.item_ty();
        let tuples = self.input_tuples();
        quote! {
            /// Runs the function once per input, in parallel containers; results stream back.
            pub fn map<__I>(&self, inputs: __I) -> #p::MapStream<#ret>
            where
                __I: ::core::iter::IntoIterator<Item = #item_ty>,
                <__I as ::core::iter::IntoIterator>::IntoIter: ::core::marker::Send + 'static,
            {
                #ident::__CALLS.map(&self.__handle, #tuples)
            }
        }
    }

    fn for_each(&self) -> TokenStream {
        let (p, ident) = (&self.p, self.ident);
        let item_ty = self.item_ty();
        let tuples = self.input_tuples();
        quote! {
            /// Runs the function once per input, in parallel containers, discarding the results; fails on the first failed input.
            pub fn for_each<__I>(&self, inputs: __I)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<(), #p::Error>,
                > + ::core::marker::Send + use<__I>
            where
                __I: ::core::iter::IntoIterator<Item = #item_ty>,
                <__I as ::core::iter::IntoIterator>::IntoIter: ::core::marker::Send + 'static,
            {
                #ident::__CALLS.for_each(&self.__handle, #tuples)
            }
        }
    }

    /// `const` assertions, each spanned on the user's token so that rustc's
    /// error lands there: a batched function returns one item per input.
    /// (That arguments, results and a generator's items can travel is
    /// `__CALLS`'s bound; that a `Result` is one the runtime understands is
    /// the handler's, see [`FunctionGenerator::handler`].)
    fn compile_time_checks(&self) -> TokenStream {
        let f = self.f;
        let mut checks = TypeChecks::default();
        if let (Some((_, element)), Some(ty)) = (&self.batch, f.output.ty()) {
            checks.batch_output(ty, element);
        }
        checks.finish(&f.cfgs)
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
                    __handle: #p::Function::from_name_checked(
                        app,
                        #name,
                        #ident::__DESCRIPTOR.fingerprint,
                    ),
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
    /// The fingerprint function; `None`: `fingerprint::<args_ty, ret>`.
    pub fingerprint: Option<TokenStream>,
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
        fingerprint,
        assoc,
    } = parts;
    let fingerprint = fingerprint.unwrap_or_else(|| quote!(#p::fingerprint::<#args_ty, #ret>));
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
                fingerprint: #fingerprint,
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

    /// The associated function `name` of the stub's `impl` blocks.
    fn stub_fn<'f>(file: &'f syn::File, name: &str) -> &'f syn::ImplItemFn {
        impl_items(file)
            .find_map(|item| match item {
                syn::ImplItem::Fn(f) if f.sig.ident == name => Some(f),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no `{name}` in the stub"))
    }

    /// The associated constant `name` of the stub's `impl` blocks.
    fn stub_const<'f>(file: &'f syn::File, name: &str) -> &'f syn::ImplItemConst {
        impl_items(file)
            .find_map(|item| match item {
                syn::ImplItem::Const(c) if c.ident == name => Some(c),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no `{name}` in the stub"))
    }

    fn impl_items(file: &syn::File) -> impl Iterator<Item = &syn::ImplItem> {
        file.items.iter().flat_map(|item| match item {
            syn::Item::Impl(imp) => imp.items.iter(),
            _ => [].iter(),
        })
    }

    /// A field of the descriptor: `__DESCRIPTOR = &FunctionDescriptor { .. }`.
    fn descriptor_field(file: &syn::File, name: &str) -> String {
        let descriptor = stub_const(file, "__DESCRIPTOR");
        let syn::Expr::Reference(r) = &descriptor.expr else {
            panic!("the descriptor is not a reference");
        };
        let syn::Expr::Struct(fields) = &*r.expr else {
            panic!("the descriptor is not a struct");
        };
        let field = fields
            .fields
            .iter()
            .find(|f| matches!(&f.member, syn::Member::Named(n) if n == name))
            .unwrap_or_else(|| panic!("no descriptor field `{name}`"));
        text(&field.expr)
    }

    /// The tokens of one parsed node, as rustc would print them.
    fn text(node: impl quote::ToTokens) -> String {
        node.into_token_stream().to_string()
    }

    /// `fn name(inputs) -> output` of a stub method, without generics, as
    /// syn prints it.
    fn signature(file: &syn::File, name: &str) -> String {
        let mut sig = stub_fn(file, name).sig.clone();
        sig.generics = syn::Generics::default();
        text(sig)
    }

    /// `expected`, a signature, as syn prints it.
    fn sig(expected: TokenStream) -> String {
        text(syn::parse2::<syn::Signature>(expected).expect("a signature"))
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
            "__CALLS",
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
            "map",
            "remote",
            "spawn",
            "starmap",
            "update_autoscaler",
            "version",
            "web_url",
        ];
        for item in [
            quote!(
                fn f() {}
            ),
            quote!(
                fn f(a: u8, b: u8) {}
            ),
        ] {
            let (_, file) = expand_ok(quote!(), item);
            assert_eq!(method_names(&file), common);
            // `map` exists only to say to use `starmap`: hidden, refused.
            let map = stub_fn(&file, "map");
            assert!(map.attrs.iter().any(|a| text(a) == "# [doc (hidden)]"));
            let bounds = text(&map.sig.generics.where_clause);
            assert!(bounds.contains("MapNeedsOneArgument"), "{bounds}");
        }
        let (_, one) = expand_ok(
            quote!(),
            quote!(
                fn f(a: u8) {}
            ),
        );
        assert_eq!(method_names(&one), common);
        let map = stub_fn(&one, "map");
        assert!(!map.attrs.iter().any(|a| text(a) == "# [doc (hidden)]"));
        assert!(
            text(&map.sig.generics.where_clause).contains("IntoIterator < Item = u8 >"),
            "{}",
            text(&map.sig)
        );
        let (_, one_async) = expand_ok(
            quote!(),
            quote!(
                async fn f(a: u8) {}
            ),
        );
        let mut with_boxed = common.to_vec();
        with_boxed.push("__boxed");
        with_boxed.sort();
        assert_eq!(method_names(&one_async), with_boxed);
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
    fn serde_bounds_are_in_calls_alone() {
        let (_, file) = expand_ok(
            quote!(),
            quote!(
                fn f(a: u8, b: String) -> Result<u8, E> {
                    a
                }
            ),
        );
        let calls = stub_const(&file, "__CALLS");
        assert_eq!(
            text(&calls.ty),
            "& 'static :: modal_runtime :: __private :: Calls < (u8 , String ,) , u8 >"
        );
        assert_eq!(
            text(&calls.expr),
            "& :: modal_runtime :: __private :: calls :: < (u8 , String ,) , u8 > ()"
        );
        // Every use of serde goes through it; the error type's shape is
        // found without a bound.
        let fingerprint = descriptor_field(&file, "fingerprint");
        assert!(
            fingerprint.contains("with_error_shape ((f :: __CALLS . fingerprint ()) () ,"),
            "{fingerprint}"
        );
        for method in ["remote", "spawn", "starmap", "for_each"] {
            let body = text(&stub_fn(&file, method).block);
            assert!(body.contains("f :: __CALLS ."), "{method}: {body}");
        }
        let handler = descriptor_field(&file, "handler");
        assert!(
            handler.contains("f :: __CALLS . decode_args (& __payload)"),
            "{handler}"
        );
        assert!(
            handler.contains("f :: __CALLS . encode_fallible ("),
            "{handler}"
        );
        // A generator's handle is typed with the generator; its `__CALLS`
        // has the generator's own calls.
        let (_, file) = expand_ok(
            quote!(),
            quote!(
                fn g(n: u32) -> Generator<u32, String> {
                    todo!()
                }
            ),
        );
        assert_eq!(
            text(&stub_const(&file, "__CALLS").expr),
            "& :: modal_runtime :: __private :: gen_calls :: < (u32 ,) , u32 , String > ()"
        );
        assert_eq!(
            descriptor_field(&file, "fingerprint"),
            "g :: __CALLS . fingerprint ()"
        );
        let body = text(&stub_fn(&file, "remote_gen").block);
        assert!(body.contains("g :: __CALLS . remote_gen ("), "{body}");
        let handler = descriptor_field(&file, "handler");
        assert!(
            handler.contains("g :: __CALLS . decode_args (& __payload)"),
            "{handler}"
        );
        assert!(
            handler.contains("g :: __CALLS . encode (g :: g (__arg0))"),
            "{handler}"
        );
    }

    /// The stub struct's one field, `__handle`, as written.
    fn handle_type(file: &syn::File) -> String {
        file.items
            .iter()
            .find_map(|item| match item {
                syn::Item::Struct(s) => s.fields.iter().next().map(|f| text(&f.ty)),
                _ => None,
            })
            .expect("a stub struct")
    }

    #[test]
    fn sync_and_async_handlers() {
        let (_, sync) = expand_ok(
            quote!(),
            quote!(
                fn f(a: u8) -> u8 {
                    a
                }
            ),
        );
        let handler = descriptor_field(&sync, "handler");
        assert!(
            handler
                .starts_with(":: modal_runtime :: __private :: Handler :: Blocking (| __payload |"),
            "{handler}"
        );
        assert!(
            handler.contains("f :: __CALLS . encode_output (& f :: f (__arg0))"),
            "{handler}"
        );
        let (_, asyn) = expand_ok(
            quote!(),
            quote!(
                async fn f(a: u8) -> Result<u8, E> {
                    a
                }
            ),
        );
        let handler = descriptor_field(&asyn, "handler");
        assert!(
            handler.starts_with(":: modal_runtime :: __private :: Handler :: Async (| __payload |"),
            "{handler}"
        );
        assert!(
            handler.contains(
                "let __ret = f :: __boxed (__arg0) . await ; f :: __CALLS . encode_fallible (__ret , | __error |"
            ),
            "{handler}"
        );
        assert_eq!(
            text(&stub_fn(&asyn, "__boxed").sig.output),
            "-> :: modal_runtime :: __private :: BoxFuture < 'static , Result < u8 , E > >"
        );
        assert_eq!(
            handle_type(&asyn),
            ":: modal_runtime :: __private :: Function < (u8 ,) , u8 >"
        );
        // That the success type is the `Result`'s `Ok` is the handler's bound:
        // no separate check.
        let checks = asyn
            .items
            .iter()
            .find_map(|item| match item {
                syn::Item::Const(c) if c.ident == "_" => Some(text(&c.expr)),
                _ => None,
            })
            .expect("the checks");
        assert!(!checks.contains("__ok_type_is_first_argument"), "{checks}");
        // Without a written success type, it is the `Ok` of `Fallible`.
        let (_, alias) = expand_ok(
            quote!(),
            quote!(
                fn f() -> Result {
                    a
                }
            ),
        );
        assert_eq!(
            handle_type(&alias),
            ":: modal_runtime :: __private :: Function < () , < Result as :: modal_runtime :: __private :: Fallible > :: Ok >"
        );
    }

    #[test]
    fn batched_functions() {
        let (text_all, file) = expand_ok(
            quote!(max_inputs = 2),
            quote!(
                #[app::batched(max_batch_size = 8, wait_ms = 100)]
                fn embed(texts: Vec<String>, scale: Vec<u32>) -> Vec<u64> {
                    todo!()
                }
            ),
        );
        // The stub is typed with one input's elements.
        assert_eq!(
            text(&stub_const(&file, "__CALLS").ty),
            "& 'static :: modal_runtime :: __private :: Calls < (String , u32 ,) , u64 >"
        );
        assert_eq!(
            signature(&file, "remote"),
            sig(
                quote!(fn remote(&self, texts: String, scale: u32) -> impl ::core::future::Future<Output = ::core::result::Result<u64, ::modal_runtime::__private::Error>,> + ::core::marker::Send + use<>)
            )
        );
        assert_eq!(descriptor_field(&file, "arity"), "2");
        // `local` and `get_raw_f` keep the user's own signature.
        assert_eq!(
            signature(&file, "local"),
            sig(quote!(fn local(&self, texts: Vec<String>, scale: Vec<u32>) -> Vec<u64>))
        );
        assert_eq!(
            signature(&file, "get_raw_f"),
            sig(quote!(fn get_raw_f(&self) -> fn(Vec<String>, Vec<u32>) -> Vec<u64>))
        );
        // A whole batch per call, split into one `Vec` per argument.
        let handler = descriptor_field(&file, "handler");
        assert!(handler.starts_with(":: modal_runtime :: __private :: Handler :: BatchBlocking (| __payloads | embed :: __CALLS . run_batch (__payloads , move | __batch : :: std :: vec :: Vec < (String , u32 ,) > |"), "{handler}");
        assert!(
            handler.contains("embed :: embed (__arg0 , __arg1)"),
            "{handler}"
        );
        let options = descriptor_field(&file, "options");
        assert!(
            options.contains(
                "batch_max_size : :: core :: option :: Option :: Some (8) , batch_wait_ms : 100 ,"
            ),
            "{options}"
        );
        assert!(options.contains("max_inputs : 2 ,"), "{options}");
        assert!(
            text_all.contains("__AssertBatchOutput < Vec < u64 > >"),
            "{text_all}"
        );
        assert!(!text_all.contains("app :: batched"), "{text_all}");
        let tokens = quote::ToTokens::into_token_stream(file);
        let bare = bare_prelude_names(tokens);
        assert!(bare.iter().all(|n| n == "Vec" || n == "String"), "{bare:?}");

        let (_, file) = expand_ok(
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
        let handler = descriptor_field(&file, "handler");
        assert!(handler.starts_with(":: modal_runtime :: __private :: Handler :: BatchAsync (| __payloads | { :: std :: boxed :: Box :: pin (one :: __CALLS . run_batch_async (__payloads ,"), "{handler}");
        assert!(handler.contains("one :: __boxed (__arg0)"), "{handler}");
        assert_eq!(
            text(&stub_fn(&file, "map").sig.output),
            "-> :: modal_runtime :: __private :: MapStream < u8 >"
        );
        let tokens = quote::ToTokens::into_token_stream(file);
        assert_eq!(bare_prelude_names(tokens), Vec::<String>::new());
    }

    /// What a function with a fatal error expands to: its errors, and a
    /// stand-in stub holding the function, registered nowhere.
    fn expand_fatal(item: TokenStream) -> (Vec<String>, syn::File) {
        let out = expand(quote!(), item);
        let text = out.to_string();
        let file: syn::File =
            syn::parse2(out).unwrap_or_else(|e| panic!("not valid Rust ({e}): {text}"));
        let errors = file
            .items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Macro(m)
                    if m.mac
                        .path
                        .segments
                        .last()
                        .is_some_and(|s| s.ident == "compile_error") =>
                {
                    Some(m.mac.tokens.to_string())
                }
                _ => None,
            })
            .collect();
        (errors, file)
    }

    #[test]
    fn batched_signature_errors_emit_a_stand_in() {
        let (errors, file) = expand_fatal(quote!(
            #[app::batched(max_batch_size = 8, wait_ms = 0)]
            fn f(x: u8) -> u8 {
                x
            }
        ));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("`Vec<u8>`"), "{errors:?}");
        assert_eq!(signature(&file, "f"), sig(quote!(fn f(x: u8) -> u8)));
        assert!(!method_names(&file).contains(&"__DESCRIPTOR".to_owned()));
    }

    #[test]
    fn descriptor_fields() {
        let (text_all, file) = expand_ok(
            quote!(name = "add-two"),
            quote!(
                fn add(a: i64, b: i64) -> i64 {
                    a + b
                }
            ),
        );
        assert_eq!(descriptor_field(&file, "name"), r#""add-two""#);
        assert_eq!(
            descriptor_field(&file, "rust_path"),
            r#":: core :: concat ! (:: core :: module_path ! () , "::add")"#
        );
        assert_eq!(
            descriptor_field(&file, "fingerprint"),
            "add :: __CALLS . fingerprint ()"
        );
        assert_eq!(descriptor_field(&file, "arity"), "2");
        let guard = file.items.iter().find_map(|item| match item {
            syn::Item::Macro(m) if m.mac.path.is_ident("macro_rules") => m.ident.as_ref(),
            _ => None,
        });
        assert_eq!(text(guard), "__modal_function_named_add_h_two");
        assert!(
            text(&stub_fn(&file, "from_name").block).contains(
                r#"Function :: from_name_checked (app , "add-two" , add :: __DESCRIPTOR . fingerprint ,)"#
            ),
            "{text_all}"
        );
    }

    /// The fields the descriptor's options set, by name, and what the rest
    /// comes from (`..FunctionOptions::DEFAULT`).
    fn option_fields(file: &syn::File) -> (Vec<(String, String)>, String) {
        let descriptor = stub_const(file, "__DESCRIPTOR");
        let syn::Expr::Reference(r) = &descriptor.expr else {
            panic!("the descriptor is not a reference");
        };
        let syn::Expr::Struct(descriptor) = &*r.expr else {
            panic!("the descriptor is not a struct");
        };
        let options = descriptor
            .fields
            .iter()
            .find(|f| matches!(&f.member, syn::Member::Named(n) if n == "options"))
            .expect("options");
        let syn::Expr::Struct(options) = &options.expr else {
            panic!("the options are not a struct");
        };
        let fields = options
            .fields
            .iter()
            .map(|f| (text(&f.member), text(&f.expr)))
            .collect();
        (fields, text(&options.rest))
    }

    #[test]
    fn only_given_options_are_emitted() {
        let some = |v: &str| format!(":: core :: option :: Option :: Some ({v})");
        let cow = |v: &str| format!(":: modal_runtime :: __private :: Cow :: Borrowed ({v})");
        let (_, file) = expand_ok(
            quote!(),
            quote!(
                fn f() {}
            ),
        );
        let (fields, rest) = option_fields(&file);
        assert_eq!(fields, []);
        assert_eq!(
            rest,
            ":: modal_runtime :: __private :: FunctionOptions :: DEFAULT"
        );
        let (text_all, file) = expand_ok(
            quote!(cpu = 2, memory = 512, timeout = 60, max_containers = 3, env = { "K": "v" }, secrets = ["s"], region = "r", max_inputs = 8, target_inputs = 4),
            quote!(
                fn f() {}
            ),
        );
        let expected = [
            ("cpu", some("2f64")),
            ("memory_mib", some("512")),
            ("timeout_secs", "60".to_owned()),
            ("max_containers", some("3")),
            (
                "env",
                cow(&format!("& [({} , {})]", cow(r#""K""#), cow(r#""v""#))),
            ),
            ("secrets", cow(&format!("& [{}]", cow(r#""s""#)))),
            ("region", some(&cow(r#""r""#))),
            ("max_inputs", "8".to_owned()),
            ("target_inputs", some("4")),
        ];
        let (fields, _) = option_fields(&file);
        assert_eq!(
            fields,
            expected.map(|(k, v)| (k.to_owned(), v)).to_vec(),
            "only the options given"
        );
        let (_, pairs) = expand_ok(
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
        let expected = [
            ("cpu", some("0.5f64")),
            ("cpu_limit", some("2f64")),
            ("memory_mib", some("512")),
            ("memory_limit_mib", some("1024")),
            // In normal form: what the control plane and backends compare.
            ("gpu", some(&cow(r#""H100:2""#))),
            ("image", some(&cow(r#""python:3.12""#))),
        ];
        let (fields, _) = option_fields(&pairs);
        assert_eq!(fields, expected.map(|(k, v)| (k.to_owned(), v)).to_vec());
        // The bounds are the runtime's own (`options/bounds.rs`): not
        // re-checked in the generated code.
        assert!(!text_all.contains("TIMEOUT_SECS"), "{text_all}");
    }

    #[test]
    fn option_errors_still_generate_the_stub() {
        let out = expand(
            quote!(timeout = "x", retries = 2),
            quote!(
                fn f() {}
            ),
        );
        let file: syn::File = syn::parse2(out).expect("valid Rust");
        assert!(file.items.iter().any(
            |i| matches!(i, syn::Item::Macro(m) if text(&m.mac.path).ends_with("compile_error"))
        ));
        assert!(
            file.items
                .iter()
                .any(|i| matches!(i, syn::Item::Struct(s) if s.ident == "f"))
        );
        let options = descriptor_field(&file, "options");
        assert!(options.contains("retries : 2"), "{options}");
        assert!(!options.contains("timeout_secs"), "{options}");
    }

    #[test]
    fn signature_errors_emit_a_stand_in() {
        let (errors, file) = expand_fatal(quote!(
            fn f<T>(x: T, text: &str) -> T {
                x
            }
        ));
        assert_eq!(errors.len(), 2, "{errors:?}");
        // The function itself, and the methods callers use, with its own
        // signature; nothing registered.
        assert_eq!(
            signature(&file, "f"),
            sig(quote!(fn f(x: T, text: &str) -> T))
        );
        let names = method_names(&file);
        for method in ["remote", "spawn", "map", "starmap", "for_each", "local"] {
            assert!(names.contains(&method.to_owned()), "{names:?}");
        }
        assert_eq!(text(&stub_fn(&file, "remote").sig.generics), "< T >");
        assert!(!names.contains(&"__DESCRIPTOR".to_owned()), "{names:?}");
        assert!(!file.items.iter().any(|i| matches!(i, syn::Item::Macro(m) if m.mac.path.segments.last().is_some_and(|s| s.ident == "submit"))));
        // A method stays as written.
        let (_, file) = expand_fatal(quote!(
            fn f(&self) {}
        ));
        assert!(matches!(&file.items[0], syn::Item::Fn(_)));
        assert!(!file.items.iter().any(|i| matches!(i, syn::Item::Struct(_))));
        let text_out = expand(
            quote!(),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(text_out.starts_with("struct S ;"), "{text_out}");
        assert!(text_out.contains("can only be applied to a function"));
    }

    /// The attributes of each top-level item, by the item's kind.
    fn item_attrs(file: &syn::File) -> Vec<(&'static str, Vec<String>)> {
        file.items
            .iter()
            .map(|item| {
                let (kind, attrs) = match item {
                    syn::Item::Struct(s) => ("struct", &s.attrs),
                    syn::Item::Const(c) => ("const", &c.attrs),
                    syn::Item::Impl(i) => ("impl", &i.attrs),
                    syn::Item::Macro(m) => ("macro", &m.attrs),
                    _ => ("other", &Vec::new()),
                };
                let attrs = attrs.iter().map(text).collect();
                (kind, attrs)
            })
            .collect()
    }

    #[test]
    fn attributes_are_distributed() {
        let (_, file) = expand_ok(
            quote!(),
            quote!(
                /// Docs.
                #[cfg(unix)]
                #[inline]
                fn f() {}
            ),
        );
        let items = item_attrs(&file);
        let docs = r#"# [doc = r" Docs."]"#;
        for (kind, attrs) in &items {
            // `cfg` guards every generated item.
            assert!(
                attrs.contains(&"# [cfg (unix)]".to_owned()),
                "{kind}: {attrs:?}"
            );
            // The docs document the stub struct and constant, and only them.
            let documented = matches!(*kind, "struct") || (*kind == "const" && attrs.len() > 2);
            assert_eq!(
                attrs.contains(&docs.to_owned()),
                documented,
                "{kind}: {attrs:?}"
            );
        }
        assert_eq!(
            items
                .iter()
                .filter(|(_, a)| a.contains(&docs.to_owned()))
                .count(),
            2
        );
        // Other attributes stay on the user's function.
        let user = stub_fn(&file, "f");
        assert!(user.attrs.iter().any(|a| text(a) == "# [inline]"));
        assert!(
            !items
                .iter()
                .any(|(_, a)| a.contains(&"# [inline]".to_owned()))
        );
        let (_, file) = expand_ok(
            quote!(),
            quote!(
                fn f() {}
            ),
        );
        let struct_docs = &item_attrs(&file)[2].1;
        assert!(
            struct_docs
                .iter()
                .any(|a| a.contains("Remote function `f`")),
            "{struct_docs:?}"
        );
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
        // The endpoint's options, in the descriptor's `options.web`.
        let endpoint = |file: &syn::File| {
            let (fields, _) = option_fields(file);
            fields
                .into_iter()
                .find(|(name, _)| name == "web")
                .map(|(_, value)| value)
                .expect("options.web")
        };
        let (_, json) = expand_ok(
            quote!(),
            quote!(
                #[app::web_endpoint(method = "GET", label = "sq", public)]
                fn f(a: u8, b: String) -> u8 {
                    a
                }
            ),
        );
        assert!(method_names(&json).contains(&"remote".to_owned()));
        let web = endpoint(&json);
        for field in [
            "kind : :: modal_runtime :: __private :: WebKind :: Json",
            "method : :: modal_runtime :: __private :: Cow :: Borrowed (\"GET\")",
            "public : true",
        ] {
            assert!(web.contains(field), "missing `{field}` in {web}");
        }
        let handler = descriptor_field(&json, "web");
        assert!(
            handler.contains("JsonRequest :: decode (& __payload , & [\"a\" , \"b\"])"),
            "{handler}"
        );
        let (_, raw) = expand_ok(
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
        let web = endpoint(&raw);
        assert!(web.contains("WebKind :: Raw"), "{web}");
        assert!(web.contains("Cow :: Borrowed (\"*\")"), "{web}");
        let (_, app) = expand_ok(
            quote!(),
            quote!(
                #[app::web_app]
                fn make_api() -> Router {
                    todo!()
                }
            ),
        );
        let handler = descriptor_field(&app, "web");
        assert!(
            handler.contains("serve_router (__payload , & __ROUTER"),
            "{handler}"
        );
        let web = endpoint(&app);
        assert!(
            web.contains("label : :: modal_runtime :: __private :: Cow :: Borrowed (\"make-api\")"),
            "{web}"
        );
    }
}
