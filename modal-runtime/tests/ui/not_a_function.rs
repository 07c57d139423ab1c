use modal_runtime::app;

#[app::function]
struct Job {
    id: u64,
}

fn main() {
    let _ = Job { id: 1 }.id;
}
