//! Checks on the model, separate from parsing. Signature problems are
//! fatal (nothing can be generated for such a function); option problems are
//! not (the stub is generated without the bad option, so only the one error
//! shows).

use proc_macro2::TokenStream;
use syn::{GenericArgument, Lifetime, PathArguments, ReturnType, Signature, Type, TypeParamBound};

use crate::attr::{Options, validate_name};
use crate::errors::Errors;
use crate::model::{Arg, Function, Main, Output};
use crate::model_batched::{output_element, vec_element};
use crate::tokens::ungroup;
use crate::web::{Web, WebKind};

/// What a remote function is called in messages.
const FUNCTION: &str = "remote function";

/// Problems that prevent registering the function at all.
pub fn check_signature(f: &Function, errors: &mut Errors) {
    if let (Some(batched), Some(_)) = (&f.batched, &f.generator) {
        errors.spanned(
            &batched.attr,
            "a generator cannot be batched: its items stream back to one caller; remove `#[app::batched]`",
        );
    }
    let sig = &f.item.sig;
    check_qualifiers(sig, "#[app::function]", errors);
    if let Some(receiver) = &f.receiver {
        errors.spanned(
            receiver.self_token,
            "`#[app::function]` cannot take `self`: a remote function is a free function whose arguments are all sent to a container; move it out of the `impl` block",
        );
    }
    check_generics(
        sig,
        "remote functions cannot be generic: a function is registered once, with concrete argument and return types",
        errors,
    );
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "remote functions cannot be variadic");
    }
    for arg in &f.args {
        for attr in &arg.attrs {
            if attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr") {
                errors.spanned(
                    attr,
                    "the arguments of a remote function cannot be conditional: its signature is part of its registered type",
                );
            }
        }
        check_type(&arg.ty, Position::Argument(FUNCTION), errors);
    }
    if let Some(ty) = f.output.ty() {
        check_type(ty, Position::Return(FUNCTION), errors);
    }
    // A batched generator is refused above, whatever its signature.
    if f.batched.is_some() && f.generator.is_none() {
        check_batched_signature(sig, &f.args, &f.output, "batched function", errors);
    }
    if let Some(web) = &f.web {
        check_web(f, web, errors);
    }
    for duplicate in &f.web_duplicates {
        errors.spanned(
            duplicate,
            "a function is served over HTTP once: give one `#[app::web_endpoint]` or `#[app::web_app]`",
        );
    }
}

/// What each kind of endpoint asks of the function's signature.
fn check_web(f: &Function, web: &Web, errors: &mut Errors) {
    let sig = &f.item.sig;
    if let Some(batched) = &f.batched {
        errors.spanned(
            &batched.attr,
            "a web endpoint cannot be batched: each request is answered on its own; remove `#[app::batched]`",
        );
    }
    if web.label.is_none()
        && let Err(message) =
            crate::web_rules::check_label(&crate::web_rules::default_label(&f.name.value))
    {
        errors.spanned(
            &web.attr,
            format!(
                "{message}: it comes from the function's name; give one with `label = \"...\"`"
            ),
        );
    }
    match web.kind {
        WebKind::Json => {}
        WebKind::Raw => {
            if f.args.len() != 1 {
                errors.spanned(
                    &sig.inputs,
                    "a `raw` endpoint takes one argument, the request: `req: http::Request<Bytes>`",
                );
            }
            if f.generator.is_some() {
                errors.spanned(
                    &sig.output,
                    "a `raw` endpoint returns an `http::Response<Bytes>`, not a generator",
                );
            }
        }
        WebKind::App => {
            if !f.args.is_empty() {
                errors.spanned(
                    &sig.inputs,
                    "a `#[app::web_app]` function takes no arguments: it builds the `axum::Router` that answers every request",
                );
            }
            if let Some(asyncness) = &sig.asyncness {
                errors.spanned(
                    asyncness,
                    "a `#[app::web_app]` function builds its router synchronously, once per container: remove `async`",
                );
            }
            if matches!(sig.output, syn::ReturnType::Default) || f.generator.is_some() {
                errors.spanned(
                    &sig.ident,
                    "a `#[app::web_app]` function returns the app: `-> axum::Router`",
                );
            }
        }
    }
}

