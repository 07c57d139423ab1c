//! Images for deployed binaries. An image holds the binary, exactly the
//! shared libraries it loads (found by reading its ELF headers, never by
//! running it), the host's CA certificates and an empty `/tmp`, on
//! `scratch` or on a base image the function names. The binary runs through
//! its own loader with its own libraries (`/modal/lib`), so a base image's
//! libraries are neither replaced nor used.
//!
//! Images are named by a hash of what went into them: a binary deployed
//! again, by any app or version, never builds again.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bollard::Docker;
use futures::StreamExt;
use sha2::{Digest, Sha256};

/// The repository every built image is tagged in.
pub(crate) const IMAGE_REPOSITORY: &str = "modal-rs-app";
/// Where the binary is in an image.
pub(crate) const BINARY_PATH: &str = "/modal/app";
/// Where its loader and libraries are.
const LIB_DIR: &str = "/modal/lib";
/// Bumped when the layout of an image changes, so older images are not
/// reused for it.
const LAYOUT_VERSION: u32 = 1;
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// What a binary loads: its interpreter (`None` for a static binary) and
/// every shared library, by where they are on this machine.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Needs {
    pub interpreter: Option<PathBuf>,
    pub libraries: Vec<PathBuf>,
}

/// Reads what `binary` (whose content is `bytes`) loads, following each
/// library's own needs.
pub(crate) fn needs(binary: &Path, bytes: &[u8]) -> Result<Needs, String> {
    let elf = goblin::elf::Elf::parse(bytes)
        .map_err(|e| format!("`{}` is not an ELF binary: {e}", binary.display()))?;
    let interpreter = elf.interpreter.map(PathBuf::from);
    let dirs = search_dirs(&elf);
    let mut wanted: Vec<String> = elf.libraries.iter().map(|s| s.to_string()).collect();
    let mut seen = BTreeSet::new();
    let mut libraries = Vec::new();
    while let Some(name) = wanted.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let found = dirs
            .iter()
            .map(|d| d.join(&name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "`{}` needs the shared library `{name}`, which is not on the control \
                     plane's machine (looked in {})",
                    binary.display(),
                    dirs.iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        if Some(&found) == interpreter.as_ref() {
            continue;
        }
        let lib =
            std::fs::read(&found).map_err(|e| format!("cannot read `{}`: {e}", found.display()))?;
        if let Ok(lib_elf) = goblin::elf::Elf::parse(&lib) {
            wanted.extend(lib_elf.libraries.iter().map(|s| s.to_string()));
        }
        libraries.push(found);
    }
    Ok(Needs {
        interpreter,
        libraries,
    })
}

/// Where the loader looks, in its order: the binary's own run paths, then
/// the system's folders for its architecture.
fn search_dirs(elf: &goblin::elf::Elf<'_>) -> Vec<PathBuf> {
    let triple = match elf.header.e_machine {
        goblin::elf::header::EM_AARCH64 => "aarch64-linux-gnu",
        _ => "x86_64-linux-gnu",
    };
    let mut dirs: Vec<PathBuf> = elf
        .runpaths
        .iter()
        .chain(elf.rpaths.iter())
        .flat_map(|p| p.split(':'))
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .collect();
    for dir in [
        format!("/lib/{triple}"),
        format!("/usr/lib/{triple}"),
        "/lib64".into(),
        "/usr/lib64".into(),
        "/lib".into(),
        "/usr/lib".into(),
    ] {
        dirs.push(PathBuf::from(dir));
    }
    dirs
}

/// The command a container of an image runs.
pub(crate) fn entrypoint(needs: &Needs) -> Vec<String> {
    match &needs.interpreter {
        Some(interpreter) => vec![
            format!("{LIB_DIR}/{}", file_name(interpreter)),
            "--library-path".into(),
            LIB_DIR.into(),
            BINARY_PATH.into(),
        ],
        None => vec![BINARY_PATH.into()],
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The image's name for `binary_sha256` on `base` (`None`: scratch).
pub(crate) fn image_tag(binary_sha256: &str, base: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "{LAYOUT_VERSION}\n{binary_sha256}\n{}",
        base.unwrap_or("scratch")
    ));
    let key = format!("{:x}", hasher.finalize());
    format!("{IMAGE_REPOSITORY}:{}", &key[..32])
}

/// The build context: a Dockerfile and the files it copies.
fn build_context(binary: &Path, needs: &Needs, base: Option<&str>) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("cannot assemble the image's files: {e}");
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(true);
    let entry = serde_json::to_string(&entrypoint(needs)).expect("strings serialize");
    let dockerfile = format!(
        "FROM {}\nCOPY rootfs/ /\nUSER 65534:65534\nWORKDIR /tmp\nENTRYPOINT {entry}\n",
        base.unwrap_or("scratch")
    );
    append_bytes(&mut tar, "Dockerfile", dockerfile.as_bytes(), 0o644).map_err(io)?;
    append_dir(&mut tar, "rootfs/tmp", 0o1777).map_err(io)?;
    append_dir(&mut tar, "rootfs/modal", 0o755).map_err(io)?;
    append_dir(&mut tar, "rootfs/modal/lib", 0o755).map_err(io)?;
    append_file(&mut tar, binary, "rootfs/modal/app", 0o755).map_err(io)?;
    for lib in needs.interpreter.iter().chain(&needs.libraries) {
        append_file(
            &mut tar,
            lib,
            &format!("rootfs/modal/lib/{}", file_name(lib)),
            0o755,
        )
        .map_err(io)?;
    }
    if base.is_none() {
        append_bytes(
            &mut tar,
            "rootfs/etc/passwd",
            b"root:x:0:0::/:/\nnobody:x:65534:65534:nobody:/tmp:/\n",
            0o644,
        )
        .map_err(io)?;
        if Path::new(CA_BUNDLE).is_file() {
            append_file(
                &mut tar,
                Path::new(CA_BUNDLE),
                &format!("rootfs{CA_BUNDLE}"),
                0o644,
            )
            .map_err(io)?;
        }
    }
    tar.into_inner().map_err(io)
}

