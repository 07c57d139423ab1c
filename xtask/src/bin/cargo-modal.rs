//! `cargo modal …`: the same commands as `cargo xtask`, for any workspace,
//! once installed with `cargo install --path xtask`.

fn main() -> std::process::ExitCode {
    let mut args: Vec<_> = std::env::args_os().collect();
    // Cargo runs `cargo modal ARGS` as `cargo-modal modal ARGS`; run by
    // its own name, there is no `modal` to skip.
    if args.get(1).is_some_and(|a| a == "modal") {
        args.remove(1);
    }
    xtask::main("cargo modal", args)
}
