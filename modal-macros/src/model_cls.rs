//! The typed model of the two items `#[app::cls]` marks: the struct (its
//! parameters and other fields) and its `impl` block (remote methods and
//! lifecycle hooks). Markers are read here and taken off the items, so the
//! items can be emitted as they are, whatever else goes wrong.

use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{
    Attribute, Expr, Fields, Ident, ImplItem, ItemImpl, ItemStruct, Meta, PathArguments, Receiver,
    Signature, Token, Type, TypePath, Visibility,
};

use crate::attr::{Options, Spanned};
use crate::errors::Errors;
use crate::markers::Marker;
use crate::model::{Arg, Output, inputs};
use crate::model_batched::Batched;
use crate::tokens::ungroup;

/// A struct marked `#[app::cls(...)]`.
pub struct ClassStruct {
    /// The struct as it is emitted: as written, minus `#[app::parameter]`.
    pub item: ItemStruct,
    /// `#[cfg]` and `#[cfg_attr]`: copied onto every generated item.
    pub cfgs: Vec<Attribute>,
    pub vis: Visibility,
    pub ident: Ident,
    /// The named fields, in declaration order (none for a tuple or unit
    /// struct, which the checks refuse).
    pub fields: Vec<Field>,
    pub options: Options,
    /// The registered name: `name = "..."` or the struct's identifier.
    pub name: Spanned<String>,
    /// Whether `name` came from the identifier (so it still needs checking).
    pub name_from_ident: bool,
}

/// One named field of a class.
pub struct Field {
    pub ident: Ident,
    pub ty: Type,
    /// `///` comments: they document the field of the parameters struct.
    pub docs: Vec<Attribute>,
    /// `Some` when marked `#[app::parameter]`.
    pub parameter: Option<Parameter>,
}

/// What `#[app::parameter(...)]` says of a field.
pub struct Parameter {
    /// The value a caller may leave out; `None` makes the parameter required.
    pub default: Option<Expr>,
}

impl ClassStruct {
    pub fn from_item(mut item: ItemStruct, options: Options, errors: &mut Errors) -> ClassStruct {
        let cfgs = item
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
            .cloned()
            .collect();
        let mut fields = Vec::new();
        for field in item.fields.iter_mut() {
            let mut parameter: Option<Parameter> = None;
            let mut docs = Vec::new();
            for attr in &field.attrs {
                if attr.path().is_ident("doc") {
                    docs.push(attr.clone());
                }
                match Marker::of(attr) {
                    Some(Marker::Parameter) => {
                        let parsed = Parameter::parse(attr, errors);
                        if parameter.is_some() {
                            errors.spanned(
                                attr,
                                "`#[app::parameter]` is given twice on this field; give it once",
                            );
                        } else {
                            parameter = Some(parsed);
                        }
                    }
                    Some(other) => errors.spanned(
                        attr,
                        format!(
                            "`{}` marks a function of the class's `impl` block, not a field",
                            other.written()
                        ),
                    ),
                    None => {}
                }
            }
            field.attrs.retain(|attr| Marker::of(attr).is_none());
            if let Some(ident) = &field.ident {
                fields.push(Field {
                    ident: ident.clone(),
                    ty: field.ty.clone(),
                    docs,
                    parameter,
                });
            }
        }
        let (name, name_from_ident) = match &options.name {
            Some(name) => (name.clone(), false),
            None => (
                Spanned::new(item.ident.unraw().to_string(), item.ident.span()),
                true,
            ),
        };
        ClassStruct {
            cfgs,
            vis: item.vis.clone(),
            ident: item.ident.clone(),
            fields,
            options,
            name,
            name_from_ident,
            item,
        }
    }

    pub fn parameters(&self) -> impl Iterator<Item = (&Field, &Parameter)> {
        self.fields
            .iter()
            .filter_map(|f| f.parameter.as_ref().map(|p| (f, p)))
    }

