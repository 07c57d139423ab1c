use modal_runtime::app;

#[app::cls]
struct Counter {
    count: u64,
}

#[app::cls]
impl Counter {
    #[app::method]
    fn bump(&mut self) -> u64 {
        self.count += 1;
        self.count
    }
}

fn main() {}
