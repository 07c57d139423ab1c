use modal_runtime::app;

struct Point {
    x: f64,
}

#[app::function]
fn origin() -> Point {
    Point { x: 0.0 }
}

#[app::function]
async fn parse(text: String) -> Result<Point, std::num::ParseFloatError> {
    Ok(Point { x: text.parse()? })
}

fn main() {}
