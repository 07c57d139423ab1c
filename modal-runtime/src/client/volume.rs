//! Volumes through a client: making, listing and removing them
//! ([`Client::create_volume`] and its kin), and [`Volume`], a handle on
//! one that reads and writes its files. Files travel a chunk at a time
//! both ways: none is held whole on the control plane.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::OnceCell;

use super::Client;
use crate::Error;
use crate::contract::STREAM_CHUNK_BYTES;
use crate::proto;

impl Client {
    /// Makes volume `name` in this client's environment; with `exist_ok`,
    /// one that exists already is no error.
    pub async fn create_volume(&self, name: &str, exist_ok: bool) -> Result<(), Error> {
        self.rpc()
            .create_volume(proto::CreateVolumeRequest {
                name: name.to_owned(),
                exist_ok,
            })
            .await
            .map_err(|s| self.status(s))?;
        Ok(())
    }

    /// The volumes of this client's environment, by name.
    pub async fn list_volumes(&self) -> Result<Vec<proto::VolumeInfo>, Error> {
        let reply = self
            .rpc()
            .list_volumes(proto::ListVolumesRequest {})
            .await
            .map_err(|s| self.status(s))?;
        Ok(reply.into_inner().volumes)
    }

    /// Removes volume `name` and everything in it.
    pub async fn remove_volume(&self, name: &str) -> Result<(), Error> {
        self.rpc()
            .remove_volume(proto::RemoveVolumeRequest {
                name: name.to_owned(),
            })
            .await
            .map_err(|s| self.status(s))?;
        Ok(())
    }

    /// A handle on volume `name` of this client's environment (which must
    /// exist by its first use).
    pub fn volume(&self, name: &str) -> Volume {
        Volume::new(Some(self.clone()), name, false)
    }
}

/// A handle on a volume, like Modal's `Volume.from_name`: nothing is asked
/// of the control plane until its first use (or [`Volume::hydrate`]).
/// Paths are relative to the volume's root; a leading `/` is ignored.
///
/// ```ignore
/// let cache = Volume::from_name("model-cache", true);
/// cache.write_file("weights.bin", bytes, true).await?;
/// let listed = cache.listdir("/", false).await?;
/// ```
#[derive(Clone)]
pub struct Volume {
    name: String,
    create_if_missing: bool,
    /// `None`: the default client, found at first use.
    client: Option<Client>,
    /// Set once the volume is known to exist (made, with `create_if_missing`).
    hydrated: Arc<OnceCell<Client>>,
}

impl std::fmt::Debug for Volume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Volume({})", self.name)
    }
}

impl Volume {
    /// Volume `name` of the default client's environment; with
    /// `create_if_missing`, made at first use if it does not exist.
    pub fn from_name(name: &str, create_if_missing: bool) -> Volume {
        Volume::new(None, name, create_if_missing)
    }

    /// [`Volume::from_name`] through `client` (and in its environment).
    pub fn from_name_with(client: &Client, name: &str, create_if_missing: bool) -> Volume {
        Volume::new(Some(client.clone()), name, create_if_missing)
    }

