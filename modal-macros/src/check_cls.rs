//! Checks on the class model, separate from parsing. As for functions,
//! problems that leave nothing sensible to generate go to `fatal`; the rest
//! go to `errors`, and the class is still generated without the bad part,
//! so the user sees only the macro's own error.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{Type, TypeReference};

use crate::attr::validate_name;
use crate::check::{Position, check_generics, check_option_values, check_qualifiers, check_type};
use crate::errors::Errors;
use crate::markers::Marker;
use crate::model_cls::{ClassImpl, ClassStruct, Hook, Method};
use crate::tokens::ungroup;

const METHOD: &str = "remote method";

/// Problems with a struct marked `#[app::cls]`.
pub fn check_struct(s: &ClassStruct, fatal: &mut Errors, errors: &mut Errors) {
    let generics = &s.item.generics;
    if !generics.params.is_empty() {
        fatal.spanned(
            generics,
            "a class cannot be generic: it is registered once, with concrete parameter types",
        );
    } else if let Some(where_clause) = &generics.where_clause {
        fatal.spanned(
            where_clause,
            "a class cannot be generic: it is registered once, with concrete parameter types",
        );
    }
    if !s.has_named_fields() {
        let message = "`#[app::cls]` needs a struct with named fields, e.g. `struct Model { #[app::parameter] name: String, weights: Vec<f32> }`: the fields marked `#[app::parameter]` are given when an instance is made, the others start as `Default::default()`";
        match &s.item.fields {
            syn::Fields::Unnamed(fields) => fatal.spanned(fields, message),
            _ => fatal.spanned(&s.item.ident, message),
        }
    }
    for (field, _) in s.parameters() {
        check_type(&field.ty, Position::Parameter, fatal);
    }
    if s.name_from_ident
        && let Err(message) = validate_name(&s.name.value)
    {
        errors.at(
            s.name.span,
            format!("{message}; give the class a valid name with `#[app::cls(name = \"...\")]`"),
        );
    }
    check_option_values(&s.options, errors);
    crate::schedule::check_class(&s.options, errors);
}

/// Problems with an `impl` block marked `#[app::cls]`; `options` are the
/// attribute's tokens.
pub fn check_impl(c: &ClassImpl, options: &TokenStream, fatal: &mut Errors, errors: &mut Errors) {
    let item = &c.item;
    if !options.is_empty() {
        errors.spanned(
            options,
            "`#[app::cls]` on an `impl` block takes no options: options belong on the struct, `#[app::cls(...)] struct Model { ... }`",
        );
    }
    if let Some((_, trait_path, _)) = &item.trait_ {
        fatal.spanned(
            trait_path,
            "`#[app::cls]` goes on the class's own `impl Model { ... }` block, not on a trait impl",
        );
    }
    if !item.generics.params.is_empty() {
        fatal.spanned(
            &item.generics,
            "a class cannot be generic: it is registered once, with concrete types",
        );
    } else if let Some(where_clause) = &item.generics.where_clause {
        fatal.spanned(
            where_clause,
            "a class cannot be generic: it is registered once, with concrete types",
        );
    }
    if let Some(unsafety) = &item.unsafety {
        fatal.spanned(
            unsafety,
            "`#[app::cls]` cannot be applied to an `unsafe impl`",
        );
    }
    // A generic block's self type has generic arguments too: already said.
    if c.self_ident.is_none() && item.generics.params.is_empty() {
        fatal.spanned(
            &item.self_ty,
            "`#[app::cls]` goes on the `impl` block of a struct marked `#[app::cls]`, named without generic arguments: `impl Model { ... }`",
        );
    }
    for (ident, second) in &c.conflicts {
        fatal.spanned(
            second,
            format!(
                "`{ident}` is marked as more than one of `#[app::enter]`, `#[app::exit]` and `#[app::method]`; a function is one hook or one remote method"
            ),
        );
    }
    for (attr, hook) in &c.stray_batched {
        let message = match hook {
            Some(hook) => format!(
                "`#[app::batched(...)]` goes on a remote method, not on an `{}` hook: hooks run once, not per input",
                hook.written()
            ),
            None => "`#[app::batched(...)]` goes on a remote method: mark the function `#[app::method]` too".to_string(),
        };
        fatal.spanned(attr, message);
    }
    for method in &c.methods {
        check_method(method, fatal);
    }
    if let Some(batched) = c.batched_method() {
        for other in c.methods.iter().filter(|m| m.ident != batched.ident) {
            fatal.spanned(
                &other.marker,
                format!(
                    "a class with a batched method has no other methods: `{}` is batched, so `{}` cannot be an `#[app::method]` beside it (move it to a class of its own)",
                    batched.ident, other.ident
                ),
            );
        }
    }
    if c.methods.is_empty() && c.conflicts.is_empty() && c.self_ident.is_some() {
        errors.spanned(
            &item.self_ty,
            "mark at least one method with `#[app::method]`: a class is called through its remote methods",
        );
    }
    for (hooks, marker) in [(&c.enters, Marker::Enter), (&c.exits, Marker::Exit)] {
        for hook in hooks.iter() {
            check_hook(hook, marker, fatal);
        }
        if let Some(first) = hooks.first() {
            for extra in &hooks[1..] {
                errors.spanned(
                    &extra.marker,
                    format!(
                        "a class has at most one `{}` hook, and `{}` is already one",
                        marker.written(),
                        first.ident
                    ),
                );
            }
        }
    }
}

