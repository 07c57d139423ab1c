//! Volumes: named folders of an environment, `<data dir>/volumes/<env>/<name>/`,
//! that functions mount and clients read and write. A volume exists while
//! its folder does; nothing about it is kept in the store.
//!
//! Containers write into volumes too, symbolic links included, so every
//! path a client sends is walked one component at a time from the
//! volume's root with `O_NOFOLLOW`, each step relative to the folder
//! already opened (through its `/proc/self/fd` link): a link, wherever it
//! is and whenever it appears, is never followed out of the volume.
//!
//! Uploads are written in `<data dir>/volumes/.uploads/` (no environment
//! is named so: environment names start with a letter) and moved into the
//! volume once whole, so an upload cut short leaves nothing in it.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

use tonic::Status;

use super::backend::VolumeMount;
use crate::proto;
use crate::volume::check_volume_name;

/// Where uploads are written until they are whole.
const UPLOADS: &str = ".uploads";

/// Longest path inside a volume, in bytes.
const PATH_MAX_LEN: usize = 4096;

/// Most entries one listing returns, and most bytes of their paths: a
/// listing is one message, well under the message limit.
const LIST_MAX_ENTRIES: usize = 100_000;
const LIST_MAX_PATH_BYTES: usize = 8 << 20;

/// The folder of volume `name` of environment `env` under `data_dir`: what
/// backends mount (or hand to the process) as that volume.
pub(crate) fn volume_dir(data_dir: &Path, env: &str, name: &str) -> PathBuf {
    data_dir.join("volumes").join(env).join(name)
}

/// A path inside a volume, as a client or CLI writes it: relative to the
/// volume's root, a leading `/` ignored, `.` and empty components dropped.
/// `..` and NUL are refused. The root itself is the empty path.
pub(crate) fn volume_relative_path(path: &str) -> Result<PathBuf, String> {
    if path.len() > PATH_MAX_LEN {
        return Err(format!(
            "a path in a volume is at most {PATH_MAX_LEN} bytes; this one has {}",
            path.len()
        ));
    }
    if path.contains('\0') {
        return Err(format!(
            "`{}` holds a NUL byte, which no file name can",
            path.escape_default()
        ));
    }
    let mut relative = PathBuf::new();
    for component in Path::new(path.trim_start_matches('/')).components() {
        match component {
            Component::Normal(c) => relative.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "`{path}` holds `..`: paths in a volume stay in it; name the file from the \
                     volume's root (e.g. `dir/file`)"
                ));
            }
            // Leading `/`s were trimmed: none is left to be a root.
            Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(relative)
}

/// The owner of volumes, on disk under `<data dir>/volumes`.
pub(crate) struct Volumes {
    /// The data folder, absolute: containers get paths under it, whatever
    /// their working folder.
    data_dir: PathBuf,
    /// `<data dir>/volumes`.
    root: PathBuf,
}

impl Volumes {
    /// Opens the volumes under `data_dir`. Uploads a killed control plane
    /// left half written are removed: no client is left to finish them.
    pub(crate) fn open(data_dir: &Path) -> std::io::Result<Volumes> {
        let data_dir = std::path::absolute(data_dir)?;
        let root = data_dir.join("volumes");
        let uploads = root.join(UPLOADS);
        std::fs::create_dir_all(&uploads)?;
        for entry in std::fs::read_dir(&uploads)?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        Ok(Volumes { data_dir, root })
    }

    fn env_dir(&self, env: &str) -> PathBuf {
        self.root.join(env)
    }

    fn dir(&self, env: &str, name: &str) -> PathBuf {
        super::volume_dir(&self.data_dir, env, name)
    }

    fn exists(&self, env: &str, name: &str) -> bool {
        check_volume_name(name).is_ok()
            && std::fs::symlink_metadata(self.dir(env, name)).is_ok_and(|m| m.is_dir())
    }

