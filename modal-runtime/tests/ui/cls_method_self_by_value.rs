use modal_runtime::app;

#[app::cls]
struct Model {
    weights: Vec<f32>,
}

#[app::cls]
impl Model {
    #[app::method]
    fn into_weights(self) -> Vec<f32> {
        self.weights
    }
}

fn main() {}