/// Problems with options that depend on each other or on the function.
pub fn check_options(f: &Function, errors: &mut Errors) {
    if f.name_from_ident
        && let Err(message) = validate_name(&f.name.value)
    {
        errors.at(
            f.name.span,
            format!(
                "{message}; give the function a valid name with `#[app::function(name = \"...\")]`"
            ),
        );
    }
    check_option_values(&f.options, errors);
    crate::schedule::check_function(f, errors);
}

/// Options that bound each other.
pub fn check_option_values(options: &Options, errors: &mut Errors) {
    if let (Some(min), Some(max)) = (&options.min_containers, &options.max_containers)
        && min.value > max.value
    {
        errors.at(
            min.span,
            format!(
                "`min_containers` ({}) exceeds `max_containers` ({})",
                min.value, max.value
            ),
        );
    }
    if let Some(target) = &options.target_inputs {
        match &options.max_inputs {
            Some(max) if target.value > max.value => errors.at(
                target.span,
                format!(
                    "`target_inputs` ({}) exceeds `max_inputs` ({})",
                    target.value, max.value
                ),
            ),
            None if target.value > 1 => errors.at(
                target.span,
                format!(
                    "`target_inputs` ({}) exceeds `max_inputs`, which is 1 unless given: add `max_inputs = {}` or more",
                    target.value, target.value
                ),
            ),
            _ => {}
        }
    }
}

/// Problems with `#[app::main]`. `options` are the attribute's tokens.
/// Returns whether the function can still be expanded as a main function.
pub fn check_main(main: &Main, options: &TokenStream, errors: &mut Errors) -> bool {
    let sig = &main.item.sig;
    if !options.is_empty() {
        errors.spanned(
            options,
            "`#[app::main]` takes no options; options belong on `#[app::function(...)]`",
        );
    }
    if sig.asyncness.is_none() {
        errors.spanned(
            sig.fn_token,
            "`#[app::main]` must be applied to an `async fn`: write `async fn main()`",
        );
    }
    // The problems above still leave a valid expansion; the ones below do not.
    let mut fatal = Errors::new();
    check_qualifiers(sig, "#[app::main]", &mut fatal);
    check_generics(sig, "the main function cannot be generic", &mut fatal);
    if !sig.inputs.is_empty() || sig.variadic.is_some() {
        let message = "the main function takes no arguments; read command-line arguments with `std::env::args()`";
        if sig.variadic.is_some() {
            fatal.spanned(&sig.variadic, message);
        } else {
            fatal.spanned(&sig.inputs, message);
        }
    }
    let expandable = fatal.is_empty();
    errors.append(fatal);
    expandable
}

