use modal_runtime::app;

#[app::function]
#[app::batched(max_batch_size = 8, wait_ms = 100)]
fn embed(texts: Vec<String>, scale: u32) -> Vec<u64> {
    texts.iter().map(|t| t.len() as u64 * u64::from(scale)).collect()
}

fn main() {}
