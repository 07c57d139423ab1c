//! Who may do what: tokens and their scopes, environments, secrets, and
//! the check every request passes before it reaches the service.
//!
//! [`Access`] owns the tokens, environments and secrets (in memory, and in
//! the store); `layer.rs` identifies each request's caller and checks it
//! against the table in `rules.rs`; the service then confines what it does
//! to the caller's environment ([`Caller::environment`]).

mod layer;
pub(crate) mod names;
pub(crate) mod rules;
pub(crate) mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use tonic::Status;

pub(crate) use layer::{Authenticate, identify_web};
pub(crate) use names::DEFAULT_ENVIRONMENT;
use names::{check_environment_name, check_secret_name};
pub(crate) use tokens::Scope;
pub(crate) use tokens::TokenRecord;

use super::pool::Pool;
use super::store::{AccessKind, AccessRecord, Store, Write, now_ms};
use crate::proto;

/// Who sent a request.
#[derive(Clone)]
pub(crate) enum Principal {
    /// The control plane's own process (an embedded run): everything,
    /// including naming files on this machine.
    Local,
    Token(Arc<TokenRecord>),
    /// A container this control plane started, serving `function`.
    Container {
        container_id: String,
        function: Arc<Pool>,
    },
}

/// A request's caller, as the access layer found it: put in the request's
/// extensions for the service.
#[derive(Clone)]
pub(crate) struct Caller {
    pub principal: Principal,
    /// The environment the request acts in.
    pub environment: String,
}

impl Caller {
    /// Only the control plane's own process may name a binary by its path
    /// on this machine.
    pub(crate) fn may_name_server_paths(&self) -> bool {
        matches!(self.principal, Principal::Local)
    }

    /// `PERMISSION_DENIED` unless the app keyed `app_key` (a function's,
    /// a call's) is in this caller's environment.
    pub(crate) fn check_app(&self, app_key: &str, what: &str) -> Result<(), Status> {
        let of = names::environment_of(app_key);
        if of == self.environment {
            return Ok(());
        }
        Err(Status::permission_denied(format!(
            "{what} belongs to environment `{of}`; this request acts in environment `{}` \
             (use a token of `{of}`, or set the environment: MODAL_ENVIRONMENT or --env)",
            self.environment
        )))
    }

    /// The catalog's key for app `name` in this caller's environment. A
    /// name holding `/` is refused: it could name another environment's app.
    pub(crate) fn app_key(&self, name: &str) -> Result<String, Status> {
        if name.contains('/') {
            return Err(Status::invalid_argument(format!(
                "`{name}` is not an app name: app names cannot contain `/` (to reach another \
                 environment, set the environment: MODAL_ENVIRONMENT or --env)"
            )));
        }
        Ok(names::app_key(&self.environment, name))
    }
}

/// The caller a request's extensions hold: every request that reached the
/// service passed the access layer, which put it there.
pub(crate) fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::internal("the request was not authenticated"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct EnvironmentRecord {
    created_at_ms: i64,
}

/// A secret as stored: its keys and values.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SecretRecord {
    pub values: BTreeMap<String, String>,
    pub created_at_ms: i64,
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, Arc<TokenRecord>>,
    /// Tokens already verified, as presented, to their ids.
    verified: HashMap<String, String>,
    environments: BTreeMap<String, EnvironmentRecord>,
    /// By environment, then name.
    secrets: BTreeMap<(String, String), SecretRecord>,
}

/// The owner of tokens, environments and secrets.
pub(crate) struct Access {
    state: RwLock<State>,
    store: Store,
    /// What the control plane's own process presents (never stored).
    local_token: String,
}

