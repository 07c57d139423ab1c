//! Helpers on tokens that every pass uses: seeing through invisible groups,
//! printing tokens as written, and suggesting the name a user probably
//! meant.

use quote::ToTokens;
use syn::{Expr, Type};

/// Sees through the invisible groups `macro_rules!` puts around `$t:ty` and
/// `$e:expr`.
pub trait Ungroup {
    type Node;
    fn ungroup(&self) -> &Self::Node;
}

impl Ungroup for Type {
    type Node = Type;
    fn ungroup(&self) -> &Type {
        match self {
            Type::Group(group) => group.elem.ungroup(),
            other => other,
        }
    }
}

impl Ungroup for Expr {
    type Node = Expr;
    fn ungroup(&self) -> &Expr {
        match self {
            Expr::Group(group) => group.expr.ungroup(),
            other => other,
        }
    }
}

impl<T: Ungroup> Ungroup for Box<T> {
    type Node = T::Node;
    fn ungroup(&self) -> &T::Node {
        (**self).ungroup()
    }
}

/// `node` without its invisible groups.
pub fn ungroup<T: Ungroup>(node: &T) -> &T::Node {
    node.ungroup()
}

/// `t` as written, tidied for messages.
pub fn tokens(t: &impl ToTokens) -> String {
    // Token streams print with spaces between every token; tidy the common
    // cases for messages.
    t.to_token_stream()
        .to_string()
        .replace(" < ", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace(" : ", ": ")
        .replace("& ", "&")
        .replace(" :: ", "::")
        .replace(":: ", "::")
}

/// The name the user probably meant by `key`: a known alias (`aliases`, of
/// lowercase spellings), or the closest of `names` within a small edit
/// distance (a third of the name's length, at least one).
pub fn suggest(
    key: &str,
    aliases: &[(&str, &'static str)],
    names: impl IntoIterator<Item = &'static str>,
) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    if let Some((_, target)) = aliases.iter().find(|(alias, _)| *alias == lower) {
        return Some(target);
    }
    names
        .into_iter()
        .map(|name| (name, edit_distance(&lower, name)))
        .filter(|(name, distance)| *distance <= (name.len() / 3).max(1))
        .min_by_key(|(_, distance)| *distance)
        .map(|(name, _)| name)
}

/// Levenshtein distance, over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("gpu", "gpu"), 0);
    }

    #[test]
    fn suggestions() {
        let names = ["timeout", "retries", "gpu"];
        assert_eq!(suggest("timout", &[], names), Some("timeout"));
        assert_eq!(suggest("RETRIES", &[], names), Some("retries"));
        assert_eq!(suggest("gpus", &[], names), Some("gpu"));
        assert_eq!(suggest("memory", &[], names), None);
        assert_eq!(
            suggest("Wait", &[("wait", "wait_ms")], names),
            Some("wait_ms")
        );
    }

    #[test]
    fn ungroups_types_and_expressions() {
        use proc_macro2::{Delimiter, Group, TokenStream};
        use quote::{ToTokens, quote};
        let grouped = |tokens: TokenStream| Group::new(Delimiter::None, tokens).into_token_stream();
        let ty: Type = syn::parse2(grouped(quote!(u8))).unwrap();
        assert!(matches!(ty, Type::Group(_)));
        assert!(matches!(ungroup(&ty), Type::Path(_)));
        let expr: Expr = syn::parse2(grouped(quote!(1))).unwrap();
        assert!(matches!(ungroup(&expr), Expr::Lit(_)));
    }
}
