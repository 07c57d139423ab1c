use modal_runtime::app;

struct Counter;

impl Counter {
    #[app::function]
    fn get(&self, x: u64) -> u64 {
        x
    }
}

fn main() {}
