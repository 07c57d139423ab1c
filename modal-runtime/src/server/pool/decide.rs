//! A pool's decisions as plain functions over plain numbers, so that they
//! can be read and tested apart from the state they are applied to.

use std::time::Duration;

/// Work a container may have queued beyond what it runs, in microseconds of
/// the function's measured run time.
const PREFETCH_BUDGET_US: u64 = 2_000;
const MAX_PREFETCH: u64 = 256;
/// Prefetch before anything has been measured.
const INITIAL_PREFETCH: usize = 8;

/// Inputs one container may hold: what it runs at once (`concurrency`) plus
/// a prefetch sized so that about [`PREFETCH_BUDGET_US`] of work waits in
/// it, from the measured run time of one input (0: not measured yet).
pub(super) fn container_window(concurrency: usize, exec_us: u64) -> usize {
    let prefetch = PREFETCH_BUDGET_US
        .checked_div(exec_us)
        .map_or(INITIAL_PREFETCH, |p| p.clamp(1, MAX_PREFETCH) as usize);
    concurrency + prefetch
}

/// How many of `queued` inputs the next of `containers_left` ready
/// containers (least loaded first) takes now: an even share of the queue,
/// within its `room` (its window less what it holds).
pub(super) fn share(queued: usize, containers_left: usize, room: usize) -> usize {
    queued.div_ceil(containers_left.max(1)).min(room)
}

/// What the autoscaler sees of a pool.
#[derive(Debug, Clone, Copy)]
pub(super) struct Demand {
    /// Inputs queued or running.
    pub backlog: usize,
    /// Containers starting or running, not stopping.
    pub live: usize,
    /// Inputs per container the autoscaler aims for.
    pub per_container: usize,
    /// Extra containers while there is work (`buffer_containers`).
    pub buffer: usize,
    pub min: usize,
    pub max: usize,
}

/// How many containers to start now.
pub(super) fn containers_to_add(d: Demand) -> usize {
    let mut wanted = d.backlog.div_ceil(d.per_container.max(1));
    if d.backlog > 0 {
        wanted += d.buffer;
    }
    wanted.max(d.min).min(d.max).saturating_sub(d.live)
}

/// Whether a pool takes one more web request: not when it runs all the
/// containers it may and `queue_limit` inputs already wait (the caller is
/// told to come back later instead of waiting behind them).
pub(super) fn has_room(live: usize, max: usize, queued: usize, queue_limit: usize) -> bool {
    live < max || queued < queue_limit
}

/// Where a container is in its life, as the retire check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Started, not yet ready (connecting, or running `enter`).
    Starting {
        for_: Duration,
    },
    Ready {
        silent_for: Duration,
        idle_for: Duration,
        running: usize,
    },
    Stopping,
}

/// The limits a container is held to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub heartbeat_timeout: Duration,
    pub startup_timeout: Duration,
    pub scaledown_window: Duration,
}

/// Why a container should go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Keep,
    StartupTimeout,
    Lost,
    Idle,
}

/// Whether an idle container of a pool may leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shrink {
    /// The pool is at its minimum, or has queued inputs.
    No,
    /// Above its minimum with nothing queued: once idle for the
    /// scale-down window.
    AfterWindow,
    /// Above its maximum (it was lowered): as soon as it is idle.
    Now,
}

