use modal_runtime::app;

#[app::function(schedule = Cron("0 9 * * 1-5", timezone = "Europe/Pariss"))]
fn misspelled() {}

#[app::function(schedule = Cron("0 9 * * 1-5", timezone = "europe/paris"))]
fn lower_case() {}

#[app::function(schedule = Cron("0 9 * * 1-5", tz = "UTC"))]
fn wrong_key() {}

fn main() {}
