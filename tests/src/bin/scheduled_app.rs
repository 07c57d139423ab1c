//! An app with a schedule: `tick` runs every 2 s once the app is deployed.
//! Each run appends `<attempt> <unix ms>` to a file: `$TICKS_FILE`, else
//! `$TMPDIR/modal-e2e-ticks-<app>.log`. Run directly (an ephemeral app) it
//! calls `tick` once and waits long enough for two ticks, which must not
//! come.

use std::io::Write as _;

use modal_runtime::app;

#[app::function(schedule = Period(2))]
fn tick() -> u32 {
    let attempt = modal_runtime::current_input().map_or(0, |i| i.attempt);
    let path = std::env::var_os("TICKS_FILE").map_or_else(
        || {
            let app = std::env::var("MODAL_APP").unwrap_or_default();
            std::env::temp_dir().join(format!("modal-e2e-ticks-{}.log", app.replace('/', "_")))
        },
        std::path::PathBuf::from,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    // One write per line: lines of runs side by side do not interleave.
    file.write_all(format!("{attempt} {now}\n").as_bytes())
        .unwrap();
    attempt
}

#[app::main]
async fn main() -> Result<(), modal_runtime::Error> {
    println!("tick {}", tick.remote().await?);
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    println!("done");
    Ok(())
}
