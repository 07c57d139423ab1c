//! Compile-time behaviour of `#[app::function]` and `#[app::main]`: every
//! misuse the macros refuse has a `.stderr` snapshot of its error (see
//! `tests/ui/*.rs`), and `tests/ui/pass/` must compile.
//!
//! Snapshots depend on the compiler version; the workspace pins one in
//! `rust-toolchain.toml`. Regenerate them with
//! `TRYBUILD=overwrite cargo test -p modal-runtime --test ui`, then read them.

#[test]
fn ui() {
    // Pass cases are also run. Those with `#[app::main]` must not start an
    // app: in the manifest role (the runtime's `container_env`) they print
    // the manifest of their functions and exit.
    // SAFETY: this test binary has this one test; nothing else reads the
    // environment concurrently.
    unsafe { std::env::set_var("MODAL_ROLE", "manifest") };
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/*.rs");
}