impl Access {
    /// What `records` (from the store) hold; environment `main` always
    /// exists.
    pub(crate) fn open(records: &[AccessRecord], store: Store) -> Access {
        let mut state = State::default();
        for r in records {
            let Some(json) = &r.record else { continue };
            let loaded = match r.kind {
                AccessKind::Token => serde_json::from_str::<TokenRecord>(json).map(|t| {
                    state.tokens.insert(t.id.clone(), Arc::new(t));
                }),
                AccessKind::Environment => serde_json::from_str(json).map(|e| {
                    state.environments.insert(r.key.clone(), e);
                }),
                AccessKind::Secret => serde_json::from_str(json).map(|s| {
                    if let Some((env, name)) = r.key.split_once('/') {
                        state.secrets.insert((env.to_owned(), name.to_owned()), s);
                    }
                }),
            };
            if let Err(e) = loaded {
                tracing::warn!(kind = r.kind.as_str(), key = %r.key, "skipping an unreadable access record: {e}");
            }
        }
        state
            .environments
            .entry(DEFAULT_ENVIRONMENT.to_owned())
            .or_insert(EnvironmentRecord { created_at_ms: 0 });
        Access {
            state: RwLock::new(state),
            store,
            local_token: format!("local.{}", tokens::random_secret()),
        }
    }

    /// The token the control plane's own process presents.
    pub(crate) fn local_token(&self) -> &str {
        &self.local_token
    }

    /// The principal a presented user token stands for.
    pub(crate) fn principal(&self, presented: &str) -> Result<Principal, Status> {
        if presented == self.local_token {
            return Ok(Principal::Local);
        }
        let unknown = || {
            Status::unauthenticated(
                "the token is not valid here: it was revoked, belongs to another control plane, \
                 or is mistyped (an admin lists tokens with `cargo xtask token list`)",
            )
        };
        {
            let state = self.state.read().unwrap();
            if let Some(id) = state.verified.get(presented) {
                return state
                    .tokens
                    .get(id)
                    .map(|t| Principal::Token(t.clone()))
                    .ok_or_else(unknown);
            }
        }
        let (id, secret) = tokens::split(presented).ok_or_else(unknown)?;
        let mut state = self.state.write().unwrap();
        let token = state.tokens.get(id).cloned().ok_or_else(unknown)?;
        if !tokens::verifies(&token, secret) {
            return Err(unknown());
        }
        state.verified.insert(presented.to_owned(), id.to_owned());
        Ok(Principal::Token(token))
    }

    /// Token `id`, unless it was revoked (or its environment removed).
    pub(crate) fn token(&self, id: &str) -> Option<Arc<TokenRecord>> {
        self.state.read().unwrap().tokens.get(id).cloned()
    }

    pub(crate) fn environment_exists(&self, name: &str) -> bool {
        self.state.read().unwrap().environments.contains_key(name)
    }

    /// A new token; its secret is in the returned string only.
    pub(crate) async fn create_token(
        &self,
        scope: Scope,
        environment: Option<String>,
        label: &str,
    ) -> Result<(proto::TokenInfo, String), Status> {
        let environment = match (scope, environment) {
            (Scope::Admin, Some(_)) => {
                return Err(Status::invalid_argument(
                    "an admin token reaches every environment: leave out the environment",
                ));
            }
            (Scope::Admin, None) => None,
            (_, Some(env)) => {
                self.require_environment(&env)?;
                Some(env)
            }
            (_, None) => Some(DEFAULT_ENVIRONMENT.to_owned()),
        };
        if label.len() > 200 {
            return Err(Status::invalid_argument(
                "a token's label is at most 200 bytes",
            ));
        }
        let (record, presented) = tokens::new_token(scope, environment, label, now_ms());
        self.commit(AccessKind::Token, &record.id, Some(&record))
            .await?;
        let info = token_info(&record);
        self.state
            .write()
            .unwrap()
            .tokens
            .insert(record.id.clone(), Arc::new(record));
        Ok((info, presented))
    }

    pub(crate) fn list_tokens(&self) -> Vec<proto::TokenInfo> {
        let state = self.state.read().unwrap();
        let mut tokens: Vec<_> = state.tokens.values().map(|t| token_info(t)).collect();
        tokens.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        tokens
    }

    /// Revokes token `id`: its next request is refused.
    pub(crate) async fn revoke_token(&self, id: &str) -> Result<(), Status> {
        if !self.state.read().unwrap().tokens.contains_key(id) {
            return Err(Status::not_found(format!(
                "no token has the id `{id}` (`cargo xtask token list` shows them)"
            )));
        }
        self.commit::<TokenRecord>(AccessKind::Token, id, None)
            .await?;
        let mut state = self.state.write().unwrap();
        state.tokens.remove(id);
        state.verified.retain(|_, token_id| token_id != id);
        Ok(())
    }

