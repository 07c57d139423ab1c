//! When a schedule's ticks fall, as plain functions over milliseconds
//! since the epoch: the first tick of a schedule, and what is due at a
//! given time (the one tick to run now, and the tick after).

use chrono::{DateTime, Utc};

use crate::options::{Schedule, schedule};

/// Past this, a time is "never": a cron expression with no date that
/// matches (`0 0 30 2 *`).
pub(crate) const NEVER: i64 = i64::MAX;

/// A schedule ready to give its ticks.
pub(crate) enum Rule {
    Cron {
        cron: Box<croner::Cron>,
        timezone: chrono_tz::Tz,
    },
    Period {
        millis: i64,
    },
}

/// The tick to run now, and the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Due {
    /// The tick claimed: the earliest one not yet run.
    pub tick_ms: i64,
    /// The first tick after now: the ticks between `tick_ms` and now are
    /// skipped, so that a control plane that was down runs one catch-up,
    /// never a burst.
    pub next_ms: i64,
}

impl Rule {
    /// The rule of a schedule (checked again: a manifest is input).
    pub(crate) fn of(s: &Schedule) -> Result<Rule, String> {
        match s {
            Schedule::Cron {
                expression,
                timezone,
            } => Ok(Rule::Cron {
                cron: Box::new(schedule::parse_cron(expression)?),
                timezone: match timezone {
                    Some(tz) => schedule::parse_timezone(tz)?,
                    None => chrono_tz::UTC,
                },
            }),
            Schedule::Period { millis } => {
                schedule::check_period_millis(*millis)?;
                Ok(Rule::Period {
                    millis: *millis as i64,
                })
            }
        }
    }

    /// Whether a redeploy keeps the phase: a cron schedule's ticks are
    /// wall-clock times, whoever counts them; a period counts from the
    /// deploy.
    pub(crate) fn keeps_phase(&self) -> bool {
        matches!(self, Rule::Cron { .. })
    }

    /// The first tick of a schedule that starts at `now_ms` (a deploy):
    /// the next time its cron expression names, or one period on.
    pub(crate) fn first_tick(&self, now_ms: i64) -> i64 {
        match self {
            Rule::Cron { .. } => self.cron_after(now_ms),
            Rule::Period { millis } => now_ms.saturating_add(*millis),
        }
    }

    /// The next tick of a schedule deployed at `now_ms`. A redeploy of the
    /// same schedule passes the next tick it had (`kept`): a cron schedule
    /// keeps it (a redeploy neither runs a tick more nor skips one); a
    /// period starts again from the deploy, as does a new schedule.
    pub(crate) fn next_at_deploy(&self, kept: Option<i64>, now_ms: i64) -> i64 {
        match kept {
            Some(next) if self.keeps_phase() => next,
            _ => self.first_tick(now_ms),
        }
    }

    /// What runs at `now_ms` when the earliest tick not yet run is
    /// `next_ms`: nothing before it; at or after it, that tick, once,
    /// with the next tick the first one after `now_ms`.
    pub(crate) fn due(&self, next_ms: i64, now_ms: i64) -> Option<Due> {
        if now_ms < next_ms || next_ms == NEVER {
            return None;
        }
        let after = match self {
            Rule::Cron { .. } => self.cron_after(now_ms),
            Rule::Period { millis } => {
                // On the same grid as `next_ms`: the phase survives a
                // restart.
                let missed = (now_ms - next_ms) / millis;
                next_ms.saturating_add((missed + 1).saturating_mul(*millis))
            }
        };
        Some(Due {
            tick_ms: next_ms,
            next_ms: after,
        })
    }

