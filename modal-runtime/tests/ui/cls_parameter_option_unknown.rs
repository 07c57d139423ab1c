use modal_runtime::app;

#[app::cls]
struct Model {
    #[app::parameter(defualt = 3)]
    top_k: u32,
}

#[app::cls]
impl Model {
    #[app::method]
    fn top_k(&self) -> u32 {
        self.top_k
    }
}

fn main() {}
