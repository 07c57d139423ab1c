use modal_runtime::app;

struct Point {
    x: f64,
}

#[app::function]
fn norm(p: Point) -> f64 {
    p.x.abs()
}

fn main() {}
