//! Tokens: an id and a secret, presented as `<id>.<secret>`. Only the
//! SHA-256 of the secret is kept; a presented token is hashed once and
//! then recognised from a cache, so a call pays a map lookup, not a hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token may do; each scope includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scope {
    /// Call deployed functions and read the outcomes of its environment's calls.
    Invoke,
    /// Also deploy, stop, roll back and follow the apps of its environment.
    Deploy,
    /// Everything, in every environment: tokens, environments, secrets.
    Admin,
}

impl Scope {
    pub(crate) const ALL: [Scope; 3] = [Scope::Invoke, Scope::Deploy, Scope::Admin];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scope::Invoke => "invoke",
            Scope::Deploy => "deploy",
            Scope::Admin => "admin",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("`{text}` is not a scope: use admin, deploy or invoke"))
    }
}

/// A token as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TokenRecord {
    pub id: String,
    /// SHA-256 of the secret, in hex.
    pub secret_sha256: String,
    pub scope: Scope,
    /// The environment a deploy or invoke token is confined to; `None`
    /// for admin tokens, which reach every one.
    pub environment: Option<String>,
    pub label: String,
    pub created_at_ms: i64,
}

/// A new token: its record, and the one time its secret is seen
/// (`<id>.<secret>`).
pub(crate) fn new_token(
    scope: Scope,
    environment: Option<String>,
    label: &str,
    created_at_ms: i64,
) -> (TokenRecord, String) {
    let id = format!("tk-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let secret = random_secret();
    let record = TokenRecord {
        secret_sha256: hash(&secret),
        id: id.clone(),
        scope,
        environment,
        label: label.to_owned(),
        created_at_ms,
    };
    (record, format!("{id}.{secret}"))
}

/// 244 random bits, as 64 hex digits.
pub(crate) fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The id and secret of a presented token, if it has that shape.
pub(crate) fn split(presented: &str) -> Option<(&str, &str)> {
    let (id, secret) = presented.split_once('.')?;
    (id.starts_with("tk-") && !secret.is_empty()).then_some((id, secret))
}

/// Whether `secret` is the one `record` was made with. The comparison
/// takes the same time wherever the hashes differ.
pub(crate) fn verifies(record: &TokenRecord, secret: &str) -> bool {
    let presented = hash(secret);
    presented.len() == record.secret_sha256.len()
        && presented
            .bytes()
            .zip(record.secret_sha256.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_with_its_own_secret_only() {
        let (record, presented) = new_token(Scope::Invoke, Some("main".into()), "ci", 1);
        let (id, secret) = split(&presented).unwrap();
        assert_eq!(id, record.id);
        assert!(verifies(&record, secret));
        assert!(!verifies(&record, "0"));
        let (other, _) = new_token(Scope::Invoke, None, "", 1);
        assert!(!verifies(&other, secret));
        // The record holds no secret.
        assert!(!serde_json::to_string(&record).unwrap().contains(secret));
    }

    #[test]
    fn scopes_nest_and_parse() {
        assert!(Scope::Admin > Scope::Deploy && Scope::Deploy > Scope::Invoke);
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Ok(s));
        }
        assert!(
            Scope::parse("root")
                .unwrap_err()
                .contains("admin, deploy or invoke")
        );
        assert_eq!(split("nope"), None);
        assert_eq!(split("tk-1."), None);
    }
}