    /// `NOT_FOUND` (or `INVALID_ARGUMENT` for a bad name) unless volume
    /// `name` exists in `env`.
    fn require(&self, env: &str, name: &str) -> Result<(), Status> {
        check_volume_name(name).map_err(Status::invalid_argument)?;
        if self.exists(env, name) {
            Ok(())
        } else {
            Err(Status::not_found(missing(env, name)))
        }
    }

    pub(crate) fn create(&self, env: &str, name: &str, exist_ok: bool) -> Result<(), Status> {
        check_volume_name(name).map_err(Status::invalid_argument)?;
        std::fs::create_dir_all(self.env_dir(env)).map_err(io("create the volume"))?;
        match std::fs::create_dir(self.dir(env, name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if exist_ok && self.exists(env, name) {
                    Ok(())
                } else {
                    Err(Status::already_exists(format!(
                        "volume `{name}` exists already in environment `{env}` (to use it as \
                         it is, create it with `exist_ok`: `Volume::from_name(\"{name}\", true)`)"
                    )))
                }
            }
            Err(e) => Err(io("create the volume")(e)),
        }
    }

    /// The volumes of `env`, by name.
    pub(crate) fn list(&self, env: &str) -> Vec<proto::VolumeInfo> {
        let Ok(entries) = std::fs::read_dir(self.env_dir(env)) else {
            return Vec::new();
        };
        let mut volumes: Vec<proto::VolumeInfo> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let meta = e.metadata().ok()?;
                (meta.is_dir() && check_volume_name(&name).is_ok()).then(|| proto::VolumeInfo {
                    created_at_ms: millis(meta.created().or_else(|_| meta.modified())),
                    name,
                })
            })
            .collect();
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        volumes
    }

    /// How many volumes `env` holds.
    pub(crate) fn count(&self, env: &str) -> usize {
        self.list(env).len()
    }

    /// Removes volume `name` of `env` and everything in it.
    pub(crate) fn remove(&self, env: &str, name: &str) -> Result<(), Status> {
        self.require(env, name)?;
        // Removing the folder itself follows no link inside it.
        std::fs::remove_dir_all(self.dir(env, name)).map_err(io("remove the volume"))
    }

    /// The mounts of `volumes` (`(mount path, name)`) of `env`; an error
    /// naming the first that does not exist, and how to make it.
    pub(crate) fn mounts<P: AsRef<str>, V: AsRef<str>>(
        &self,
        env: &str,
        volumes: &[(P, V)],
    ) -> Result<Vec<VolumeMount>, String> {
        volumes
            .iter()
            .map(|(path, name)| {
                let (path, name) = (path.as_ref(), name.as_ref());
                if !self.exists(env, name) {
                    return Err(missing(env, name));
                }
                Ok(VolumeMount {
                    mount_path: path.to_owned(),
                    volume: name.to_owned(),
                    host_dir: self.dir(env, name),
                })
            })
            .collect()
    }

    /// The entries at `path` of volume `name`: a folder's (all below it
    /// with `recursive`), or a file's own.
    pub(crate) fn list_files(
        &self,
        env: &str,
        name: &str,
        path: &str,
        recursive: bool,
    ) -> Result<proto::ListVolumeFilesResponse, Status> {
        let (volume, relative) = self.resolve(env, name, path)?;
        let mut listing = proto::ListVolumeFilesResponse::default();
        if let Some(parent) = relative
            .parent()
            .filter(|_| !relative.as_os_str().is_empty())
        {
            // A single file (or link) is listed as itself.
            let dir = volume.walk(parent, path)?;
            let file_name = relative.file_name().unwrap_or_default();
            let meta = std::fs::symlink_metadata(dir.child(file_name))
                .map_err(|e| not_found_or(e, name, path))?;
            if !meta.is_dir() {
                listing.entries.push(entry(&relative, &meta));
                return Ok(listing);
            }
        }
        let mut pending = vec![relative];
        let mut path_bytes = 0;
        while let Some(folder) = pending.pop() {
            let dir = volume.walk(&folder, path)?;
            let mut entries: Vec<_> = std::fs::read_dir(dir.path())
                .map_err(io("list the folder"))?
                .flatten()
                .collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                // `DirEntry::metadata` does not follow a link.
                let Ok(meta) = e.metadata() else { continue };
                let at = folder.join(e.file_name());
                if listing.entries.len() == LIST_MAX_ENTRIES || path_bytes > LIST_MAX_PATH_BYTES {
                    listing.truncated = true;
                    return Ok(listing);
                }
                path_bytes += at.as_os_str().len();
                listing.entries.push(entry(&at, &meta));
                if recursive && meta.is_dir() {
                    pending.push(at);
                }
            }
        }
        listing.entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(listing)
    }

    /// The file at `path` of volume `name`, open for reading.
    pub(crate) fn open_file(
        &self,
        env: &str,
        name: &str,
        path: &str,
    ) -> Result<std::fs::File, Status> {
        let (volume, relative) = self.resolve(env, name, path)?;
        let (dir, file_name) = volume.parent_of(&relative, path)?;
        // `O_NONBLOCK`: a named pipe a container made would otherwise hold
        // this thread until someone writes to it (a regular file ignores it).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(dir.child(file_name))
            .map_err(|e| not_found_or(e, name, path))?;
        let meta = file.metadata().map_err(io("read the file"))?;
        if meta.is_dir() {
            return Err(Status::failed_precondition(format!(
                "`{path}` in volume `{name}` is a folder: list it, and get its files one by one"
            )));
        }
        if !meta.is_file() {
            return Err(Status::failed_precondition(format!(
                "`{path}` in volume `{name}` is not a regular file (a pipe or device): only \
                 files are read"
            )));
        }
        Ok(file)
    }

    /// Starts an upload to `path` of volume `name`, of at most `limit`
    /// bytes. With `overwrite` false, an existing file there refuses it
    /// (now, and again when it is placed).
    pub(crate) fn begin_put(
        &self,
        env: &str,
        name: &str,
        path: &str,
        overwrite: bool,
        limit: u64,
    ) -> Result<VolumeUpload, Status> {
        let (volume, relative) = self.resolve(env, name, path)?;
        if relative.as_os_str().is_empty() {
            return Err(Status::invalid_argument(format!(
                "an upload to volume `{name}` must name a file in it, e.g. `data.bin`"
            )));
        }
        if !overwrite
            && let Ok((dir, file_name)) = volume.parent_of(&relative, path)
            && std::fs::symlink_metadata(dir.child(file_name)).is_ok()
        {
            return Err(exists(name, path));
        }
        let staging = self
            .root
            .join(UPLOADS)
            .join(uuid::Uuid::new_v4().simple().to_string());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staging)
            .map_err(io("store the upload"))?;
        Ok(VolumeUpload {
            file: Some(file),
            staging,
            volume,
            relative,
            name: name.to_owned(),
            path: path.to_owned(),
            overwrite,
            size: 0,
            limit,
        })
    }

    /// Removes the file (or, with `recursive`, the folder) at `path` of
    /// volume `name`.
    pub(crate) fn remove_file(
        &self,
        env: &str,
        name: &str,
        path: &str,
        recursive: bool,
    ) -> Result<(), Status> {
        let (volume, relative) = self.resolve(env, name, path)?;
        if relative.as_os_str().is_empty() {
            return Err(Status::invalid_argument(format!(
                "name a file or folder in volume `{name}`; to remove the volume itself, \
                 `cargo xtask volume rm {name}` without a path"
            )));
        }
        let (dir, file_name) = volume.parent_of(&relative, path)?;
        let child = dir.child(file_name);
        let meta = std::fs::symlink_metadata(&child).map_err(|e| not_found_or(e, name, path))?;
        if !meta.is_dir() {
            return std::fs::remove_file(&child).map_err(io("remove the file"));
        }
        if !recursive {
            return Err(Status::failed_precondition(format!(
                "`{path}` in volume `{name}` is a folder: remove it recursively (`-r`) to \
                 remove it with everything in it"
            )));
        }
        // `remove_dir_all` follows no link inside the folder.
        std::fs::remove_dir_all(&child).map_err(io("remove the folder"))
    }

    /// The root of volume `name` of `env`, and `path` checked and made relative.
    fn resolve(&self, env: &str, name: &str, path: &str) -> Result<(Root, PathBuf), Status> {
        self.require(env, name)?;
        let relative = volume_relative_path(path)
            .map_err(|e| Status::invalid_argument(format!("volume `{name}`: {e}")))?;
        let dir = Dir::open(&self.dir(env, name)).map_err(|e| not_found_or(e, name, ""))?;
        Ok((
            Root {
                dir,
                name: name.to_owned(),
            },
            relative,
        ))
    }
}

