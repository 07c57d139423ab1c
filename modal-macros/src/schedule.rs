//! `schedule = Cron("0 9 * * 1-5", timezone = "Europe/Paris")` and
//! `schedule = Period(2)`: the option's value read, checked with the
//! runtime's own grammar (`schedule_rules`, the runtime's
//! `options/schedule.rs`), every error on the token written, and written
//! out as the runtime's `Schedule`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens as _, quote};
use syn::{Expr, ExprAssign, ExprCall, ExprLit, ExprUnary, Lit, LitStr, UnOp};

use crate::attr::{Options, RawValue, lit_str};
use crate::errors::Errors;
use crate::expand_shared::private;
use crate::model::Function;
use crate::schedule_rules;
use crate::tokens::ungroup;

/// What `schedule = ...` expects, for messages.
pub const EXPECTS: &str = "`Cron(\"0 * * * *\")` (five fields: minute hour day-of-month month day-of-week), `Cron(\"0 9 * * 1-5\", timezone = \"Europe/Paris\")` or `Period(seconds)`, e.g. `Period(60)` or `Period(1.5)`";

/// `schedule = ...` as given: the schedule, and the tokens of its value
/// (what an error about it spans).
#[derive(Debug, Clone)]
pub struct Given {
    pub schedule: Schedule,
    pub tokens: TokenStream,
}

/// A schedule as checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    Cron {
        expression: String,
        timezone: Option<String>,
    },
    Period {
        millis: u64,
    },
}

/// Reads the value of `schedule = ...`, reporting what is wrong on the
/// token that is.
pub fn parse(value: &RawValue, errors: &mut Errors) -> Option<Given> {
    let expected = |errors: &mut Errors| {
        errors.push(value.error(format!("`schedule` expects {EXPECTS}")));
        None
    };
    let RawValue::Expr(expr) = value else {
        return expected(errors);
    };
    let Expr::Call(ExprCall { func, args, .. }) = ungroup(expr) else {
        return expected(errors);
    };
    let Expr::Path(path) = ungroup(func) else {
        return expected(errors);
    };
    let kind = path.path.segments.last().map(|s| s.ident.to_string());
    let args: Vec<&Expr> = args.iter().map(ungroup).collect();
    let schedule = match kind.as_deref() {
        Some("Cron") => cron(func, &args, errors),
        Some("Period") => period(func, &args, errors),
        _ => return expected(errors),
    };
    schedule.map(|schedule| Given {
        schedule,
        tokens: expr.to_token_stream(),
    })
}

fn cron(func: &Expr, args: &[&Expr], errors: &mut Errors) -> Option<Schedule> {
    let usage = "`Cron` takes a cron expression and an optional time zone: `Cron(\"0 9 * * 1-5\")` or `Cron(\"0 9 * * 1-5\", timezone = \"Europe/Paris\")`";
    let Some((first, rest)) = args.split_first() else {
        errors.spanned(func, usage);
        return None;
    };
    let Some(expression) = lit_str(first) else {
        errors.spanned(first, usage);
        return None;
    };
    let mut ok = true;
    if let Err(message) = schedule_rules::parse_cron(&expression.value()) {
        errors.at(expression.span(), message);
        ok = false;
    }
    let mut timezone = None;
    for arg in rest {
        let named = match arg {
            Expr::Assign(ExprAssign { left, right, .. }) => match ungroup(left) {
                Expr::Path(p) if p.path.is_ident("timezone") => lit_str(right),
                _ => None,
            },
            _ => None,
        };
        let Some(tz) = named.filter(|_| timezone.is_none()) else {
            errors.spanned(arg, usage);
            ok = false;
            continue;
        };
        match schedule_rules::parse_timezone(&tz.value()) {
            Ok(_) => timezone = Some(tz.value()),
            Err(message) => {
                errors.at(tz.span(), message);
                ok = false;
            }
        }
    }
    ok.then(|| Schedule::Cron {
        expression: expression.value(),
        timezone,
    })
}

fn period(func: &Expr, args: &[&Expr], errors: &mut Errors) -> Option<Schedule> {
    let usage = "`Period` takes a number of seconds, e.g. `Period(60)` or `Period(1.5)`";
    let [secs] = args else {
        errors.spanned(func, usage);
        return None;
    };
    let Some(value) = number(secs) else {
        errors.spanned(secs, usage);
        return None;
    };
    match schedule_rules::period_millis(value) {
        Ok(millis) => Some(Schedule::Period { millis }),
        Err(message) => {
            errors.spanned(secs, message);
            None
        }
    }
}

/// A schedule runs its function with nothing: it needs a function that
/// takes nothing and answers nobody.
pub fn check_function(f: &Function, errors: &mut Errors) {
    let Some(schedule) = &f.options.schedule else {
        return;
    };
    let why = if !f.args.is_empty() {
        "a function with arguments cannot run on a schedule: nothing would supply them; remove its arguments or the `schedule`"
    } else if f.web.is_some() {
        "a web endpoint cannot run on a schedule: it answers requests; schedule a plain function (both may call the same code)"
    } else if f.batched.is_some() {
        "a batched function cannot run on a schedule: remove `#[app::batched]` or the `schedule`"
    } else if f.generator.is_some() {
        "a generator cannot run on a schedule: nobody would read its items"
    } else {
        return;
    };
    errors.spanned(&schedule.tokens, why);
}

