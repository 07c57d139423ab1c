//! Access management through a client: tokens, environments and secrets.
//! Every call here needs an admin token.

use std::collections::BTreeMap;

use super::Client;
use crate::Error;
use crate::proto;

impl Client {
    /// Makes a token of `scope` (`admin`, `deploy` or `invoke`), confined to
    /// `environment` (for deploy and invoke; this client's environment when
    /// `None`). Returns it with its secret: `<id>.<secret>`, shown only now.
    pub async fn create_token(
        &self,
        scope: &str,
        environment: Option<&str>,
        label: &str,
    ) -> Result<(proto::TokenInfo, String), Error> {
        let reply = self
            .rpc()
            .create_token(proto::CreateTokenRequest {
                scope: scope.to_owned(),
                environment: environment.unwrap_or_default().to_owned(),
                label: label.to_owned(),
            })
            .await
            .map_err(|s| self.status(s))?
            .into_inner();
        Ok((reply.info.unwrap_or_default(), reply.token))
    }

    /// Every token: ids, scopes, environments, labels; never secrets.
    pub async fn list_tokens(&self) -> Result<Vec<proto::TokenInfo>, Error> {
        let reply = self
            .rpc()
            .list_tokens(proto::ListTokensRequest {})
            .await
            .map_err(|s| self.status(s))?;
        Ok(reply.into_inner().tokens)
    }

    /// Revokes token `id`: its next request is refused.
    pub async fn revoke_token(&self, id: &str) -> Result<(), Error> {
        self.rpc()
            .revoke_token(proto::RevokeTokenRequest { id: id.to_owned() })
            .await
            .map_err(|s| self.status(s))?;
        Ok(())
    }

    pub async fn create_environment(&self, name: &str) -> Result<(), Error> {
        self.rpc()
            .create_environment(proto::EnvironmentRequest {
                name: name.to_owned(),
            })
            .await
            .map_err(|s| self.status(s))?;
        Ok(())
    }

    pub async fn list_environments(&self) -> Result<Vec<proto::EnvironmentInfo>, Error> {
        let reply = self
            .rpc()
            .list_environments(proto::ListEnvironmentsRequest {})
            .await
            .map_err(|s| self.status(s))?;
        Ok(reply.into_inner().environments)
    }

    /// Removes an environment that runs no app, with its secrets and tokens.
    pub async fn remove_environment(&self, name: &str) -> Result<(), Error> {
        self.rpc()
            .remove_environment(proto::EnvironmentRequest {
                name: name.to_owned(),
            })
            .await
            .map_err(|s| self.status(s))?;
        Ok(())
    }

    /// Stores secret `name` in this client's environment; `overwrite`
    /// replaces one of that name.
    pub async fn create_secret(
        &self,
        name: &str,
        values: BTreeMap<String, String>,
        overwrite: bool,
    ) -> Result<(), Error> {
        self.rpc()
            .create_secret(proto::CreateSecretRequest {
                name: name.to_owned(),
                values: values.into_iter().collect(),
                overwrite,
            })
            .await
            .map_err(|s| self.status(s))?;
        Ok(())
    }

    /// The secrets of this client's environment: names and keys only.
    pub async fn list_secrets(&self) -> Result<Vec<proto::SecretInfo>, Error> {
        let reply = self
            .rpc()
            .list_secrets(proto::ListSecretsRequest {})
            .await
            .map_err(|s| self.status(s))?;
        Ok(reply.into_inner().secrets)
    }

    pub async fn remove_secret(&self, name: &str) -> Result<(), Error> {
        self.rpc()
            .remove_secret(proto::RemoveSecretRequest {
                name: name.to_owned(),
            })
            .await
            .map_err(|s| self.status(s))?;
        Ok(())
    }
}
