//! Where the control plane is: `MODAL_SERVER_URL`, else a config file, else
//! none (the program embeds one).
//!
//! The config file is `$MODAL_CONFIG`, or `$XDG_CONFIG_HOME/modal-rs/config.toml`
//! (`~/.config/modal-rs/config.toml`), holding `server_url = "http://..."`.
//!
//! Either may name several control planes, comma-separated (a leader and a
//! standby, say): callers use the first that answers.
//!
//! An `https://` control plane is verified against the CA certificate named
//! by `MODAL_TLS_CA`, else by `tls_ca = "PATH"` in the config file.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::Error;

/// Environment variable naming a standalone control plane.
pub const SERVER_URL_ENV: &str = "MODAL_SERVER_URL";
/// Environment variable naming the PEM file of the CA certificate(s) an
/// `https://` control plane is verified with.
pub const TLS_CA_ENV: &str = "MODAL_TLS_CA";
/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "MODAL_CONFIG";
/// The address `cargo xtask server` listens on by default.
pub const DEFAULT_SERVER_ADDR: &str = "127.0.0.1:7470";
/// Environment variable bounding how long a caller waits for an unreachable
/// control plane to come back, in seconds (0 turns reconnecting off).
pub const RECONNECT_TIMEOUT_ENV: &str = "MODAL_RECONNECT_TIMEOUT_SECS";
/// How long a caller waits for an unreachable control plane by default.
pub const DEFAULT_RECONNECT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    server_url: Option<String>,
    tls_ca: Option<PathBuf>,
}

/// The configured control plane URL, or `None` for the embedded default.
pub fn server_url() -> Result<Option<String>, Error> {
    if let Ok(url) = std::env::var(SERVER_URL_ENV)
        && !url.trim().is_empty()
    {
        return Ok(Some(normalize_url(&url)));
    }
    Ok(config_file()?.and_then(|(_, file)| file.server_url.map(|u| normalize_url(&u))))
}

/// The PEM file of the CA certificate(s) `https://` control planes are
/// verified with: `MODAL_TLS_CA`, else `tls_ca` in the config file (relative
/// to the file's folder), else none.
pub fn tls_ca() -> Result<Option<PathBuf>, Error> {
    if let Some(path) = std::env::var_os(TLS_CA_ENV)
        && !path.is_empty()
    {
        return Ok(Some(PathBuf::from(path)));
    }
    Ok(config_file()?.and_then(|(path, file)| {
        let ca = file.tls_ca?;
        Some(match path.parent() {
            Some(folder) => folder.join(ca),
            None => ca,
        })
    }))
}

/// The contents of [`tls_ca`], if one is configured.
pub(crate) fn tls_ca_pem() -> Result<Option<Vec<u8>>, Error> {
    let Some(path) = tls_ca()? else {
        return Ok(None);
    };
    std::fs::read(&path).map(Some).map_err(|e| {
        Error::Config(format!(
            "cannot read the control plane's CA certificate {} ({TLS_CA_ENV}, or `tls_ca` in \
             the modal-rs config file): {e}",
            path.display()
        ))
    })
}

/// The config file, and what it holds; `None` when there is none.
fn config_file() -> Result<Option<(PathBuf, ConfigFile)>, Error> {
    let Some(path) = config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Config(format!(
                "cannot read the modal-rs config file {}: {e}",
                path.display()
            )));
        }
    };
    let file: ConfigFile = toml::from_str(&text).map_err(|e| {
        Error::Config(format!(
            "the modal-rs config file {} is not valid: {e}",
            path.display()
        ))
    })?;
    Ok(Some((path, file)))
}

fn config_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(CONFIG_ENV) {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("modal-rs").join("config.toml"))
}

/// Accepts `host:port` as well as a full URL, and a comma-separated list
/// of either (normalized one by one).
pub fn normalize_url(url: &str) -> String {
    split_urls(url).join(",")
}

/// The URLs of a comma-separated list, each normalized; empty entries are
/// skipped.
pub fn split_urls(list: &str) -> Vec<String> {
    list.split(',')
        .map(|u| u.trim().trim_end_matches('/'))
        .filter(|u| !u.is_empty())
        .map(|u| {
            if u.contains("://") {
                u.to_owned()
            } else {
                format!("http://{u}")
            }
        })
        .collect()
}

/// How long callers wait for an unreachable control plane: from
/// `MODAL_RECONNECT_TIMEOUT_SECS`, else 60 s.
pub fn reconnect_timeout() -> Result<Duration, Error> {
    match std::env::var(RECONNECT_TIMEOUT_ENV) {
        Ok(text) if !text.trim().is_empty() => parse_secs(&text).ok_or_else(|| {
            Error::Config(format!(
                "{RECONNECT_TIMEOUT_ENV}={text:?} is not a number of seconds (e.g. 60, or 0.5)"
            ))
        }),
        _ => Ok(DEFAULT_RECONNECT_TIMEOUT),
    }
}

fn parse_secs(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_addresses_become_http_urls() {
        assert_eq!(normalize_url("127.0.0.1:7470"), "http://127.0.0.1:7470");
        assert_eq!(normalize_url("http://h:1/"), "http://h:1");
    }

    #[test]
    fn lists_are_split_and_normalized_one_by_one() {
        assert_eq!(
            split_urls(" 127.0.0.1:1, http://h:2/ ,,"),
            vec!["http://127.0.0.1:1", "http://h:2"]
        );
        assert_eq!(normalize_url("a:1,b:2"), "http://a:1,http://b:2");
        assert!(split_urls(" , ").is_empty());
    }

    #[test]
    fn the_config_file_may_name_a_tls_ca() {
        let file: ConfigFile =
            toml::from_str("server_url = \"https://h:1\"\ntls_ca = \"ca.pem\"").unwrap();
        assert_eq!(file.tls_ca, Some(PathBuf::from("ca.pem")));
        assert!(toml::from_str::<ConfigFile>("tls_cert = \"x\"").is_err());
    }

    #[test]
    fn reconnect_timeouts_are_seconds() {
        assert_eq!(parse_secs("60"), Some(Duration::from_secs(60)));
        assert_eq!(parse_secs(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_secs("0"), Some(Duration::ZERO));
        assert_eq!(parse_secs("-1"), None);
        assert_eq!(parse_secs("soon"), None);
    }
}