    fn new(client: Option<Client>, name: &str, create_if_missing: bool) -> Volume {
        Volume {
            name: name.to_owned(),
            create_if_missing,
            client,
            hydrated: Arc::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes the volume now if it is to be made when missing, and checks
    /// that it exists; later uses ask nothing more.
    pub async fn hydrate(&self) -> Result<&Volume, Error> {
        self.client().await?;
        Ok(self)
    }

    /// The client to use, once the volume is known to exist.
    async fn client(&self) -> Result<&Client, Error> {
        self.hydrated
            .get_or_try_init(|| async {
                let client = match &self.client {
                    Some(client) => client.clone(),
                    None => Client::default_client()?,
                };
                if self.create_if_missing {
                    client.create_volume(&self.name, true).await?;
                }
                Ok(client)
            })
            .await
    }

    /// The entries at `path` (a folder, `""` or `"/"` for the root; or a
    /// file): a folder's own, or with `recursive` everything below it.
    pub async fn listdir(
        &self,
        path: &str,
        recursive: bool,
    ) -> Result<Vec<proto::VolumeEntry>, Error> {
        let client = self.client().await?;
        let reply = client
            .rpc()
            .list_volume_files(proto::ListVolumeFilesRequest {
                volume: self.name.clone(),
                path: path.to_owned(),
                recursive,
            })
            .await
            .map_err(|s| client.status(s))?
            .into_inner();
        if reply.truncated {
            return Err(Error::Config(format!(
                "`{path}` of volume `{}` holds more entries than one listing returns ({} \
                 listed): list its folders one at a time",
                self.name,
                reply.entries.len()
            )));
        }
        Ok(reply.entries)
    }

    /// The whole content of the file at `path`.
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, Error> {
        let mut content = Vec::new();
        self.read_file_into(path, &mut content).await?;
        Ok(content)
    }

    /// Streams the file at `path` into `out` as it arrives; returns its size.
    pub async fn read_file_into(
        &self,
        path: &str,
        out: &mut (impl AsyncWrite + Unpin),
    ) -> Result<u64, Error> {
        let client = self.client().await?;
        let mut stream = client
            .rpc()
            .get_volume_file(proto::GetVolumeFileRequest {
                volume: self.name.clone(),
                path: path.to_owned(),
            })
            .await
            .map_err(|s| client.status(s))?
            .into_inner();
        let mut size = 0;
        while let Some(chunk) = stream.message().await.map_err(|s| client.status(s))? {
            out.write_all(&chunk.data).await.map_err(|e| {
                Error::Config(format!(
                    "cannot write `{path}` of volume `{}`: {e}",
                    self.name
                ))
            })?;
            size += chunk.data.len() as u64;
        }
        out.flush()
            .await
            .map_err(|e| Error::Config(format!("cannot write `{path}`: {e}")))?;
        Ok(size)
    }

    /// Writes `data` as the file at `path` (making the folders above it);
    /// without `overwrite`, an existing file there is an error. Readers see
    /// the old file or the whole new one, never a part. Returns its size.
    pub async fn write_file(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        overwrite: bool,
    ) -> Result<u64, Error> {
        let data: Bytes = data.into();
        let mut chunks: Vec<Bytes> = (0..data.len())
            .step_by(STREAM_CHUNK_BYTES)
            .map(|at| data.slice(at..data.len().min(at + STREAM_CHUNK_BYTES)))
            .collect();
        if chunks.is_empty() {
            chunks.push(Bytes::new());
        }
        let size = data.len() as u64;
        self.put(path, overwrite, size, futures::stream::iter(chunks))
            .await
    }

    /// Uploads the local file `local` as the file at `path`, a chunk at a
    /// time; as [`Volume::write_file`] otherwise.
    pub async fn put_file(&self, local: &Path, path: &str, overwrite: bool) -> Result<u64, Error> {
        let unreadable =
            |e: std::io::Error| Error::Config(format!("cannot read {}: {e}", local.display()));
        let file = tokio::fs::File::open(local).await.map_err(unreadable)?;
        // A read that fails ends the stream short of this size: the
        // control plane then refuses the upload rather than keep a part.
        let size = file.metadata().await.map_err(unreadable)?.len();
        let chunks = futures::stream::unfold(Some(file), |file| async move {
            let mut file = file?;
            let mut data = bytes::BytesMut::with_capacity(STREAM_CHUNK_BYTES);
            while data.len() < STREAM_CHUNK_BYTES {
                match file.read_buf(&mut data).await {
                    Ok(0) => {
                        // The last piece (possibly empty, for an empty file).
                        return Some((data.freeze(), None));
                    }
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
            Some((data.freeze(), Some(file)))
        });
        self.put(path, overwrite, size, chunks).await
    }

    async fn put(
        &self,
        path: &str,
        overwrite: bool,
        size: u64,
        chunks: impl futures::Stream<Item = Bytes> + Send + 'static,
    ) -> Result<u64, Error> {
        use futures::StreamExt;
        let client = self.client().await?;
        let (volume, path) = (self.name.clone(), path.to_owned());
        let mut first = true;
        let messages = chunks.map(move |data| {
            let header = std::mem::take(&mut first);
            proto::VolumeFileChunk {
                volume: if header {
                    volume.clone()
                } else {
                    String::new()
                },
                path: if header { path.clone() } else { String::new() },
                overwrite: header && overwrite,
                size: header.then_some(size),
                data,
            }
        });
        let reply = client
            .rpc()
            .put_volume_file(messages)
            .await
            .map_err(|s| client.status(s))?;
        Ok(reply.into_inner().size)
    }

    /// Removes the file at `path`; with `recursive`, also a folder and
    /// everything in it.
    pub async fn remove_file(&self, path: &str, recursive: bool) -> Result<(), Error> {
        let client = self.client().await?;
        client
            .rpc()
            .remove_volume_file(proto::RemoveVolumeFileRequest {
                volume: self.name.clone(),
                path: path.to_owned(),
                recursive,
            })
            .await
            .map_err(|s| client.status(s))?;
        Ok(())
    }
}

/// A volume handle where a volume name is expected:
/// `ClsOptions::new().volumes([("/data", &volume)])`.
impl From<&Volume> for String {
    fn from(volume: &Volume) -> String {
        volume.name.clone()
    }
}
