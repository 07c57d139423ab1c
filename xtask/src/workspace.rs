//! Which package to deploy: the workspace is the one around the current
//! folder (or `--manifest-path`), as `cargo metadata` sees it, so that
//! `cargo modal deploy` works in a user's own workspace, not only here.

use std::path::{Path, PathBuf};
use std::process::Command;

use modal_runtime::Error;

/// A workspace's members, as far as deploying needs them.
pub(crate) struct Workspace {
    pub(crate) root: PathBuf,
    packages: Vec<Package>,
}

pub(crate) struct Package {
    pub(crate) name: String,
    /// The folder of its Cargo.toml.
    dir: PathBuf,
    has_binary: bool,
}

fn deploy_error(message: String) -> Error {
    Error::Deploy { message }
}

/// `cargo metadata` of the workspace at `manifest_path` (or around the
/// current folder), its members only.
pub(crate) fn load(cargo: &str, manifest_path: Option<&Path>) -> Result<Workspace, Error> {
    let mut command = Command::new(cargo);
    command.args(["metadata", "--format-version", "1", "--no-deps"]);
    if let Some(path) = manifest_path {
        command.arg("--manifest-path").arg(path);
    }
    let output = command
        .output()
        .map_err(|e| deploy_error(format!("cannot run `{cargo} metadata`: {e}")))?;
    if !output.status.success() {
        // Cargo says what is wrong (no Cargo.toml here, a broken one).
        return Err(deploy_error(format!(
            "cannot read the workspace: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    parse(&output.stdout)
}

fn parse(json: &[u8]) -> Result<Workspace, Error> {
    let malformed = |what: &str| deploy_error(format!("`cargo metadata` printed no {what}"));
    let metadata: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| deploy_error(format!("`cargo metadata`: {e}")))?;
    let root = metadata["workspace_root"]
        .as_str()
        .ok_or_else(|| malformed("workspace_root"))?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or_else(|| malformed("packages"))?
        .iter()
        .map(|p| {
            let name = p["name"]
                .as_str()
                .ok_or_else(|| malformed("package name"))?;
            let manifest = p["manifest_path"]
                .as_str()
                .ok_or_else(|| malformed("manifest_path"))?;
            let has_binary = p["targets"].as_array().is_some_and(|targets| {
                targets.iter().any(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "bin"))
                })
            });
            Ok(Package {
                name: name.to_owned(),
                dir: Path::new(manifest)
                    .parent()
                    .map_or_else(PathBuf::new, Path::to_owned),
                has_binary,
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Workspace {
        root: PathBuf::from(root),
        packages,
    })
}

impl Workspace {
    /// The package to deploy: `wanted`, else the binary package `cwd` is
    /// in, else the workspace's only binary package.
    pub(crate) fn pick(&self, wanted: Option<&str>, cwd: &Path) -> Result<&Package, Error> {
        let binaries: Vec<&Package> = self.packages.iter().filter(|p| p.has_binary).collect();
        if let Some(wanted) = wanted {
            return match self.packages.iter().find(|p| p.name == wanted) {
                Some(p) if p.has_binary => Ok(p),
                Some(_) => Err(deploy_error(format!(
                    "package `{wanted}` has no binary target to deploy: its `src/main.rs` \
                     should hold a `main` marked #[app::main]{}",
                    self.others(&binaries)
                ))),
                None => Err(deploy_error(format!(
                    "the workspace at {} has no package `{wanted}`{}",
                    self.root.display(),
                    self.others(&binaries)
                ))),
            };
        }
        // The deepest package folder holding `cwd` is the one it is in.
        let here = self
            .packages
            .iter()
            .filter(|p| cwd.starts_with(&p.dir))
            .max_by_key(|p| p.dir.components().count());
        if let Some(p) = here.filter(|p| p.has_binary) {
            return Ok(p);
        }
        match binaries.as_slice() {
            [one] => Ok(one),
            [] => Err(deploy_error(format!(
                "the workspace at {} has no binary package to deploy (its packages: {}); \
                 add a binary crate whose `main` is marked #[app::main]",
                self.root.display(),
                names(self.packages.iter()),
            ))),
            many => Err(deploy_error(format!(
                "the workspace at {} has several binary packages ({}): name one, \
                 e.g. `{} deploy {}`, or run from its folder",
                self.root.display(),
                names(many.iter().copied()),
                crate::program(),
                many[0].name,
            ))),
        }
    }

    /// What to choose from instead, for an error about a wrong choice.
    fn others(&self, binaries: &[&Package]) -> String {
        if binaries.is_empty() {
            format!(
                "; the workspace has no binary package (its packages: {})",
                names(self.packages.iter())
            )
        } else {
            format!("; its binary packages: {}", names(binaries.iter().copied()))
        }
    }
}

fn names<'a>(packages: impl Iterator<Item = &'a Package>) -> String {
    let names: Vec<&str> = packages.map(|p| p.name.as_str()).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(members: &[(&str, &str, bool)]) -> Workspace {
        Workspace {
            root: PathBuf::from("/ws"),
            packages: members
                .iter()
                .map(|(name, dir, has_binary)| Package {
                    name: (*name).to_owned(),
                    dir: PathBuf::from(dir),
                    has_binary: *has_binary,
                })
                .collect(),
        }
    }

    fn picked(ws: &Workspace, wanted: Option<&str>, cwd: &str) -> Result<String, String> {
        ws.pick(wanted, Path::new(cwd))
            .map(|p| p.name.clone())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_only_binary_package_is_picked_from_anywhere() {
        let ws = workspace(&[("lib", "/ws/lib", false), ("fns", "/ws/fns", true)]);
        assert_eq!(picked(&ws, None, "/ws").unwrap(), "fns");
        assert_eq!(picked(&ws, None, "/ws/lib/src").unwrap(), "fns");
    }

    #[test]
    fn the_current_folder_decides_between_several() {
        let ws = workspace(&[
            ("root", "/ws", true),
            ("a", "/ws/a", true),
            ("b", "/ws/b", true),
        ]);
        assert_eq!(picked(&ws, None, "/ws/b/src").unwrap(), "b");
        assert_eq!(picked(&ws, None, "/ws").unwrap(), "root");
        let ws = workspace(&[("a", "/ws/a", true), ("b", "/ws/b", true)]);
        let err = picked(&ws, None, "/ws").unwrap_err();
        assert!(err.contains("several binary packages (a, b)"), "{err}");
        assert_eq!(picked(&ws, Some("a"), "/ws/b").unwrap(), "a");
    }

    #[test]
    fn a_wrong_name_lists_the_candidates() {
        let ws = workspace(&[("lib", "/ws/lib", false), ("fns", "/ws/fns", true)]);
        let err = picked(&ws, Some("nope"), "/ws").unwrap_err();
        assert!(err.contains("no package `nope`"), "{err}");
        assert!(err.contains("its binary packages: fns"), "{err}");
        let err = picked(&ws, Some("lib"), "/ws").unwrap_err();
        assert!(err.contains("`lib` has no binary target"), "{err}");
    }

    #[test]
    fn metadata_is_read() {
        let json = br#"{"workspace_root": "/ws", "packages": [
            {"name": "fns", "manifest_path": "/ws/fns/Cargo.toml",
             "targets": [{"kind": ["lib"]}, {"kind": ["bin"]}]},
            {"name": "lib", "manifest_path": "/ws/lib/Cargo.toml",
             "targets": [{"kind": ["lib"]}]}]}"#;
        let ws = parse(json).unwrap();
        assert_eq!(ws.root, Path::new("/ws"));
        assert_eq!(picked(&ws, None, "/ws").unwrap(), "fns");
    }
}
