//! Riding out a control plane that went away: calls that can be resent
//! (`remote`, maps, waiting on a call's result) try again, moving round
//! the configured URLs and pausing longer each round, until one answers or
//! the client's reconnect timeout passes.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Client;
use crate::Error;

/// The pause after the first round of failed tries.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between rounds: a control plane that comes back is
/// found within about this long.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// One stretch of failed tries of a call, from its first failure to the
/// next answer.
#[derive(Debug, Default)]
pub(crate) struct Outage {
    began: Option<Instant>,
    failures: u32,
}

impl Client {
    /// What a caller does after `error` from a try at URL number `failed`:
    /// `Ok` once it is time to try again (on the next URL), or the error to
    /// give the caller: `error` itself when it is not a lost connection (or
    /// reconnecting is off), [`Error::ServerLost`] once the reconnect
    /// timeout has passed.
    pub(crate) async fn ride_out(
        &self,
        outage: &mut Outage,
        failed: usize,
        error: Error,
    ) -> Result<(), Error> {
        let bound = self.inner.reconnect_timeout;
        if !matches!(error, Error::ServerUnreachable { .. }) || bound.is_zero() {
            return Err(error);
        }
        let began = *outage.began.get_or_insert_with(Instant::now);
        outage.failures += 1;
        self.move_on_from(failed);
        let waited = began.elapsed();
        if waited >= bound {
            return Err(Error::ServerLost {
                urls: self.inner.urls.clone(),
                waited,
            });
        }
        let pause = pause_after(outage.failures, self.inner.urls.len(), jitter_seed());
        tokio::time::sleep(pause.min(bound - waited)).await;
        Ok(())
    }

    /// A unary call, tried again while the control plane is unreachable
    /// when `ride_out` is set.
    pub(crate) async fn unary<T, F, Fut>(&self, ride_out: bool, mut call: F) -> Result<T, Error>
    where
        F: FnMut(crate::connection::Rpc) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut outage = Outage::default();
        loop {
            let (at, rpc) = self.rpc_at();
            let error = match call(rpc).await {
                Ok(reply) => return Ok(reply.into_inner()),
                Err(status) => self.status_at(at, status),
            };
            if !ride_out {
                return Err(error);
            }
            self.ride_out(&mut outage, at, error).await?;
        }
    }
}

/// The pause before round `round` (from 0) of tries: 50 ms doubling to
/// 1 s, each somewhere in its upper half (by `seed`) so that callers that
/// lost the same control plane do not all come back at the same instant.
pub(crate) fn backoff(round: u32, seed: u64) -> Duration {
    let full = FIRST_PAUSE
        .saturating_mul(1_u32 << round.min(16))
        .min(MAX_PAUSE);
    let half = full / 2;
    let spread = half.as_nanos() as u64 + 1;
    half + Duration::from_nanos(seed % spread)
}

/// The pause after `failures` failed tries over `urls` URLs: none while
/// this round still has URLs to try, a backoff once each was tried.
pub(crate) fn pause_after(failures: u32, urls: usize, seed: u64) -> Duration {
    let urls = urls.max(1) as u32;
    if failures == 0 || !failures.is_multiple_of(urls) {
        Duration::ZERO
    } else {
        backoff(failures / urls - 1, seed)
    }
}

/// The URL to try after URL number `failed` failed: the next, round robin.
pub(crate) fn next_url(failed: usize, urls: usize) -> usize {
    (failed + 1) % urls.max(1)
}

/// A different number on each call: the clock's nanoseconds, mixed with a
/// counter for callers on the same tick.
fn jitter_seed() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    (nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)).wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 7
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_doubles_from_50ms_to_1s_with_jitter_in_the_upper_half() {
        let bounds = [(25, 50), (50, 100), (100, 200), (200, 400), (400, 800)];
        for (round, (low, high)) in bounds.into_iter().enumerate() {
            for seed in [0, 1, 12_345, u64::MAX / 3, u64::MAX] {
                let pause = backoff(round as u32, seed);
                assert!(
                    pause >= low * MS && pause <= high * MS,
                    "round {round}, seed {seed}: {pause:?}"
                );
            }
        }
        for round in [5, 6, 20, u32::MAX] {
            let pause = backoff(round, 987_654_321);
            assert!(pause >= 500 * MS && pause <= 1000 * MS, "{pause:?}");
        }
        assert_eq!(backoff(0, 0), 25 * MS);
        assert_eq!(backoff(10, 0), 500 * MS);
    }

    #[test]
    fn a_round_tries_every_url_before_pausing() {
        assert_eq!(pause_after(1, 1, 0), backoff(0, 0));
        assert_eq!(pause_after(2, 1, 0), backoff(1, 0));
        assert_eq!(pause_after(1, 2, 0), Duration::ZERO);
        assert_eq!(pause_after(2, 2, 0), backoff(0, 0));
        assert_eq!(pause_after(3, 2, 0), Duration::ZERO);
        assert_eq!(pause_after(4, 2, 0), backoff(1, 0));
    }

    #[test]
    fn urls_are_tried_round_robin() {
        assert_eq!(next_url(0, 1), 0);
        assert_eq!(next_url(0, 3), 1);
        assert_eq!(next_url(2, 3), 0);
    }

    #[test]
    fn jitter_seeds_differ() {
        let seeds: std::collections::HashSet<u64> = (0..100).map(|_| jitter_seed()).collect();
        assert!(seeds.len() > 90, "{} distinct", seeds.len());
    }
}
