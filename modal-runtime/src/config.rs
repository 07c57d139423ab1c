//! Where the control plane is: `MODAL_SERVER_URL`, else a config file, else
//! none (the program embeds one).
//!
//! The config file is `$MODAL_CONFIG`, or `$XDG_CONFIG_HOME/modal-rs/config.toml`
//! (`~/.config/modal-rs/config.toml`), holding `server_url = "http://..."`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::Error;

/// Environment variable naming a standalone control plane.
pub const SERVER_URL_ENV: &str = "MODAL_SERVER_URL";
/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "MODAL_CONFIG";
/// The address `cargo xtask server` listens on by default.
pub const DEFAULT_SERVER_ADDR: &str = "127.0.0.1:7470";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    server_url: Option<String>,
}

/// The configured control plane URL, or `None` for the embedded default.
pub fn server_url() -> Result<Option<String>, Error> {
    if let Ok(url) = std::env::var(SERVER_URL_ENV)
        && !url.trim().is_empty()
    {
        return Ok(Some(normalize_url(&url)));
    }
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
    Ok(file.server_url.map(|u| normalize_url(&u)))
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

/// Accepts `host:port` as well as a full URL.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_addresses_become_http_urls() {
        assert_eq!(normalize_url("127.0.0.1:7470"), "http://127.0.0.1:7470");
        assert_eq!(normalize_url("http://h:1/"), "http://h:1");
    }
}
