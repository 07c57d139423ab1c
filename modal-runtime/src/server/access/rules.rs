//! Which caller may call which RPC: one table, by method name, that
//! fails closed (a method it does not name is refused to everyone).

use tonic::Status;

use super::Principal;
use super::tokens::Scope;

/// What an RPC asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// A token of at least this scope (or the control plane's own process).
    Scope(Scope),
    /// A container this control plane started, on its own stream.
    Container,
    /// Payloads: a container (for its inputs and outputs), or a token of
    /// at least this scope.
    ContainerOr(Scope),
}

/// What `method` (its gRPC name, e.g. `Invoke`) needs; `None` for a
/// method this table does not know, which nobody may call.
pub(crate) fn need(method: &str) -> Option<Need> {
    use Need::{Container, ContainerOr};
    use Scope::{Admin, Deploy, Invoke};
    Some(match method {
        "UploadBinary" | "FindBinary" | "CreateApp" | "ListApps" | "StopApp" | "StreamLogs"
        | "HoldApp" | "AppHistory" | "RollbackApp" | "SetWarmPool" | "UpdateAutoscaler" => {
            Need::Scope(Deploy)
        }
        "LookupFunction" | "Invoke" | "Spawn" | "InvokeGenerator" | "GetCallOutcome"
        | "CancelCall" | "Map" | "SpawnMap" | "BindInstance" | "GetStats" => Need::Scope(Invoke),
        // Volumes: what is read, a caller may read; what changes is a
        // deploy's business (it changes what deployed functions see).
        "ListVolumes" | "ListVolumeFiles" | "GetVolumeFile" => Need::Scope(Invoke),
        "CreateVolume" | "RemoveVolume" | "PutVolumeFile" | "RemoveVolumeFile" => {
            Need::Scope(Deploy)
        }
        "PutBlob" | "GetBlob" => ContainerOr(Invoke),
        "ContainerSession" => Container,
        "CreateToken" | "ListTokens" | "RevokeToken" | "CreateEnvironment" | "ListEnvironments"
        | "RemoveEnvironment" | "CreateSecret" | "ListSecrets" | "RemoveSecret" => {
            Need::Scope(Admin)
        }
        _ => return None,
    })
}

/// Whether `method` acts within the request's environment (which must then
/// exist). Managing environments and tokens does not.
pub(crate) fn acts_in_environment(method: &str) -> bool {
    !matches!(
        method,
        "CreateToken"
            | "ListTokens"
            | "RevokeToken"
            | "CreateEnvironment"
            | "ListEnvironments"
            | "RemoveEnvironment"
    )
}

/// `PERMISSION_DENIED` unless `principal` may call `method`, which needs `need`.
pub(crate) fn permit(principal: &Principal, need: Need, method: &str) -> Result<(), Status> {
    let scope = match principal {
        Principal::Local => return Ok(()),
        Principal::Token(token) => Some(token.scope),
        Principal::Container { .. } => None,
    };
    // `scope` is `None` for a container.
    let allowed = match (need, scope) {
        (Need::Scope(needed) | Need::ContainerOr(needed), Some(has)) => has >= needed,
        (Need::Container | Need::ContainerOr(_), None) => true,
        (Need::Container, Some(_)) | (Need::Scope(_), None) => false,
    };
    if allowed {
        return Ok(());
    }
    Err(Status::permission_denied(match (need, scope) {
        (Need::Container, _) => {
            format!("`{method}` is for containers this control plane started, with their own token")
        }
        (Need::Scope(needed) | Need::ContainerOr(needed), None) => format!(
            "a container's token serves its own function's inputs and their payloads only; \
             `{method}` needs a token of scope `{}`",
            needed.as_str()
        ),
        (Need::Scope(needed) | Need::ContainerOr(needed), Some(has)) => format!(
            "this token has scope `{}`; `{method}` needs scope `{}` (an admin makes one with \
             `cargo xtask token new --scope {}`)",
            has.as_str(),
            needed.as_str(),
            needed.as_str()
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every RPC the API defines, read from the proto file itself.
    fn rpcs() -> Vec<String> {
        let proto = include_str!("../../../proto/modal.proto");
        proto
            .lines()
            .filter_map(|l| l.trim().strip_prefix("rpc "))
            .map(|l| l.split('(').next().unwrap().trim().to_owned())
            .collect()
    }

    #[test]
    fn every_rpc_has_a_rule_and_unknown_methods_have_none() {
        let rpcs = rpcs();
        assert!(rpcs.len() >= 30, "{rpcs:?}");
        for rpc in &rpcs {
            assert!(need(rpc).is_some(), "`{rpc}` has no access rule");
        }
        assert_eq!(need("NewRpcNobodyListed"), None);
        assert_eq!(need(""), None);
    }

    #[test]
    fn scopes_and_containers_get_what_the_table_says() {
        let token = |scope| {
            Principal::Token(std::sync::Arc::new(super::super::tokens::TokenRecord {
                id: "tk-1".into(),
                secret_sha256: String::new(),
                scope,
                environment: None,
                label: String::new(),
                created_at_ms: 0,
            }))
        };
        for rpc in rpcs() {
            let need = need(&rpc).unwrap();
            for scope in Scope::ALL {
                let allowed = permit(&token(scope), need, &rpc).is_ok();
                let expected = match need {
                    Need::Scope(s) | Need::ContainerOr(s) => scope >= s,
                    Need::Container => false,
                };
                assert_eq!(allowed, expected, "{rpc} with {scope:?}");
            }
            assert!(permit(&Principal::Local, need, &rpc).is_ok());
        }
        let denied = permit(
            &token(Scope::Invoke),
            Need::Scope(Scope::Deploy),
            "CreateApp",
        )
        .unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(
            denied.message().contains("`deploy`"),
            "{}",
            denied.message()
        );
    }
}