    /// Whether the fields are named (`struct Model { ... }`).
    pub fn has_named_fields(&self) -> bool {
        matches!(self.item.fields, Fields::Named(_))
    }
}

/// `key` or `key = expr` inside `#[app::parameter(...)]`.
struct ParameterOption {
    key: Ident,
    value: Option<Expr>,
}

impl Parse for ParameterOption {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key = input.call(Ident::parse_any)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(ParameterOption { key, value })
    }
}

const DEFAULT_EXAMPLE: &str = "`#[app::parameter(default = 3)]`";

impl Parameter {
    fn parse(attr: &Attribute, errors: &mut Errors) -> Parameter {
        let mut parameter = Parameter { default: None };
        let tokens = match &attr.meta {
            Meta::Path(_) => return parameter,
            Meta::List(list) => list.tokens.clone(),
            Meta::NameValue(_) => {
                errors.spanned(
                    attr,
                    format!("expected `#[app::parameter]` or {DEFAULT_EXAMPLE}"),
                );
                return parameter;
            }
        };
        let options =
            match Punctuated::<ParameterOption, Token![,]>::parse_terminated.parse2(tokens) {
                Ok(options) => options,
                Err(error) => {
                    errors.push(error);
                    return parameter;
                }
            };
        let mut seen = false;
        for option in options {
            if option.key != "default" {
                errors.spanned(
                    &option.key,
                    format!(
                        "unknown option `{}` of `#[app::parameter]`; its one option is `default`, e.g. {DEFAULT_EXAMPLE}",
                        option.key.unraw()
                    ),
                );
                continue;
            }
            if seen {
                errors.spanned(
                    &option.key,
                    "duplicate option `default`; each option may be given once",
                );
                continue;
            }
            seen = true;
            match option.value {
                Some(value) => parameter.default = Some(value),
                None => errors.spanned(
                    &option.key,
                    format!("`default` needs a value, e.g. {DEFAULT_EXAMPLE}"),
                ),
            }
        }
        parameter
    }
}

/// An `impl` block marked `#[app::cls]`.
pub struct ClassImpl {
    /// The block as it is emitted: as written, minus the markers.
    pub item: ItemImpl,
    /// `#[cfg]` and `#[cfg_attr]` of the block: copied onto every generated
    /// item.
    pub cfgs: Vec<Attribute>,
    /// The struct's name, when the self type is a plain path without
    /// generic arguments (`impl Model`, `impl models::Model`).
    pub self_ident: Option<Ident>,
    pub methods: Vec<Method>,
    pub enters: Vec<Hook>,
    pub exits: Vec<Hook>,
    /// Functions marked both as a hook and a method (or as both hooks): the
    /// function and the second marker.
    pub conflicts: Vec<(Ident, Attribute)>,
    /// `#[app::batched]` on a function that is not an `#[app::method]`, and
    /// the hook marker of that function, if any.
    pub stray_batched: Vec<(Attribute, Option<Marker>)>,
}

/// A function marked `#[app::method]`.
pub struct Method {
    pub ident: Ident,
    /// The `#[app::method]` attribute.
    pub marker: Attribute,
    pub docs: Vec<Attribute>,
    pub cfgs: Vec<Attribute>,
    pub sig: Signature,
    pub is_async: bool,
    pub receiver: Option<Receiver>,
    pub args: Vec<Arg>,
    pub output: Output,
    pub batched: Option<Batched>,
}

/// A function marked `#[app::enter]` or `#[app::exit]`.
pub struct Hook {
    pub ident: Ident,
    /// The `#[app::enter]` or `#[app::exit]` attribute.
    pub marker: Attribute,
    pub cfgs: Vec<Attribute>,
    pub sig: Signature,
    pub is_async: bool,
    pub receiver: Option<Receiver>,
    pub args: Vec<Arg>,
    pub output: Output,
}

