//! Where the control plane is: `MODAL_SERVER_URL`, else a config file, else
//! none (the program embeds one).
//!
//! The config file is `$MODAL_CONFIG`, or `$XDG_CONFIG_HOME/modal-rs/config.toml`
//! (`~/.config/modal-rs/config.toml`), holding `server_url = "http://..."`.
//!
//! Either may name several control planes, comma-separated (a leader and a
//! standby, say): callers use the first that answers.
//!
//! The token a caller presents is `MODAL_TOKEN`, else `token` in the config
//! file, else the one the credentials file (`credentials.toml` beside the
//! config file, readable by its owner only) holds for the control plane's
//! URL: `cargo xtask server` writes its admin token there at first start.
//! A program talking to the control plane it embeds needs none of these.
//! The environment it acts in is `MODAL_ENVIRONMENT`, else `environment` in
//! the config file, else the token's own (or `main`).
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
/// Environment variable holding the caller's token.
pub const TOKEN_ENV: &str = "MODAL_TOKEN";
/// Environment variable naming the environment callers act in.
pub const ENVIRONMENT_ENV: &str = "MODAL_ENVIRONMENT";
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
    token: Option<String>,
    environment: Option<String>,
    tls_ca: Option<PathBuf>,
}

/// The credentials file: a token per control plane URL.
#[derive(Debug, Default, serde::Serialize, Deserialize)]
struct CredentialsFile {
    #[serde(default)]
    servers: std::collections::BTreeMap<String, Credential>,
}

#[derive(Debug, Clone, serde::Serialize, Deserialize)]
struct Credential {
    token: String,
}

/// The configured control plane URL, or `None` for the embedded default.
pub fn server_url() -> Result<Option<String>, Error> {
    if let Some(url) = env_var(SERVER_URL_ENV) {
        return Ok(Some(normalize_url(&url)));
    }
    Ok(config_file()?.server_url.map(|u| normalize_url(&u)))
}

/// The token to present to the control plane at any of `urls`: the one a
/// control plane in this process made for its own callers, else
/// `MODAL_TOKEN`, the config file's `token`, or the credentials file's
/// entry for one of the URLs. `None` if there is none.
pub fn token_for(urls: &[String]) -> Result<Option<String>, Error> {
    if let Some(token) = urls.iter().find_map(|u| local_token(u)) {
        return Ok(Some(token));
    }
    if let Some(token) = env_var(TOKEN_ENV) {
        return Ok(Some(token.trim().to_owned()));
    }
    if let Some(token) = config_file()?.token {
        return Ok(Some(token));
    }
    let Some(path) = credentials_path() else {
        return Ok(None);
    };
    for url in urls {
        if let Some(token) = read_credential(&path, url).map_err(Error::Config)? {
            return Ok(Some(token));
        }
    }
    Ok(None)
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
    let Some(ca) = config_file()?.tls_ca else {
        return Ok(None);
    };
    let folder = config_path().and_then(|p| p.parent().map(PathBuf::from));
    Ok(Some(match folder {
        Some(folder) => folder.join(ca),
        None => ca,
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

/// The environment callers act in, if one is configured.
pub fn environment() -> Result<Option<String>, Error> {
    if let Some(env) = env_var(ENVIRONMENT_ENV) {
        return Ok(Some(env.trim().to_owned()));
    }
    Ok(config_file()?.environment)
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn config_file() -> Result<ConfigFile, Error> {
    let Some(path) = config_path() else {
        return Ok(ConfigFile::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => {
            return Err(Error::Config(format!(
                "cannot read the modal-rs config file {}: {e}",
                path.display()
            )));
        }
    };
    toml::from_str(&text).map_err(|e| {
        Error::Config(format!(
            "the modal-rs config file {} is not valid: {e}",
            path.display()
        ))
    })
}

/// Where the credentials file is: `credentials.toml` beside the config file.
pub fn credentials_path() -> Option<PathBuf> {
    Some(config_path()?.with_file_name("credentials.toml"))
}

/// The token the credentials file at `path` holds for `url`, if any.
pub fn read_credential(path: &std::path::Path, url: &str) -> Result<Option<String>, String> {
    let file = read_credentials(path)?;
    Ok(file
        .servers
        .get(&normalize_url(url))
        .map(|c| c.token.clone()))
}

fn read_credentials(path: &std::path::Path) -> Result<CredentialsFile, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            format!(
                "the modal-rs credentials file {} is not valid: {e}",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CredentialsFile::default()),
        Err(e) => Err(format!(
            "cannot read the modal-rs credentials file {}: {e}",
            path.display()
        )),
    }
}

/// Sets the token for `url` in the credentials file at `path`, which is
/// (re)written readable and writable by its owner only, in a folder only
/// its owner may enter if it makes that folder.
pub fn write_credential(path: &std::path::Path, url: &str, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let mut file = read_credentials(path).map_err(std::io::Error::other)?;
    file.servers.insert(
        normalize_url(url),
        Credential {
            token: token.to_owned(),
        },
    );
    let text = format!(
        "# Tokens for modal-rs control planes, by URL. Keep this file private.\n{}",
        toml::to_string(&file).map_err(std::io::Error::other)?
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tmp = path.with_extension("toml.partial");
    let _ = std::fs::remove_file(&tmp);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    out.write_all(text.as_bytes())?;
    out.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Tokens of control planes running in this process, by their URL: what
/// lets a program (and its embedded control plane) need no configuration.
static LOCAL_TOKENS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// Registers the token of a control plane this process runs at `url`.
pub(crate) fn register_local_token(url: &str, token: &str) {
    LOCAL_TOKENS
        .lock()
        .unwrap()
        .push((normalize_url(url), token.to_owned()));
}

/// Forgets the token of this process's control plane at `url`.
pub(crate) fn forget_local_token(url: &str) {
    let url = normalize_url(url);
    LOCAL_TOKENS.lock().unwrap().retain(|(u, _)| *u != url);
}

fn local_token(url: &str) -> Option<String> {
    let url = normalize_url(url);
    LOCAL_TOKENS
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(u, _)| *u == url)
        .map(|(_, t)| t.clone())
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
    fn credentials_are_kept_by_url_in_an_owner_only_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("modal-creds-{}", std::process::id()));
        let path = dir.join("credentials.toml");
        write_credential(&path, "127.0.0.1:1", "tk-a.1").unwrap();
        write_credential(&path, "http://127.0.0.1:2/", "tk-b.2").unwrap();
        write_credential(&path, "http://127.0.0.1:1", "tk-c.3").unwrap();
        assert_eq!(
            read_credential(&path, "http://127.0.0.1:1")
                .unwrap()
                .as_deref(),
            Some("tk-c.3")
        );
        assert_eq!(
            read_credential(&path, "127.0.0.1:2").unwrap().as_deref(),
            Some("tk-b.2")
        );
        assert_eq!(read_credential(&path, "http://other:1").unwrap(), None);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(dir).unwrap();
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
