//! The grammar of a web endpoint's options: its label (the last segment of
//! its URL) and its HTTP method. Standard library only: the macro compiles
//! this file too, so a value refused at deploy is refused at compile time
//! with the same message.

/// The HTTP methods a JSON endpoint may answer (raw endpoints and apps
/// answer every method).
pub const JSON_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The longest label: a DNS label's length, so that a label may one day
/// name a host too.
pub const LABEL_MAX: usize = 63;

/// A label: 1 to 63 lowercase letters, digits and `-`, starting with a
/// letter and not ending with `-`.
pub fn check_label(label: &str) -> Result<(), String> {
    let ok = (1..=LABEL_MAX).contains(&label.len())
        && label.starts_with(|c: char| c.is_ascii_lowercase())
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{label}` is not a valid endpoint label: use 1 to {LABEL_MAX} lowercase letters, \
             digits or `-`, starting with a letter and not ending with `-`"
        ))
    }
}

/// The label of an endpoint that names none: its function's registered
/// name, lowercased, `_` as `-`.
pub fn default_label(name: &str) -> String {
    name.trim_matches('_')
        .chars()
        .map(|c| match c {
            '_' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// `method` in upper case, if a JSON endpoint may answer it.
pub fn parse_method(method: &str) -> Result<&'static str, String> {
    let upper = method.to_ascii_uppercase();
    JSON_METHODS
        .iter()
        .find(|m| **m == upper)
        .copied()
        .ok_or_else(|| {
            format!(
                "`{method}` is not a method a JSON endpoint answers: use one of {}",
                JSON_METHODS.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for good in ["a", "square", "api-v2", &"x".repeat(63)] {
            assert!(check_label(good).is_ok(), "{good}");
        }
        for bad in ["", "Square", "2x", "a_b", "a-", "a/b", &"x".repeat(64)] {
            assert!(check_label(bad).is_err(), "{bad}");
        }
        assert_eq!(default_label("Make_Report"), "make-report");
        assert!(check_label(&default_label("square_all")).is_ok());
    }

    #[test]
    fn methods() {
        assert_eq!(parse_method("post"), Ok("POST"));
        assert!(parse_method("TRACE").unwrap_err().contains("GET, POST"));
    }
}