fn append_bytes(
    tar: &mut tar::Builder<Vec<u8>>,
    path: &str,
    bytes: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, bytes)
}

fn append_dir(tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(0);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Directory);
    tar.append_data(&mut header, path, std::io::empty())
}

fn append_file(
    tar: &mut tar::Builder<Vec<u8>>,
    from: &Path,
    to: &str,
    mode: u32,
) -> std::io::Result<()> {
    let file = std::fs::File::open(from)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(file.metadata()?.len());
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, to, file)
}

/// A binary as last seen: its path, size and modification time.
type BinaryKey = (PathBuf, u64, std::time::SystemTime);

/// Images this backend has built or found, and one build at a time per
/// image.
#[derive(Default)]
pub(crate) struct Images {
    /// Binary path and size and modification time → its SHA-256 and needs:
    /// hashing and reading a large binary again for every container would
    /// slow each start.
    binaries: Mutex<HashMap<BinaryKey, Arc<(String, Needs)>>>,
    /// Tags known to be in the engine, and locks for those being built.
    ready: Mutex<HashMap<String, Arc<tokio::sync::Mutex<bool>>>>,
}

/// A built image: its tag and the command its containers run.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub tag: String,
    pub entrypoint: Vec<String>,
}

impl Images {
    /// The image for `binary` on `base`, built if the engine lacks it.
    pub(crate) async fn ensure(
        &self,
        docker: &Docker,
        binary: &Path,
        base: Option<&str>,
    ) -> Result<Image, String> {
        let (sha256, needs) = &*self.read_binary(binary).await?;
        let tag = image_tag(sha256, base);
        let image = Image {
            tag: tag.clone(),
            entrypoint: entrypoint(needs),
        };
        let lock = self
            .ready
            .lock()
            .unwrap()
            .entry(tag.clone())
            .or_default()
            .clone();
        let mut built = lock.lock().await;
        if *built {
            return Ok(image);
        }
        if docker.inspect_image(&tag).await.is_ok() {
            *built = true;
            return Ok(image);
        }
        if let Some(base) = base
            && docker.inspect_image(base).await.is_err()
        {
            return Err(format!(
                "the base image `{base}` is not in the Docker Engine: build or load it there \
                 first (`docker build -t {base} …` or `docker load`), or drop `image` to run on \
                 a minimal image"
            ));
        }
        let context = {
            let (binary, needs, base) = (binary.to_owned(), needs.clone(), base.map(str::to_owned));
            tokio::task::spawn_blocking(move || build_context(&binary, &needs, base.as_deref()))
                .await
                .map_err(|e| format!("assembling the image failed: {e}"))??
        };
        let mut labels = HashMap::new();
        labels.insert(super::labels::BINARY.to_owned(), sha256.clone());
        let options = bollard::query_parameters::BuildImageOptionsBuilder::default()
            .t(&tag)
            .rm(true)
            .forcerm(true)
            .labels(&labels)
            .build();
        let mut progress =
            docker.build_image(options, None, Some(bollard::body_full(context.into())));
        while let Some(step) = progress.next().await {
            let step = step.map_err(|e| format!("building image `{tag}` failed: {e}"))?;
            if let Some(detail) = step.error_detail {
                return Err(format!(
                    "building image `{tag}` failed: {}",
                    detail.message.unwrap_or_default()
                ));
            }
        }
        *built = true;
        Ok(image)
    }

