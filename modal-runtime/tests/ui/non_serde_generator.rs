use modal_runtime::{Generator, app};

struct Point {
    x: f64,
}

#[app::function]
fn points(n: u32) -> Generator<Point> {
    Generator::new(move |out| async move {
        for i in 0..n {
            out.send(Point { x: f64::from(i) }).await;
        }
    })
}

#[app::main]
async fn main() -> Result<(), modal_runtime::Error> {
    let _ = points.remote_gen(3);
    Ok(())
}