/// A volume's root folder, open.
struct Root {
    dir: Dir,
    name: String,
}

impl Root {
    /// The folder at `relative`, reached without following any link;
    /// `path` is what the client wrote, for errors.
    fn walk(&self, relative: &Path, path: &str) -> Result<Dir, Status> {
        let mut dir = self.dir.try_clone().map_err(io("open the volume"))?;
        for component in relative.components() {
            dir = dir
                .open_dir(component.as_os_str())
                .map_err(|e| self.walk_error(e, path, component.as_os_str()))?;
        }
        Ok(dir)
    }

    /// The open folder holding `relative` (which is not the root), and its
    /// last component.
    fn parent_of<'a>(&self, relative: &'a Path, path: &str) -> Result<(Dir, &'a OsStr), Status> {
        let parent = relative.parent().unwrap_or(Path::new(""));
        let file_name = relative.file_name().unwrap_or_default();
        Ok((self.walk(parent, path)?, file_name))
    }

    /// The folder at `relative`, made (with the folders above it) where it
    /// is missing, without following any link.
    fn make_dirs(&self, relative: &Path, path: &str) -> Result<Dir, Status> {
        let mut dir = self.dir.try_clone().map_err(io("open the volume"))?;
        for component in relative.components() {
            let name = component.as_os_str();
            match std::fs::create_dir(dir.child(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io("make a folder")(e)),
            }
            dir = dir
                .open_dir(name)
                .map_err(|e| self.walk_error(e, path, name))?;
        }
        Ok(dir)
    }

    fn walk_error(&self, e: std::io::Error, path: &str, component: &OsStr) -> Status {
        let name = &self.name;
        let component = component.to_string_lossy();
        match e.raw_os_error() {
            Some(libc::ELOOP) => Status::failed_precondition(format!(
                "`{path}` in volume `{name}` passes through `{component}`, a symbolic link: \
                 links in a volume are not followed"
            )),
            Some(libc::ENOTDIR) => Status::failed_precondition(format!(
                "`{path}` in volume `{name}` passes through `{component}`, which is not a folder"
            )),
            _ => not_found_or(e, name, path),
        }
    }
}

