use modal_runtime::app;

#[app::function(schedule = Period(0))]
fn zero() {}

#[app::function(schedule = Period(-5))]
fn negative() {}

#[app::function(schedule = Period(0.25))]
fn too_often() {}

#[app::function(schedule = Period())]
fn no_seconds() {}

fn main() {}
