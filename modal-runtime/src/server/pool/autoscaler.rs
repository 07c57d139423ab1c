//! A pool's autoscaler settings: what the function's options set, what
//! `update_autoscaler` (and `keep_warm`, its `min_containers` alone)
//! changes at run time, and the checks of a change, as plain functions.

use crate::options::FunctionOptions;
use crate::proto;
use crate::server::store::StoredAutoscaler;

/// The most containers a run-time change may ask for (`max_containers`,
/// and so `min_containers`; `buffer_containers` too). A warm pool starts
/// at once: one request must not start a million containers.
pub(crate) const MAX_CONTAINERS: std::ops::RangeInclusive<u32> = 1..=10_000;

/// The settings one pool scales by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Autoscaler {
    pub min_containers: u32,
    /// `None`: the server's default.
    pub max_containers: Option<u32>,
    pub buffer_containers: u32,
    pub scaledown_window_secs: u32,
}

/// A change: each `None` keeps the current value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Update {
    pub min_containers: Option<u32>,
    pub max_containers: Option<u32>,
    pub buffer_containers: Option<u32>,
    pub scaledown_window_secs: Option<u32>,
}

impl Update {
    pub(crate) fn of(request: &proto::UpdateAutoscalerRequest) -> Update {
        Update {
            min_containers: request.min_containers,
            max_containers: request.max_containers,
            buffer_containers: request.buffer_containers,
            scaledown_window_secs: request.scaledown_window_secs,
        }
    }
}

impl Autoscaler {
    /// What the function's (or instance's) options set.
    pub(crate) fn of(options: &FunctionOptions) -> Autoscaler {
        Autoscaler {
            min_containers: options.min_containers,
            max_containers: options.max_containers,
            buffer_containers: options.buffer_containers,
            scaledown_window_secs: options.scaledown_window_secs,
        }
    }

    /// What a restart reads back.
    pub(crate) fn stored(stored: &StoredAutoscaler) -> Autoscaler {
        Autoscaler {
            min_containers: stored.min_containers,
            max_containers: stored.max_containers,
            buffer_containers: stored.buffer_containers,
            scaledown_window_secs: stored.scaledown_window_secs,
        }
    }

    /// The most containers, with `default_max` where none is set.
    pub(crate) fn max(&self, default_max: u32) -> u32 {
        self.max_containers.unwrap_or(default_max).max(1)
    }

    /// These settings changed by `update`, or why the change is refused
    /// (naming the field): each value given must be within its bounds, and
    /// `min_containers` at most `max_containers` once both apply.
    pub(crate) fn updated(self, update: Update, default_max: u32) -> Result<Autoscaler, String> {
        let within = |field: &str, value: u32, bounds: &std::ops::RangeInclusive<u32>| {
            if bounds.contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "`{field}` is {value}, but must be between {} and {}",
                    bounds.start(),
                    bounds.end()
                ))
            }
        };
        if let Some(max) = update.max_containers {
            within("max_containers", max, &MAX_CONTAINERS)?;
        }
        if let Some(min) = update.min_containers {
            within("min_containers", min, &(0..=*MAX_CONTAINERS.end()))?;
        }
        if let Some(buffer) = update.buffer_containers {
            within("buffer_containers", buffer, &(0..=*MAX_CONTAINERS.end()))?;
        }
        if let Some(window) = update.scaledown_window_secs {
            within(
                "scaledown_window (seconds)",
                window,
                &FunctionOptions::SCALEDOWN_WINDOW_SECS,
            )?;
        }
        let next = Autoscaler {
            min_containers: update.min_containers.unwrap_or(self.min_containers),
            max_containers: update.max_containers.or(self.max_containers),
            buffer_containers: update.buffer_containers.unwrap_or(self.buffer_containers),
            scaledown_window_secs: update
                .scaledown_window_secs
                .unwrap_or(self.scaledown_window_secs),
        };
        let max = next.max(default_max);
        if next.min_containers > max {
            let whose = match next.max_containers {
                Some(_) => String::new(),
                None => ", the server's default".to_owned(),
            };
            return Err(format!(
                "`min_containers` ({}) exceeds `max_containers` ({max}{whose}): lower \
                 `min_containers` or raise `max_containers`",
                next.min_containers
            ));
        }
        Ok(next)
    }

    /// As callers see them.
    pub(crate) fn to_proto(self, default_max: u32) -> proto::AutoscalerSettings {
        proto::AutoscalerSettings {
            min_containers: self.min_containers,
            max_containers: self.max(default_max),
            buffer_containers: self.buffer_containers,
            scaledown_window_secs: self.scaledown_window_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployed() -> Autoscaler {
        Autoscaler::of(&FunctionOptions::DEFAULT)
    }

    #[test]
    fn an_unset_field_keeps_its_value() {
        let a = deployed()
            .updated(
                Update {
                    min_containers: Some(2),
                    ..Update::default()
                },
                8,
            )
            .unwrap();
        assert_eq!(a.min_containers, 2);
        assert_eq!(a.max_containers, None);
        assert_eq!(a.scaledown_window_secs, 60);
        let b = a
            .updated(
                Update {
                    max_containers: Some(3),
                    buffer_containers: Some(1),
                    scaledown_window_secs: Some(5),
                    ..Update::default()
                },
                8,
            )
            .unwrap();
        assert_eq!(
            b,
            Autoscaler {
                min_containers: 2,
                max_containers: Some(3),
                buffer_containers: 1,
                scaledown_window_secs: 5,
            }
        );
        assert_eq!(b.updated(Update::default(), 8), Ok(b));
    }

    #[test]
    fn a_bad_change_names_its_field() {
        let refused = |update: Update| deployed().updated(update, 8).unwrap_err();
        let err = refused(Update {
            min_containers: Some(3),
            max_containers: Some(2),
            ..Update::default()
        });
        assert!(
            err.starts_with("`min_containers` (3) exceeds `max_containers` (2)"),
            "{err}"
        );
        let err = refused(Update {
            min_containers: Some(9),
            ..Update::default()
        });
        assert!(err.contains("(8, the server's default"), "{err}");
        let err = refused(Update {
            max_containers: Some(0),
            ..Update::default()
        });
        assert!(err.starts_with("`max_containers` is 0"), "{err}");
        let err = refused(Update {
            max_containers: Some(u32::MAX),
            ..Update::default()
        });
        assert!(err.starts_with("`max_containers` is 4294967295"), "{err}");
        let err = refused(Update {
            buffer_containers: Some(u32::MAX),
            ..Update::default()
        });
        assert!(err.starts_with("`buffer_containers`"), "{err}");
        for window in [0, 1, 3_601] {
            let err = refused(Update {
                scaledown_window_secs: Some(window),
                ..Update::default()
            });
            assert!(err.starts_with("`scaledown_window (seconds)`"), "{err}");
        }
    }
}
