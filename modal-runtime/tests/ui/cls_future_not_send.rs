use std::rc::Rc;

use modal_runtime::app;

#[app::cls]
struct Model {}

#[app::cls]
impl Model {
    #[app::method]
    async fn count(&self) -> usize {
        let shared = Rc::new(5);
        tokio::task::yield_now().await;
        *shared
    }
}

fn main() {}
