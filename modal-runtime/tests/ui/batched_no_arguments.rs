use modal_runtime::app;

#[app::function]
#[app::batched(max_batch_size = 8, wait_ms = 100)]
fn ticks() -> Vec<u64> {
    vec![]
}

fn main() {}