pub fn check_qualifiers(sig: &Signature, attribute: &str, errors: &mut Errors) {
    if let Some(constness) = &sig.constness {
        errors.spanned(
            constness,
            format!("`{attribute}` cannot be applied to a `const fn`"),
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.spanned(
            unsafety,
            format!("`{attribute}` cannot be applied to an `unsafe fn`: nothing could uphold its safety contract when it is called"),
        );
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(
            abi,
            format!("`{attribute}` cannot be applied to a function with an `extern` ABI"),
        );
    }
}

pub fn check_generics(sig: &Signature, message: &str, errors: &mut Errors) {
    if !sig.generics.params.is_empty() {
        errors.spanned(&sig.generics, message);
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.spanned(where_clause, message);
    }
}

/// Where a type stands; the subject names what it belongs to in messages
/// ("remote function", "remote method").
#[derive(Clone, Copy, PartialEq)]
pub enum Position {
    Argument(&'static str),
    Return(&'static str),
    /// A parameter of a class.
    Parameter,
}

/// `impl Trait` and borrowed types anywhere in an argument, return or
/// parameter type. Returns whether the type was refused.
pub fn check_type(ty: &Type, position: Position, errors: &mut Errors) -> bool {
    let mut impl_trait = None;
    let mut reference = None;
    let mut lifetime = None;
    walk_type(ty, &mut |node| match node {
        Node::Type(t @ Type::ImplTrait(_)) => {
            impl_trait.get_or_insert(t);
        }
        Node::Type(t @ Type::Reference(_)) => {
            reference.get_or_insert(t);
        }
        Node::Type(_) => {}
        Node::Lifetime(l) if l.ident != "static" => {
            lifetime.get_or_insert(l);
        }
        Node::Lifetime(_) => {}
    });
    if let Some(t) = impl_trait {
        let message = match position {
            Position::Argument(subject) => format!(
                "`impl Trait` is not allowed in the arguments of a {subject}: each argument is decoded in a container, so it must have a concrete type"
            ),
            Position::Return(subject) => format!(
                "a {subject} cannot return `impl Trait`: its result is sent back from a container, so it must have a concrete type"
            ),
            Position::Parameter => "`impl Trait` is not allowed in the parameters of a class: they are decoded in its containers, so they must have a concrete type".to_string(),
        };
        errors.spanned(t, message);
        return true;
    }
    if let Some(Type::Reference(r)) = reference {
        let owned = match ungroup(&r.elem) {
            Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => "String".to_string(),
            Type::Slice(s) => format!("Vec<{}>", tokens(&s.elem)),
            Type::Path(p) if p.qself.is_none() && p.path.is_ident("Path") => "PathBuf".to_string(),
            other => tokens(other),
        };
        errors.spanned(
            r,
            borrow_message(
                position,
                &format!("use `{owned}` instead of `{}`", tokens(r)),
            ),
        );
        return true;
    }
    if let Some(l) = lifetime {
        errors.spanned(
            l,
            borrow_message(position, &format!("remove the lifetime `{l}`")),
        );
        return true;
    }
    false
}

fn borrow_message(position: Position, fix: &str) -> String {
    match position {
        Position::Argument(subject) => format!(
            "the arguments of a {subject} are sent to a container, so they cannot borrow: {fix}"
        ),
        Position::Return(subject) => format!(
            "the result of a {subject} is sent back from a container, so it cannot borrow: {fix}"
        ),
        Position::Parameter => format!(
            "the parameters of a class are sent to its containers, so they cannot borrow: {fix}"
        ),
    }
}

/// What batching asks of a signature; `what` names it in messages
/// ("batched function", "batched method").
pub fn check_batched_signature(
    sig: &Signature,
    args: &[Arg],
    output: &Output,
    what: &str,
    errors: &mut Errors,
) {
    if args.is_empty() {
        errors.at(
            parens(sig),
            format!(
                "a {what} takes at least one argument: a `Vec` holding that argument of every input in the batch, e.g. `texts: Vec<String>`"
            ),
        );
    }
    for arg in args {
        if vec_element(&arg.ty).is_none() {
            errors.spanned(
                &arg.ty,
                format!(
                    "each argument of a {what} is a `Vec` holding that argument of every input in the batch: use `Vec<{}>`",
                    tokens(&arg.ty)
                ),
            );
        }
    }
    let message = format!(
        "a {what} returns `Vec<T>` or `Result<Vec<T>, E>`: one result per input, in the order of the inputs"
    );
    match output.ty() {
        None => errors.at(parens(sig), message),
        Some(ty) => {
            if output_element(output).is_none() {
                errors.spanned(ty, message);
            }
        }
    }
}

fn parens(sig: &Signature) -> proc_macro2::Span {
    sig.paren_token.span.join()
}

// Messages print types as written; other passes name it from here.
pub use crate::tokens::tokens;

enum Node<'a> {
    Type(&'a Type),
    Lifetime(&'a Lifetime),
}

/// Calls `visit` on `ty` and every type and lifetime nested in it.
fn walk_type<'a>(ty: &'a Type, visit: &mut dyn FnMut(Node<'a>)) {
    visit(Node::Type(ty));
    match ty {
        Type::Array(t) => walk_type(&t.elem, visit),
        Type::Group(t) => walk_type(&t.elem, visit),
        Type::Paren(t) => walk_type(&t.elem, visit),
        Type::Ptr(t) => walk_type(&t.elem, visit),
        Type::Slice(t) => walk_type(&t.elem, visit),
        Type::Reference(t) => {
            if let Some(l) = &t.lifetime {
                visit(Node::Lifetime(l));
            }
            walk_type(&t.elem, visit);
        }
        Type::Tuple(t) => t.elems.iter().for_each(|e| walk_type(e, visit)),
        Type::Path(t) => {
            if let Some(qself) = &t.qself {
                walk_type(&qself.ty, visit);
            }
            walk_path(&t.path, visit);
        }
        Type::BareFn(t) => {
            t.inputs.iter().for_each(|i| walk_type(&i.ty, visit));
            if let ReturnType::Type(_, out) = &t.output {
                walk_type(out, visit);
            }
        }
        Type::TraitObject(t) => walk_bounds(t.bounds.iter(), visit),
        Type::ImplTrait(t) => walk_bounds(t.bounds.iter(), visit),
        _ => {}
    }
}

fn walk_bounds<'a>(
    bounds: impl Iterator<Item = &'a TypeParamBound>,
    visit: &mut dyn FnMut(Node<'a>),
) {
    for bound in bounds {
        match bound {
            TypeParamBound::Trait(t) => walk_path(&t.path, visit),
            TypeParamBound::Lifetime(l) => visit(Node::Lifetime(l)),
            _ => {}
        }
    }
}

fn walk_path<'a>(path: &'a syn::Path, visit: &mut dyn FnMut(Node<'a>)) {
    for segment in &path.segments {
        match &segment.arguments {
            PathArguments::AngleBracketed(args) => {
                for arg in &args.args {
                    match arg {
                        GenericArgument::Type(t) => walk_type(t, visit),
                        GenericArgument::Lifetime(l) => visit(Node::Lifetime(l)),
                        GenericArgument::AssocType(a) => walk_type(&a.ty, visit),
                        _ => {}
                    }
                }
            }
            PathArguments::Parenthesized(args) => {
                args.inputs.iter().for_each(|t| walk_type(t, visit));
                if let ReturnType::Type(_, out) = &args.output {
                    walk_type(out, visit);
                }
            }
            PathArguments::None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::{ItemFn, parse_quote};

    use super::*;
    use crate::attr::parse_options;

    fn signature_errors(item: ItemFn) -> Vec<String> {
        let mut errors = Errors::new();
        let f = Function::from_item(item, Default::default(), &mut errors);
        check_signature(&f, &mut errors);
        errors.messages()
    }

    fn option_errors(options: TokenStream, item: ItemFn) -> Vec<String> {
        let mut errors = Errors::new();
        let options = parse_options(options, &mut errors);
        assert!(errors.is_empty());
        let f = Function::from_item(item, options, &mut errors);
        check_options(&f, &mut errors);
        errors.messages()
    }

    #[test]
    fn accepted_signatures() {
        for item in [
            parse_quote!(
                fn f() {}
            ),
            parse_quote!(
                pub async fn f(a: u8, (b, c): (u8, u8), mut d: Vec<String>) -> Result<u8, E> {}
            ),
            parse_quote!(
                fn f(x: std::borrow::Cow<'static, str>) -> Box<[u8]> {}
            ),
            parse_quote!(
                fn f(x: <X as Y>::Z, y: [u8; 4]) -> (u8, Option<Cow<'static, str>>) {}
            ),
        ] {
            assert_eq!(signature_errors(item), Vec::<String>::new());
        }
    }

    #[test]
    fn generics_are_refused() {
        let errors = signature_errors(parse_quote!(
            fn f<T: Clone>(x: T) -> T
            where
                T: Send,
            {
            }
        ));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("remote functions cannot be generic"));
        let errors = signature_errors(parse_quote!(
            fn f<'a>(x: u8) {}
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
    }

    #[test]
    fn receivers_are_refused() {
        for item in [
            parse_quote!(
                fn f(self) {}
            ),
            parse_quote!(
                fn f(&self, x: u8) {}
            ),
            parse_quote!(
                fn f(&mut self) {}
            ),
            parse_quote!(
                fn f(self: Box<Self>) {}
            ),
        ] {
            let errors = signature_errors(item);
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert!(errors[0].contains("cannot take `self`"), "{errors:?}");
        }
    }

    #[test]
    fn qualifiers_are_refused() {
        assert!(
            signature_errors(parse_quote!(
                const fn f() {}
            ))[0]
                .contains("`const fn`")
        );
        assert!(
            signature_errors(parse_quote!(
                unsafe fn f() {}
            ))[0]
                .contains("`unsafe fn`")
        );
        assert!(
            signature_errors(parse_quote!(
                extern "C" fn f() {}
            ))[0]
                .contains("`extern` ABI")
        );
    }

    #[test]
    fn variadics_are_refused() {
        let errors = signature_errors(parse_quote!(
            fn f(x: u8, ...) {}
        ));
        assert_eq!(errors, ["remote functions cannot be variadic"]);
    }

    #[test]
    fn conditional_arguments_are_refused() {
        let errors = signature_errors(parse_quote!(
            fn f(#[cfg(unix)] x: u8) {}
        ));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("cannot be conditional"));
    }

    #[test]
    fn impl_trait_is_refused_anywhere() {
        let errors = signature_errors(parse_quote!(
            fn f(x: impl Into<String>) {}
        ));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("`impl Trait` is not allowed in the arguments"));
        let errors = signature_errors(parse_quote!(
            fn f(x: Vec<impl Send>) {}
        ));
        assert_eq!(errors.len(), 1);
        let errors = signature_errors(parse_quote!(
            fn f() -> impl Send {}
        ));
        assert!(errors[0].starts_with("a remote function cannot return `impl Trait`"));
    }

    #[test]
    fn borrows_are_refused_with_an_owned_suggestion() {
        let errors = signature_errors(parse_quote!(
            fn f(a: &str, b: &[u8], c: &mut Foo<u8>, d: Cow<'a, str>) {}
        ));
        assert_eq!(
            errors,
            [
                "the arguments of a remote function are sent to a container, so they cannot borrow: use `String` instead of `&str`",
                "the arguments of a remote function are sent to a container, so they cannot borrow: use `Vec<u8>` instead of `&[u8]`",
                "the arguments of a remote function are sent to a container, so they cannot borrow: use `Foo<u8>` instead of `&mut Foo<u8>`",
                "the arguments of a remote function are sent to a container, so they cannot borrow: remove the lifetime `'a`",
            ]
        );
        // `&'static str` cannot be deserialized either: refused with the same advice.
        let errors = signature_errors(parse_quote!(
            fn f() -> Option<&'static str> {}
        ));
        assert_eq!(
            errors,
            [
                "the result of a remote function is sent back from a container, so it cannot borrow: use `String` instead of `&'static str`"
            ]
        );
        let errors = signature_errors(parse_quote!(
            fn f() -> &str {}
        ));
        assert!(errors[0].starts_with("the result of a remote function"));
    }

    #[test]
    fn min_above_max_is_refused() {
        let errors = option_errors(
            quote!(min_containers = 3, max_containers = 2),
            parse_quote!(
                fn f() {}
            ),
        );
        assert_eq!(
            errors,
            ["`min_containers` (3) exceeds `max_containers` (2)"]
        );
        assert!(
            option_errors(
                quote!(min_containers = 2, max_containers = 2),
                parse_quote!(
                    fn f() {}
                )
            )
            .is_empty()
        );
    }

    #[test]
    fn target_above_max_inputs_is_refused() {
        let f = || {
            parse_quote!(
                fn f() {}
            )
        };
        assert_eq!(
            option_errors(quote!(max_inputs = 2, target_inputs = 3), f()),
            ["`target_inputs` (3) exceeds `max_inputs` (2)"]
        );
        assert_eq!(
            option_errors(quote!(target_inputs = 3), f()),
            [
                "`target_inputs` (3) exceeds `max_inputs`, which is 1 unless given: add `max_inputs = 3` or more"
            ]
        );
        assert!(option_errors(quote!(target_inputs = 1), f()).is_empty());
        assert!(option_errors(quote!(max_inputs = 8, target_inputs = 8), f()).is_empty());
    }

    #[test]
    fn batched_signatures_are_checked() {
        let errors = signature_errors(parse_quote!(
            #[app::batched(max_batch_size = 2, wait_ms = 1)]
            fn f(x: u8) -> Vec<u8> {}
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("each argument of a batched function is a `Vec`"));
        assert!(
            signature_errors(parse_quote!(
                #[app::batched(max_batch_size = 2, wait_ms = 1)]
                async fn f(x: Vec<u8>, y: Vec<String>) -> Result<Vec<u8>, E> {}
            ))
            .is_empty()
        );
    }

    #[test]
    fn class_parameters_and_methods_name_themselves() {
        let mut errors = Errors::new();
        check_type(&parse_quote!(&str), Position::Parameter, &mut errors);
        check_type(
            &parse_quote!(impl Send),
            Position::Argument("remote method"),
            &mut errors,
        );
        check_type(
            &parse_quote!(Cow<'a, str>),
            Position::Return("remote method"),
            &mut errors,
        );
        assert!(!check_type(
            &parse_quote!(u8),
            Position::Parameter,
            &mut errors
        ));
        assert_eq!(
            errors.messages(),
            [
                "the parameters of a class are sent to its containers, so they cannot borrow: use `String` instead of `&str`",
                "`impl Trait` is not allowed in the arguments of a remote method: each argument is decoded in a container, so it must have a concrete type",
                "the result of a remote method is sent back from a container, so it cannot borrow: remove the lifetime `'a`",
            ]
        );
    }

    #[test]
    fn identifier_names_are_checked() {
        let errors = option_errors(
            quote!(),
            parse_quote!(
                fn größe() {}
            ),
        );
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].ends_with("with `#[app::function(name = \"...\")]`"),
            "{errors:?}"
        );
        assert!(
            option_errors(
                quote!(name = "size"),
                parse_quote!(
                    fn größe() {}
                )
            )
            .is_empty()
        );
    }

    fn main_errors(options: TokenStream, item: ItemFn) -> (bool, Vec<String>) {
        let mut errors = Errors::new();
        let expandable = check_main(&Main::from_item(item), &options, &mut errors);
        (expandable, errors.messages())
    }

    #[test]
    fn main_checks() {
        assert_eq!(
            main_errors(
                quote!(),
                parse_quote!(
                    async fn main() {}
                )
            ),
            (true, vec![])
        );
        assert_eq!(
            main_errors(
                quote!(),
                parse_quote!(
                    async fn main() -> Result<(), E> {}
                )
            ),
            (true, vec![])
        );
        let (expandable, errors) = main_errors(
            quote!(),
            parse_quote!(
                fn main() {}
            ),
        );
        assert!(expandable);
        assert!(errors[0].contains("must be applied to an `async fn`"));
        let (expandable, errors) = main_errors(
            quote!(workers = 2),
            parse_quote!(
                async fn main() {}
            ),
        );
        assert!(expandable);
        assert!(errors[0].contains("takes no options"));
        let (expandable, errors) = main_errors(
            quote!(),
            parse_quote!(
                async fn main(x: u8) {}
            ),
        );
        assert!(!expandable);
        assert!(errors[0].contains("takes no arguments"));
        let (expandable, errors) = main_errors(
            quote!(),
            parse_quote!(
                async fn main<T>() {}
            ),
        );
        assert!(!expandable);
        assert!(errors[0].contains("cannot be generic"));
        let (expandable, errors) = main_errors(
            quote!(),
            parse_quote!(
                async unsafe fn main() {}
            ),
        );
        assert!(!expandable);
        assert!(errors[0].contains("`unsafe fn`"));
    }

    fn batched_signature_errors(item: syn::ItemFn) -> Vec<String> {
        let mut errors = Errors::new();
        let f = Function::from_item(item, Default::default(), &mut errors);
        check_batched_signature(
            &f.item.sig,
            &f.args,
            &f.output,
            "batched function",
            &mut errors,
        );
        errors.messages()
    }

    #[test]
    fn batched_signatures() {
        for item in [
            parse_quote!(
                fn f(a: Vec<u8>) -> Vec<u8> {}
            ),
            parse_quote!(
                fn f(a: Vec<u8>, b: Vec<String>) -> Result<Vec<u8>, E> {}
            ),
            parse_quote!(
                async fn f(a: Vec<u8>) -> std::io::Result<Vec<()>> {}
            ),
        ] {
            assert_eq!(batched_signature_errors(item), Vec::<String>::new());
        }
        let errors = batched_signature_errors(parse_quote!(
            fn f() {}
        ));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("a batched function takes at least one argument"));
        assert!(errors[1].starts_with("a batched function returns `Vec<T>`"));
        let errors = batched_signature_errors(parse_quote!(
            fn f(a: u8, b: Vec<u8>, c: &[u8]) -> u8 {}
        ));
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].ends_with("use `Vec<u8>`"), "{errors:?}");
        assert!(errors[1].ends_with("use `Vec<&[u8]>`"), "{errors:?}");
        assert!(errors[2].starts_with("a batched function returns"));
        let errors = batched_signature_errors(parse_quote!(
            fn f(a: Vec<u8>) -> Result<u8, E> {}
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
    }
}
