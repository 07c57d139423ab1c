//! `cargo xtask …`, this repository's alias (`.cargo/config.toml`).

fn main() -> std::process::ExitCode {
    xtask::main("cargo xtask", std::env::args_os())
}
