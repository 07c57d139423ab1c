use modal_runtime::app;

#[app::function(schedule = Cron("61 * * * *"))]
fn bad_minute() {}

#[app::function(schedule = Cron("0 * * *"))]
fn four_fields() {}

#[app::function(schedule = Cron("0 9 * * 1-5 2027"))]
fn six_fields() {}

#[app::function(schedule = Cron(9))]
fn not_a_string() {}

#[app::function(schedule = "0 * * * *")]
fn not_wrapped() {}

fn main() {}
