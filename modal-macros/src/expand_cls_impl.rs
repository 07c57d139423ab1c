//! Code generation for `#[app::cls]` on a class's `impl` block.
//!
//! For `impl Model { #[app::method] fn predict(&self, x: u64) -> u64 }` this
//! emits the block (without the markers), `ModelMethods` (one typed
//! `Method` handle per remote method, reached through `Obj<Model>`'s
//! `Deref`), the `ClsMethods` implementation (how a container runs each
//! method and the hooks), and the class's registration, exactly as a
//! function's. Every path is absolute.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{Ident, ItemImpl, LitStr, Type};

use crate::check_cls::check_impl;
use crate::errors::Errors;
use crate::expand_shared::{
    TypeChecks, decode_payload, encode, fingerprint, private, return_type, split_batch,
    success_type,
};
use crate::model_batched::{output_element, vec_element};
use crate::model_cls::{ClassImpl, Hook, Method};

pub fn expand(options: TokenStream, item: ItemImpl) -> TokenStream {
    let mut errors = Errors::new();
    let class = ClassImpl::from_item(item, &mut errors);
    let mut fatal = Errors::new();
    check_impl(&class, &options, &mut fatal, &mut errors);
    let generated = if fatal.is_empty() {
        generate(&class)
    } else {
        errors.append(fatal);
        let item = &class.item;
        let stand_in = stand_in(&class);
        quote!(#item #stand_in)
    };
    let errors = errors.to_compile_errors();
    quote!(#generated #errors)
}

/// A `ClsMethods` with no methods, emitted when the block cannot be
/// expanded: the struct's own generated code then compiles, and the only
/// errors shown are the ones about the block. Nothing is registered.
fn stand_in(c: &ClassImpl) -> TokenStream {
    if c.self_ident.is_none() || !c.item.generics.params.is_empty() {
        return TokenStream::new();
    }
    let p = private();
    let self_ty = &c.item.self_ty;
    let cfgs = &c.cfgs;
    quote! {
        #(#cfgs)*
        impl #p::ClsMethods for #self_ty {
            type Methods = ();
            const METHODS: &'static [#p::MethodDescriptor<Self>] = &[];
            fn methods(_: &#p::ObjCore) {}
        }
    }
}

/// `Model::lookup(app)`: generated with the methods rather than with the
/// struct, so that a class missing its `impl` block gets no error from it;
/// and not at all if the block has a function of that name.
fn lookup_fn(c: &ClassImpl, self_ty: &Type) -> TokenStream {
    let taken = c
        .item
        .items
        .iter()
        .any(|item| matches!(item, syn::ImplItem::Fn(f) if f.sig.ident == "lookup"));
    if taken {
        return TokenStream::new();
    }
    let p = private();
    quote! {
            /// The class of a deployed app, looked up now (`from_name` looks it up on first use): fails at once if the app or the class is missing, or its parameters and methods differ.
            #[allow(dead_code)]
            pub fn lookup(app: &str)
                -> impl ::core::future::Future<
                    Output = ::core::result::Result<#p::Cls<#self_ty>, #p::Error>,
                > + ::core::marker::Send + use<>
            {
                let __cls = #p::Cls::<#self_ty>::from_name(app, <#self_ty as #p::ClsDef>::NAME);
                async move {
                    __cls.hydrate().await?;
                    ::core::result::Result::Ok(__cls)
                }
            }
    }
}

/// What one method's handle and handlers are typed with.
struct Shape<'a> {
    m: &'a Method,
    /// The name a container calls it by.
    name: LitStr,
    /// The user's argument types.
    tys: Vec<&'a Type>,
    /// The argument types of one input (the elements, when batched).
    wire_tys: Vec<&'a Type>,
    internals: Vec<&'a Ident>,
    /// The tuple of `wire_tys`.
    args_ty: TokenStream,
    /// What a successful input yields (the element, when batched).
    ret: TokenStream,
    /// What the method returns as written.
    out: TokenStream,
    /// The element types, when batched.
    batch: Option<(Vec<&'a Type>, &'a Type)>,
    /// The associated function that boxes an async method's future.
    boxed: Ident,
}

impl<'a> Shape<'a> {
    fn of(m: &'a Method) -> Shape<'a> {
        let tys: Vec<&Type> = m.args.iter().map(|a| &a.ty).collect();
        let batch = m.batched.as_ref().and_then(|_| {
            let args = tys
                .iter()
                .map(|t| vec_element(t))
                .collect::<Option<Vec<_>>>()?;
            Some((args, output_element(&m.output)?))
        });
        let (wire_tys, ret) = match &batch {
            Some((elements, element)) => (elements.clone(), quote!(#element)),
            None => (tys.clone(), success_type(&m.output)),
        };
        let args_ty = quote!((#(#wire_tys,)*));
        Shape {
            m,
            name: LitStr::new(&m.ident.unraw().to_string(), Span::call_site()),
            tys,
            wire_tys,
            internals: m.args.iter().map(|a| &a.internal).collect(),
            args_ty,
            ret,
            out: return_type(&m.output),
            batch,
            boxed: format_ident!("__modal_boxed_{}", m.ident.unraw()),
        }
    }
}

/// All the items for one class `impl` block.
pub fn generate(c: &ClassImpl) -> TokenStream {
    let p = private();
    let item = &c.item;
    let cfgs = &c.cfgs;
    let self_ty = &c.item.self_ty;
    let ident = c
        .self_ident
        .as_ref()
        .expect("the checks refuse a self type without a name");
    let methods_ident = format_ident!("{}Methods", ident.unraw(), span = ident.span());
    let shapes: Vec<Shape> = c.methods.iter().map(Shape::of).collect();

    let fields = shapes.iter().map(|s| {
        let field = &s.m.ident;
        let (args_ty, ret, out) = (&s.args_ty, &s.ret, &s.out);
        let docs = if s.m.docs.is_empty() {
            let doc = format!(
                "Remote method `{}`: call it with `.remote(...)`.",
                s.name.value()
            );
            quote!(#[doc = #doc])
        } else {
            let docs = &s.m.docs;
            quote!(#(#docs)*)
        };
        quote! {
            #docs
            pub #field: ::modal_runtime::Method<#self_ty, #args_ty, #ret, #out>,
        }
    });
    let descriptors = shapes.iter().map(|s| descriptor(s, self_ty));
    let handles = shapes.iter().map(|s| {
        let field = &s.m.ident;
        let name = &s.name;
        let local = local_call(s, self_ty);
        quote!(#field: #p::Method::new(__obj, #name, #local))
    });
    let boxed_fns = shapes.iter().filter(|s| s.m.is_async).map(|s| {
        let (boxed, method, out, tys, internals) =
            (&s.boxed, &s.m.ident, &s.out, &s.tys, &s.internals);
        // Boxing into `BoxFuture` is where a future that is not `Send` is
        // refused; span it on the method's name so the error lands there.
        let body = quote_spanned! {method.span()=>
            ::std::boxed::Box::pin(async move { __this.#method(#(#internals),*).await })
        };
        quote! {
            #[doc(hidden)]
            fn #boxed(
                __this: ::std::sync::Arc<Self>,
                #(#internals: #tys),*
            ) -> #p::BoxFuture<'static, #out> {
                #body
            }
        }
    });
    let enter = c.enters.first().map(enter_hook);
    let exit = c.exits.first().map(exit_hook);

    let batched = c.batched_method().and_then(|m| m.batched.as_ref());
    let options = match batched.and_then(|b| b.values()) {
        Some((size, wait)) => {
            let (size, wait) = (Literal::u32_unsuffixed(size), Literal::u32_unsuffixed(wait));
            quote! {
                #p::batched_options(<#self_ty as #p::ClsDef>::OPTIONS, #size, #wait)
            }
        }
        None => quote!(<#self_ty as #p::ClsDef>::OPTIONS),
    };

    let checks = compile_time_checks(c, &shapes);
    let lookup = lookup_fn(c, self_ty);
    let methods_doc = format!(
        "The remote methods of class `{}`: the fields of each of its instance handles (`Obj<{}>`), e.g. `model.predict.remote(...)`.",
        ident.unraw(),
        ident.unraw()
    );

    // The checks come first: rustc then tends to report their clear errors
    // before any that follow from the same mistake further down.
    quote! {
        #checks

        #item

        #(#cfgs)*
        #[doc = #methods_doc]
        #[derive(::core::clone::Clone)]
        #[allow(private_interfaces, dead_code)]
        pub struct #methods_ident {
            #(#fields)*
        }

        #(#cfgs)*
        impl #p::ClsMethods for #self_ty {
            type Methods = #methods_ident;

            const METHODS: &'static [#p::MethodDescriptor<Self>] = &[#(#descriptors),*];

            fn methods(__obj: &#p::ObjCore) -> #methods_ident {
                #methods_ident {
                    #(#handles,)*
                }
            }

            #enter
            #exit
        }

        #(#cfgs)*
        impl #self_ty {
            #[doc(hidden)]
            pub const __MODAL_CLASS_DESCRIPTOR: &'static #p::FunctionDescriptor = &#p::FunctionDescriptor {
                name: <#self_ty as #p::ClsDef>::NAME,
                rust_path: <#self_ty as #p::ClsDef>::RUST_PATH,
                options: #options,
                fingerprint: #p::class_fingerprint::<#self_ty>,
                arity: 0,
                handler: #p::Handler::Class(#p::ClassHandler::of::<#self_ty>()),
                web: ::core::option::Option::None,
            };

            #(#boxed_fns)*

            #lookup
        }

        #(#cfgs)*
        #p::inventory::submit! {
            #p::Registration(<#self_ty>::__MODAL_CLASS_DESCRIPTOR)
        }
    }
}

/// `MethodDescriptor { .. }`: how a container runs one method.
fn descriptor(s: &Shape, self_ty: &Type) -> TokenStream {
    let p = private();
    let (name, args_ty, ret, method, boxed) = (&s.name, &s.args_ty, &s.ret, &s.m.ident, &s.boxed);
    let internals = &s.internals;
    let arity = Literal::usize_unsuffixed(s.internals.len());
    let fingerprint = fingerprint(
        &s.m.output,
        s.batch.is_none(),
        quote!(#p::fingerprint::<#args_ty, #ret>),
    );
    let handler = match (&s.batch, s.m.is_async) {
        (None, false) => {
            let decode = decode_payload(internals, args_ty);
            let run = encode(&s.m.output, quote!(__this.#method(#(#internals),*)));
            quote! {
                #p::MethodHandler::Blocking(|__this: &#self_ty, __payload| {
                    #decode
                    #run
                })
            }
        }
        (None, true) => {
            let decode = decode_payload(internals, args_ty);
            let run = encode(
                &s.m.output,
                quote!(<#self_ty>::#boxed(__this, #(#internals),*).await),
            );
            quote! {
                #p::MethodHandler::Async(|__this: ::std::sync::Arc<#self_ty>, __payload| {
                    ::std::boxed::Box::pin(async move {
                        #decode
                        #run
                    })
                })
            }
        }
        (Some((elements, _)), false) => {
            let split = split_batch(elements, internals, quote!(__this.#method(#(#internals),*)));
            quote! {
                #p::MethodHandler::BatchBlocking(|__this: &#self_ty, __payloads| {
                    #p::run_batch(__payloads, #split)
                })
            }
        }
        (Some((elements, _)), true) => {
            let split = split_batch(
                elements,
                internals,
                quote!(<#self_ty>::#boxed(__this, #(#internals),*)),
            );
            quote! {
                #p::MethodHandler::BatchAsync(|__this: ::std::sync::Arc<#self_ty>, __payloads| {
                    ::std::boxed::Box::pin(#p::run_batch_async(__payloads, #split))
                })
            }
        }
    };
    quote! {
        #p::MethodDescriptor {
            name: #name,
            fingerprint: #fingerprint,
            arity: #arity,
            handler: #handler,
        }
    }
}

/// The function a `Method` handle runs for `local`: one input, on an
/// instance built in this process. A batched method gets a batch of one
/// and returns what the method returned.
fn local_call(s: &Shape, self_ty: &Type) -> TokenStream {
    let (args_ty, method, boxed) = (&s.args_ty, &s.m.ident, &s.boxed);
    let internals = &s.internals;
    let args: Vec<TokenStream> = if s.batch.is_some() {
        internals.iter().map(|i| quote!(::std::vec![#i])).collect()
    } else {
        internals.iter().map(|i| quote!(#i)).collect()
    };
    let call = if s.m.is_async {
        quote!(<#self_ty>::#boxed(__this, #(#args),*))
    } else {
        quote!(::std::boxed::Box::pin(async move { __this.#method(#(#args),*) }))
    };
    quote! {
        |__this: ::std::sync::Arc<#self_ty>, (#(#internals,)*): #args_ty| #call
    }
}

fn enter_hook(hook: &Hook) -> TokenStream {
    let p = private();
    let method = &hook.ident;
    let body = if hook.is_async {
        quote_spanned! {method.span()=>
            ::std::boxed::Box::pin(async move {
                #[allow(unused_mut)]
                let mut __this = self;
                let __outcome = #p::HookResult::into_hook_result(__this.#method().await);
                (__this, __outcome)
            })
        }
    } else {
        quote!(#p::run_hook_blocking(self, |__this: &mut Self| __this.#method()))
    };
    quote! {
        fn enter(self) -> #p::BoxFuture<
            'static,
            (Self, ::core::result::Result<(), ::std::string::String>),
        > {
            #body
        }
    }
}

fn exit_hook(hook: &Hook) -> TokenStream {
    let p = private();
    let method = &hook.ident;
    let body = if hook.is_async {
        quote_spanned! {method.span()=>
            ::std::boxed::Box::pin(async move {
                #[allow(unused_mut)]
                let mut __this = self;
                #p::HookResult::into_hook_result(__this.#method().await)
            })
        }
    } else {
        quote!(#p::run_exit_blocking(self, |__this: &mut Self| __this.#method()))
    };
    quote! {
        fn exit(self) -> #p::BoxFuture<'static, ::core::result::Result<(), ::std::string::String>> {
            #body
        }
    }
}

/// Arguments and results can travel, `Result`s and hook results are ones
/// the runtime understands, batching options are within the runtime's
/// bounds; each check spanned on the user's token.
fn compile_time_checks(c: &ClassImpl, shapes: &[Shape]) -> TokenStream {
    let mut checks = TypeChecks::default();
    for s in shapes {
        for ty in &s.wire_tys {
            checks.remote(ty);
        }
        match (&s.batch, s.m.output.ty()) {
            (Some((_, element)), Some(ty)) => checks.batch_output(ty, element),
            _ => checks.output(&s.m.output),
        }
    }
    for hook in c.enters.first().into_iter().chain(c.exits.first()) {
        if let Some(ty) = hook.output.ty() {
            checks.hook(ty);
        }
    }
    checks.finish(&c.cfgs)
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;
    use crate::expand_function::tests::bare_prelude_names;

    fn expand_ok(item: TokenStream) -> (String, syn::File) {
        let out = crate::expand_cls::expand(quote!(), item);
        let text = out.to_string();
        assert!(!text.contains("compile_error"), "unexpected error: {text}");
        let file = syn::parse2(out).unwrap_or_else(|e| panic!("not valid Rust ({e}): {text}"));
        (text, file)
    }

    fn model_impl() -> TokenStream {
        quote! {
            impl Model {
                #[app::enter]
                fn load(&mut self) {}
                #[app::exit]
                async fn unload(&self) -> Result<(), String> { Ok(()) }
                /// Predicts.
                #[app::method]
                fn predict(&self, x: u64) -> u64 { x }
                #[app::method]
                async fn describe(&self) -> Result<String, MyErr> { todo!() }
                #[app::method]
                fn nothing(&self, (a, b): (u8, u8), c: String) {}
                fn helper(&self) -> u64 { 1 }
            }
        }
    }

    #[test]
    fn generated_paths_are_absolute() {
        let (_, file) = expand_ok(quote! {
            impl Model {
                #[app::enter]
                fn load(&mut self) {}
                #[app::exit]
                async fn unload(&self) -> ::core::result::Result<(), ::std::string::String> { todo!() }
                #[app::method]
                fn predict(&self, x: u64) -> u64 { x }
                #[app::method]
                async fn describe(&self) -> ::core::result::Result<u8, E> { todo!() }
                #[app::method]
                fn nothing(&self, (a, b): (u8, u8), c: u8) {}
            }
        });
        let tokens = quote::ToTokens::into_token_stream(file);
        assert_eq!(bare_prelude_names(tokens), Vec::<String>::new());
        let (_, file) = expand_ok(quote! {
            impl Model {
                #[app::enter]
                async fn load(&self) {}
                #[app::exit]
                fn unload(&mut self) -> ::core::result::Result<(), E> { todo!() }
                #[app::method]
                #[app::batched(max_batch_size = 8, wait_ms = 100)]
                async fn embed(&self, a: ::std::vec::Vec<u8>, b: ::std::vec::Vec<u32>) -> ::core::result::Result<::std::vec::Vec<u64>, E> { todo!() }
            }
        });
        let tokens = quote::ToTokens::into_token_stream(file);
        assert_eq!(bare_prelude_names(tokens), Vec::<String>::new());
    }

    #[test]
    fn methods_struct() {
        let (text, file) = expand_ok(model_impl());
        assert!(text.contains("pub struct ModelMethods {"), "{text}");
        assert!(text.contains(r#"# [doc = r" Predicts."] pub predict : :: modal_runtime :: Method < Model , (u64 ,) , u64 , u64 > ,"#), "{text}");
        assert!(text.contains("pub describe : :: modal_runtime :: Method < Model , () , String , Result < String , MyErr > > ,"), "{text}");
        assert!(text.contains("pub nothing : :: modal_runtime :: Method < Model , ((u8 , u8) , String ,) , () , () > ,"), "{text}");
        let fields: Vec<String> = file
            .items
            .iter()
            .find_map(|item| match item {
                syn::Item::Struct(s) if s.ident == "ModelMethods" => Some(s),
                _ => None,
            })
            .unwrap()
            .fields
            .iter()
            .map(|f| f.ident.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(fields, ["predict", "describe", "nothing"]);
        // The block itself keeps its functions, without the markers.
        assert!(text.starts_with("const _ : () ="), "{text}");
        assert!(
            text.contains("impl Model { fn load (& mut self) { }"),
            "{text}"
        );
        assert!(text.contains("fn helper (& self) -> u64 { 1 }"), "{text}");
        assert!(!text.contains("app :: method"), "{text}");
    }

    #[test]
    fn cls_methods() {
        let (text, _) = expand_ok(model_impl());
        assert!(
            text.contains("impl :: modal_runtime :: __private :: ClsMethods for Model"),
            "{text}"
        );
        assert!(text.contains(r#"MethodDescriptor { name : "predict" , fingerprint : :: modal_runtime :: __private :: fingerprint :: < (u64 ,) , u64 > , arity : 1 , handler : :: modal_runtime :: __private :: MethodHandler :: Blocking (| __this : & Model , __payload |"#), "{text}");
        assert!(
            text.contains(
                "MethodHandler :: Async (| __this : :: std :: sync :: Arc < Model > , __payload |"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "encode_fallible (< Model > :: __modal_boxed_describe (__this ,) . await , | __error |"
            ),
            "{text}"
        );
        assert!(text.contains(r#"predict : :: modal_runtime :: __private :: Method :: new (__obj , "predict" , | __this : :: std :: sync :: Arc < Model > , (__arg0 ,) : (u64 ,) | :: std :: boxed :: Box :: pin (async move { __this . predict (__arg0) }))"#), "{text}");
        assert!(text.contains("fn __modal_boxed_describe (__this : :: std :: sync :: Arc < Self > ,) -> :: modal_runtime :: __private :: BoxFuture < 'static , Result < String , MyErr > >"), "{text}");
        assert!(text.contains("fn enter (self)"), "{text}");
        assert!(
            text.contains("run_hook_blocking (self , | __this : & mut Self | __this . load ())"),
            "{text}"
        );
        assert!(text.contains("fn exit (self)"), "{text}");
        assert!(
            text.contains("HookResult :: into_hook_result (__this . unload () . await)"),
            "{text}"
        );
        assert!(
            text.contains("__AssertHookResult < Result < () , String > >"),
            "{text}"
        );
    }

    #[test]
    fn registration() {
        let (text, _) = expand_ok(model_impl());
        assert!(text.contains("pub const __MODAL_CLASS_DESCRIPTOR : & 'static :: modal_runtime :: __private :: FunctionDescriptor"), "{text}");
        assert!(
            text.contains("name : < Model as :: modal_runtime :: __private :: ClsDef > :: NAME"),
            "{text}"
        );
        assert!(
            text.contains(
                "options : < Model as :: modal_runtime :: __private :: ClsDef > :: OPTIONS ,"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "fingerprint : :: modal_runtime :: __private :: class_fingerprint :: < Model >"
            ),
            "{text}"
        );
        assert!(text.contains("handler : :: modal_runtime :: __private :: Handler :: Class (:: modal_runtime :: __private :: ClassHandler :: of :: < Model > ())"), "{text}");
        assert!(text.contains("inventory :: submit ! { :: modal_runtime :: __private :: Registration (< Model > :: __MODAL_CLASS_DESCRIPTOR) }"), "{text}");
        assert!(text.contains("pub fn lookup (app : & str)"), "{text}");
    }

    #[test]
    fn batched_method() {
        let (text, _) = expand_ok(quote! {
            impl Embedder {
                #[app::method]
                #[app::batched(max_batch_size = 8, wait_ms = 100)]
                fn embed(&self, texts: Vec<String>, scale: Vec<u32>) -> Vec<u64> { todo!() }
            }
        });
        assert!(text.contains("pub embed : :: modal_runtime :: Method < Embedder , (String , u32 ,) , u64 , Vec < u64 > > ,"), "{text}");
        assert!(
            text.contains("fingerprint :: < (String , u32 ,) , u64 >"),
            "{text}"
        );
        assert!(
            text.contains("MethodHandler :: BatchBlocking (| __this : & Embedder , __payloads |"),
            "{text}"
        );
        assert!(text.contains("run_batch (__payloads , move | __batch : :: std :: vec :: Vec < (String , u32 ,) > |"), "{text}");
        assert!(text.contains("for (__part0 , __part1 ,) in __batch { __arg0 . push (__part0) ; __arg1 . push (__part1) ; } __this . embed (__arg0 , __arg1)"), "{text}");
        assert!(
            text.contains("__this . embed (:: std :: vec ! [__arg0] , :: std :: vec ! [__arg1])"),
            "{text}"
        );
        assert!(text.contains("options : :: modal_runtime :: __private :: batched_options (< Embedder as :: modal_runtime :: __private :: ClsDef > :: OPTIONS , 8 , 100) ,"), "{text}");
        assert!(
            text.contains("__AssertBatchOutput < Vec < u64 > >"),
            "{text}"
        );
        let (text, _) = expand_ok(quote! {
            impl Embedder {
                #[app::method]
                #[app::batched(max_batch_size = 8, wait_ms = 100)]
                async fn embed(&self, texts: Vec<String>) -> Result<Vec<u64>, E> { todo!() }
            }
        });
        assert!(text.contains("MethodHandler :: BatchAsync"), "{text}");
        assert!(
            text.contains("run_batch_async (__payloads , move | __batch"),
            "{text}"
        );
        assert!(
            text.contains("< Embedder > :: __modal_boxed_embed (__this , __arg0)"),
            "{text}"
        );
        assert!(
            text.contains(
                "< Embedder > :: __modal_boxed_embed (__this , :: std :: vec ! [__arg0])"
            ),
            "{text}"
        );
    }

    #[test]
    fn refused_blocks_get_a_stand_in() {
        let text = crate::expand_cls::expand(
            quote!(),
            quote! {
                impl Model {
                    #[app::method]
                    fn m(&mut self) {}
                }
            },
        )
        .to_string();
        assert!(
            text.starts_with("impl Model { fn m (& mut self) { } }"),
            "{text}"
        );
        assert!(text.contains("compile_error"));
        assert!(text.contains("type Methods = () ;"), "{text}");
        assert!(!text.contains("inventory"), "{text}");
        let text = crate::expand_cls::expand(
            quote!(),
            quote! {
                impl<T> Model<T> {
                    #[app::method]
                    fn m(&self) {}
                }
            },
        )
        .to_string();
        assert!(!text.contains("ClsMethods"), "{text}");
    }

    #[test]
    fn a_block_without_methods_is_still_generated() {
        let text = crate::expand_cls::expand(quote!(), quote!(impl Model { fn helper(&self) {} }))
            .to_string();
        assert!(text.contains("compile_error"));
        assert!(text.contains("pub struct ModelMethods { }"), "{text}");
        assert!(text.contains("const METHODS : & 'static [:: modal_runtime :: __private :: MethodDescriptor < Self >] = & [] ;"), "{text}");
    }
}
