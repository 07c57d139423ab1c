use modal_runtime::app;

#[app::cls]
struct Embedder {}

#[app::cls]
impl Embedder {
    #[app::method]
    #[app::batched(max_batch_size = 8, wait_ms = 100)]
    async fn embed(&self, text: String) -> usize {
        text.len()
    }
}

fn main() {}
