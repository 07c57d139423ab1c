//! The serde shape of a type that crosses to a container: what a caller's
//! and a deployed function's types must agree on, down to every field name,
//! field type and enum variant.
//!
//! A type is traced through its own `Deserialize` impl (with
//! `serde-reflection`), so no derive is asked of the user: `#[derive(
//! Deserialize)]` already says everything the wire depends on, renames and
//! skipped fields included. The shape is written as Rust-like text, its
//! named types after a `where`, sorted (by their text):
//!
//! ```text
//! (Point, u32) where struct Point { x: i64, y: i64 }
//! ```
//!
//! Some types cannot be traced: those whose `Deserialize` asks the format
//! what comes next (`serde_json::Value`, `#[serde(untagged)]` and
//! `#[serde(flatten)]`), validates values the tracer makes up, or two types
//! of one name with different shapes. Such a type's shape is its full path
//! (`std::any::type_name`), as before shapes were traced: a change inside it
//! goes unnoticed at lookup, and fails per input instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::de::DeserializeOwned;
use serde_reflection::{
    ContainerFormat, Format, Named, Registry, Tracer, TracerConfig, VariantFormat,
};

/// The shape of `T`: its format, then the named types it reaches.
pub fn of<T: DeserializeOwned>() -> String {
    let shape = Shape::of::<T>();
    Shape::written(&shape.format, &[&shape])
}

/// A type's shape in two parts, so that several can be written as one
/// signature with their named types after it.
pub struct Shape {
    /// The type as Rust-like text (`(Point, u32)`), or its path if it could
    /// not be traced.
    pub format: String,
    /// `struct Point { x: i64, y: i64 }`, one for each named type reached.
    named: BTreeSet<String>,
    /// For a traced tuple, each element's format.
    elements: Vec<String>,
}

impl Shape {
    pub fn of<T: DeserializeOwned>() -> Shape {
        Shape::traced::<T>().unwrap_or_else(|| Shape {
            format: std::any::type_name::<T>().to_owned(),
            named: BTreeSet::new(),
            elements: Vec::new(),
        })
    }

    fn traced<T: DeserializeOwned>() -> Option<Shape> {
        let mut tracer = Tracer::new(TracerConfig::default());
        let (format, _) = tracer.trace_simple_type::<T>().ok()?;
        let registry = tracer.registry().ok()?;
        let mut text = String::new();
        write_format(&mut text, &format);
        let elements = match &format {
            Format::Tuple(items) => items
                .iter()
                .map(|item| {
                    let mut text = String::new();
                    write_format(&mut text, item);
                    text
                })
                .collect(),
            _ => Vec::new(),
        };
        let named = reached(&format, &registry)
            .iter()
            .map(|name| {
                let mut text = String::new();
                write_container(&mut text, name, &registry[name.as_str()]);
                text
            })
            .collect();
        Some(Shape {
            format: text,
            named,
            elements,
        })
    }

    /// `text` (written with the formats of `shapes`), then every named type
    /// of them after a `where`, once each, sorted.
    pub fn written(text: &str, shapes: &[&Shape]) -> String {
        let named: BTreeSet<&String> = shapes.iter().flat_map(|s| &s.named).collect();
        let mut out = text.to_owned();
        for (i, item) in named.into_iter().enumerate() {
            out.push_str(if i == 0 { " where " } else { "; " });
            out.push_str(item);
        }
        out
    }
}

/// The named types `format` reaches, directly or through other named
/// types: the registry may hold more when a type was traced before.
/// The shape of `T` where generated code cannot require `T:
/// DeserializeOwned` without repeating an error the user already gets:
/// `(&ShapeOf::<T>::new()).shape()` with [`TracedShape`] and [`PathShape`]
/// in scope is [`Shape::of`] when `T` is serde's and its path otherwise
/// (method lookup tries the impl on `ShapeOf` before the one on `&ShapeOf`).
pub struct ShapeOf<T: ?Sized>(std::marker::PhantomData<fn() -> Box<T>>);

impl<T: ?Sized> ShapeOf<T> {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        ShapeOf(std::marker::PhantomData)
    }
}

/// See [`ShapeOf`].
pub trait TracedShape {
    fn shape(&self) -> Shape;
}

