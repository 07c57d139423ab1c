use modal_runtime::app;

#[app::cls]
struct Model {}

#[app::cls]
impl Model {
    #[app::method]
    #[app::web_endpoint]
    fn predict(&self, x: u64) -> u64 {
        x
    }
}

fn main() {}
