//! Calls functions of the deployed `hello` app through its typed stubs.
//!
//! ```text
//! cargo xtask server &                      # a standalone control plane
//! cargo xtask deploy hello                  # deploy the hello example
//! MODAL_SERVER_URL=http://127.0.0.1:7470 cargo run -p caller
//! ```
//!
//! `HELLO_APP` names the deployed app (default `hello`). With `MODEL_APP` set
//! (after `cargo xtask deploy model`), it also calls the deployed
//! `Factorizer` class of `examples/model`.

use modal_runtime::app;

#[app::main]
async fn main() -> Result<(), modal_runtime::Error> {
    let app = std::env::var("HELLO_APP").unwrap_or_else(|_| "hello".to_owned());

    // Typed handles on the deployed functions; checked against the deployed
    // types on first use.
    let square = hello::square::from_name(&app);
    let add = hello::add::from_name(&app);

    println!("{app}.square(12) = {}", square.remote(12).await?);
    println!("{app}.add(2, 3) = {}", add.remote(2, 3).await?);
    let squares: Vec<u64> = square.map([1, 2, 3]).collect_vec().await?;
    println!("{app}.square.map([1, 2, 3]) = {squares:?}");

    // The function's own error type, matched on as a value.
    let withdraw = hello::withdraw::from_name(&app);
    match withdraw.remote(10, 25).await {
        Ok(left) => println!("{app}.withdraw(10, 25) left {left}"),
        Err(e) => match e.user_error::<hello::WithdrawError>() {
            Some(hello::WithdrawError::InsufficientFunds { balance, requested }) => {
                println!("{app}.withdraw(10, 25) refused: {requested} is more than {balance}")
            }
            _ => return Err(e),
        },
    }

    if let Ok(model_app) = std::env::var("MODEL_APP") {
        // A typed class handle by name; an instance with its parameters.
        let factorizer = model::Factorizer::from_name(&model_app)
            .instance(model::FactorizerParams::new("caller".into()));
        println!(
            "{model_app}.Factorizer(\"caller\").factorize(360) = {:?}",
            factorizer.factorize.remote(360).await?
        );
    }
    Ok(())
}
