//! Code generation for `#[app::cls(...)]` on a struct, and the entry point
//! that sends an `impl` block to `expand_cls_impl`.
//!
//! For `struct Model { #[app::parameter] name: String, table: Vec<u64> }`
//! this emits the struct (without the markers), `ModelParams` (the
//! parameters, as callers give them), `Model::new`, `Model::with_params`,
//! `Model::cls` and `Model::from_name`, and the `ClsDef` implementation:
//! the class's name, options, wire form of its parameters and how an
//! instance is built from them.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, Item, Lit, LitStr};

use crate::attr::parse_options;
use crate::check_cls::check_struct;
use crate::errors::Errors;
use crate::expand_cls_impl;
use crate::expand_shared::{TypeChecks, name_guard, option_checks, options_expr, private};
use crate::model_cls::ClassStruct;

const NOT_A_CLASS: &str =
    "`#[app::cls]` can only be applied to a struct with named fields and to its `impl` block";

pub fn expand(options: TokenStream, input: TokenStream) -> TokenStream {
    let item: Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => return not_a_class(Span::call_site(), input, TokenStream::new()),
    };
    match item {
        Item::Struct(item) => {
            let mut errors = Errors::new();
            let options = parse_options(options, &mut errors);
            let class = ClassStruct::from_item(item, options, &mut errors);
            let mut fatal = Errors::new();
            check_struct(&class, &mut fatal, &mut errors);
            let generated = if fatal.is_empty() {
                generate(&class)
            } else {
                errors.append(fatal);
                let item = &class.item;
                let stand_in = class
                    .item
                    .generics
                    .params
                    .is_empty()
                    .then(|| stand_in(&class.ident, &class.cfgs));
                quote!(#item #stand_in)
            };
            let errors = errors.to_compile_errors();
            quote!(#generated #errors)
        }
        Item::Impl(item) => expand_cls_impl::expand(options, item),
        Item::Enum(e) => {
            let (keyword, ident) = (&e.enum_token, &e.ident);
            let stand_in = e.generics.params.is_empty().then(|| stand_in(ident, &[]));
            not_a_class_spanned(quote!(#keyword #ident), quote!(#e), quote!(#stand_in))
        }
        Item::Union(u) => {
            let (keyword, ident) = (&u.union_token, &u.ident);
            let stand_in = u.generics.params.is_empty().then(|| stand_in(ident, &[]));
            not_a_class_spanned(quote!(#keyword #ident), quote!(#u), quote!(#stand_in))
        }
        other => not_a_class(Span::call_site(), quote!(#other), TokenStream::new()),
    }
}

fn not_a_class(span: Span, item: TokenStream, stand_in: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    errors.at(span, NOT_A_CLASS);
    let errors = errors.to_compile_errors();
    quote!(#item #stand_in #errors)
}

fn not_a_class_spanned(span: TokenStream, item: TokenStream, stand_in: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    errors.spanned(span, NOT_A_CLASS);
    let errors = errors.to_compile_errors();
    quote!(#item #stand_in #errors)
}

/// A `ClsDef` that is never used, emitted when the struct cannot be a
/// class: its `#[app::cls]` impl block then compiles, and the only error
/// shown is the one about the struct.
fn stand_in(ident: &syn::Ident, cfgs: &[syn::Attribute]) -> TokenStream {
    let p = private();
    let name = LitStr::new(&ident.unraw().to_string(), Span::call_site());
    quote! {
        #(#cfgs)*
        impl #p::ClsDef for #ident {
            type Params = ();
            type Wire = ();
            const NAME: &'static str = #name;
            const RUST_PATH: &'static str = #name;
            const OPTIONS: #p::FunctionOptions = #p::FunctionOptions::DEFAULT;
            fn to_wire(_: ()) {}
            fn build(_: ()) -> Self {
                ::core::unreachable!()
            }
            fn params_fingerprint() -> ::std::string::String {
                ::std::string::String::new()
            }
        }
    }
}

/// All the items for one class struct.
pub fn generate(s: &ClassStruct) -> TokenStream {
    let p = private();
    let ident = &s.ident;
    let vis = &s.vis;
    let cfgs = &s.cfgs;
    let item = &s.item;
    let unraw = ident.unraw().to_string();
    let params_ident = format_ident!("{}Params", unraw, span = ident.span());
    let name = LitStr::new(&s.name.value, s.name.span);
    let rust_name = LitStr::new(&format!("::{ident}"), Span::call_site());
    let options = options_expr(&s.options, None, None);

    let params: Vec<_> = s.parameters().collect();
    let param_idents: Vec<_> = params.iter().map(|(f, _)| &f.ident).collect();
    let param_tys: Vec<_> = params.iter().map(|(f, _)| &f.ty).collect();
    let required: Vec<_> = params
        .iter()
        .filter(|(_, p)| p.default.is_none())
        .map(|(f, _)| (&f.ident, &f.ty))
        .collect();
    let required_idents: Vec<_> = required.iter().map(|(i, _)| *i).collect();
    let required_tys: Vec<_> = required.iter().map(|(_, t)| *t).collect();

    // Each parameter's value in `ModelParams::new`: the argument, or the
    // default as written (a string literal converted with `From`, so that
    // `default = "greedy"` fills a `String`), spanned on the user's tokens.
    let values = params.iter().map(|(f, p)| {
        let field = &f.ident;
        match &p.default {
            None => quote!(#field),
            Some(
                lit @ Expr::Lit(ExprLit {
                    lit: Lit::Str(_), ..
                }),
            ) => quote_spanned!(lit.span()=> #field: ::core::convert::From::from(#lit)),
            Some(expr) => quote!(#field: #expr),
        }
    });
    let param_fields = params.iter().map(|(f, p)| {
        let field = &f.ident;
        let ty = &f.ty;
        let mut docs = if f.docs.is_empty() {
            let doc = format!("Parameter `{}` of class `{unraw}`.", field.unraw());
            quote!(#[doc = #doc])
        } else {
            let docs = &f.docs;
            quote!(#(#docs)*)
        };
        if let Some(default) = &p.default {
            let doc = format!("Default: `{}`.", crate::check::tokens(default));
            docs.extend(quote!(#[doc = ""] #[doc = #doc]));
        }
        quote! {
            #docs
            pub #field: #ty,
        }
    });
    let others: Vec<_> = s.fields.iter().filter(|f| f.parameter.is_none()).collect();
    // A field that is not a parameter starts as its type's default; an error
    // for a type without one lands on that type.
    let other_values = others.iter().map(|f| {
        let field = &f.ident;
        let ty = &f.ty;
        let default = quote_spanned!(ty.span()=> <#ty as ::core::default::Default>::default());
        quote!(#field: #default)
    });
    let fingerprint = if params.is_empty() {
        quote!(::std::string::String::new())
    } else {
        let format = params
            .iter()
            .map(|(f, _)| format!("{}: {{}}", f.ident.unraw()))
            .collect::<Vec<_>>()
            .join(", ");
        let format = LitStr::new(&format, Span::call_site());
        quote!(::std::format!(#format, #(::core::any::type_name::<#param_tys>()),*))
    };

    // Without parameters the wire form is `()`: nothing to move either way.
    let (to_wire, wire, unpack) = if params.is_empty() {
        (
            quote!(fn to_wire(_: #params_ident) -> Self::Wire {}),
            quote!(_),
            TokenStream::new(),
        )
    } else {
        (
            quote! {
                fn to_wire(__params: #params_ident) -> Self::Wire {
                    (#(__params.#param_idents,)*)
                }
            },
            quote!(__wire),
            quote!(let (#(#param_idents,)*) = __wire;),
        )
    };

    let mut checks = TypeChecks::default();
    for ty in &param_tys {
        checks.remote(ty);
    }
    let checks = checks.finish(cfgs, option_checks(&s.options, None));
    let name_guard = name_guard(&s.name, cfgs);

    let params_doc = format!(
        "The parameters of class `{unraw}`, as an instance is made with them: `{unraw}::with_params({params_ident} {{ .., ..{params_ident}::new(..) }})`."
    );
    let params_new_doc = if required.is_empty() {
        "Every parameter at its default.".to_string()
    } else {
        format!(
            "The parameters with no default set to these values ({}), the others at their defaults.",
            required_idents
                .iter()
                .map(|i| format!("`{}`", i.unraw()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let new_doc = format!(
        "An instance of class `{unraw}` in this program's app, with the parameters that have no default set to these values: its methods run in containers made for these values, built (and entered) on first use."
    );
    let with_params_doc = format!(
        "An instance of class `{unraw}` in this program's app, with every parameter given."
    );
    let cls_doc = format!(
        "Class `{unraw}` in this program's app: set options with `with_options(...)`, then make instances with `instance(...)`."
    );
    let from_name_doc = format!(
        "Class `{}` of a deployed app (lazy: looked up on first use): make instances with `instance(...)`.",
        s.name.value
    );

    quote! {
        #checks
        #name_guard

        #item

        #(#cfgs)*
        #[doc = #params_doc]
        #[allow(private_interfaces)]
        #vis struct #params_ident {
            #(#param_fields)*
        }

        #(#cfgs)*
        #[allow(dead_code)]
        impl #params_ident {
            #[doc = #params_new_doc]
            #vis fn new(#(#required_idents: #required_tys),*) -> Self {
                #params_ident {
                    #(#values,)*
                }
            }
        }

        #(#cfgs)*
        #[allow(dead_code)]
        impl #ident {
            #[doc = #new_doc]
            #vis fn new(#(#required_idents: #required_tys),*) -> #p::Obj<#ident> {
                #ident::with_params(#params_ident::new(#(#required_idents),*))
            }

            #[doc = #with_params_doc]
            #vis fn with_params(params: #params_ident) -> #p::Obj<#ident> {
                #p::Cls::<#ident>::this_app().instance(params)
            }

            #[doc = #cls_doc]
            #vis fn cls() -> #p::Cls<#ident> {
                #p::Cls::this_app()
            }

            #[doc = #from_name_doc]
            #vis fn from_name(app: &str) -> #p::Cls<#ident> {
                #p::Cls::from_name(app, #name)
            }
        }

        #(#cfgs)*
        impl #p::ClsDef for #ident {
            type Params = #params_ident;
            type Wire = (#(#param_tys,)*);
            const NAME: &'static str = #name;
            const RUST_PATH: &'static str = ::core::concat!(::core::module_path!(), #rust_name);
            const OPTIONS: #p::FunctionOptions = #options;

            #to_wire

            fn build(#wire: Self::Wire) -> Self {
                #unpack
                #ident {
                    #(#param_idents,)*
                    #(#other_values,)*
                }
            }

            fn params_fingerprint() -> ::std::string::String {
                #fingerprint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;
    use crate::expand_function::tests::bare_prelude_names;

    fn expand_ok(options: TokenStream, item: TokenStream) -> (String, syn::File) {
        let out = expand(options, item);
        let text = out.to_string();
        assert!(!text.contains("compile_error"), "unexpected error: {text}");
        let file = syn::parse2(out).unwrap_or_else(|e| panic!("not valid Rust ({e}): {text}"));
        (text, file)
    }

    fn model() -> TokenStream {
        quote! {
            /// A model.
            pub struct Model {
                #[app::parameter]
                name: String,
                #[app::parameter(default = 3)]
                top_k: u32,
                #[app::parameter(default = "greedy")]
                mode: String,
                table: Vec<u64>,
            }
        }
    }

    #[test]
    fn generated_paths_are_absolute() {
        let (_, file) = expand_ok(
            quote!(cpu = 1, timeout = 5, max_inputs = 2),
            quote! {
                pub struct Model {
                    #[app::parameter]
                    name: ::std::string::String,
                    #[app::parameter(default = 3)]
                    top_k: u32,
                    #[app::parameter(default = "greedy")]
                    mode: ::std::string::String,
                    table: ::std::vec::Vec<u64>,
                }
            },
        );
        let tokens = quote::ToTokens::into_token_stream(file);
        assert_eq!(bare_prelude_names(tokens), Vec::<String>::new());
    }

    #[test]
    fn params_struct_and_constructors() {
        let (text, file) = expand_ok(quote!(), model());
        // The user's struct, without the markers.
        assert!(text.contains("pub struct Model { name : String , top_k : u32 , mode : String , table : Vec < u64 > , }"), "{text}");
        assert!(!text.contains("app :: parameter"), "{text}");
        assert!(text.contains("pub struct ModelParams {"), "{text}");
        assert!(text.contains("pub name : String ,"), "{text}");
        assert!(text.contains("pub fn new (name : String) -> Self { ModelParams { name , top_k : 3 , mode : :: core :: convert :: From :: from (\"greedy\") , } }"), "{text}");
        assert!(
            text.contains(
                "pub fn new (name : String) -> :: modal_runtime :: __private :: Obj < Model >"
            ),
            "{text}"
        );
        assert!(
            text.contains("pub fn with_params (params : ModelParams)"),
            "{text}"
        );
        assert!(
            text.contains("pub fn cls () -> :: modal_runtime :: __private :: Cls < Model >"),
            "{text}"
        );
        assert!(text.contains("pub fn from_name (app : & str) -> :: modal_runtime :: __private :: Cls < Model > { :: modal_runtime :: __private :: Cls :: from_name (app , \"Model\") }"), "{text}");
        let mut fns: Vec<String> = file
            .items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Impl(imp) if imp.trait_.is_none() => Some(imp),
                _ => None,
            })
            .flat_map(|imp| imp.items.iter())
            .filter_map(|item| match item {
                syn::ImplItem::Fn(f) => Some(f.sig.ident.to_string()),
                _ => None,
            })
            .collect();
        fns.sort();
        assert_eq!(fns, ["cls", "from_name", "new", "new", "with_params"]);
    }

    #[test]
    fn cls_def() {
        let (text, _) = expand_ok(quote!(name = "my-model", max_containers = 2), model());
        assert!(
            text.contains("impl :: modal_runtime :: __private :: ClsDef for Model"),
            "{text}"
        );
        assert!(text.contains("type Params = ModelParams ;"), "{text}");
        assert!(
            text.contains("type Wire = (String , u32 , String ,) ;"),
            "{text}"
        );
        assert!(
            text.contains("const NAME : & 'static str = \"my-model\" ;"),
            "{text}"
        );
        assert!(text.contains(r#"const RUST_PATH : & 'static str = :: core :: concat ! (:: core :: module_path ! () , "::Model") ;"#), "{text}");
        assert!(
            text.contains("max_containers : :: core :: option :: Option :: Some (2)"),
            "{text}"
        );
        assert!(
            text.contains("(__params . name , __params . top_k , __params . mode ,)"),
            "{text}"
        );
        assert!(text.contains("let (name , top_k , mode ,) = __wire ; Model { name , top_k , mode , table : < Vec < u64 > as :: core :: default :: Default > :: default () , }"), "{text}");
        assert!(text.contains(r#":: std :: format ! ("name: {}, top_k: {}, mode: {}" , :: core :: any :: type_name :: < String > () , :: core :: any :: type_name :: < u32 > () , :: core :: any :: type_name :: < String > ())"#), "{text}");
        assert!(
            text.contains("macro_rules ! __modal_function_named_my_h_model"),
            "{text}"
        );
        assert!(text.contains("__AssertRemote < String >"), "{text}");
    }

    #[test]
    fn no_parameters() {
        let (text, _) = expand_ok(
            quote!(),
            quote!(
                struct Counter {
                    count: u64,
                }
            ),
        );
        assert!(text.contains("struct CounterParams { }"), "{text}");
        assert!(
            text.contains("fn new () -> :: modal_runtime :: __private :: Obj < Counter >"),
            "{text}"
        );
        assert!(text.contains("type Wire = () ;"), "{text}");
        assert!(
            text.contains("fn to_wire (_ : CounterParams) -> Self :: Wire { }"),
            "{text}"
        );
        assert!(text.contains("fn build (_ : Self :: Wire) -> Self { Counter { count : < u64 as :: core :: default :: Default > :: default () , } }"), "{text}");
        assert!(text.contains("fn params_fingerprint () -> :: std :: string :: String { :: std :: string :: String :: new () }"), "{text}");
    }

    #[test]
    fn refused_items_are_emitted_with_a_stand_in() {
        let text = expand(
            quote!(),
            quote!(
                struct Model(u8);
            ),
        )
        .to_string();
        assert!(text.starts_with("struct Model (u8) ;"), "{text}");
        assert!(text.contains("compile_error"));
        assert!(
            text.contains("impl :: modal_runtime :: __private :: ClsDef for Model"),
            "{text}"
        );
        assert!(!text.contains("ModelParams"), "{text}");
        let text = expand(
            quote!(),
            quote!(
                struct Model<T> {
                    x: T,
                }
            ),
        )
        .to_string();
        assert!(text.contains("compile_error"));
        assert!(!text.contains("ClsDef"), "{text}");
        let text = expand(
            quote!(),
            quote!(
                enum Model {
                    A,
                }
            ),
        )
        .to_string();
        assert!(text.starts_with("enum Model { A"), "{text}");
        assert!(
            text.contains("can only be applied to a struct with named fields"),
            "{text}"
        );
        assert!(text.contains("ClsDef for Model"), "{text}");
        let text = expand(
            quote!(),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(text.starts_with("fn f () { }"), "{text}");
        assert!(text.contains("compile_error"), "{text}");
        let text = expand(
            quote!(),
            quote!(
                struct Model {
                    #[app::parameter]
                    name: &'static str,
                }
            ),
        )
        .to_string();
        assert!(text.contains("compile_error"));
        assert!(
            text.starts_with("struct Model { name : & 'static str"),
            "{text}"
        );
    }

    #[test]
    fn option_errors_still_generate_the_class() {
        let text = expand(quote!(timeout = "x", retries = 2), model()).to_string();
        assert!(text.contains("compile_error"));
        assert!(text.contains("struct ModelParams"));
        assert!(text.contains("retries : 2"));
        let text = expand(
            quote!(),
            quote!(
                struct Model {
                    #[app::parameter(defualt = 1)]
                    k: u32,
                }
            ),
        )
        .to_string();
        assert!(text.contains("compile_error"));
        assert!(text.contains("fn new (k : u32)"), "{text}");
    }
}
