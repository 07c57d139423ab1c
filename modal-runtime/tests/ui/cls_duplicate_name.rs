use modal_runtime::app;

#[app::function]
fn resize(width: u32) -> u32 {
    width
}

#[app::cls(name = "resize")]
struct Resizer {}

#[app::cls]
impl Resizer {
    #[app::method]
    fn resize(&self, width: u32) -> u32 {
        width
    }
}

fn main() {}
