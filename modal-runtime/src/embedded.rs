//! The control plane `#[app::main]` runs inside the program when no
//! `MODAL_SERVER_URL` (or config file) names one.
//!
//! Only with the `server` feature: without it the program must be pointed at
//! a standalone control plane, and says so when it is not.

#[cfg(feature = "server")]
pub(crate) use with_server::Embedded;
#[cfg(not(feature = "server"))]
pub(crate) use without_server::Embedded;

#[cfg(feature = "server")]
mod with_server {
    use crate::run_dir::RunDir;
    use crate::server::{Server, ServerConfig};
    use crate::{Error, runtime};

    /// A control plane serving this program alone, with its data in a
    /// temporary folder removed when it stops.
    pub(crate) struct Embedded {
        server: Server,
        data_dir: RunDir,
    }

    impl Embedded {
        /// Starts one on a free loopback port, on the library's runtime so
        /// that it outlives the caller's.
        pub(crate) async fn start() -> Result<Embedded, Error> {
            let data_dir = RunDir::create().map_err(|e| {
                Error::Internal(format!(
                    "cannot make the embedded control plane's folder in {}: {e}; \
                     point TMPDIR at a writable folder",
                    std::env::temp_dir().display()
                ))
            })?;
            let mut config = ServerConfig::new(data_dir.path());
            // The program's app ends with the program: nothing to keep, and
            // no store to open on the way to its first call.
            config.store = crate::server::StoreConfig::Memory;
            let server = runtime::background()
                .spawn(Server::start(config))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(|e| {
                    Error::Internal(format!("cannot start the embedded control plane: {e}"))
                })?;
            Ok(Embedded { server, data_dir })
        }

        pub(crate) fn url(&self) -> &str {
            self.server.url()
        }

        /// Kills its containers, stops serving and removes its data.
        pub(crate) async fn shutdown(self) {
            let _ = runtime::background().spawn(self.server.shutdown()).await;
            self.data_dir.remove();
        }
    }
}

#[cfg(not(feature = "server"))]
mod without_server {
    use crate::Error;
    use crate::config::SERVER_URL_ENV;

    /// Never made: this build has no control plane to embed.
    pub(crate) enum Embedded {}

    impl Embedded {
        pub(crate) async fn start() -> Result<Embedded, Error> {
            Err(Error::Config(format!(
                "no control plane is configured, and this program cannot embed one: it was \
                 built without modal-runtime's `server` feature. Set {SERVER_URL_ENV} to the \
                 URL of a running control plane (`cargo xtask server` prints it), or build \
                 with the `server` feature"
            )))
        }

        pub(crate) fn url(&self) -> &str {
            match *self {}
        }

        pub(crate) async fn shutdown(self) {
            match self {}
        }
    }
}

#[cfg(all(test, not(feature = "server")))]
mod tests {
    use super::Embedded;

    #[test]
    fn without_the_server_feature_starting_names_the_feature_and_the_variable() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let Err(e) = runtime.block_on(Embedded::start());
        let text = e.to_string();
        assert!(text.contains("`server` feature"), "{text}");
        assert!(text.contains("MODAL_SERVER_URL"), "{text}");
    }
}
