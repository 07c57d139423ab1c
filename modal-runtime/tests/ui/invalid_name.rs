use modal_runtime::app;

#[app::function(name = "square root")]
fn sqrt(x: f64) -> f64 {
    x.sqrt()
}

fn main() {}
