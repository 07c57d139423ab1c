//! The inline budget: KiB of inline arguments held by accepted inputs that
//! have no outcome yet, across every caller. Each input holds its share
//! (at least 1 KiB, so that many tiny inputs count too) from acceptance to
//! its outcome; when the budget is spent, streams wait (HTTP/2 flow control
//! holds their senders back) and single calls wait a little, then get
//! `RESOURCE_EXHAUSTED`. With the per-message limit, this is what bounds the
//! control plane's memory whatever mix of requests arrives.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

pub(crate) struct InlineBudget {
    kib: Arc<Semaphore>,
    total_kib: u32,
    /// How long a single call waits for room before it is refused.
    patience: Duration,
}

/// A share of the budget, given back when the last input holding it is
/// dropped: the inputs of one message share one (one release per message,
/// not per input, on the map hot path).
pub(crate) type BudgetShare = Arc<OwnedSemaphorePermit>;

impl InlineBudget {
    pub(crate) fn new(bytes: u64, patience: Duration) -> Self {
        let total_kib = (bytes / 1024).clamp(1, u64::from(u32::MAX >> 3)) as u32;
        InlineBudget {
            kib: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
            patience,
        }
    }

    /// The KiB inputs of these sizes count for: each at least 1, all
    /// together at most the whole budget.
    fn share_kib(&self, sizes: impl IntoIterator<Item = usize>) -> u32 {
        let kib: usize = sizes.into_iter().map(|b| b.div_ceil(1024).max(1)).sum();
        kib.min(self.total_kib as usize) as u32
    }

    /// Waits for room for inputs of these sizes as long as it takes: for
    /// streams, whose senders are held back meanwhile.
    pub(crate) async fn wait_for(&self, sizes: impl IntoIterator<Item = usize>) -> BudgetShare {
        let kib = self.share_kib(sizes);
        Arc::new(
            self.kib
                .clone()
                .acquire_many_owned(kib)
                .await
                .expect("the budget is never closed"),
        )
    }

    /// Room for one call's `bytes`, waiting at most the budget's patience.
    pub(crate) async fn reserve(&self, bytes: usize) -> Result<BudgetShare, Status> {
        // The common case, with room to spare, arms no timer.
        if let Ok(share) = self
            .kib
            .clone()
            .try_acquire_many_owned(self.share_kib([bytes]))
        {
            return Ok(Arc::new(share));
        }
        tokio::time::timeout(self.patience, self.wait_for([bytes]))
            .await
            .map_err(|_| {
                Status::resource_exhausted(format!(
                    "the control plane holds {} MiB of inline arguments of inputs not yet \
                     answered, its limit, and none was answered for {:?}: retry later, or \
                     raise the limit (`ServerConfig::max_inline_bytes_in_flight`)",
                    self.total_kib / 1024,
                    self.patience
                ))
            })
    }

    /// KiB free now.
    #[cfg(test)]
    pub(crate) fn available_kib(&self) -> usize {
        self.kib.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shares_are_held_until_dropped_and_a_full_budget_refuses_calls() {
        let budget = InlineBudget::new(4 << 10, Duration::from_millis(50));
        let big = budget.reserve(3 << 10).await.unwrap();
        let tiny = budget.reserve(0).await.unwrap();
        assert_eq!(budget.available_kib(), 0);
        let refused = budget.reserve(1).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("4 MiB") || refused.message().contains("limit"));
        drop(big);
        drop(tiny);
        assert_eq!(budget.available_kib(), 4);
        // An input larger than the whole budget takes all of it, not forever.
        let all = budget.reserve(1 << 30).await.unwrap();
        assert_eq!(budget.available_kib(), 0);
        drop(all);
    }
}