    /// The first time the cron expression names strictly after `ms`, in
    /// its time zone (a time skipped by a change to summer time runs at
    /// the first instant after the gap; a time repeated by the change
    /// back runs once); [`NEVER`] if none.
    fn cron_after(&self, ms: i64) -> i64 {
        let Rule::Cron { cron, timezone } = self else {
            unreachable!("cron_after on a period")
        };
        let Some(at) = DateTime::<Utc>::from_timestamp_millis(ms) else {
            return NEVER;
        };
        cron.find_next_occurrence(&at.with_timezone(timezone), false)
            .map_or(NEVER, |next| next.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use chrono::TimeZone;

    use super::*;

    fn cron(expression: &'static str, timezone: Option<&'static str>) -> Rule {
        Rule::of(&Schedule::Cron {
            expression: Cow::Borrowed(expression),
            timezone: timezone.map(Cow::Borrowed),
        })
        .unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn the_next_tick_after_a_time() {
        let hourly = cron("0 * * * *", None);
        let at = utc(2026, 3, 1, 10, 15, 0);
        assert_eq!(hourly.first_tick(at), utc(2026, 3, 1, 11, 0, 0));
        // Strictly after: at a tick, the next is the one after.
        assert_eq!(
            hourly.first_tick(utc(2026, 3, 1, 11, 0, 0)),
            utc(2026, 3, 1, 12, 0, 0)
        );
        let period = Rule::of(&Schedule::Period { millis: 2000 }).unwrap();
        assert_eq!(period.first_tick(10_000), 12_000);
        assert!(hourly.keeps_phase() && !period.keeps_phase());
    }

    #[test]
    fn nothing_is_due_before_the_tick_and_the_tick_is_due_once() {
        let period = Rule::of(&Schedule::Period { millis: 2000 }).unwrap();
        assert_eq!(period.due(12_000, 11_999), None);
        assert_eq!(
            period.due(12_000, 12_010),
            Some(Due {
                tick_ms: 12_000,
                next_ms: 14_000
            })
        );
        let hourly = cron("0 * * * *", None);
        let tick = utc(2026, 3, 1, 11, 0, 0);
        assert_eq!(hourly.due(tick, tick - 1), None);
        assert_eq!(
            hourly.due(tick, tick + 40),
            Some(Due {
                tick_ms: tick,
                next_ms: utc(2026, 3, 1, 12, 0, 0)
            })
        );
    }

    #[test]
    fn downtime_gets_one_catch_up_and_keeps_the_phase() {
        // Down from 12 s to 21.5 s: ticks 12, 14, ..., 20 were missed.
        let period = Rule::of(&Schedule::Period { millis: 2000 }).unwrap();
        let due = period.due(12_000, 21_500).unwrap();
        assert_eq!(due.tick_ms, 12_000, "the first missed tick runs, once");
        assert_eq!(due.next_ms, 22_000, "then the grid goes on");
        assert_eq!(period.due(due.next_ms, 21_500), None, "no burst");
        // Down for a day and a half on an hourly schedule.
        let hourly = cron("0 * * * *", None);
        let missed = utc(2026, 3, 1, 11, 0, 0);
        let back = utc(2026, 3, 2, 23, 30, 0);
        let due = hourly.due(missed, back).unwrap();
        assert_eq!(due.tick_ms, missed);
        assert_eq!(due.next_ms, utc(2026, 3, 3, 0, 0, 0));
        assert_eq!(hourly.due(due.next_ms, back), None);
    }

    #[test]
    fn cron_ticks_follow_the_time_zone_across_summer_time() {
        // 09:00 on weekdays in Paris: 08:00 UTC in winter, 07:00 in summer.
        let paris = cron("0 9 * * 1-5", Some("Europe/Paris"));
        // Friday 27 March 2026 (winter time) ...
        let friday = utc(2026, 3, 27, 8, 0, 0);
        assert_eq!(paris.first_tick(friday - 1), friday);
        // ... then Monday 30 March (summer time since Sunday).
        assert_eq!(paris.first_tick(friday), utc(2026, 3, 30, 7, 0, 0));

        // 02:30 every day: on 29 March 2026 Paris skips from 02:00 to
        // 03:00; that day's run is at 03:00 (01:00 UTC), once.
        let night = cron("30 2 * * *", Some("Europe/Paris"));
        let before = utc(2026, 3, 28, 1, 30, 0);
        let skipped_day = night.first_tick(before);
        assert_eq!(skipped_day, utc(2026, 3, 29, 1, 0, 0));
        assert_eq!(night.first_tick(skipped_day), utc(2026, 3, 30, 0, 30, 0));

        // On 25 October 2026 Paris repeats 02:00 to 03:00: 02:30 comes
        // twice on the clock, and runs once.
        let first = night.first_tick(utc(2026, 10, 24, 12, 0, 0));
        assert_eq!(first, utc(2026, 10, 25, 0, 30, 0));
        assert_eq!(night.first_tick(first), utc(2026, 10, 26, 1, 30, 0));
    }

    #[test]
    fn a_redeploy_keeps_a_cron_schedules_next_tick_and_restarts_a_period() {
        let hourly = cron("0 * * * *", None);
        let next = utc(2026, 3, 1, 11, 0, 0);
        // Redeployed a second before the tick: it still runs, once.
        let redeploy = next - 1_000;
        assert_eq!(hourly.next_at_deploy(Some(next), redeploy), next);
        assert_eq!(hourly.due(next, redeploy), None);
        // Redeployed after a restart that missed the tick: one catch-up.
        assert_eq!(hourly.next_at_deploy(Some(next), next + 5_000), next);
        assert_eq!(hourly.next_at_deploy(None, redeploy), next);
        let period = Rule::of(&Schedule::Period { millis: 2000 }).unwrap();
        assert_eq!(period.next_at_deploy(Some(12_000), 11_500), 13_500);
        assert_eq!(period.next_at_deploy(None, 11_500), 13_500);
    }

    #[test]
    fn a_cron_expression_that_never_matches_is_never_due() {
        let never = cron("0 0 30 2 *", None);
        assert_eq!(never.first_tick(utc(2026, 1, 1, 0, 0, 0)), NEVER);
        assert_eq!(never.due(NEVER, i64::MAX - 1), None);
    }

    proptest::proptest! {
        /// A manifest is hostile input: whatever it names as a schedule is
        /// refused or gives ticks, without a panic.
        #[test]
        fn any_cron_expression_or_time_zone_is_refused_or_ticks(
            fields in proptest::collection::vec(
                "\\*|[0-9]{1,2}|[0-9]{1,2}-[0-9]{1,2}|\\*/[0-9]{1,2}|[0-9*/,\\-]{1,5}|[A-Z]{3}|@[a-z]{4,8}",
                0..7,
            ),
            timezone in proptest::option::of(
                "Europe/Paris|America/New_York|Australia/Lord_Howe|UTC|[A-Za-z/_+\\-0-9]{0,20}"
            ),
            millis in proptest::prelude::any::<u64>(),
            now in 0_i64..4_102_444_800_000,
        ) {
            let expression = fields.join(" ");
            let cron = Schedule::Cron {
                expression: Cow::Owned(expression),
                timezone: timezone.map(Cow::Owned),
            };
            for schedule in [cron, Schedule::Period { millis }] {
                if let Ok(rule) = Rule::of(&schedule) {
                    let first = rule.first_tick(now);
                    proptest::prop_assert!(first > now);
                    if let Some(due) = rule.due(first, first) {
                        proptest::prop_assert!(due.next_ms > first);
                    }
                }
            }
        }
    }
}
