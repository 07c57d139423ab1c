use modal_runtime::app;

struct Point {
    x: f64,
}

#[app::cls]
struct Geometry {}

#[app::cls]
impl Geometry {
    #[app::method]
    fn norm(&self, p: Point) -> f64 {
        p.x.abs()
    }
}

fn main() {}
