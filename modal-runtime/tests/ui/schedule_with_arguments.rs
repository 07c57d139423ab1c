use modal_runtime::app;

#[app::function(schedule = Period(60))]
fn report(day: u32) -> u32 {
    day
}

#[app::function(schedule = Cron("0 * * * *"))]
#[app::web_endpoint]
fn page() -> String {
    String::new()
}

#[app::cls(schedule = Period(60))]
struct Model {}

#[app::cls]
impl Model {
    #[app::method]
    fn ping(&self) {}
}

fn main() {}
