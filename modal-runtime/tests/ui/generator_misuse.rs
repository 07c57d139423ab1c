use modal_runtime::{Generator, app};

#[app::function]
#[app::batched(max_batch_size = 4, wait_ms = 10)]
fn batched_generator(xs: Vec<u32>) -> Generator<u32> {
    Generator::from_stream(futures::stream::iter(xs))
}

#[app::cls]
pub struct Model {
    #[app::parameter]
    name: String,
}

#[app::cls]
impl Model {
    #[app::method]
    fn stream(&self) -> Generator<u32> {
        Generator::from_stream(futures::stream::iter(vec![1]))
    }
}

fn main() {}