impl<T: DeserializeOwned> TracedShape for ShapeOf<T> {
    fn shape(&self) -> Shape {
        Shape::of::<T>()
    }
}

/// See [`ShapeOf`].
pub trait PathShape {
    fn shape(&self) -> Shape;
}

impl<T: ?Sized> PathShape for &ShapeOf<T> {
    fn shape(&self) -> Shape {
        Shape {
            format: std::any::type_name::<T>().to_owned(),
            named: BTreeSet::new(),
            elements: Vec::new(),
        }
    }
}

/// A class's parameters as its fingerprint shows them, from the shape of
/// their tuple: `name: String, at: Point where struct Point { … }`.
pub fn params_fingerprint(names: &[&str], wire: Shape) -> String {
    let text = if wire.elements.len() == names.len() {
        names
            .iter()
            .zip(&wire.elements)
            .map(|(name, format)| format!("{name}: {format}"))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        // Not traced: the tuple's path.
        format!("{}: {}", names.join(", "), wire.format)
    };
    Shape::written(&text, &[&wire])
}

fn reached(format: &Format, registry: &Registry) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = Vec::new();
    names_in(format, &mut pending);
    while let Some(name) = pending.pop() {
        if let Some(container) = registry.get(&name)
            && found.insert(name)
        {
            for format in container_formats(container) {
                names_in(format, &mut pending);
            }
        }
    }
    found
}

fn names_in(format: &Format, out: &mut Vec<String>) {
    match format {
        Format::TypeName(name) => out.push(name.clone()),
        Format::Option(inner) | Format::Seq(inner) => names_in(inner, out),
        Format::TupleArray { content, .. } => names_in(content, out),
        Format::Map { key, value } => {
            names_in(key, out);
            names_in(value, out);
        }
        Format::Tuple(items) => items.iter().for_each(|f| names_in(f, out)),
        _ => {}
    }
}

fn container_formats(container: &ContainerFormat) -> Vec<&Format> {
    match container {
        ContainerFormat::UnitStruct => Vec::new(),
        ContainerFormat::NewTypeStruct(inner) => vec![inner],
        ContainerFormat::TupleStruct(items) => items.iter().collect(),
        ContainerFormat::Struct(fields) => fields.iter().map(|f| &f.value).collect(),
        ContainerFormat::Enum(variants) => variants
            .values()
            .flat_map(|v| match &v.value {
                VariantFormat::NewType(inner) => vec![&**inner],
                VariantFormat::Tuple(items) => items.iter().collect(),
                VariantFormat::Struct(fields) => fields.iter().map(|f| &f.value).collect(),
                VariantFormat::Unit | VariantFormat::Variable(_) => Vec::new(),
            })
            .collect(),
    }
}

fn write_format(out: &mut String, format: &Format) {
    let plain = match format {
        Format::TypeName(name) => name.as_str(),
        Format::Unit => "()",
        Format::Bool => "bool",
        Format::I8 => "i8",
        Format::I16 => "i16",
        Format::I32 => "i32",
        Format::I64 => "i64",
        Format::I128 => "i128",
        Format::U8 => "u8",
        Format::U16 => "u16",
        Format::U32 => "u32",
        Format::U64 => "u64",
        Format::U128 => "u128",
        Format::F32 => "f32",
        Format::F64 => "f64",
        Format::Char => "char",
        Format::Str => "String",
        Format::Bytes => "bytes",
        // Never left after a successful trace.
        Format::Variable(_) => "_",
        Format::Option(inner) => {
            out.push_str("Option<");
            write_format(out, inner);
            out.push('>');
            return;
        }
        Format::Seq(inner) => {
            out.push_str("Vec<");
            write_format(out, inner);
            out.push('>');
            return;
        }
        Format::Map { key, value } => {
            out.push_str("Map<");
            write_format(out, key);
            out.push_str(", ");
            write_format(out, value);
            out.push('>');
            return;
        }
        Format::Tuple(items) => {
            write_tuple(out, items);
            return;
        }
        Format::TupleArray { content, size } => {
            out.push('[');
            write_format(out, content);
            let _ = write!(out, "; {size}]");
            return;
        }
    };
    out.push_str(plain);
}