/// A folder open by descriptor. Paths through [`Dir::child`] start at the
/// folder itself (`/proc/self/fd/N` is the open folder, not a name looked
/// up again), so renaming or replacing anything above it changes nothing.
struct Dir {
    file: std::fs::File,
}

impl Dir {
    fn open(path: &Path) -> std::io::Result<Dir> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(path)?;
        Ok(Dir { file })
    }

    fn try_clone(&self) -> std::io::Result<Dir> {
        Ok(Dir {
            file: self.file.try_clone()?,
        })
    }

    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }

    /// `name` in this folder: a path whose last component, if a link, is
    /// followed only by calls that follow links (none here does).
    fn child(&self, name: &OsStr) -> PathBuf {
        self.path().join(name)
    }

    /// The folder `name` in this one; `ELOOP` if it is a link, `ENOTDIR`
    /// if it is something else.
    fn open_dir(&self, name: &OsStr) -> std::io::Result<Dir> {
        let child = self.child(name);
        Dir::open(&child).map_err(|e| {
            // With `O_DIRECTORY`, a link is refused as `ENOTDIR`: tell the two apart.
            let link = std::fs::symlink_metadata(&child).is_ok_and(|m| m.is_symlink());
            if link {
                std::io::Error::from_raw_os_error(libc::ELOOP)
            } else {
                e
            }
        })
    }
}