fn check_method(m: &Method, fatal: &mut Errors) {
    let sig = &m.sig;
    if let Some(generator) = crate::model::GeneratorTypes::of(&sig.output) {
        fatal.spanned(
            &generator.ty,
            "a remote method cannot be a generator yet: make it an `#[app::function]` returning `Generator<..>`, called with `remote_gen`",
        );
    }
    check_qualifiers(sig, "#[app::method]", fatal);
    check_generics(
        sig,
        "remote methods cannot be generic: a method is registered once, with concrete argument and return types",
        fatal,
    );
    for cfg in &m.cfgs {
        fatal.spanned(
            cfg,
            "a remote method cannot be conditional: the class's methods are part of its registered type; put the `#[cfg]` on the `impl` block and the struct",
        );
    }
    match &m.receiver {
        None => fatal.spanned(
            &sig.ident,
            format!(
                "a remote method takes `&self`: it runs on the instance a container built from the parameters; add `&self`, or make `{}` an `#[app::function]` outside the `impl` block",
                m.ident
            ),
        ),
        Some(receiver) => match receiver_kind(receiver) {
            Receiver::Shared => {}
            Receiver::Mutable => fatal.spanned(
                receiver,
                "remote methods take `&self`, not `&mut self`: one instance serves many inputs, possibly at once; keep changing state behind a `Mutex`",
            ),
            Receiver::Other => fatal.spanned(
                receiver,
                format!(
                    "remote methods take `&self`, not `{}`: one instance serves many inputs, so none of them may take it",
                    crate::check::tokens(receiver)
                ),
            ),
        },
    }
    for arg in &m.args {
        for attr in &arg.attrs {
            if attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr") {
                fatal.spanned(
                    attr,
                    "the arguments of a remote method cannot be conditional: its signature is part of its registered type",
                );
            }
        }
        check_type(&arg.ty, Position::Argument(METHOD), fatal);
    }
    if let Some(ty) = m.output.ty() {
        check_type(ty, Position::Return(METHOD), fatal);
    }
    if m.batched.is_some() {
        crate::check::check_batched_signature(sig, &m.args, &m.output, "batched method", fatal);
    }
}