/// `(A, B)`, and `(A,)` for one element, as Rust writes a tuple type.
fn write_tuple(out: &mut String, items: &[Format]) {
    write_items(out, items);
    if items.len() == 1 {
        out.insert(out.len() - 1, ',');
    }
}

/// `(A, B)`: a tuple struct's or tuple variant's fields.
fn write_items(out: &mut String, items: &[Format]) {
    out.push('(');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_format(out, item);
    }
    out.push(')');
}

fn write_fields(out: &mut String, fields: &[Named<Format>]) {
    out.push_str(" { ");
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&field.name);
        out.push_str(": ");
        write_format(out, &field.value);
    }
    out.push_str(" }");
}

fn write_container(out: &mut String, name: &str, container: &ContainerFormat) {
    match container {
        ContainerFormat::UnitStruct => {
            let _ = write!(out, "struct {name}");
        }
        ContainerFormat::NewTypeStruct(inner) => {
            let _ = write!(out, "struct {name}");
            write_items(out, std::slice::from_ref(&**inner));
        }
        ContainerFormat::TupleStruct(items) => {
            let _ = write!(out, "struct {name}");
            write_items(out, items);
        }
        ContainerFormat::Struct(fields) => {
            let _ = write!(out, "struct {name}");
            write_fields(out, fields);
        }
        ContainerFormat::Enum(variants) => {
            let _ = write!(out, "enum {name} {{ ");
            write_variants(out, variants);
            out.push_str(" }");
        }
    }
}

fn write_variants(out: &mut String, variants: &BTreeMap<u32, Named<VariantFormat>>) {
    // By index: the order serde numbers them in, which the wire uses.
    for (i, variant) in variants.values().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&variant.name);
        match &variant.value {
            VariantFormat::Unit | VariantFormat::Variable(_) => {}
            VariantFormat::NewType(inner) => write_items(out, std::slice::from_ref(&**inner)),
            VariantFormat::Tuple(items) => write_items(out, items),
            VariantFormat::Struct(fields) => write_fields(out, fields),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;

    use super::of;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Point {
        x: i64,
        y: i64,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Shape {
        Circle(f64),
        Rect { w: f64, h: f64 },
        Empty,
        Polygon(Vec<Point>),
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Meters(f64);

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Tree {
        label: String,
        children: Vec<Tree>,
    }

    #[test]
    fn plain_types_are_written_as_in_rust() {
        assert_eq!(of::<(i64, String)>(), "(i64, String)");
        assert_eq!(of::<(u32,)>(), "(u32,)");
        assert_eq!(of::<()>(), "()");
        assert_eq!(of::<Option<Vec<u8>>>(), "Option<Vec<u8>>");
        assert_eq!(of::<serde_bytes::ByteBuf>(), "bytes");
        // serde writes an array as a tuple.
        assert_eq!(
            of::<HashMap<String, [u16; 3]>>(),
            "Map<String, (u16, u16, u16)>"
        );
    }

    #[test]
    fn structs_show_their_fields_and_enums_their_variants() {
        assert_eq!(
            of::<(Point, u32)>(),
            "(Point, u32) where struct Point { x: i64, y: i64 }"
        );
        assert_eq!(
            of::<Shape>(),
            "Shape where enum Shape { Circle(f64), Rect { w: f64, h: f64 }, Empty, \
             Polygon(Vec<Point>) }; struct Point { x: i64, y: i64 }"
        );
        assert_eq!(of::<Meters>(), "Meters where struct Meters(f64)");
    }

    #[test]
    fn recursive_types_are_named_once() {
        assert_eq!(
            of::<Tree>(),
            "Tree where struct Tree { label: String, children: Vec<Tree> }"
        );
    }

    #[test]
    fn a_field_added_changes_the_shape() {
        mod v2 {
            #[derive(serde::Deserialize)]
            #[allow(dead_code)]
            pub struct Point {
                pub x: i64,
                pub y: i64,
                pub z: i64,
            }
        }
        assert_ne!(of::<(Point,)>(), of::<(v2::Point,)>());
    }

    #[test]
    fn an_untraceable_type_is_its_path() {
        assert_eq!(of::<serde_json::Value>(), "serde_json::value::Value");
    }
}
