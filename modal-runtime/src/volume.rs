//! Volumes as a function sees them: the rules for volume names and mount
//! paths (checked wherever options are: by the macro's output, the client
//! and the control plane at deploy), and [`mounted`], where a mounted
//! volume really is in this container.
//!
//! A backend that mounts (Docker) puts each volume at its mount path. The
//! process backend cannot: it tells the container, in
//! [`MOUNTS`](crate::contract::container_env::VOLUME_MOUNTS), which host
//! folder stands for which mount path, and [`mounted`] translates.

use std::path::{Component, Path, PathBuf};

use crate::contract::container_env;

/// Longest volume name.
pub const NAME_MAX_LEN: usize = 63;

/// Longest mount path, in bytes.
pub const MOUNT_PATH_MAX_LEN: usize = 1024;

/// Where no volume may be mounted, nor under: the kernel's own file
/// systems, which a container needs as they are.
const RESERVED_MOUNTS: &[&str] = &["/proc", "/sys", "/dev"];

/// A volume name: 1 to 63 letters, digits, `.`, `_` or `-`, starting with
/// a letter or digit (so that no name is `.`, `..` or hidden).
pub fn check_volume_name(name: &str) -> Result<(), String> {
    let ok = (1..=NAME_MAX_LEN).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid volume name: use 1 to {NAME_MAX_LEN} letters, digits, `.`, `_` \
             or `-`, starting with a letter or digit",
            name.escape_default()
        ))
    }
}

/// A mount path: absolute, in plain components (no `.`, `..`, empty
/// component or trailing `/`), not `/` itself nor in `/proc`, `/sys` or
/// `/dev`, without NUL, control characters, `:` or `,` (which container
/// runtimes' mount syntax gives a meaning), at most 1,024 bytes.
pub fn check_mount_path(path: &str) -> Result<(), String> {
    let refuse = |why: &str| {
        Err(format!(
            "`{}` cannot be a mount path: {why}",
            path.escape_default()
        ))
    };
    if !path.starts_with('/') {
        return refuse("a mount path must be absolute, e.g. `/data`");
    }
    if path == "/" {
        return refuse("a volume cannot replace the container's root; mount it at e.g. `/data`");
    }
    if path.len() > MOUNT_PATH_MAX_LEN {
        return refuse(&format!("it is longer than {MOUNT_PATH_MAX_LEN} bytes"));
    }
    if path.chars().any(|c| c.is_control() || c == ':' || c == ',') {
        return refuse("it holds a control character, `:` or `,`");
    }
    if path[1..]
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return refuse("write it in plain components, without `.`, `..`, `//` or a trailing `/`");
    }
    if let Some(reserved) = RESERVED_MOUNTS
        .iter()
        .find(|r| path == **r || path.starts_with(&format!("{r}/")))
    {
        return refuse(&format!("`{reserved}` is the kernel's, and stays as it is"));
    }
    Ok(())
}

/// Checks a function's volumes: each name and mount path, and that no two
/// mounts share a path or lie one inside the other.
pub fn check_mounts<P: AsRef<str>, V: AsRef<str>>(mounts: &[(P, V)]) -> Result<(), String> {
    for (i, (path, volume)) in mounts.iter().enumerate() {
        let (path, volume) = (path.as_ref(), volume.as_ref());
        check_volume_name(volume)?;
        check_mount_path(path).map_err(|e| format!("volume `{volume}`: {e}"))?;
        for (other, other_volume) in &mounts[..i] {
            let other = other.as_ref();
            if other == path {
                return Err(format!(
                    "volumes `{}` and `{volume}` are both mounted at `{path}`: give each its own path",
                    other_volume.as_ref()
                ));
            }
            if Path::new(path).starts_with(other) || Path::new(other).starts_with(path) {
                return Err(format!(
                    "volume `{volume}` at `{path}` and volume `{}` at `{other}` would lie one \
                     inside the other: mount them side by side (e.g. `/data/a` and `/data/b`)",
                    other_volume.as_ref()
                ));
            }
        }
    }
    Ok(())
}

/// Where the volume mounted at `path` (or the file `path` names in one)
/// really is in this container: on the process backend the host folder
/// that holds the volume, elsewhere (Docker, or a path in no volume)
/// `path` itself. Code meant for both writes
/// `modal_runtime::mounted("/data").join("x")`.
pub fn mounted(path: impl AsRef<Path>) -> PathBuf {
    let path = path.as_ref();
    let Ok(mounts) = std::env::var(container_env::VOLUME_MOUNTS) else {
        return path.to_owned();
    };
    resolve(&decode_mounts(&mounts), path)
}