/// Classes are bound with parameters before they run: none on a schedule.
pub fn check_class(options: &Options, errors: &mut Errors) {
    if let Some(schedule) = &options.schedule {
        errors.spanned(
            &schedule.tokens,
            "a class cannot run on a schedule: put `schedule` on an `#[app::function]` without arguments",
        );
    }
}

/// The runtime's `Schedule` for `schedule`.
pub fn tokens(schedule: &Schedule) -> TokenStream {
    let p = private();
    let string = |s: &str| {
        let s = LitStr::new(s, Span::call_site());
        quote!(#p::Cow::Borrowed(#s))
    };
    match schedule {
        Schedule::Cron {
            expression,
            timezone,
        } => {
            let expression = string(expression);
            let timezone = match timezone {
                Some(tz) => {
                    let tz = string(tz);
                    quote!(::core::option::Option::Some(#tz))
                }
                None => quote!(::core::option::Option::None),
            };
            quote!(#p::Schedule::Cron { expression: #expression, timezone: #timezone })
        }
        Schedule::Period { millis } => quote!(#p::Schedule::Period { millis: #millis }),
    }
}

/// An integer or float literal, possibly negated, as `f64`.
fn number(expr: &Expr) -> Option<f64> {
    let (lit, negative) = match ungroup(expr) {
        Expr::Lit(ExprLit { lit, .. }) => (lit, false),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match ungroup(expr) {
            Expr::Lit(ExprLit { lit, .. }) => (lit, true),
            _ => return None,
        },
        _ => return None,
    };
    let value = match lit {
        Lit::Int(int) => int.base10_parse::<f64>().ok()?,
        Lit::Float(float) => float.base10_parse::<f64>().ok()?,
        _ => return None,
    };
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;
    use crate::attr::parse_options;

    fn read(tokens: TokenStream) -> (Option<Schedule>, Vec<String>) {
        let mut errors = Errors::new();
        let options = parse_options(tokens, &mut errors);
        (options.schedule.map(|s| s.schedule), errors.messages())
    }

    #[test]
    fn schedules_are_read() {
        assert_eq!(
            read(quote!(schedule = Cron("0 * * * *"))).0,
            Some(Schedule::Cron {
                expression: "0 * * * *".into(),
                timezone: None
            })
        );
        assert_eq!(
            read(quote!(
                schedule = Cron("0 9 * * 1-5", timezone = "Europe/Paris")
            ))
            .0,
            Some(Schedule::Cron {
                expression: "0 9 * * 1-5".into(),
                timezone: Some("Europe/Paris".into())
            })
        );
        assert_eq!(
            read(quote!(schedule = Period(2))).0,
            Some(Schedule::Period { millis: 2000 })
        );
        assert_eq!(
            read(quote!(schedule = modal::Period(1.5))).0,
            Some(Schedule::Period { millis: 1500 })
        );
    }

    #[test]
    fn bad_schedules_are_refused() {
        for (tokens, wanted) in [
            (
                quote!(schedule = Cron("61 * * * *")),
                "not a cron expression",
            ),
            (quote!(schedule = Cron("* * *")), "has 3 fields"),
            (
                quote!(schedule = Cron("0 * * * *", timezone = "Mars/Base")),
                "not a known time zone",
            ),
            (
                quote!(schedule = Cron("0 * * * *", tz = "UTC")),
                "optional time zone",
            ),
            (quote!(schedule = Cron()), "takes a cron expression"),
            (quote!(schedule = Period(0)), "greater than 0"),
            (quote!(schedule = Period(-2)), "greater than 0"),
            (quote!(schedule = Period(0.1)), "between 1"),
            (quote!(schedule = Period("2")), "number of seconds"),
            (quote!(schedule = "0 * * * *"), "`schedule` expects"),
            (quote!(schedule = Daily(1)), "`schedule` expects"),
        ] {
            let (schedule, errors) = read(tokens.clone());
            assert!(schedule.is_none(), "{tokens}");
            assert_eq!(errors.len(), 1, "{tokens}: {errors:?}");
            assert!(errors[0].contains(wanted), "{tokens}: {errors:?}");
        }
    }

    fn function_errors(options: TokenStream, item: syn::ItemFn) -> Vec<String> {
        let mut errors = Errors::new();
        let options = parse_options(options, &mut errors);
        assert!(errors.is_empty(), "{:?}", errors.messages());
        let f = Function::from_item(item, options, &mut errors);
        crate::check::check_options(&f, &mut errors);
        errors.messages()
    }

    #[test]
    fn only_functions_without_arguments_run_on_a_schedule() {
        let fine = function_errors(
            quote!(schedule = Period(60)),
            syn::parse_quote!(
                fn f() {}
            ),
        );
        assert!(fine.is_empty(), "{fine:?}");
        let fine = function_errors(
            quote!(schedule = Period(60)),
            syn::parse_quote!(
                async fn f() -> Result<u8, E> {}
            ),
        );
        assert!(fine.is_empty(), "{fine:?}");
        let refused = function_errors(
            quote!(schedule = Period(60)),
            syn::parse_quote!(
                fn f(x: u8) {}
            ),
        );
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].contains("with arguments"), "{refused:?}");
        let refused = function_errors(
            quote!(schedule = Cron("@hourly")),
            syn::parse_quote!(
                fn f() -> Generator<u8> {}
            ),
        );
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].contains("a generator"), "{refused:?}");
    }
}
