//! The typed model of an annotated function, built once from the syntax tree.
//! Spans are kept so that checks and generated code point at user tokens.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{
    Attribute, FnArg, GenericArgument, Ident, ItemFn, Pat, PatIdent, PathArguments, Receiver,
    ReturnType, Signature, Type, TypePath, Visibility,
};

use crate::attr::{Options, Spanned};
use crate::errors::Errors;
use crate::markers::Marker;
use crate::model_batched::Batched;
use crate::tokens::ungroup;
use crate::web::Web;

/// A function marked `#[app::function(...)]`.
pub struct Function {
    /// The item as written (attributes included), re-emitted as is when the
    /// signature cannot be registered.
    pub item: ItemFn,
    /// `///` comments: they document the generated stub.
    pub docs: Vec<Attribute>,
    /// `#[cfg]` and `#[cfg_attr]`: copied onto every generated item.
    pub cfgs: Vec<Attribute>,
    /// Every other attribute: kept on the user's function.
    pub attrs: Vec<Attribute>,
    /// `#[app::batched(...)]` below `#[app::function]`: inputs arrive in
    /// batches, and the arguments are `Vec`s of them.
    pub batched: Option<Batched>,
    /// `#[app::web_endpoint(...)]` or `#[app::web_app(...)]` below
    /// `#[app::function]`: served over HTTP.
    pub web: Option<Web>,
    /// Web markers after the first (refused).
    pub web_duplicates: Vec<Attribute>,
    pub vis: Visibility,
    pub ident: Ident,
    pub is_async: bool,
    pub receiver: Option<Receiver>,
    pub args: Vec<Arg>,
    pub output: Output,
    /// `-> Generator<T, R>`: items of type `T`, then a return value `R`.
    pub generator: Option<GeneratorTypes>,
    pub options: Options,
    /// The registered name: `name = "..."` or the function's identifier.
    pub name: Spanned<String>,
    /// Whether `name` came from the identifier (so it still needs checking).
    pub name_from_ident: bool,
}

/// One typed argument.
pub struct Arg {
    /// The argument's attributes (checked: `#[cfg]` is refused).
    pub attrs: Vec<Attribute>,
    pub ty: Type,
    /// The name generated methods give this parameter: the user's own when
    /// the pattern is a plain identifier, `__argN` otherwise.
    pub binding: Ident,
    /// The name the generated code uses internally.
    pub internal: Ident,
}

/// What the function returns.
pub enum Output {
    /// No return type.
    Unit,
    /// `-> T`: the value travels back as is.
    Plain(Type),
    /// `-> Result<T, E>` (or any path ending in `Result`): `T` travels back,
    /// `E` becomes a user error. `ok` is `T` as written: the first type
    /// argument (`Result<T, E>`, `io::Result<T>`, `anyhow::Result<T>`); the
    /// generated code checks that it is indeed the `Ok` type.
    Fallible { ty: Type, ok: Option<Box<Type>> },
}

impl Function {
    /// The model of `item`; `#[app::batched(...)]` among its attributes is
    /// read (its problems pushed to `errors`) and taken off the function.
    pub fn from_item(item: ItemFn, options: Options, errors: &mut Errors) -> Function {
        let mut docs = Vec::new();
        let mut cfgs = Vec::new();
        let mut attrs = Vec::new();
        let mut batched: Option<Batched> = None;
        let mut web: Option<Web> = None;
        let mut web_duplicates = Vec::new();
        for attr in &item.attrs {
            let marker = Marker::of(attr);
            if let Some(m @ (Marker::WebEndpoint | Marker::WebApp)) = marker {
                if web.is_some() {
                    web_duplicates.push(attr.clone());
                } else {
                    web = Some(Web::parse(attr, m, errors));
                }
            } else if marker == Some(Marker::Batched) {
                if batched.is_some() {
                    errors.spanned(attr, "duplicate `#[app::batched]`; give it once");
                } else {
                    batched = Some(Batched::parse(attr, errors));
                }
            } else if attr.path().is_ident("doc") {
                docs.push(attr.clone());
            } else if attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr") {
                cfgs.push(attr.clone());
            } else {
                attrs.push(attr.clone());
            }
        }
        let sig = &item.sig;
        let (receiver, args) = inputs(sig);
        let (name, name_from_ident) = match &options.name {
            Some(name) => (name.clone(), false),
            None => (
                Spanned::new(sig.ident.unraw().to_string(), sig.ident.span()),
                true,
            ),
        };
        let mut item = item;
        item.attrs.retain(|attr| {
            !matches!(
                Marker::of(attr),
                Some(Marker::Batched | Marker::WebEndpoint | Marker::WebApp)
            )
        });
        Function {
            docs,
            cfgs,
            attrs,
            batched,
            web,
            web_duplicates,
            vis: item.vis.clone(),
            ident: item.sig.ident.clone(),
            is_async: item.sig.asyncness.is_some(),
            receiver,
            args,
            output: Output::from_return_type(&item.sig.output),
            generator: GeneratorTypes::of(&item.sig.output),
            options,
            name,
            name_from_ident,
            item,
        }
    }
}

