//! Functions that run in containers. The binary (`main.rs`) calls them; other
//! crates can call them too, once deployed (see `examples/caller`).

use modal_runtime::app;

/// Squares a number.
#[app::function]
pub fn square(x: u64) -> u64 {
    x * x
}

/// Adds two numbers.
#[app::function]
pub fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// An async function: it runs on the container's async runtime. What it
/// prints reaches the caller's terminal, marked with function and container.
#[app::function(timeout = 30)]
pub async fn greet(name: String) -> String {
    println!("greeting {name}");
    format!("Hello, {name}!")
}

/// A fallible function: the error's text reaches the caller.
#[app::function]
pub fn parse_port(text: String) -> Result<u16, std::num::ParseIntError> {
    text.trim().parse()
}

/// Why [`withdraw`] refused: a serde type, so a caller gets it back as a
/// value and can match on it (`Error::user_error`).
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum WithdrawError {
    InsufficientFunds { balance: u64, requested: u64 },
    ZeroAmount,
}

impl std::fmt::Display for WithdrawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WithdrawError::InsufficientFunds { balance, requested } => {
                write!(f, "cannot withdraw {requested} from a balance of {balance}")
            }
            WithdrawError::ZeroAmount => write!(f, "nothing to withdraw"),
        }
    }
}

/// A typed error: what is left, or why not.
#[app::function]
pub fn withdraw(balance: u64, amount: u64) -> Result<u64, WithdrawError> {
    match amount {
        0 => Err(WithdrawError::ZeroAmount),
        _ if amount > balance => Err(WithdrawError::InsufficientFunds {
            balance,
            requested: amount,
        }),
        _ => Ok(balance - amount),
    }
}

/// A web endpoint as well as a function: `GET <its URL>?name=you` answers
/// JSON, without a token (`public`), while the program runs.
#[app::function]
#[app::web_endpoint(method = "GET", public)]
pub fn hello_web(name: String) -> String {
    format!("Hello, {name}, over HTTP!")
}
