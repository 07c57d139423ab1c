use modal_runtime::app;

#[app::function(timout = 60)]
fn typo(x: u64) -> u64 {
    x
}

#[app::function(flavor = "large")]
fn unknown(x: u64) -> u64 {
    x
}

fn main() {}