/// `path` with its mount (from `mounts`, `(mount path, host folder)`)
/// replaced by its host folder; `path` itself when no mount holds it.
fn resolve(mounts: &[(PathBuf, PathBuf)], path: &Path) -> PathBuf {
    // Mounts never nest (see `check_mounts`), so at most one holds `path`.
    for (mount, host) in mounts {
        if let Ok(rest) = path.strip_prefix(mount) {
            // `strip_prefix` compares components: `/data2` is not in `/data`.
            let plain = rest.components().all(|c| matches!(c, Component::Normal(_)));
            if plain {
                return host.join(rest);
            }
        }
    }
    path.to_owned()
}

/// The value of [`container_env::VOLUME_MOUNTS`]: a JSON object of mount
/// path to host folder. (Written by the control plane's process backend.)
#[cfg_attr(not(feature = "server"), allow(dead_code))]
pub(crate) fn encode_mounts<'a>(mounts: impl IntoIterator<Item = (&'a str, &'a Path)>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = mounts
        .into_iter()
        .map(|(mount, host)| {
            (
                mount.to_owned(),
                serde_json::Value::String(host.to_string_lossy().into_owned()),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The mounts [`encode_mounts`] wrote; nothing for a value it did not write.
fn decode_mounts(value: &str) -> Vec<(PathBuf, PathBuf)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(value) else {
        return Vec::new();
    };
    map.into_iter()
        .filter_map(|(mount, host)| Some((PathBuf::from(mount), PathBuf::from(host.as_str()?))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_follow_the_rule() {
        for good in ["data", "a", "0", "my.vol_1-x", &"v".repeat(63)] {
            assert!(check_volume_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-x",
            "_x",
            "a/b",
            "a b",
            "é",
            &"v".repeat(64),
        ] {
            let err = check_volume_name(bad).unwrap_err();
            assert!(err.contains("starting with a letter or digit"), "{err}");
        }
    }

    #[test]
    fn mount_paths_are_absolute_plain_and_outside_the_kernels() {
        for good in [
            "/data",
            "/mnt/models",
            "/tmp/cache",
            "/procfs",
            "/home/u/x.y",
        ] {
            assert!(check_mount_path(good).is_ok(), "{good}");
        }
        for bad in [
            "", "data", "/", "/data/", "//data", "/a/../b", "/a/./b", "/proc", "/proc/x", "/sys",
            "/dev/shm", "/a:b", "/a,b", "/a\nb", "/a\0b",
        ] {
            assert!(check_mount_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_mount_path(&format!("/{}", "x".repeat(1024))).is_err());
    }

    #[test]
    fn mounts_neither_share_nor_nest() {
        assert!(check_mounts(&[("/a", "v"), ("/b", "v"), ("/ab", "w")]).is_ok());
        let shared = check_mounts(&[("/a", "v"), ("/a", "w")]).unwrap_err();
        assert!(shared.contains("both mounted at `/a`"), "{shared}");
        let nested = check_mounts(&[("/a", "v"), ("/a/b", "w")]).unwrap_err();
        assert!(nested.contains("inside"), "{nested}");
        assert!(check_mounts(&[("/a", "bad name")]).is_err());
    }

    #[test]
    fn mounted_paths_resolve_to_their_host_folder() {
        let encoded = encode_mounts([
            ("/data", Path::new("/srv/volumes/main/d")),
            ("/m", Path::new("/srv/volumes/main/m")),
        ]);
        let mounts = decode_mounts(&encoded);
        let at = |p: &str| resolve(&mounts, Path::new(p));
        assert_eq!(at("/data"), Path::new("/srv/volumes/main/d"));
        assert_eq!(at("/data/x/y"), Path::new("/srv/volumes/main/d/x/y"));
        assert_eq!(at("/m/z"), Path::new("/srv/volumes/main/m/z"));
        assert_eq!(at("/data2/x"), Path::new("/data2/x"));
        assert_eq!(at("/data/../etc"), Path::new("/data/../etc"));
        assert_eq!(at("/other"), Path::new("/other"));
        assert!(decode_mounts("not json").is_empty());
    }
}
