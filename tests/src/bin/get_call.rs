//! Fetches a spawned call's result in a process of its own:
//! `get_call <call id>` prints the `u64` result, with the control plane
//! named by `MODAL_SERVER_URL`.

use modal_runtime::FunctionCall;

#[tokio::main]
async fn main() {
    let id = std::env::args().nth(1).expect("usage: get_call <call id>");
    let call = FunctionCall::<u64>::from_id(&id).expect("a control plane is configured");
    match call.get(None).await {
        Ok(value) => println!("result {value}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
