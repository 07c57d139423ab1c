//! Code generation for `#[app::main]`.
//!
//! `async fn main() -> T { body }` becomes a plain `fn main() -> T` that hands
//! the body, as an `async fn` nested inside (so `?`, `return` and the return
//! type behave exactly as written), to the runtime's `run_main`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{FnArg, ItemFn};

use crate::check::check_main;
use crate::errors::Errors;
use crate::model::Main;

pub fn expand(options: TokenStream, input: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let item: ItemFn = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(_) => {
            errors.at(
                Span::call_site(),
                "`#[app::main]` can only be applied to `async fn main()`",
            );
            let errors = errors.to_compile_errors();
            return quote!(#input #errors);
        }
    };
    let main = Main::from_item(item);
    let expandable = check_main(&main, &options, &mut errors);
    let generated = if expandable {
        generate(&main)
    } else {
        stand_in(&main)
    };
    let errors = errors.to_compile_errors();
    quote!(#generated #errors)
}

/// The real expansion. Also used when the only problems were a missing
/// `async` or stray options: the body still compiles as written, so the only
/// error shown is the macro's own.
pub fn generate(main: &Main) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &main.item;
    let ident = &sig.ident;
    let output = &sig.output;
    quote! {
        #(#attrs)*
        #vis fn #ident() #output {
            async fn __modal_main() #output #block
            ::modal_runtime::__private::run_main(::core::env!("CARGO_CRATE_NAME"), __modal_main())
        }
    }
}

/// What is emitted when the signature cannot be expanded (arguments,
/// generics, qualifiers): a `main` that compiles, with the body kept in an
/// uncalled function so that its own errors and the user's imports are still
/// checked, but nothing else is reported.
fn stand_in(main: &Main) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = &main.item;
    let ident = &sig.ident;
    let output = &sig.output;
    let generics = &sig.generics;
    let where_clause = &sig.generics.where_clause;
    let inputs = sig
        .inputs
        .iter()
        .filter(|arg| matches!(arg, FnArg::Typed(_)));
    quote! {
        #(#attrs)*
        #vis fn #ident() #output {
            #[allow(dead_code, unused_variables)]
            async fn __modal_main #generics (#(#inputs),*) #output #where_clause #block
            ::core::unimplemented!()
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;
    use crate::expand_function::tests::bare_prelude_names;

    #[test]
    fn expands_to_run_main() {
        let out = expand(
            quote!(),
            quote!(
                #[allow(unused)]
                async fn main() -> ::core::result::Result<(), ::std::string::String> {
                    ::core::result::Result::Ok(())
                }
            ),
        );
        let text = out.to_string();
        assert!(!text.contains("compile_error"), "{text}");
        assert!(text.starts_with("# [allow (unused)] fn main () -> :: core :: result :: Result < () , :: std :: string :: String > { async fn __modal_main ()"), "{text}");
        assert!(text.contains(r#":: modal_runtime :: __private :: run_main (:: core :: env ! ("CARGO_CRATE_NAME") , __modal_main ())"#), "{text}");
        assert_eq!(bare_prelude_names(out), Vec::<String>::new());
    }

    #[test]
    fn sync_main_is_refused_but_still_expanded() {
        let text = expand(
            quote!(),
            quote!(
                fn main() {}
            ),
        )
        .to_string();
        assert!(text.contains("compile_error"));
        assert!(text.contains("run_main"));
    }

    #[test]
    fn main_with_arguments_gets_a_stand_in() {
        let text = expand(
            quote!(),
            quote!(
                async fn main(&self, x: u8) {
                    let _ = x;
                }
            ),
        )
        .to_string();
        assert!(text.contains("compile_error"));
        assert!(!text.contains("run_main"));
        assert!(text.contains("async fn __modal_main (x : u8)"), "{text}");
        let text = expand(
            quote!(),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(text.contains("can only be applied to `async fn main()`"));
    }
}
