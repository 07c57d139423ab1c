//! Per-function options, as written in `#[app::function(...)]` and as deployed.
//!
//! The same type is built in a `const` by the macro (borrowed strings) and read
//! back from a deployed manifest (owned strings), so the two cannot drift.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// A static list of `KEY=value` pairs.
pub type EnvList = Cow<'static, [(Cow<'static, str>, Cow<'static, str>)]>;

/// Every option a function can declare. Defaults follow Modal's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionOptions {
    /// CPU cores reserved per container (fractional values allowed).
    pub cpu: Option<f64>,
    /// Memory reserved per container, in MiB.
    pub memory_mib: Option<u32>,
    /// GPU request such as `"H100"` or `"A100:2"`.
    pub gpu: Option<Cow<'static, str>>,
    /// Per-attempt execution timeout in seconds (1 to 86,400).
    pub timeout_secs: u32,
    /// Retries after a failed attempt (0 to 10).
    pub retries: u32,
    /// Upper bound on containers; `None` means the server's limit.
    pub max_containers: Option<u32>,
    /// Containers kept warm even with no work.
    pub min_containers: u32,
    /// Extra idle containers kept while the function is busy.
    pub buffer_containers: u32,
    /// Seconds a container may stay idle before it is stopped (2 to 3,600).
    pub scaledown_window_secs: u32,
    /// Environment variables set in every container.
    pub env: EnvList,
    /// Names of secrets injected into every container.
    pub secrets: Cow<'static, [Cow<'static, str>]>,
    /// Region the containers should run in.
    pub region: Option<Cow<'static, str>>,
    /// Cloud provider the containers should run on.
    pub cloud: Option<Cow<'static, str>>,
}

impl FunctionOptions {
    /// Modal's defaults: 300 s timeout, no retries, 60 s scale-down window.
    pub const DEFAULT: FunctionOptions = FunctionOptions {
        cpu: None,
        memory_mib: None,
        gpu: None,
        timeout_secs: 300,
        retries: 0,
        max_containers: None,
        min_containers: 0,
        buffer_containers: 0,
        scaledown_window_secs: 60,
        env: Cow::Borrowed(&[]),
        secrets: Cow::Borrowed(&[]),
        region: None,
        cloud: None,
    };

    /// Bounds shared by the macro (at compile time) and the server (at deploy).
    pub const TIMEOUT_SECS: std::ops::RangeInclusive<u32> = 1..=86_400;
    pub const RETRIES: std::ops::RangeInclusive<u32> = 0..=10;
    pub const SCALEDOWN_WINDOW_SECS: std::ops::RangeInclusive<u32> = 2..=3_600;

    /// Checks the bounds, naming the first option out of range.
    pub fn validate(&self) -> Result<(), String> {
        let in_range = |what: &str, v: u32, r: &std::ops::RangeInclusive<u32>| {
            if r.contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "`{what}` is {v}, but must be between {} and {}",
                    r.start(),
                    r.end()
                ))
            }
        };
        in_range("timeout", self.timeout_secs, &Self::TIMEOUT_SECS)?;
        in_range("retries", self.retries, &Self::RETRIES)?;
        in_range(
            "scaledown_window",
            self.scaledown_window_secs,
            &Self::SCALEDOWN_WINDOW_SECS,
        )?;
        if self.max_containers == Some(0) {
            return Err("`max_containers` must be at least 1".into());
        }
        if let Some(max) = self.max_containers
            && self.min_containers > max
        {
            return Err(format!(
                "`min_containers` ({}) exceeds `max_containers` ({max})",
                self.min_containers
            ));
        }
        if let Some(cpu) = self.cpu
            && !(cpu > 0.0 && cpu.is_finite())
        {
            return Err(format!("`cpu` is {cpu}, but must be a positive number"));
        }
        Ok(())
    }
}

impl Default for FunctionOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}