/// The types of a generator: what `-> Generator<T>` or `-> Generator<T, R>`
/// (any path whose last segment is `Generator`) yields and returns.
pub struct GeneratorTypes {
    /// The return type as written.
    pub ty: Type,
    pub item: Type,
    /// `()` when not written.
    pub ret: Option<Type>,
}

impl GeneratorTypes {
    pub fn of(output: &ReturnType) -> Option<GeneratorTypes> {
        let ReturnType::Type(_, ty) = output else {
            return None;
        };
        let Type::Path(TypePath { qself: None, path }) = ungroup(ty) else {
            return None;
        };
        let last = path.segments.last()?;
        if last.ident != "Generator" {
            return None;
        }
        let PathArguments::AngleBracketed(args) = &last.arguments else {
            return None;
        };
        let mut types = args.args.iter().filter_map(|arg| match arg {
            GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        });
        let item = types.next()?;
        let ret = types.next();
        Some(GeneratorTypes {
            ty: (**ty).clone(),
            item,
            ret,
        })
    }
}

/// The receiver and the typed arguments of a signature.
pub fn inputs(sig: &Signature) -> (Option<Receiver>, Vec<Arg>) {
    let mut receiver = None;
    let mut args = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => receiver = Some(r.clone()),
            FnArg::Typed(typed) => {
                let index = args.len();
                let internal = Ident::new(&format!("__arg{index}"), Span::call_site());
                // The user's name, but not the user's span: lints on
                // the parameter (naming, say) then fire once, on the
                // user's function, not again on each generated method.
                let binding = match &*typed.pat {
                    Pat::Ident(PatIdent {
                        ident,
                        subpat: None,
                        ..
                    }) if ident != "self" => {
                        let mut ident = ident.clone();
                        ident.set_span(Span::call_site());
                        ident
                    }
                    _ => internal.clone(),
                };
                args.push(Arg {
                    attrs: typed.attrs.clone(),
                    ty: (*typed.ty).clone(),
                    binding,
                    internal,
                });
            }
        }
    }
    (receiver, args)
}

impl Output {
    pub fn from_return_type(output: &ReturnType) -> Output {
        let ReturnType::Type(_, ty) = output else {
            return Output::Unit;
        };
        if let Type::Path(TypePath { qself: None, path }) = ungroup(ty)
            && let Some(last) = path.segments.last()
            && last.ident == "Result"
        {
            let ok = match &last.arguments {
                PathArguments::AngleBracketed(args) => args.args.iter().find_map(|arg| match arg {
                    GenericArgument::Type(ok) => Some(Box::new(ok.clone())),
                    _ => None,
                }),
                _ => None,
            };
            return Output::Fallible {
                ty: (**ty).clone(),
                ok,
            };
        }
        Output::Plain((**ty).clone())
    }

    /// The written return type, if any.
    pub fn ty(&self) -> Option<&Type> {
        match self {
            Output::Unit => None,
            Output::Plain(ty) | Output::Fallible { ty, .. } => Some(ty),
        }
    }
}

/// `async fn main()` marked `#[app::main]`.
pub struct Main {
    pub item: ItemFn,
}

impl Main {
    pub fn from_item(item: ItemFn) -> Main {
        Main { item }
    }
}

#[cfg(test)]
mod tests {
    use quote::ToTokens;
    use syn::parse_quote;

    use super::*;

    fn model(item: ItemFn) -> Function {
        let mut errors = Errors::new();
        let f = Function::from_item(item, Options::default(), &mut errors);
        assert!(errors.is_empty());
        f
    }