impl ClassImpl {
    pub fn from_item(mut item: ItemImpl, errors: &mut Errors) -> ClassImpl {
        let cfgs = item
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
            .cloned()
            .collect();
        let self_ident = match ungroup(&item.self_ty) {
            Type::Path(TypePath { qself: None, path }) => path
                .segments
                .last()
                .filter(|s| matches!(s.arguments, PathArguments::None))
                .map(|s| s.ident.clone()),
            _ => None,
        };
        let mut class = ClassImpl {
            cfgs,
            self_ident,
            methods: Vec::new(),
            enters: Vec::new(),
            exits: Vec::new(),
            conflicts: Vec::new(),
            stray_batched: Vec::new(),
            item: item.clone(),
        };
        for impl_item in &mut item.items {
            let (attrs, is_fn) = match impl_item {
                ImplItem::Fn(f) => {
                    class.read_function(f, errors);
                    (&mut f.attrs, true)
                }
                ImplItem::Const(c) => (&mut c.attrs, false),
                ImplItem::Type(t) => (&mut t.attrs, false),
                ImplItem::Macro(m) => (&mut m.attrs, false),
                _ => continue,
            };
            if !is_fn {
                for attr in attrs.iter() {
                    if let Some(marker) = Marker::of(attr) {
                        errors.spanned(
                            attr,
                            format!(
                                "`{}` marks a function of the `impl` block",
                                marker.written()
                            ),
                        );
                    }
                }
            }
            attrs.retain(|attr| Marker::of(attr).is_none());
        }
        class.item = item;
        class
    }

    /// Reads the markers of one function of the block.
    fn read_function(&mut self, f: &syn::ImplItemFn, errors: &mut Errors) {
        let mut role: Option<(Marker, &Attribute)> = None;
        let mut batched: Option<Batched> = None;
        let mut docs = Vec::new();
        let mut cfgs = Vec::new();
        for attr in &f.attrs {
            if attr.path().is_ident("doc") {
                docs.push(attr.clone());
            } else if attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr") {
                cfgs.push(attr.clone());
            }
            let Some(marker) = Marker::of(attr) else {
                continue;
            };
            match marker {
                Marker::Parameter => errors.spanned(
                    attr,
                    "`#[app::parameter]` marks a field of the class's struct, not a function",
                ),
                Marker::Batched => {
                    if batched.is_some() {
                        errors.spanned(attr, "duplicate `#[app::batched]`; give it once");
                    } else {
                        batched = Some(Batched::parse(attr, errors));
                    }
                }
                Marker::WebEndpoint | Marker::WebApp => errors.spanned(
                    attr,
                    format!(
                        "`{}` serves a free function marked `#[app::function]`; a class's methods cannot be web endpoints",
                        marker.written()
                    ),
                ),
                Marker::Enter | Marker::Exit | Marker::Method => {
                    if !matches!(attr.meta, Meta::Path(_)) {
                        errors.spanned(
                            &attr.meta,
                            format!("`{}` takes no options", marker.written()),
                        );
                    }
                    match role {
                        None => role = Some((marker, attr)),
                        Some((first, _)) if first == marker => errors.spanned(
                            attr,
                            format!("duplicate `{}`; give it once", marker.written()),
                        ),
                        Some(_) => self.conflicts.push((f.sig.ident.clone(), attr.clone())),
                    }
                }
            }
        }
        let (receiver, args) = inputs(&f.sig);
        let output = Output::from_return_type(&f.sig.output);
        let Some((marker, marker_attr)) = role else {
            self.stray_batched.extend(batched.map(|b| (b.attr, None)));
            return;
        };
        let (ident, sig, is_async) = (
            f.sig.ident.clone(),
            f.sig.clone(),
            f.sig.asyncness.is_some(),
        );
        let marker_attr = marker_attr.clone();
        if marker == Marker::Method {
            self.methods.push(Method {
                ident,
                marker: marker_attr,
                docs,
                cfgs,
                sig,
                is_async,
                receiver,
                args,
                output,
                batched,
            });
            return;
        }
        self.stray_batched
            .extend(batched.map(|b| (b.attr, Some(marker))));
        let hook = Hook {
            ident,
            marker: marker_attr,
            cfgs,
            sig,
            is_async,
            receiver,
            args,
            output,
        };
        if marker == Marker::Enter {
            self.enters.push(hook);
        } else {
            self.exits.push(hook);
        }
    }

    /// The batched method, if any.
    pub fn batched_method(&self) -> Option<&Method> {
        self.methods.iter().find(|m| m.batched.is_some())
    }
}