    async fn read_binary(&self, binary: &Path) -> Result<Arc<(String, Needs)>, String> {
        let meta = std::fs::metadata(binary)
            .map_err(|e| format!("cannot read the binary `{}`: {e}", binary.display()))?;
        let key = (
            binary.to_owned(),
            meta.len(),
            meta.modified().unwrap_or(std::time::UNIX_EPOCH),
        );
        if let Some(known) = self.binaries.lock().unwrap().get(&key) {
            return Ok(known.clone());
        }
        let path = binary.to_owned();
        // Read once: hashed and parsed from the same bytes.
        let read = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read the binary `{}`: {e}", path.display()))?;
            let sha256 = format!("{:x}", Sha256::digest(&bytes));
            Ok::<_, String>((sha256, needs(&path, &bytes)?))
        })
        .await
        .map_err(|e| format!("reading the binary failed: {e}"))??;
        let read = Arc::new(read);
        self.binaries.lock().unwrap().insert(key, read.clone());
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_binary_needs_its_loader_and_libc() {
        let exe = std::env::current_exe().unwrap();
        let needs = needs(&exe, &std::fs::read(&exe).unwrap()).unwrap();
        let interpreter = needs.interpreter.clone().expect("a test binary is dynamic");
        assert!(file_name(&interpreter).starts_with("ld-linux"));
        assert!(
            needs.libraries.iter().any(|l| file_name(l) == "libc.so.6"),
            "{needs:?}"
        );
        let entry = entrypoint(&needs);
        assert_eq!(entry[1..], ["--library-path", LIB_DIR, BINARY_PATH]);
    }

    #[test]
    fn a_file_that_is_not_elf_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("modal-image-test-{}", std::process::id()));
        std::fs::write(&dir, b"#!/bin/sh\necho hi\n").unwrap();
        let err = needs(&dir, &std::fs::read(&dir).unwrap()).unwrap_err();
        let _ = std::fs::remove_file(&dir);
        assert!(err.contains("is not an ELF binary"), "{err}");
    }

    #[test]
    fn tags_depend_on_the_binary_and_the_base_only() {
        let a = image_tag("abc", None);
        assert_eq!(a, image_tag("abc", None));
        assert_ne!(a, image_tag("abd", None));
        assert_ne!(a, image_tag("abc", Some("debian:12")));
        assert!(a.starts_with("modal-rs-app:"));
    }

    #[test]
    fn the_context_holds_the_binary_its_libraries_and_a_dockerfile() {
        let exe = std::env::current_exe().unwrap();
        let needs = needs(&exe, &std::fs::read(&exe).unwrap()).unwrap();
        let context = build_context(&exe, &needs, None).unwrap();
        let mut archive = tar::Archive::new(context.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        for wanted in [
            "Dockerfile",
            "rootfs/modal/app",
            "rootfs/tmp",
            "rootfs/modal/lib/libc.so.6",
        ] {
            assert!(
                names.iter().any(|n| n.trim_end_matches('/') == wanted),
                "{wanted} in {names:?}"
            );
        }
    }
}