/// An upload into a volume, written aside and placed when whole.
/// Dropped unfinished (refused, failed, the client gone), it leaves nothing.
pub(crate) struct VolumeUpload {
    /// `None` once finished.
    file: Option<std::fs::File>,
    staging: PathBuf,
    volume: Root,
    relative: PathBuf,
    name: String,
    path: String,
    overwrite: bool,
    size: u64,
    limit: u64,
}

impl VolumeUpload {
    /// Bytes written so far.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The path in the volume, as the client wrote it.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn write(&mut self, data: &[u8]) -> Result<(), Status> {
        self.size += data.len() as u64;
        if self.size > self.limit {
            return Err(Status::resource_exhausted(format!(
                "the file is larger than this control plane's upload limit of {} bytes; start \
                 the control plane with a larger limit (`cargo xtask server --max-upload-bytes \
                 <BYTES>`), or split the file",
                self.limit
            )));
        }
        match &mut self.file {
            Some(file) => file.write_all(data).map_err(io("store the upload")),
            None => Err(Status::internal("the upload is already finished")),
        }
    }

    /// Places the whole file at its path (making the folders above it);
    /// returns its path in the volume and its size.
    pub(crate) fn finish(mut self) -> Result<(String, u64), Status> {
        let file = self
            .file
            .take()
            .ok_or_else(|| Status::internal("the upload is already finished"))?;
        file.sync_all().map_err(io("store the upload"))?;
        drop(file);
        let parent = self.relative.parent().unwrap_or(Path::new(""));
        let dir = self.volume.make_dirs(parent, &self.path)?;
        let target = dir.child(self.relative.file_name().unwrap_or_default());
        let placed = if self.overwrite {
            // A rename replaces a link at the target, never what it points to.
            std::fs::rename(&self.staging, &target)
        } else {
            // A hard link is never made over an existing name.
            std::fs::hard_link(&self.staging, &target)
        };
        match placed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(exists(&self.name, &self.path));
            }
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {
                return Err(Status::failed_precondition(format!(
                    "`{}` in volume `{}` is a folder: a file cannot replace it",
                    self.path, self.name
                )));
            }
            Err(e) => return Err(io("place the upload")(e)),
        }
        Ok((self.relative.to_string_lossy().into_owned(), self.size))
    }
}

impl Drop for VolumeUpload {
    fn drop(&mut self) {
        // Renamed into place, this finds nothing; linked, it drops the aside copy.
        let _ = std::fs::remove_file(&self.staging);
    }
}

/// What a deploy, a container start or a request naming a missing volume is told.
fn missing(env: &str, name: &str) -> String {
    format!(
        "volume `{name}` does not exist in environment `{env}`: create it with `cargo xtask \
         volume create {name} --env {env}`, or in code with `Volume::from_name(\"{name}\", true)`"
    )
}

fn exists(name: &str, path: &str) -> Status {
    Status::already_exists(format!(
        "`{path}` exists already in volume `{name}`: pass overwrite (`--force`) to replace it"
    ))
}

