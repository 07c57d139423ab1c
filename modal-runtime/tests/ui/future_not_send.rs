use std::rc::Rc;

use modal_runtime::app;

async fn tick() {}

#[app::function]
async fn count(n: u64) -> u64 {
    let shared = Rc::new(n);
    tick().await;
    *shared
}

fn main() {}
