//! Generators and retry policies: `-> Generator<T, R>` registers a generator
//! handler whose stub has `remote_gen`; `retries = { ... }` sets the policy.

use modal_runtime::codec;
use modal_runtime::registry::{self, Handler};
use modal_runtime::{FunctionOptions, GenStream, Generator, app};

/// Counts up to `n`, returning the total.
#[app::function(retries = { max_retries: 2, backoff_coefficient: 3.0, initial_delay: 0.25, max_delay: 10 })]
fn count(n: u32) -> Generator<u32, u64> {
    Generator::new(move |out| async move {
        let mut total = 0_u64;
        for i in 0..n {
            out.send(i).await;
            total += u64::from(i);
        }
        total
    })
}

/// An async function returning a generator of a stream's items.
#[app::function(startup_timeout = 30)]
async fn letters(word: String) -> modal_runtime::Generator<char> {
    Generator::from_stream(futures::stream::iter(word.chars().collect::<Vec<_>>()))
}

fn main() {
    // The stubs are typed by items and return value.
    let _: fn(&count, u32) -> GenStream<u32, u64> = count::remote_gen;
    let _: fn(&letters, String) -> GenStream<char, ()> = letters::remote_gen;

    let d = registry::find("count").unwrap();
    assert_eq!(
        (d.fingerprint)(),
        "(u32,) -> Generator<u32, u64>"
    );
    assert_eq!(d.options.retries, 2);
    assert_eq!(d.options.retry_backoff_coefficient, 3.0);
    assert_eq!(d.options.retry_initial_delay_ms, 250);
    assert_eq!(d.options.retry_max_delay_ms, 10_000);
    assert_eq!(
        registry::find("letters").unwrap().options,
        FunctionOptions {
            startup_timeout_secs: Some(30),
            ..FunctionOptions::DEFAULT
        }
    );

    // The handler streams the encoded items, then the return value.
    let Handler::Generator(run) = d.handler else {
        panic!("not a generator handler")
    };
    let events = run(codec::encode(&(3_u32,)).unwrap()).unwrap_or_else(|_| panic!("bad input"));
    let events: Vec<_> = futures::executor::block_on(futures::StreamExt::collect::<Vec<_>>(events));
    let mut items = Vec::new();
    let mut ret = None;
    for event in events {
        match event {
            modal_runtime::__private::GenEvent::Item(bytes) => {
                items.push(codec::decode::<u32>(&bytes.unwrap()).unwrap())
            }
            modal_runtime::__private::GenEvent::Return(bytes) => {
                ret = Some(codec::decode::<u64>(&bytes.unwrap()).unwrap())
            }
        }
    }
    assert_eq!(items, [0, 1, 2]);
    assert_eq!(ret, Some(3));

    // Run here, the generator is the user's own.
    let local = futures::executor::block_on(count.local(4).run_local(|_| {}));
    assert_eq!(local, Ok(6));
}
