//! Names in the access model: environments, secrets, and the key under
//! which the catalog knows an app of an environment.
//!
//! The catalog keys an app of environment `main` by its name alone (as
//! before environments existed) and an app of any other environment by
//! `<environment>/<name>`: app names cannot hold a `/`, so no name of one
//! environment can stand for an app of another.

/// The environment of requests and tokens that name none.
pub(crate) const DEFAULT_ENVIRONMENT: &str = "main";

/// An environment name: 1 to 32 lowercase letters, digits and `-`,
/// starting with a letter.
pub(crate) fn check_environment_name(name: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid environment name: use 1 to 32 lowercase letters, digits \
             or `-`, starting with a letter"
        ))
    }
}

/// A secret name: 1 to 64 letters, digits, `-` or `_`.
pub(crate) fn check_secret_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid secret name: use 1 to 64 letters, digits, `-` or `_`"
        ))
    }
}

/// The catalog's key for app `name` of `environment`.
pub(crate) fn app_key(environment: &str, name: &str) -> String {
    if environment == DEFAULT_ENVIRONMENT {
        name.to_owned()
    } else {
        format!("{environment}/{name}")
    }
}

/// The environment of the app the catalog keys as `key`.
pub(crate) fn environment_of(key: &str) -> &str {
    key.split_once('/')
        .map_or(DEFAULT_ENVIRONMENT, |(environment, _)| environment)
}

/// The app name (as its users know it) of the app keyed `key`.
pub(crate) fn app_name_of(key: &str) -> &str {
    key.split_once('/').map_or(key, |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_keys_keep_environments_apart_and_main_unchanged() {
        assert_eq!(app_key("main", "shop"), "shop");
        assert_eq!(app_key("staging", "shop"), "staging/shop");
        for (env, name) in [("main", "shop"), ("staging", "shop"), ("a-1", "x_y")] {
            let key = app_key(env, name);
            assert_eq!(environment_of(&key), env);
            assert_eq!(app_name_of(&key), name);
        }
        assert_ne!(app_key("main", "shop"), app_key("staging", "shop"));
    }

    #[test]
    fn names_are_checked() {
        assert!(check_environment_name("main").is_ok());
        assert!(check_environment_name("team-2").is_ok());
        for bad in ["", "Main", "2x", "a/b", "a b", &"x".repeat(33)] {
            assert!(check_environment_name(bad).is_err(), "{bad}");
        }
        assert!(check_secret_name("db_creds-1").is_ok());
        for bad in ["", "a/b", "a=b", &"x".repeat(65)] {
            assert!(check_secret_name(bad).is_err(), "{bad}");
        }
    }
}
