//! Generated code that functions and classes share: the options expression,
//! compile-time checks spanned on user tokens, the duplicate-name guard, and
//! the pieces of handlers (decoding arguments, encoding results, splitting
//! a batch into one `Vec` per argument). Every path is absolute.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{Attribute, Ident, LitStr, Type};

use crate::attr::{Options, Spanned, validate_name};
use crate::model::Output;

/// The runtime's support module, the root of every generated path.
pub fn private() -> TokenStream {
    quote!(::modal_runtime::__private)
}

/// `FunctionOptions { given fields, ..FunctionOptions::DEFAULT }`; `batch`
/// is `(max_batch_size, wait_ms)` of `#[app::batched]`.
pub fn options_expr(
    o: &Options,
    batch: Option<(u32, u32)>,
    web: Option<TokenStream>,
) -> TokenStream {
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
    let float = |v: f64| {
        let v = Literal::f64_suffixed(v);
        quote!(#v)
    };
    if let Some(v) = &o.cpu {
        fields.push(("cpu", some(float(v.value))));
    }
    if let Some(v) = &o.cpu_limit {
        fields.push(("cpu_limit", some(float(v.value))));
    }
    if let Some(v) = &o.memory_mib {
        fields.push(("memory_mib", some(int(v.value))));
    }
    if let Some(v) = &o.memory_limit_mib {
        fields.push(("memory_limit_mib", some(int(v.value))));
    }
    if let Some(v) = &o.gpu {
        fields.push(("gpu", some(string(&v.value))));
    }
    if let Some(v) = &o.image {
        fields.push(("image", some(string(&v.value))));
    }
    if let Some(v) = &o.timeout_secs {
        fields.push(("timeout_secs", int(v.value)));
    }
    if let Some(v) = &o.startup_timeout_secs {
        fields.push(("startup_timeout_secs", some(int(v.value))));
    }
    if let Some(policy) = &o.retry_policy {
        let policy = policy.value;
        let coefficient = Literal::f64_suffixed(policy.backoff_coefficient);
        fields.push(("retries", int(policy.max_retries)));
        fields.push(("retry_backoff_coefficient", quote!(#coefficient)));
        fields.push(("retry_initial_delay_ms", int(policy.initial_delay_ms)));
        fields.push(("retry_max_delay_ms", int(policy.max_delay_ms)));
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
    if let Some(v) = &o.volumes {
        let mounts = v.value.iter().map(|(path, name)| {
            let (path, name) = (string(path), string(name));
            quote!((#path, #name))
        });
        fields.push(("volumes", quote!(#p::Cow::Borrowed(&[#(#mounts),*]))));
    }
    if let Some(v) = &o.region {
        fields.push(("region", some(string(&v.value))));
    }
    if let Some(v) = &o.cloud {
        fields.push(("cloud", some(string(&v.value))));
    }
    if let Some(v) = &o.max_inputs {
        fields.push(("max_inputs", int(v.value)));
    }
    if let Some(v) = &o.target_inputs {
        fields.push(("target_inputs", some(int(v.value))));
    }
    if let Some((size, wait)) = batch {
        fields.push(("batch_max_size", some(int(size))));
        fields.push(("batch_wait_ms", int(wait)));
    }
    if let Some(web) = web {
        fields.push(("web", some(web)));
    }
    if let Some(v) = &o.schedule {
        fields.push(("schedule", some(crate::schedule::tokens(&v.schedule))));
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

/// A `macro_rules!` named after the registered name: two functions or
/// classes registered under one name in a crate make rustc report "the name
/// ... is defined multiple times" on the second one's name.
pub fn name_guard(name: &Spanned<String>, cfgs: &[Attribute]) -> TokenStream {
    if validate_name(&name.value).is_err() {
        return TokenStream::new();
    }
    let guard = format_ident!(
        "__modal_function_named_{}",
        name.value.replace('-', "_h_"),
        span = name.span
    );
    // rustc reports a duplicate macro on the whole item: span all of it on
    // the name.
    quote_spanned! {name.span=>
        #(#cfgs)*
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #guard {
            () => {};
        }
    }
}

/// The type a successful call yields: `T` for `-> T`, `Ok` of the `Result`
/// for `-> Result<T, E>`, `()` for no return type.
pub fn success_type(output: &Output) -> TokenStream {
    let p = private();
    match output {
        Output::Unit => quote!(()),
        Output::Plain(ty) => quote!(#ty),
        Output::Fallible { ok: Some(ok), .. } => quote!(#ok),
        Output::Fallible { ty, ok: None } => {
            quote_spanned!(ty.span()=> <#ty as #p::Fallible>::Ok)
        }
    }
}

/// The return type as written, `()` when there is none.
pub fn return_type(output: &Output) -> TokenStream {
    match output.ty() {
        Some(ty) => quote!(#ty),
        None => quote!(()),
    }
}

/// `let (__arg0, ...): (A, ...) = <decoded __payload>;`, returning the
/// failure from the enclosing handler when the payload does not decode.
pub fn decode_payload(internals: &[&Ident], args_ty: &TokenStream) -> TokenStream {
    let p = private();
    decode_payload_with(internals, args_ty, quote!(#p::decode_args(&__payload)))
}

/// [`decode_payload`], decoding with `decode` (an expression giving
/// `Result<args_ty, CallFailure>`).
pub fn decode_payload_with(
    internals: &[&Ident],
    args_ty: &TokenStream,
    decode: TokenStream,
) -> TokenStream {
    quote! {
        let (#(#internals,)*): #args_ty = match #decode {
            ::core::result::Result::Ok(__args) => __args,
            ::core::result::Result::Err(__failure) => {
                return ::core::result::Result::Err(__failure);
            }
        };
    }
}

/// The encoded outcome of `value`, a call returning `output`. A `Result`'s
/// error travels as its text and, when its type is `Serialize`, as itself.
pub fn encode(output: &Output, value: TokenStream) -> TokenStream {
    let p = private();
    match output {
        Output::Fallible { .. } => quote! {
            #p::encode_fallible(#value, |__error| {
                #[allow(unused_imports)]
                use #p::{EncodeOpaqueError as _, EncodeSerdeError as _};
                (&#p::ErrorValue(__error)).encode_error()
            })
        },
        _ => quote!(#p::encode_output(&#value)),
    }
}

/// What a descriptor's `fingerprint` is, for a call of `args_ty` yielding
/// `ret` and returning `output` as written: the shapes callers are checked
/// against, with the error type's when the function returns a `Result`
/// whose error is serde's. `unbatched` is false for a batched call, whose
/// error (one for the whole batch) travels as text only.
///
/// `signature` is the `fn() -> String` of the argument and result shapes
/// (`fingerprint::<A, R>`, or a stub's `__CALLS.fingerprint()`); the error
/// type's shape is found without a bound on it, so a type that cannot
/// travel adds no error here.
pub fn fingerprint(output: &Output, unbatched: bool, signature: TokenStream) -> TokenStream {
    let p = private();
    match output {
        Output::Fallible { ty, .. } if unbatched => {
            // On the return type: an error type that is not `Display` is
            // reported there.
            let error = quote_spanned!(ty.span()=> <#ty as #p::Fallible>::Err);
            quote! {
                || {
                    #[allow(unused_imports)]
                    use #p::{OpaqueErrorShape as _, TracedErrorShape as _};
                    #p::with_error_shape(
                        (#signature)(),
                        (&#p::ErrorShape::<#error>::new()).error_shape(),
                    )
                }
            }
        }
        _ => signature,
    }
}

/// The closure `run_batch` calls with the decoded inputs: it turns the
/// `Vec` of argument tuples into one `Vec` per argument, named `internals`,
/// and evaluates `call` with them.
pub fn split_batch(elements: &[&Type], internals: &[&Ident], call: TokenStream) -> TokenStream {
    let parts: Vec<Ident> = (0..internals.len())
        .map(|i| format_ident!("__part{}", i))
        .collect();
    quote! {
        move |__batch: ::std::vec::Vec<(#(#elements,)*)>| {
            #(
                let mut #internals = ::std::vec::Vec::with_capacity(__batch.len());
            )*
            for (#(#parts,)*) in __batch {
                #( #internals.push(#parts); )*
            }
            #call
        }
    }
}

/// Field types of a struct that rustc checks before any body, so that the
/// errors they cause come first, each spanned on the user's type.
#[derive(Default)]
pub struct TypeChecks {
    types: Vec<TokenStream>,
    items: Vec<TokenStream>,
}

impl TypeChecks {
    /// `ty` can travel to or from a container.
    pub fn remote(&mut self, ty: &Type) {
        self.types
            .push(quote_spanned!(ty.span()=> __AssertRemote<#ty>));
    }

    /// What a call returning `output` sends back can travel, and a `Result`
    /// is one the runtime understands.
    pub fn output(&mut self, output: &Output) {
        let p = private();
        self.fallible(output);
        match output {
            Output::Unit => {}
            Output::Plain(ty) => self.remote(ty),
            Output::Fallible { ok: Some(ok), .. } => self.remote(ok),
            Output::Fallible { ty, ok: None } => self
                .types
                .push(quote_spanned!(ty.span()=> __AssertRemote<<#ty as #p::Fallible>::Ok>)),
        }
    }

    /// A `Result` return type is one the runtime understands (whether its
    /// values can travel is checked elsewhere).
    fn fallible(&mut self, output: &Output) {
        let Output::Fallible { ty, ok } = output else {
            return;
        };
        self.types
            .push(quote_spanned!(ty.span()=> __AssertFallible<#ty>));
        if let Some(ok) = ok {
            // The stub's success type is the first type argument as written;
            // make sure it is the `Ok` type (it is for `Result<T, E>` and
            // every usual alias; an alias such as
            // `type Result<E> = std::result::Result<u8, E>` is refused here
            // with a type mismatch).
            let check = format_ident!("__ok_type_is_first_argument_{}", self.items.len());
            self.items.push(quote_spanned! {ty.span()=>
                #[allow(dead_code)]
                fn #check(result: #ty) {
                    let _: ::core::result::Result<#ok, _> = result;
                }
            });
        }
    }

    /// A batched call's result: one item per input, each able to travel.
    pub fn batch_output(&mut self, ty: &Type, element: &Type) {
        self.types
            .push(quote_spanned!(ty.span()=> __AssertBatchOutput<#ty>));
        self.remote(element);
    }

    /// A lifecycle hook's result.
    pub fn hook(&mut self, ty: &Type) {
        self.types
            .push(quote_spanned!(ty.span()=> __AssertHookResult<#ty>));
    }

    /// The checks, in one anonymous `const`.
    pub fn finish(self, cfgs: &[Attribute]) -> TokenStream {
        let p = private();
        let TypeChecks { types, items } = self;
        quote! {
            #(#cfgs)*
            const _: () = {
                #[allow(dead_code)]
                struct __AssertRemote<T: #p::Remote>(::core::marker::PhantomData<T>);
                #[allow(dead_code)]
                struct __AssertFallible<T: #p::Fallible>(::core::marker::PhantomData<T>);
                #[allow(dead_code)]
                struct __AssertBatchOutput<T: #p::BatchOutput>(::core::marker::PhantomData<T>);
                #[allow(dead_code)]
                struct __AssertHookResult<T: #p::HookResult>(::core::marker::PhantomData<T>);
                #[allow(dead_code)]
                struct __Checks(#(#types),*);
                #(#items)*
            };
        }
    }
}
