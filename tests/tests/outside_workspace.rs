//! Deploying from a cargo workspace that is not this repository's: the
//! `cargo-modal` binary (what `cargo install --path xtask` installs) run
//! in a new workspace whose crate depends on `modal-runtime` by path, then
//! its function called by name.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use common::*;
use modal_runtime::Function;

/// This repository's root: the tests crate is one folder below it.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The root Cargo.toml's `[profile.*]` sections. Profile settings are part
/// of every artifact's hash: with the same ones, the new workspace reuses
/// the dependencies this repository's target folder holds already.
fn root_profiles() -> String {
    let root = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let at = root
        .find("\n[profile.")
        .expect("the root Cargo.toml has profiles");
    root[at..].to_owned()
}

/// A new cargo workspace in a scratch folder (outside this repository)
/// with `members`: each a name, whether it is a binary, and its source.
fn new_workspace(members: &[(&str, bool, &str)]) -> PathBuf {
    let dir = scratch_dir("outside-ws");
    let names: Vec<String> = members.iter().map(|(n, ..)| format!("{n:?}")).collect();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[workspace]\nresolver = \"3\"\nmembers = [{}]\n{}",
            names.join(", "),
            root_profiles()
        ),
    )
    .unwrap();
    // The same versions as this repository's, so nothing is resolved anew.
    std::fs::copy(repo_root().join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let runtime = repo_root().join("modal-runtime");
    for (name, binary, source) in members {
        let src = dir.join(name).join("src");
        std::fs::create_dir_all(&src).unwrap();
        // A crate that derives serde's traits depends on serde as well.
        let serde = if source.contains("serde::") {
            "serde = { version = \"1\", features = [\"derive\"] }\n"
        } else {
            ""
        };
        std::fs::write(
            dir.join(name).join("Cargo.toml"),
            format!(
                "[package]\nname = {name:?}\nversion = \"0.1.0\"\nedition = \"2024\"\n\
                 publish = false\n\n[dependencies]\nmodal-runtime = {{ path = {:?} }}\n{serde}",
                runtime.to_str().unwrap()
            ),
        )
        .unwrap();
        let file = if *binary { "main.rs" } else { "lib.rs" };
        std::fs::write(src.join(file), source).unwrap();
    }
    dir
}

/// `cargo-modal modal ARGS` in `dir`, as cargo runs it for `cargo modal
/// ARGS`, building into this repository's target folder (where the
/// dependencies are built already), with `token` for the control plane.
fn cargo_modal(dir: &Path, args: &[&str], token: Option<&str>) -> Output {
    let mut command = Command::new(workspace_binary("cargo-modal"));
    command
        .arg("modal")
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir().parent().unwrap())
        .env_remove("MODAL_TOKEN");
    if let Some(token) = token {
        command.env("MODAL_TOKEN", token);
    }
    command.output().unwrap()
}

const FNS: &str = r#"
use modal_runtime::app;

#[app::function]
fn triple(x: u64) -> u64 {
    x * 3
}

#[app::main]
async fn main() -> Result<(), modal_runtime::Error> {
    println!("triple.remote(4) = {}", triple.remote(4).await?);
    Ok(())
}
"#;

#[tokio::test]
async fn cargo_modal_deploys_a_crate_of_another_workspace() {
    let server = Standalone::start();
    let dir = new_workspace(&[("outside-fns", true, FNS)]);
    let started = Instant::now();
    let out = cargo_modal(
        &dir,
        &["deploy", "--debug", "--server", &server.url],
        Some(&server.token),
    );
    let said = text(&out);
    eprintln!("cargo modal deploy took {:?}", started.elapsed());
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "deployed app `outside-fns` version 1 to {}",
            server.url
        )),
        "{said}"
    );
    assert!(said.contains("triple  (u64,) -> u64"), "{said}");
    // Not a terminal: plain progress lines, no escape codes.
    assert!(said.contains("building outside-fns"), "{said}");
    assert!(said.contains("uploading "), "{said}");
    assert!(!said.contains('\x1b'), "{said:?}");

    assert!(lazy(&server.url).unwrap().set_default());
    let triple = Function::<(u64,), u64>::from_name("outside-fns", "triple");
    assert_eq!(triple.remote((14,)).await.unwrap(), 42);

    // The same binary again: the control plane has it, nothing is sent.
    let out = cargo_modal(
        &dir,
        &["deploy", "outside-fns", "--debug", "--server", &server.url],
        Some(&server.token),
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("version 2"), "{said}");
    assert!(said.contains("has this binary already"), "{said}");
}

