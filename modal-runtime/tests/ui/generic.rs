use modal_runtime::app;

#[app::function]
fn identity<T: Clone>(x: T) -> T {
    x
}

#[app::function]
fn bounded(x: u64) -> u64
where
    u64: Copy,
{
    x
}

fn main() {}
