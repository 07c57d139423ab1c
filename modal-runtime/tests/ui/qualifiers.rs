use modal_runtime::app;

#[app::function]
unsafe fn raw(x: u64) -> u64 {
    x
}

#[app::function]
const fn constant(x: u64) -> u64 {
    x
}

#[app::function]
extern "C" fn foreign(x: u64) -> u64 {
    x
}

fn main() {}
