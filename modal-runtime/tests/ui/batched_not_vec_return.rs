use modal_runtime::app;

#[app::function]
#[app::batched(max_batch_size = 8, wait_ms = 100)]
fn total(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

fn main() {}
