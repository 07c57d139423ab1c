//! TLS for the control plane's gRPC port: the certificate it presents, and
//! the file its containers verify it with.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use tonic::transport::{Identity, ServerTlsConfig};

/// The file in the data folder that holds what containers trust
/// ([`crate::contract::container_env::TLS_CA`] names it).
const CONTAINER_CA_FILE: &str = "tls-ca.pem";

/// The certificate and key a control plane serves TLS with.
#[derive(Clone)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM, leaf first.
    pub cert_pem: Vec<u8>,
    /// The certificate's private key, PEM.
    pub key_pem: Vec<u8>,
    /// The CA certificate(s), PEM, the control plane's containers verify it
    /// with; `None`: its own certificate chain (enough for a self-signed
    /// certificate).
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsConfig")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("ca_pem", &self.ca_pem.as_ref().map(|c| c.len()))
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Reads a PEM certificate chain and its PEM private key.
    pub fn from_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, String> {
        Ok(TlsConfig {
            cert_pem: read_pem(cert.as_ref(), "TLS certificate")?,
            key_pem: read_pem(key.as_ref(), "TLS private key")?,
            ca_pem: None,
        })
    }

    /// The same, with containers trusting the CA certificate(s) in `ca`
    /// rather than the server's own chain.
    pub fn with_ca_file(mut self, ca: impl AsRef<Path>) -> Result<Self, String> {
        self.ca_pem = Some(read_pem(ca.as_ref(), "TLS CA certificate")?);
        Ok(self)
    }

    pub(super) fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
    }

    /// Writes what containers trust to [`container_ca_path`].
    pub(super) fn write_container_ca(&self, data_dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(data_dir)?;
        let partial = data_dir.join(format!("{CONTAINER_CA_FILE}.partial"));
        std::fs::write(&partial, self.ca_pem.as_ref().unwrap_or(&self.cert_pem))?;
        // Renamed into place: a container never reads half a file.
        std::fs::rename(&partial, container_ca_path(data_dir))
    }
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(format!(
            "the {what} {} is not PEM (no `-----BEGIN` line)",
            path.display()
        ));
    }
    Ok(pem)
}

/// The address in a TLS control plane's URL: the one it listens on, or
/// loopback for an unspecified one (`0.0.0.0`, `::`), since a certificate
/// names the address it is verified against.
pub(super) fn dialed(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// Where containers of a control plane with TLS find what to trust: an
/// absolute path, whatever their working directory.
pub(super) fn container_ca_path(data_dir: &Path) -> PathBuf {
    std::path::absolute(data_dir.join(CONTAINER_CA_FILE))
        .unwrap_or_else(|_| data_dir.join(CONTAINER_CA_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_address_is_dialed_on_loopback() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(dialed(at("0.0.0.0:7470")), at("127.0.0.1:7470"));
        assert_eq!(dialed(at("[::]:7470")), at("[::1]:7470"));
        assert_eq!(dialed(at("10.1.2.3:7470")), at("10.1.2.3:7470"));
    }

    #[test]
    fn unreadable_or_non_pem_files_are_named() {
        let dir = std::env::temp_dir().join(format!("modal-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let err = TlsConfig::from_files(&missing, &missing).unwrap_err();
        assert!(
            err.contains("TLS certificate") && err.contains("missing.pem"),
            "{err}"
        );
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let key = dir.join("key.txt");
        std::fs::write(&key, "not a key").unwrap();
        let err = TlsConfig::from_files(&cert, &key).unwrap_err();
        assert!(
            err.contains("TLS private key") && err.contains("key.txt") && err.contains("PEM"),
            "{err}"
        );
        let config = TlsConfig::from_files(&cert, &cert).unwrap();
        let err = config.with_ca_file(dir.join("ca.pem")).unwrap_err();
        assert!(err.contains("CA") && err.contains("ca.pem"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
