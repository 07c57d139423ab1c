use modal_runtime::app;

#[app::cls]
struct Embedder {}

#[app::cls]
impl Embedder {
    #[app::method]
    #[app::batched(max_batch_size = 8, wait_ms = 100)]
    fn embed(&self, texts: Vec<String>) -> Vec<usize> {
        texts.iter().map(String::len).collect()
    }

    #[app::method]
    fn ping(&self) {}
}

fn main() {}