/// Whether one container should go.
pub(super) fn verdict(phase: Phase, limits: Limits, shrink: Shrink) -> Verdict {
    match phase {
        Phase::Starting { for_ } if for_ > limits.startup_timeout => Verdict::StartupTimeout,
        Phase::Ready { silent_for, .. } if silent_for > limits.heartbeat_timeout => Verdict::Lost,
        Phase::Ready { running: 0, .. } if shrink == Shrink::Now => Verdict::Idle,
        Phase::Ready {
            idle_for, running, ..
        } if shrink == Shrink::AfterWindow
            && running == 0
            && idle_for >= limits.scaledown_window =>
        {
            Verdict::Idle
        }
        _ => Verdict::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_concurrency_plus_about_two_ms_of_work() {
        assert_eq!(container_window(1, 0), 1 + INITIAL_PREFETCH);
        assert_eq!(container_window(1, 10), 1 + 200);
        assert_eq!(container_window(4, 1), 4 + MAX_PREFETCH as usize);
        // Long inputs are not hoarded: one waits at most.
        assert_eq!(container_window(2, 10_000_000), 2 + 1);
    }

    #[test]
    fn the_queue_is_shared_evenly_within_each_container_s_room() {
        // Ten inputs, two empty containers of window 9: five each.
        assert_eq!(share(10, 2, 9), 5);
        assert_eq!(share(5, 1, 9), 5);
        // After the less loaded took its five, a fuller one takes what fits.
        assert_eq!(share(5, 1, 1), 1);
        // Fewer inputs than containers: one each while they last.
        assert_eq!(share(2, 3, 9), 1);
        assert_eq!(share(0, 3, 9), 0);
        assert_eq!(share(7, 0, 9), 7);
    }

    fn demand(backlog: usize, live: usize) -> Demand {
        Demand {
            backlog,
            live,
            per_container: 1,
            buffer: 0,
            min: 0,
            max: 5,
        }
    }

    #[test]
    fn web_requests_wait_only_while_containers_can_be_added_or_the_queue_is_short() {
        assert!(has_room(0, 1, 100, 4));
        assert!(has_room(1, 1, 3, 4));
        assert!(!has_room(1, 1, 4, 4));
        assert!(!has_room(2, 1, 4, 4));
    }

    #[test]
    fn scaling_follows_the_backlog_within_min_and_max() {
        assert_eq!(containers_to_add(demand(0, 0)), 0);
        assert_eq!(containers_to_add(demand(3, 1)), 2);
        assert_eq!(containers_to_add(demand(50, 0)), 5);
        assert_eq!(containers_to_add(demand(50, 5)), 0);
        assert_eq!(
            containers_to_add(Demand {
                min: 2,
                ..demand(0, 0)
            }),
            2
        );
        assert_eq!(
            containers_to_add(Demand {
                buffer: 1,
                ..demand(1, 0)
            }),
            2
        );
        assert_eq!(
            containers_to_add(Demand {
                buffer: 1,
                ..demand(0, 0)
            }),
            0
        );
        assert_eq!(
            containers_to_add(Demand {
                per_container: 10,
                ..demand(25, 0)
            }),
            3
        );
    }

    #[test]
    fn verdicts() {
        let limits = Limits {
            heartbeat_timeout: Duration::from_secs(10),
            startup_timeout: Duration::from_secs(60),
            scaledown_window: Duration::from_secs(60),
        };
        let s = Duration::from_secs;
        let starting = |t| Phase::Starting { for_: s(t) };
        let ready = |silent, idle, running| Phase::Ready {
            silent_for: s(silent),
            idle_for: s(idle),
            running,
        };
        let after = Shrink::AfterWindow;
        assert_eq!(verdict(starting(10), limits, after), Verdict::Keep);
        assert_eq!(
            verdict(starting(61), limits, after),
            Verdict::StartupTimeout
        );
        assert_eq!(verdict(ready(11, 0, 1), limits, after), Verdict::Lost);
        assert_eq!(verdict(ready(1, 60, 0), limits, after), Verdict::Idle);
        assert_eq!(verdict(ready(1, 60, 0), limits, Shrink::No), Verdict::Keep);
        assert_eq!(verdict(ready(1, 60, 1), limits, after), Verdict::Keep);
        assert_eq!(verdict(ready(1, 59, 0), limits, after), Verdict::Keep);
        assert_eq!(verdict(Phase::Stopping, limits, after), Verdict::Keep);
        // Over the maximum: an idle container goes at once, a busy one stays.
        assert_eq!(verdict(ready(1, 0, 0), limits, Shrink::Now), Verdict::Idle);
        assert_eq!(verdict(ready(1, 0, 1), limits, Shrink::Now), Verdict::Keep);
        assert_eq!(verdict(starting(10), limits, Shrink::Now), Verdict::Keep);
    }
}