    fn ret(f: &Function) -> &'static str {
        match f.output {
            Output::Unit => "unit",
            Output::Plain(_) => "plain",
            Output::Fallible { .. } => "fallible",
        }
    }

    fn ok_type(item: ItemFn) -> Option<String> {
        match model(item).output {
            Output::Fallible { ok, .. } => ok.map(|t| t.to_token_stream().to_string()),
            _ => panic!("not fallible"),
        }
    }

    #[test]
    fn success_types_of_results() {
        assert_eq!(
            ok_type(parse_quote!(
                fn f() -> Result<Vec<u8>, E> {}
            ))
            .as_deref(),
            Some("Vec < u8 >")
        );
        assert_eq!(
            ok_type(parse_quote!(
                fn f() -> io::Result<u8> {}
            ))
            .as_deref(),
            Some("u8")
        );
        assert_eq!(
            ok_type(parse_quote!(
                fn f() -> Result<'static, u8> {}
            ))
            .as_deref(),
            Some("u8")
        );
        assert_eq!(
            ok_type(parse_quote!(
                fn f() -> Result {}
            )),
            None
        );
    }

    #[test]
    fn return_types() {
        assert_eq!(
            ret(&model(parse_quote!(
                fn f() {}
            ))),
            "unit"
        );
        assert_eq!(
            ret(&model(parse_quote!(
                fn f() -> () {}
            ))),
            "plain"
        );
        assert_eq!(
            ret(&model(parse_quote!(
                fn f() -> u8 {}
            ))),
            "plain"
        );
        assert_eq!(
            ret(&model(parse_quote!(
                fn f() -> Vec<Result<u8, E>> {}
            ))),
            "plain"
        );
        assert_eq!(
            ret(&model(parse_quote!(
                fn f() -> Result<u8, E> {}
            ))),
            "fallible"
        );
        assert_eq!(
            ret(&model(parse_quote!(
                fn f() -> io::Result<u8> {}
            ))),
            "fallible"
        );
        assert_eq!(
            ret(&model(parse_quote!(
                fn f() -> anyhow::Result<u8> {}
            ))),
            "fallible"
        );
        assert_eq!(
            ret(&model(parse_quote!(
                fn f() -> ::std::result::Result<u8, E> {}
            ))),
            "fallible"
        );
        assert_eq!(
            ret(&model(parse_quote!(
                fn f() -> <T as X>::Result {}
            ))),
            "plain"
        );
    }

    #[test]
    fn arguments_and_bindings() {
        let f = model(parse_quote!(
            async fn f(a: u8, mut b: String, (c, d): (u8, u8), _: u8, ref e: u8, x @ 1..: u8) {}
        ));
        assert!(f.is_async);
        assert!(f.receiver.is_none());
        let bindings: Vec<String> = f.args.iter().map(|a| a.binding.to_string()).collect();
        assert_eq!(bindings, ["a", "b", "__arg2", "__arg3", "e", "__arg5"]);
        let internal: Vec<String> = f.args.iter().map(|a| a.internal.to_string()).collect();
        assert_eq!(
            internal,
            ["__arg0", "__arg1", "__arg2", "__arg3", "__arg4", "__arg5"]
        );
        assert_eq!(f.args[1].ty.to_token_stream().to_string(), "String");
    }

    #[test]
    fn receivers_are_kept_apart() {
        let f = model(parse_quote!(
            fn f(&self, a: u8) {}
        ));
        assert!(f.receiver.is_some());
        assert_eq!(f.args.len(), 1);
    }

    #[test]
    fn attributes_are_sorted() {
        let f = model(parse_quote!(
            /// Docs.
            #[allow(unused)]
            #[cfg(unix)]
            #[inline]
            pub fn f() {}
        ));
        assert_eq!(f.docs.len(), 1);
        assert_eq!(f.cfgs.len(), 1);
        assert_eq!(f.attrs.len(), 2);
        assert!(matches!(f.vis, Visibility::Public(_)));
    }

    #[test]
    fn batched_is_read_and_removed() {
        let mut errors = Errors::new();
        let f = Function::from_item(
            parse_quote!(
                /// Docs.
                #[app::batched(max_batch_size = 4, wait_ms = 10)]
                #[inline]
                fn f(x: Vec<u8>) -> Vec<u8> {
                    x
                }
            ),
            Options::default(),
            &mut errors,
        );
        assert!(errors.is_empty());
        assert_eq!(f.batched.as_ref().and_then(|b| b.values()), Some((4, 10)));
        assert_eq!(f.attrs.len(), 1);
        assert_eq!(f.item.attrs.len(), 2);
        let mut errors = Errors::new();
        let f = Function::from_item(
            parse_quote!(
                #[app::batched(max_batch_size = 4, wait_ms = 10)]
                #[app::batched(max_batch_size = 4, wait_ms = 10)]
                fn f(x: Vec<u8>) -> Vec<u8> {
                    x
                }
            ),
            Options::default(),
            &mut errors,
        );
        assert!(f.batched.is_some());
        assert_eq!(
            errors.messages(),
            ["duplicate `#[app::batched]`; give it once"]
        );
        assert!(f.item.attrs.is_empty());
    }

    #[test]
    fn name_defaults_to_the_identifier() {
        let f = model(parse_quote!(
            fn r#type() {}
        ));
        assert_eq!(f.name.value, "type");
        assert!(f.name_from_ident);
        let options = Options {
            name: Some(Spanned::new("other".into(), Span::call_site())),
            ..Options::default()
        };
        let f = Function::from_item(
            parse_quote!(
                fn f() {}
            ),
            options,
            &mut Errors::new(),
        );
        assert_eq!(f.name.value, "other");
        assert!(!f.name_from_ident);
    }
}