#[cfg(test)]
mod tests {
    use quote::ToTokens;
    use syn::parse_quote;

    use super::*;

    fn class_struct(item: ItemStruct) -> (ClassStruct, Vec<String>) {
        let mut errors = Errors::new();
        let s = ClassStruct::from_item(item, Options::default(), &mut errors);
        (s, errors.messages())
    }

    fn class_impl(item: ItemImpl) -> (ClassImpl, Vec<String>) {
        let mut errors = Errors::new();
        let c = ClassImpl::from_item(item, &mut errors);
        (c, errors.messages())
    }

    #[test]
    fn parameters_and_other_fields() {
        let (s, errors) = class_struct(parse_quote! {
            /// A model.
            #[cfg(unix)]
            pub struct Model {
                /// The name.
                #[app::parameter]
                name: String,
                #[app::parameter(default = 3)]
                top_k: u32,
                #[modal_runtime::app::parameter(default = "greedy",)]
                mode: String,
                table: Vec<u64>,
            }
        });
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.ident, "Model");
        assert_eq!(s.name.value, "Model");
        assert!(s.name_from_ident);
        assert_eq!(s.cfgs.len(), 1);
        let params: Vec<(String, Option<String>)> = s
            .parameters()
            .map(|(f, p)| {
                (
                    f.ident.to_string(),
                    p.default.as_ref().map(|d| d.to_token_stream().to_string()),
                )
            })
            .collect();
        assert_eq!(
            params,
            [
                ("name".to_string(), None),
                ("top_k".to_string(), Some("3".to_string())),
                ("mode".to_string(), Some("\"greedy\"".to_string())),
            ]
        );
        assert_eq!(s.fields.len(), 4);
        assert_eq!(s.fields[0].docs.len(), 1);
        assert!(s.fields[3].parameter.is_none());
        // The markers are gone from the emitted struct; the rest stays.
        let emitted = s.item.to_token_stream().to_string();
        assert!(!emitted.contains("parameter"), "{emitted}");
        assert!(emitted.contains("# [doc = r\" The name.\"]"), "{emitted}");
    }

    #[test]
    fn parameter_attribute_problems() {
        let (s, errors) = class_struct(parse_quote! {
            struct Model {
                #[app::parameter(defualt = 3)]
                a: u32,
                #[app::parameter(default)]
                b: u32,
                #[app::parameter]
                #[app::parameter(default = 1)]
                c: u32,
                #[app::parameter(default = 1, default = 2)]
                d: u32,
                #[app::method]
                e: u32,
                #[app::parameter = 1]
                f: u32,
            }
        });
        assert_eq!(
            errors,
            [
                "unknown option `defualt` of `#[app::parameter]`; its one option is `default`, e.g. `#[app::parameter(default = 3)]`",
                "`default` needs a value, e.g. `#[app::parameter(default = 3)]`",
                "`#[app::parameter]` is given twice on this field; give it once",
                "duplicate option `default`; each option may be given once",
                "`#[app::method]` marks a function of the class's `impl` block, not a field",
                "expected `#[app::parameter]` or `#[app::parameter(default = 3)]`",
            ]
        );
        // What could be read still is.
        assert!(s.fields[0].parameter.as_ref().unwrap().default.is_none());
        assert!(s.fields[2].parameter.as_ref().unwrap().default.is_none());
        assert!(s.fields[3].parameter.as_ref().unwrap().default.is_some());
        assert!(s.fields[4].parameter.is_none());
        assert!(!s.item.to_token_stream().to_string().contains("app ::"));
    }

    #[test]
    fn tuple_structs_have_no_named_fields() {
        let (s, _) = class_struct(parse_quote!(
            struct Model(#[app::parameter] u32);
        ));
        assert!(!s.has_named_fields());
        assert!(s.fields.is_empty());
        assert!(!s.item.to_token_stream().to_string().contains("parameter"));
    }

    #[test]
    fn methods_and_hooks() {
        let (c, errors) = class_impl(parse_quote! {
            impl Model {
                #[app::enter]
                fn load(&mut self) {}
                #[app::exit]
                async fn unload(&self) -> Result<(), String> { Ok(()) }
                /// Predicts.
                #[app::method]
                fn predict(&self, x: u64, (a, b): (u8, u8)) -> u64 { x }
                #[app::method]
                async fn describe(&self) -> Result<String, E> { todo!() }
                fn helper(&self) -> u64 { 1 }
            }
        });
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.self_ident.as_ref().unwrap(), "Model");
        assert_eq!(c.enters.len(), 1);
        assert_eq!(c.exits.len(), 1);
        assert!(c.exits[0].is_async);
        let names: Vec<String> = c.methods.iter().map(|m| m.ident.to_string()).collect();
        assert_eq!(names, ["predict", "describe"]);
        assert_eq!(c.methods[0].docs.len(), 1);
        assert_eq!(c.methods[0].args.len(), 2);
        assert_eq!(c.methods[0].args[1].binding, "__arg1");
        assert!(c.methods[1].is_async);
        assert!(c.batched_method().is_none());
        let emitted = c.item.to_token_stream().to_string();
        for marker in ["enter", "exit", "method"] {
            assert!(!emitted.contains(&format!("app :: {marker}")), "{emitted}");
        }
        assert!(emitted.contains("fn helper"));
    }

    #[test]
    fn batched_methods_and_marker_problems() {
        let (c, errors) = class_impl(parse_quote! {
            impl m::Model {
                #[app::method]
                #[app::batched(max_batch_size = 4, wait_ms = 5)]
                fn embed(&self, x: Vec<u8>) -> Vec<u8> { x }
                #[app::enter]
                #[app::method]
                fn both(&self) {}
                #[app::method(x)]
                #[app::method]
                fn twice(&self) {}
                #[app::batched(max_batch_size = 4, wait_ms = 5)]
                fn unmarked(&self, x: Vec<u8>) -> Vec<u8> { x }
                #[app::parameter]
                fn param(&self) {}
                #[app::method]
                const X: u8 = 1;
            }
        });
        assert_eq!(
            errors,
            [
                "`#[app::method]` takes no options",
                "duplicate `#[app::method]`; give it once",
                "`#[app::parameter]` marks a field of the class's struct, not a function",
                "`#[app::method]` marks a function of the `impl` block",
            ]
        );
        assert_eq!(c.self_ident.as_ref().unwrap(), "Model");
        assert_eq!(c.batched_method().unwrap().ident, "embed");
        assert_eq!(c.conflicts.len(), 1);
        assert_eq!(c.conflicts[0].0, "both");
        assert_eq!(c.stray_batched.len(), 1);
        assert_eq!(c.enters.len(), 1);
        let emitted = c.item.to_token_stream().to_string();
        assert!(!emitted.contains("app ::"), "{emitted}");
    }

    #[test]
    fn self_types() {
        let (c, _) = class_impl(parse_quote!(impl Model<u8> {}));
        assert!(c.self_ident.is_none());
        let (c, _) = class_impl(parse_quote!(
            impl<T> Trait for Model {}
        ));
        assert_eq!(c.self_ident.as_ref().unwrap(), "Model");
        let (c, _) = class_impl(parse_quote!(
            impl (u8, u8) {}
        ));
        assert!(c.self_ident.is_none());
    }
}
