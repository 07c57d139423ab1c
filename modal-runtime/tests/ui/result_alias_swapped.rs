use modal_runtime::app;

/// An alias whose first argument is the error type, not the success type.
type Result<E> = std::result::Result<u8, E>;

#[app::function]
fn first(x: u8) -> Result<String> {
    Ok(x)
}

fn main() {}