    /// Whether this control plane has a token `presented` verifies as, of
    /// scope admin.
    pub(crate) fn is_admin_token(&self, presented: &str) -> bool {
        matches!(self.principal(presented), Ok(Principal::Token(t)) if t.scope == Scope::Admin)
    }

    pub(crate) fn require_environment(&self, name: &str) -> Result<(), Status> {
        if self.environment_exists(name) {
            return Ok(());
        }
        check_environment_name(name).map_err(Status::invalid_argument)?;
        Err(Status::not_found(format!(
            "environment `{name}` does not exist: an admin creates it with \
             `cargo xtask env create {name}`"
        )))
    }

    pub(crate) async fn create_environment(&self, name: &str) -> Result<(), Status> {
        check_environment_name(name).map_err(Status::invalid_argument)?;
        if self.environment_exists(name) {
            return Err(Status::already_exists(format!(
                "environment `{name}` exists already"
            )));
        }
        let record = EnvironmentRecord {
            created_at_ms: now_ms(),
        };
        self.commit(AccessKind::Environment, name, Some(&record))
            .await?;
        self.state
            .write()
            .unwrap()
            .environments
            .insert(name.to_owned(), record);
        Ok(())
    }

    /// Every environment, with its secrets' count.
    pub(crate) fn environments(&self) -> Vec<(String, u32)> {
        let state = self.state.read().unwrap();
        state
            .environments
            .keys()
            .map(|env| {
                let secrets = state.secrets.keys().filter(|(e, _)| e == env).count();
                (env.clone(), secrets as u32)
            })
            .collect()
    }

    /// Removes an environment that holds no app (`apps`: how many it holds),
    /// with its secrets and tokens.
    pub(crate) async fn remove_environment(&self, name: &str, apps: usize) -> Result<(), Status> {
        if name == DEFAULT_ENVIRONMENT {
            return Err(Status::failed_precondition(
                "environment `main` cannot be removed",
            ));
        }
        self.require_environment(name)?;
        if apps > 0 {
            return Err(Status::failed_precondition(format!(
                "environment `{name}` still holds {apps} app(s): stop them first \
                 (`cargo xtask app stop NAME --env {name}`)"
            )));
        }
        let (secrets, tokens): (Vec<String>, Vec<String>) = {
            let state = self.state.read().unwrap();
            (
                state
                    .secrets
                    .keys()
                    .filter(|(e, _)| e == name)
                    .map(|(e, n)| format!("{e}/{n}"))
                    .collect(),
                state
                    .tokens
                    .values()
                    .filter(|t| t.environment.as_deref() == Some(name))
                    .map(|t| t.id.clone())
                    .collect(),
            )
        };
        let mut writes = vec![removal(AccessKind::Environment, name)];
        writes.extend(secrets.iter().map(|k| removal(AccessKind::Secret, k)));
        writes.extend(tokens.iter().map(|k| removal(AccessKind::Token, k)));
        self.store
            .commit(writes)
            .await
            .map_err(|e| e.into_status())?;
        let mut state = self.state.write().unwrap();
        state.environments.remove(name);
        state.secrets.retain(|(e, _), _| e != name);
        state.tokens.retain(|id, _| !tokens.contains(id));
        state.verified.retain(|_, id| !tokens.contains(id));
        Ok(())
    }

    pub(crate) async fn create_secret(
        &self,
        environment: &str,
        name: &str,
        values: BTreeMap<String, String>,
        overwrite: bool,
    ) -> Result<(), Status> {
        check_secret_name(name).map_err(Status::invalid_argument)?;
        if values.is_empty() {
            return Err(Status::invalid_argument(format!(
                "secret `{name}` needs at least one KEY=VALUE"
            )));
        }
        for (key, value) in &values {
            crate::options::check_env_name(key)
                .map_err(|e| Status::invalid_argument(format!("secret `{name}`: {e}")))?;
            if value.len() > 64 << 10 || value.contains('\0') {
                return Err(Status::invalid_argument(format!(
                    "secret `{name}`: the value of `{key}` must be at most 64 KiB, with no NUL"
                )));
            }
        }
        let key = (environment.to_owned(), name.to_owned());
        if !overwrite && self.state.read().unwrap().secrets.contains_key(&key) {
            return Err(Status::already_exists(format!(
                "secret `{name}` exists already in environment `{environment}`; pass \
                 --overwrite to replace it"
            )));
        }
        let record = SecretRecord {
            values,
            created_at_ms: now_ms(),
        };
        self.commit(
            AccessKind::Secret,
            &format!("{environment}/{name}"),
            Some(&record),
        )
        .await?;
        self.state.write().unwrap().secrets.insert(key, record);
        Ok(())
    }

