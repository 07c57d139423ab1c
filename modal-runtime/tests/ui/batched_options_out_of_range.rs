use modal_runtime::app;

#[app::function]
#[app::batched(max_batch_size = 0, wait_ms = 600001)]
fn embed(texts: Vec<String>) -> Vec<usize> {
    texts.iter().map(String::len).collect()
}

fn main() {}