fn check_hook(hook: &Hook, marker: Marker, fatal: &mut Errors) {
    let written = marker.written();
    let sig = &hook.sig;
    check_qualifiers(sig, written, fatal);
    check_generics(
        sig,
        &format!(
            "a `{written}` hook cannot be generic: it is called once, with nothing to choose its types"
        ),
        fatal,
    );
    for cfg in &hook.cfgs {
        fatal.spanned(
            cfg,
            format!("a `{written}` hook cannot be conditional; put the `#[cfg]` on the `impl` block and the struct"),
        );
    }
    let takes = format!("`{written}` takes `&self` or `&mut self` and nothing else");
    match &hook.receiver {
        None => fatal.spanned(&sig.ident, format!("{takes}: add `&mut self`")),
        Some(receiver) => {
            if receiver_kind(receiver) == Receiver::Other {
                fatal.spanned(
                    receiver,
                    format!("{takes}, not `{}`", crate::check::tokens(receiver)),
                );
            }
        }
    }
    if !hook.args.is_empty() {
        let args: Vec<_> = sig
            .inputs
            .iter()
            .filter(|arg| matches!(arg, syn::FnArg::Typed(_)))
            .collect();
        let mut span = args[0].to_token_stream();
        if let Some(last) = args.last() {
            span.extend(last.to_token_stream());
        }
        fatal.spanned(
            span,
            format!(
                "{takes}: it runs once, when the container {}, so no one could pass it arguments",
                if marker == Marker::Enter {
                    "has built its instance"
                } else {
                    "stops"
                }
            ),
        );
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Receiver {
    /// `&self`, `self: &Self`.
    Shared,
    /// `&mut self`, `self: &mut Self`.
    Mutable,
    /// `self`, `self: Box<Self>`, `self: Arc<Self>`, ...
    Other,
}

fn receiver_kind(receiver: &syn::Receiver) -> Receiver {
    match ungroup(&receiver.ty) {
        Type::Reference(TypeReference {
            mutability, elem, ..
        }) if matches!(ungroup(elem), Type::Path(p) if p.qself.is_none() && p.path.is_ident("Self")) => {
            if mutability.is_some() {
                Receiver::Mutable
            } else {
                Receiver::Shared
            }
        }
        _ => Receiver::Other,
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::{ItemImpl, ItemStruct, parse_quote};

    use super::*;
    use crate::attr::parse_options;

    fn struct_errors(options: TokenStream, item: ItemStruct) -> (Vec<String>, Vec<String>) {
        let mut errors = Errors::new();
        let options = parse_options(options, &mut errors);
        let s = ClassStruct::from_item(item, options, &mut errors);
        let mut fatal = Errors::new();
        check_struct(&s, &mut fatal, &mut errors);
        (fatal.messages(), errors.messages())
    }

    fn impl_errors(options: TokenStream, item: ItemImpl) -> (Vec<String>, Vec<String>) {
        let mut errors = Errors::new();
        let c = ClassImpl::from_item(item, &mut errors);
        let mut fatal = Errors::new();
        check_impl(&c, &options, &mut fatal, &mut errors);
        (fatal.messages(), errors.messages())
    }

    fn fatal_impl(item: ItemImpl) -> Vec<String> {
        let (fatal, errors) = impl_errors(quote!(), item);
        assert!(errors.is_empty(), "{errors:?}");
        fatal
    }

    #[test]
    fn accepted_structs() {
        let (fatal, errors) = struct_errors(
            quote!(cpu = 1, max_inputs = 4, target_inputs = 2),
            parse_quote! {
                pub struct Model {
                    #[app::parameter]
                    name: String,
                    #[app::parameter(default = 1)]
                    k: u32,
                    cache: Vec<u8>,
                    borrowed_but_not_a_parameter: Option<&'static str>,
                }
            },
        );
        assert!(
            fatal.is_empty() && errors.is_empty(),
            "{fatal:?} {errors:?}"
        );
        let (fatal, errors) = struct_errors(
            quote!(),
            parse_quote!(
                struct Empty {}
            ),
        );
        assert!(fatal.is_empty() && errors.is_empty());
    }

    #[test]
    fn refused_structs() {
        let (fatal, _) = struct_errors(
            quote!(),
            parse_quote!(
                struct Model(u8);
            ),
        );
        assert_eq!(fatal.len(), 1);
        assert!(fatal[0].starts_with("`#[app::cls]` needs a struct with named fields"));
        let (fatal, _) = struct_errors(
            quote!(),
            parse_quote!(
                struct Model;
            ),
        );
        assert!(fatal[0].starts_with("`#[app::cls]` needs a struct with named fields"));
        let (fatal, _) = struct_errors(
            quote!(),
            parse_quote!(
                struct Model<T> {
                    x: T,
                }
            ),
        );
        assert_eq!(
            fatal,
            ["a class cannot be generic: it is registered once, with concrete parameter types"]
        );
        let (fatal, _) = struct_errors(
            quote!(),
            parse_quote!(
                struct Model<'a> {
                    x: &'a str,
                }
            ),
        );
        assert_eq!(fatal.len(), 1);
        let (fatal, _) = struct_errors(
            quote!(),
            parse_quote!(
                struct Model {
                    #[app::parameter]
                    a: &'static str,
                    #[app::parameter]
                    b: Vec<impl Send>,
                }
            ),
        );
        assert_eq!(
            fatal,
            [
                "the parameters of a class are sent to its containers, so they cannot borrow: use `String` instead of `&'static str`",
                "`impl Trait` is not allowed in the parameters of a class: they are decoded in its containers, so they must have a concrete type",
            ]
        );
    }

    #[test]
    fn struct_option_problems_are_not_fatal() {
        let (fatal, errors) = struct_errors(
            quote!(min_containers = 3, max_containers = 1),
            parse_quote!(
                struct größe {}
            ),
        );
        assert!(fatal.is_empty());
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].ends_with("give the class a valid name with `#[app::cls(name = \"...\")]`")
        );
        assert!(errors[1].starts_with("`min_containers` (3) exceeds"));
    }

    #[test]
    fn accepted_impls() {
        let (fatal, errors) = impl_errors(
            quote!(),
            parse_quote! {
                impl Model {
                    #[app::enter]
                    async fn load(&mut self) -> Result<(), String> { Ok(()) }
                    #[app::exit]
                    fn unload(self: &Self) {}
                    #[app::method]
                    fn a(&self) {}
                    #[app::method]
                    async fn b(&self, x: u8, y: String, z: Vec<u8>) -> Result<u8, E> { todo!() }
                    fn helper(&mut self, x: &str) -> &str { x }
                    fn new() -> Self { todo!() }
                }
            },
        );
        assert!(
            fatal.is_empty() && errors.is_empty(),
            "{fatal:?} {errors:?}"
        );
        let (fatal, errors) = impl_errors(
            quote!(),
            parse_quote! {
                impl Model {
                    #[app::method]
                    #[app::batched(max_batch_size = 4, wait_ms = 0)]
                    async fn embed(&self, x: Vec<String>, y: Vec<u8>) -> Result<Vec<u64>, E> { todo!() }
                    fn helper(&self) {}
                }
            },
        );
        assert!(
            fatal.is_empty() && errors.is_empty(),
            "{fatal:?} {errors:?}"
        );
    }

    #[test]
    fn receivers() {
        let fatal = fatal_impl(parse_quote! {
            impl Model {
                #[app::method]
                fn none(x: u8) {}
                #[app::method]
                fn by_value(self) {}
                #[app::method]
                fn mutable(&mut self) {}
                #[app::method]
                fn boxed(self: Box<Self>) {}
            }
        });
        assert_eq!(fatal.len(), 4, "{fatal:?}");
        assert!(
            fatal[0].starts_with("a remote method takes `&self`"),
            "{fatal:?}"
        );
        assert!(
            fatal[0].contains("make `none` an `#[app::function]`"),
            "{fatal:?}"
        );
        assert_eq!(
            fatal[1],
            "remote methods take `&self`, not `self`: one instance serves many inputs, so none of them may take it"
        );
        assert_eq!(
            fatal[2],
            "remote methods take `&self`, not `&mut self`: one instance serves many inputs, possibly at once; keep changing state behind a `Mutex`"
        );
        assert!(fatal[3].contains("not `self: Box<Self>`"), "{fatal:?}");
    }

    #[test]
    fn method_signatures() {
        let fatal = fatal_impl(parse_quote! {
            impl Model {
                #[app::method]
                fn generic<T>(&self, x: T) {}
                #[app::method]
                fn borrowed(&self, x: &str) -> &str { x }
                #[app::method]
                unsafe fn unsafe_one(&self) {}
                #[app::method]
                #[cfg(unix)]
                fn conditional(&self) {}
            }
        });
        assert_eq!(fatal.len(), 5, "{fatal:?}");
        assert!(fatal[0].starts_with("remote methods cannot be generic"));
        assert_eq!(
            fatal[1],
            "the arguments of a remote method are sent to a container, so they cannot borrow: use `String` instead of `&str`"
        );
        assert!(fatal[2].starts_with("the result of a remote method"));
        assert!(fatal[3].contains("`unsafe fn`"));
        assert!(fatal[4].starts_with("a remote method cannot be conditional"));
    }

    #[test]
    fn hooks() {
        let (fatal, errors) = impl_errors(
            quote!(),
            parse_quote! {
                impl Model {
                    #[app::enter]
                    fn load(&mut self) {}
                    #[app::enter]
                    fn load_again(&self) {}
                    #[app::exit]
                    fn stop(&self, code: u8, reason: String) {}
                    #[app::exit]
                    fn stop_generic<T>(&self) {}
                    #[app::enter]
                    fn no_self() {}
                    #[app::method]
                    fn m(&self) {}
                }
            },
        );
        assert_eq!(
            errors,
            [
                "a class has at most one `#[app::enter]` hook, and `load` is already one",
                "a class has at most one `#[app::enter]` hook, and `load` is already one",
                "a class has at most one `#[app::exit]` hook, and `stop` is already one",
            ]
        );
        assert_eq!(fatal.len(), 3, "{fatal:?}");
        assert_eq!(
            fatal[0],
            "`#[app::enter]` takes `&self` or `&mut self` and nothing else: add `&mut self`"
        );
        assert!(fatal[1].starts_with("`#[app::exit]` takes `&self` or `&mut self` and nothing else: it runs once, when the container stops"));
        assert!(fatal[2].starts_with("a `#[app::exit]` hook cannot be generic"));
    }

    #[test]
    fn roles_and_batching() {
        let fatal = fatal_impl(parse_quote! {
            impl Model {
                #[app::enter]
                #[app::method]
                fn both(&self) {}
                #[app::method]
                #[app::batched(max_batch_size = 4, wait_ms = 0)]
                fn embed(&self, x: Vec<u8>) -> Vec<u8> { x }
                #[app::method]
                fn other(&self) {}
            }
        });
        assert_eq!(fatal.len(), 2, "{fatal:?}");
        assert!(fatal[0].starts_with("`both` is marked as more than one of"));
        assert!(fatal[1].starts_with(
            "a class with a batched method has no other methods: `embed` is batched, so `other`"
        ));
        let fatal = fatal_impl(parse_quote! {
            impl Model {
                #[app::method]
                #[app::batched(max_batch_size = 4, wait_ms = 0)]
                fn embed(&self, x: u8) -> u8 { x }
                #[app::batched(max_batch_size = 4, wait_ms = 0)]
                fn unmarked(&self, x: Vec<u8>) -> Vec<u8> { x }
                #[app::enter]
                #[app::batched(max_batch_size = 4, wait_ms = 0)]
                fn load(&self) {}
            }
        });
        assert_eq!(fatal.len(), 4, "{fatal:?}");
        assert!(
            fatal[0].ends_with("mark the function `#[app::method]` too"),
            "{fatal:?}"
        );
        assert!(
            fatal[1].contains("not on an `#[app::enter]` hook"),
            "{fatal:?}"
        );
        assert!(fatal[2].starts_with("each argument of a batched method is a `Vec`"));
        assert!(fatal[3].starts_with("a batched method returns `Vec<T>`"));
    }

    #[test]
    fn impl_shapes() {
        let (fatal, errors) = impl_errors(
            quote!(cpu = 2),
            parse_quote! {
                impl Model {
                    #[app::method]
                    fn m(&self) {}
                }
            },
        );
        assert!(fatal.is_empty());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("options belong on the struct"));
        let fatal = fatal_impl(parse_quote! {
            impl Clone for Model { #[app::method] fn m(&self) {} }
        });
        assert_eq!(fatal.len(), 1, "{fatal:?}");
        assert!(fatal[0].contains("not on a trait impl"));
        let fatal = fatal_impl(parse_quote! {
            impl<T> Model<T> { #[app::method] fn m(&self) {} }
        });
        assert_eq!(
            fatal,
            ["a class cannot be generic: it is registered once, with concrete types"]
        );
        let fatal = fatal_impl(parse_quote! {
            impl Model<u8> { #[app::method] fn m(&self) {} }
        });
        assert_eq!(fatal.len(), 1, "{fatal:?}");
        assert!(fatal[0].contains("named without generic arguments"));
        let (fatal, errors) = impl_errors(
            quote!(),
            parse_quote! {
                impl Model { fn helper(&self) {} }
            },
        );
        assert!(fatal.is_empty());
        assert_eq!(
            errors,
            [
                "mark at least one method with `#[app::method]`: a class is called through its remote methods"
            ]
        );
    }
}
