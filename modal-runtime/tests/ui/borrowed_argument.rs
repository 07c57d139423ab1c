use modal_runtime::app;

#[app::function]
fn count(text: &str, bytes: &[u8]) -> usize {
    text.len() + bytes.len()
}

fn main() {}