fn not_found_or(e: std::io::Error, name: &str, path: &str) -> Status {
    if e.kind() == std::io::ErrorKind::NotFound {
        Status::not_found(format!("nothing is at `{path}` in volume `{name}`"))
    } else if e.raw_os_error() == Some(libc::ELOOP) {
        Status::failed_precondition(format!(
            "`{path}` in volume `{name}` is a symbolic link: links in a volume are not followed"
        ))
    } else {
        Status::internal(format!("cannot read `{path}` in volume `{name}`: {e}"))
    }
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> Status {
    move |e| Status::internal(format!("cannot {what}: {e}"))
}

fn entry(path: &Path, meta: &std::fs::Metadata) -> proto::VolumeEntry {
    proto::VolumeEntry {
        path: path.to_string_lossy().into_owned(),
        is_dir: meta.is_dir(),
        is_symlink: meta.file_type().is_symlink(),
        size: if meta.is_file() { meta.len() } else { 0 },
        mtime_ms: millis(meta.modified()),
    }
}

fn millis(time: std::io::Result<std::time::SystemTime>) -> i64 {
    time.ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_relative_and_never_climb() {
        let ok = |p: &str| volume_relative_path(p).unwrap();
        assert_eq!(ok(""), PathBuf::new());
        assert_eq!(ok("/"), PathBuf::new());
        assert_eq!(ok("/a/b.txt"), PathBuf::from("a/b.txt"));
        assert_eq!(ok("a//./b/"), PathBuf::from("a/b"));
        assert_eq!(ok("//x"), PathBuf::from("x"));
        for bad in ["..", "../x", "a/../../b", "/a/..", "a\0b"] {
            assert!(volume_relative_path(bad).is_err(), "{bad:?}");
        }
        assert!(volume_relative_path(&"a/".repeat(3000)).is_err());
    }

    fn scratch() -> (PathBuf, Volumes) {
        let dir = std::env::temp_dir().join(format!("modal-volumes-{}", uuid::Uuid::new_v4()));
        let volumes = Volumes::open(&dir).unwrap();
        volumes.create("main", "v", false).unwrap();
        (dir, volumes)
    }

    fn put(volumes: &Volumes, path: &str, data: &[u8], overwrite: bool) -> Result<(), Status> {
        let mut upload = volumes.begin_put("main", "v", path, overwrite, 1 << 20)?;
        upload.write(data)?;
        upload.finish().map(drop)
    }

    #[test]
    fn links_in_a_volume_are_never_followed() {
        let (dir, volumes) = scratch();
        let outside = dir.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"s").unwrap();
        let root = volume_dir(&dir, "main", "v");
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("file-link")).unwrap();
        for path in ["out/secret", "file-link"] {
            let read = volumes.open_file("main", "v", path).unwrap_err();
            assert_eq!(read.code(), tonic::Code::FailedPrecondition, "{read:?}");
            assert!(read.message().contains("symbolic link"), "{read:?}");
        }
        let write = put(&volumes, "out/new", b"x", true).unwrap_err();
        assert!(write.message().contains("symbolic link"), "{write:?}");
        assert!(!outside.join("new").exists());
        let listed = volumes.list_files("main", "v", "out", false).unwrap();
        assert_eq!(listed.entries.len(), 1);
        assert!(listed.entries[0].is_symlink);
        assert!(volumes.list_files("main", "v", "out/", true).is_ok());
        let nested = volumes.list_files("main", "v", "out/secret", false);
        assert!(nested.is_err());
        volumes.remove_file("main", "v", "out", false).unwrap();
        assert!(
            outside.join("secret").exists(),
            "a link's target was removed"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_named_pipe_is_refused_without_waiting() {
        let (dir, volumes) = scratch();
        let fifo = std::ffi::CString::new(
            volume_dir(&dir, "main", "v")
                .join("pipe")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        // SAFETY: mkfifo(3) reads the NUL-terminated path and nothing else.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let err = volumes.open_file("main", "v", "pipe").unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn uploads_land_whole_or_not_at_all() {
        let (dir, volumes) = scratch();
        put(&volumes, "/a/b/c.txt", b"hello", false).unwrap();
        let root = volume_dir(&dir, "main", "v");
        assert_eq!(std::fs::read(root.join("a/b/c.txt")).unwrap(), b"hello");
        let again = put(&volumes, "a/b/c.txt", b"x", false).unwrap_err();
        assert_eq!(again.code(), tonic::Code::AlreadyExists);
        put(&volumes, "a/b/c.txt", b"bye", true).unwrap();
        assert_eq!(std::fs::read(root.join("a/b/c.txt")).unwrap(), b"bye");
        let mut cut = volumes.begin_put("main", "v", "cut", false, 4).unwrap();
        assert!(cut.write(b"12345").is_err());
        drop(cut);
        assert!(!root.join("cut").exists());
        assert_eq!(
            std::fs::read_dir(dir.join("volumes").join(UPLOADS))
                .unwrap()
                .count(),
            0
        );
        let all = volumes.list_files("main", "v", "", true).unwrap();
        let paths: Vec<_> = all.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a", "a/b", "a/b/c.txt"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
