use modal_runtime::app;

#[app::batched(max_batch_size = 8, wait_ms = 100)]
#[app::function]
fn embed(texts: Vec<String>) -> Vec<usize> {
    texts.iter().map(String::len).collect()
}

fn main() {}