#[test]
fn cargo_modal_deploy_without_a_binary_package_says_so() {
    let dir = new_workspace(&[("only-lib", false, "pub fn f() {}\n")]);
    let out = cargo_modal(&dir, &["deploy", "--server", "http://127.0.0.1:1"], None);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("no binary package"), "{said}");
    assert!(said.contains("only-lib"), "names what it found: {said}");

    let out = cargo_modal(
        &dir,
        &["deploy", "nope", "--server", "http://127.0.0.1:1"],
        None,
    );
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("`nope`"), "{said}");
}

#[test]
fn cargo_modal_deploy_with_several_binary_packages_asks_which() {
    let main = "fn main() {}\n";
    let dir = new_workspace(&[("fns-a", true, main), ("fns-b", true, main)]);
    let out = cargo_modal(&dir, &["deploy", "--server", "http://127.0.0.1:1"], None);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("fns-a") && said.contains("fns-b"),
        "lists the candidates: {said}"
    );
    assert!(said.contains("cargo modal deploy fns-a"), "{said}");
}

/// A function taking a struct, and a `main` that calls the deployed
/// function by name: `FIELDS` and `VALUE` are the struct's fields and the
/// value sent.
const SHAPES: &str = r#"
use modal_runtime::app;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Point {
    FIELDS
}

#[app::function]
fn norm(p: Point) -> i64 {
    p.x.abs() + p.y.abs()
}

#[app::main]
async fn main() -> Result<(), modal_runtime::Error> {
    let app = std::env::var("SHAPES_APP").expect("SHAPES_APP names the deployed app");
    let n = norm::from_name(&app).remote(Point { VALUE }).await?;
    println!("norm = {n}");
    Ok(())
}
"#;

fn shapes_source(fields: &str, value: &str) -> String {
    SHAPES.replace("FIELDS", fields).replace("VALUE", value)
}

#[tokio::test]
async fn a_caller_built_before_a_field_was_added_is_refused_at_lookup() {
    let server = Standalone::start();
    let v1 = shapes_source("pub x: i64,\n    pub y: i64,", "x: 3, y: -4");
    let dir = new_workspace(&[("shapes", true, &v1)]);
    let deploy = || {
        let out = cargo_modal(
            &dir,
            &[
                "deploy",
                "--debug",
                "--name",
                "points",
                "--server",
                &server.url,
            ],
            Some(&server.token),
        );
        assert!(out.status.success(), "{}", text(&out));
    };
    deploy();
    // The binary of this version is the old caller: keep it.
    let old_caller = scratch_dir("old-caller").join("shapes");
    std::fs::copy(target_dir().join("shapes"), &old_caller).unwrap();
    let call = |binary: &Path| {
        Command::new(binary)
            .envs(server_env(&server.url))
            .env("MODAL_TOKEN", &server.token)
            .env("SHAPES_APP", "points")
            .output()
            .unwrap()
    };
    let out = call(&old_caller);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("norm = 7"), "{}", text(&out));

    // The struct gains a field under the same path, and is deployed again.
    let v2 = shapes_source(
        "pub x: i64,\n    pub y: i64,\n    pub z: i64,",
        "x: 3, y: -4, z: 1",
    );
    std::fs::write(dir.join("shapes/src/main.rs"), v2).unwrap();
    deploy();

    // The old caller is refused when it looks the function up, before any
    // input runs, with both shapes in the message.
    let out = call(&old_caller);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("was deployed with types"), "{said}");
    assert!(
        said.contains("(Point,) -> i64 where struct Point { x: i64, y: i64, z: i64 }"),
        "the deployed shape: {said}"
    );
    assert!(
        said.contains("(Point,) -> i64 where struct Point { x: i64, y: i64 }"),
        "the caller's shape: {said}"
    );
    // The new build calls it.
    let out = call(&target_dir().join("shapes"));
    assert!(text(&out).contains("norm = 7"), "{}", text(&out));
}