    /// The secrets of `environment`: names and keys, never values.
    pub(crate) fn list_secrets(&self, environment: &str) -> Vec<proto::SecretInfo> {
        self.state
            .read()
            .unwrap()
            .secrets
            .iter()
            .filter(|((e, _), _)| e == environment)
            .map(|((_, name), s)| proto::SecretInfo {
                name: name.clone(),
                keys: s.values.keys().cloned().collect(),
                created_at_ms: s.created_at_ms,
            })
            .collect()
    }

    pub(crate) async fn remove_secret(&self, environment: &str, name: &str) -> Result<(), Status> {
        let key = (environment.to_owned(), name.to_owned());
        if !self.state.read().unwrap().secrets.contains_key(&key) {
            return Err(Status::not_found(format!(
                "no secret `{name}` in environment `{environment}`"
            )));
        }
        self.commit::<SecretRecord>(AccessKind::Secret, &format!("{environment}/{name}"), None)
            .await?;
        self.state.write().unwrap().secrets.remove(&key);
        Ok(())
    }

    /// The variables secrets `names` of `environment` set, in order (a later
    /// secret's key wins); an error naming the first that does not exist.
    pub(crate) fn secret_env(
        &self,
        environment: &str,
        names: &[impl AsRef<str>],
    ) -> Result<Vec<(String, String)>, String> {
        let state = self.state.read().unwrap();
        let mut vars = BTreeMap::new();
        for name in names {
            let name = name.as_ref();
            let secret = state
                .secrets
                .get(&(environment.to_owned(), name.to_owned()))
                .ok_or_else(|| {
                    format!(
                        "secret `{name}` does not exist in environment `{environment}`: \
                         create it with `cargo xtask secret create {name} KEY=VALUE --env \
                         {environment}`"
                    )
                })?;
            vars.extend(secret.values.clone());
        }
        Ok(vars.into_iter().collect())
    }

    /// Makes sure the owner-only credentials file at `path` holds an admin
    /// token of this control plane for `url`, creating one if it does not.
    /// Returns whether it wrote the file.
    pub(crate) async fn ensure_admin_credential(
        &self,
        path: &Path,
        url: &str,
    ) -> std::io::Result<bool> {
        if let Ok(Some(token)) = crate::config::read_credential(path, url)
            && self.is_admin_token(&token)
        {
            return Ok(false);
        }
        let (_, presented) = self
            .create_token(Scope::Admin, None, "made at first start")
            .await
            .map_err(|s| std::io::Error::other(s.message().to_owned()))?;
        crate::config::write_credential(path, url, &presented)?;
        Ok(true)
    }

    async fn commit<T: Serialize>(
        &self,
        kind: AccessKind,
        key: &str,
        record: Option<&T>,
    ) -> Result<(), Status> {
        let write = Write::Access(AccessRecord {
            kind,
            key: key.to_owned(),
            record: record.map(|r| serde_json::to_string(r).expect("records are plain data")),
        });
        self.store
            .commit(vec![write])
            .await
            .map_err(|e| e.into_status())
    }
}

fn removal(kind: AccessKind, key: &str) -> Write {
    Write::Access(AccessRecord {
        kind,
        key: key.to_owned(),
        record: None,
    })
}

fn token_info(t: &TokenRecord) -> proto::TokenInfo {
    proto::TokenInfo {
        id: t.id.clone(),
        scope: t.scope.as_str().to_owned(),
        environment: t.environment.clone().unwrap_or_default(),
        label: t.label.clone(),
        created_at_ms: t.created_at_ms,
    }
}
