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
    /// Volumes mounted in every container: `(mount path, volume name)`.
    #[serde(default = "no_volumes")]
    pub volumes: Cow<'static, [(Cow<'static, str>, Cow<'static, str>)]>,
    /// Inputs one container runs at once (1 to 1,000).
    #[serde(default = "one")]
    pub max_inputs: u32,
    /// Inputs per container the autoscaler aims for; `max_inputs` when `None`.
    #[serde(default)]
    pub target_inputs: Option<u32>,
    /// Dynamic batching: the most inputs per batch (1 to 1,000), if batched.
    #[serde(default)]
    pub batch_max_size: Option<u32>,
    /// Dynamic batching: how long a batch waits for more inputs after its first.
    #[serde(default)]
    pub batch_wait_ms: u64,
}

fn no_volumes() -> Cow<'static, [(Cow<'static, str>, Cow<'static, str>)]> {
    Cow::Borrowed(&[])
}

fn one() -> u32 {
    1
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
        volumes: Cow::Borrowed(&[]),
        max_inputs: 1,
        target_inputs: None,
        batch_max_size: None,
        batch_wait_ms: 0,
    };

    /// Bounds shared by the macro (at compile time) and the server (at deploy).
    pub const TIMEOUT_SECS: std::ops::RangeInclusive<u32> = 1..=86_400;
    pub const RETRIES: std::ops::RangeInclusive<u32> = 0..=10;
    pub const SCALEDOWN_WINDOW_SECS: std::ops::RangeInclusive<u32> = 2..=3_600;
    pub const MAX_INPUTS: std::ops::RangeInclusive<u32> = 1..=1_000;
    pub const BATCH_MAX_SIZE: std::ops::RangeInclusive<u32> = 1..=1_000;
    pub const BATCH_WAIT_MS: std::ops::RangeInclusive<u64> = 0..=600_000;

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
        if self.memory_mib == Some(0) {
            return Err("`memory` must be at least 1 MiB".into());
        }
        in_range("max_inputs", self.max_inputs, &Self::MAX_INPUTS)?;
        if let Some(target) = self.target_inputs
            && !(1..=self.max_inputs).contains(&target)
        {
            return Err(format!(
                "`target_inputs` is {target}, but must be between 1 and `max_inputs` ({})",
                self.max_inputs
            ));
        }
        if let Some(size) = self.batch_max_size {
            in_range("max_batch_size", size, &Self::BATCH_MAX_SIZE)?;
        }
        if !Self::BATCH_WAIT_MS.contains(&self.batch_wait_ms) {
            return Err(format!(
                "`wait_ms` is {}, but must be between 0 and {}",
                self.batch_wait_ms,
                Self::BATCH_WAIT_MS.end()
            ));
        }
        for (path, volume) in self.volumes.iter() {
            if !path.starts_with('/') {
                return Err(format!(
                    "volume `{volume}` is mounted at `{path}`, but a mount path must be absolute"
                ));
            }
        }
        Ok(())
    }
}

impl Default for FunctionOptions {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Options that override a class's (or function's) own, for one variant:
/// built with [`ClsOptions::new`] and its setters, applied with
/// `with_options`. Every option left unset keeps the value beneath it.
///
/// ```ignore
/// let big = Model::cls().with_options(ClsOptions::new().cpu(4.0).memory(8192).retries(2));
/// ```
///
/// Stacking (`with_options(a).with_options(b)`): a value set in `b` overrides
/// `a`'s; `env` is merged key by key; `secrets` and `volumes` given later
/// replace the earlier lists whole. Nothing can be unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClsOptions {
    cpu: Option<f64>,
    memory_mib: Option<u32>,
    gpu: Option<String>,
    env: Option<Vec<(String, String)>>,
    secrets: Option<Vec<String>>,
    volumes: Option<Vec<(String, String)>>,
    retries: Option<u32>,
    max_containers: Option<u32>,
    buffer_containers: Option<u32>,
    scaledown_window_secs: Option<u32>,
    timeout_secs: Option<u32>,
    region: Option<String>,
    cloud: Option<String>,
    max_inputs: Option<u32>,
    target_inputs: Option<u32>,
    batch_max_size: Option<u32>,
    batch_wait_ms: Option<u64>,
}

impl ClsOptions {
    /// No overrides.
    pub fn new() -> Self {
        Self::default()
    }

    /// CPU cores reserved per container.
    pub fn cpu(mut self, cores: f64) -> Self {
        self.cpu = Some(cores);
        self
    }

    /// Memory reserved per container, in MiB.
    pub fn memory(mut self, mib: u32) -> Self {
        self.memory_mib = Some(mib);
        self
    }

    /// GPU type and optional count, e.g. `"A100"` or `"H100:2"`.
    pub fn gpu(mut self, gpu: impl Into<String>) -> Self {
        self.gpu = Some(gpu.into());
        self
    }

    /// Environment variables, merged key by key over the class's own.
    pub fn env<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let env = self.env.get_or_insert_with(Vec::new);
        for (k, v) in vars {
            set_var(env, k.into(), v.into());
        }
        self
    }

    /// Secrets injected into every container; replaces the class's list.
    pub fn secrets<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.secrets = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Volumes as `(mount path, volume name)`; replaces the class's list.
    pub fn volumes<P: Into<String>, V: Into<String>>(
        mut self,
        mounts: impl IntoIterator<Item = (P, V)>,
    ) -> Self {
        self.volumes = Some(
            mounts
                .into_iter()
                .map(|(p, v)| (p.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Retries after a failed attempt (0 to 10).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = Some(retries);
        self
    }

    /// Upper bound on this variant's containers.
    pub fn max_containers(mut self, n: u32) -> Self {
        self.max_containers = Some(n);
        self
    }

    /// Extra idle containers kept while the variant is busy.
    pub fn buffer_containers(mut self, n: u32) -> Self {
        self.buffer_containers = Some(n);
        self
    }

    /// Idle time before a container stops (2 s to 1 h, whole seconds).
    pub fn scaledown_window(mut self, window: std::time::Duration) -> Self {
        self.scaledown_window_secs = Some(secs(window));
        self
    }

    /// Per-attempt timeout (1 s to 24 h, whole seconds).
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout_secs = Some(secs(timeout));
        self
    }

    /// Region the containers should run in.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Cloud provider the containers should run on.
    pub fn cloud(mut self, cloud: impl Into<String>) -> Self {
        self.cloud = Some(cloud.into());
        self
    }

    pub(crate) fn concurrency(mut self, max_inputs: u32, target_inputs: u32) -> Self {
        self.max_inputs = Some(max_inputs);
        self.target_inputs = Some(target_inputs);
        self
    }

    pub(crate) fn batching(mut self, max_batch_size: u32, wait_ms: u64) -> Self {
        self.batch_max_size = Some(max_batch_size);
        self.batch_wait_ms = Some(wait_ms);
        self
    }

    /// `self` with `later` stacked on top: `later`'s values win, `env` merges
    /// key by key, lists are replaced.
    pub fn stack(&self, later: &ClsOptions) -> ClsOptions {
        let env = match (&self.env, &later.env) {
            (Some(base), Some(over)) => {
                let mut env = base.clone();
                for (k, v) in over {
                    set_var(&mut env, k.clone(), v.clone());
                }
                Some(env)
            }
            (base, over) => over.clone().or_else(|| base.clone()),
        };
        ClsOptions {
            cpu: later.cpu.or(self.cpu),
            memory_mib: later.memory_mib.or(self.memory_mib),
            gpu: later.gpu.clone().or_else(|| self.gpu.clone()),
            env,
            secrets: later.secrets.clone().or_else(|| self.secrets.clone()),
            volumes: later.volumes.clone().or_else(|| self.volumes.clone()),
            retries: later.retries.or(self.retries),
            max_containers: later.max_containers.or(self.max_containers),
            buffer_containers: later.buffer_containers.or(self.buffer_containers),
            scaledown_window_secs: later.scaledown_window_secs.or(self.scaledown_window_secs),
            timeout_secs: later.timeout_secs.or(self.timeout_secs),
            region: later.region.clone().or_else(|| self.region.clone()),
            cloud: later.cloud.clone().or_else(|| self.cloud.clone()),
            max_inputs: later.max_inputs.or(self.max_inputs),
            target_inputs: later.target_inputs.or(self.target_inputs),
            batch_max_size: later.batch_max_size.or(self.batch_max_size),
            batch_wait_ms: later.batch_wait_ms.or(self.batch_wait_ms),
        }
    }

    /// Whether nothing is overridden.
    pub fn is_empty(&self) -> bool {
        *self == ClsOptions::default()
    }

    /// `base` with these overrides applied, checked against the bounds.
    pub fn apply(&self, base: &FunctionOptions) -> Result<FunctionOptions, String> {
        let mut o = base.clone();
        let owned = |s: &String| Cow::Owned(s.clone());
        if let Some(v) = self.cpu {
            o.cpu = Some(v);
        }
        if let Some(v) = self.memory_mib {
            o.memory_mib = Some(v);
        }
        if let Some(v) = &self.gpu {
            o.gpu = Some(owned(v));
        }
        if let Some(vars) = &self.env {
            let mut env: Vec<(String, String)> = o
                .env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            for (k, v) in vars {
                set_var(&mut env, k.clone(), v.clone());
            }
            o.env = env
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v)))
                .collect::<Vec<_>>()
                .into();
        }
        if let Some(v) = &self.secrets {
            o.secrets = v.iter().map(owned).collect::<Vec<_>>().into();
        }
        if let Some(v) = &self.volumes {
            o.volumes = v
                .iter()
                .map(|(p, n)| (owned(p), owned(n)))
                .collect::<Vec<_>>()
                .into();
        }
        if let Some(v) = self.retries {
            o.retries = v;
        }
        if let Some(v) = self.max_containers {
            o.max_containers = Some(v);
        }
        if let Some(v) = self.buffer_containers {
            o.buffer_containers = v;
        }
        if let Some(v) = self.scaledown_window_secs {
            o.scaledown_window_secs = v;
        }
        if let Some(v) = self.timeout_secs {
            o.timeout_secs = v;
        }
        if let Some(v) = &self.region {
            o.region = Some(owned(v));
        }
        if let Some(v) = &self.cloud {
            o.cloud = Some(owned(v));
        }
        if let Some(v) = self.max_inputs {
            o.max_inputs = v;
            // A new maximum without a target aims at the maximum.
            o.target_inputs = None;
        }
        if let Some(v) = self.target_inputs {
            o.target_inputs = Some(v);
        }
        if let Some(v) = self.batch_max_size {
            o.batch_max_size = Some(v);
        }
        if let Some(v) = self.batch_wait_ms {
            o.batch_wait_ms = v;
        }
        o.validate()?;
        Ok(o)
    }
}

fn set_var(env: &mut Vec<(String, String)>, key: String, value: String) {
    match env.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key, value)),
    }
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_values_override_and_nothing_unsets() {
        let a = ClsOptions::new().cpu(1.0).retries(2).region("eu");
        let b = ClsOptions::new().cpu(4.0);
        let stacked = a.stack(&b);
        let o = stacked.apply(&FunctionOptions::DEFAULT).unwrap();
        assert_eq!(o.cpu, Some(4.0));
        assert_eq!(o.retries, 2);
        assert_eq!(o.region.as_deref(), Some("eu"));
    }

    #[test]
    fn lists_are_replaced_and_env_merged() {
        let a = ClsOptions::new()
            .secrets(["a", "b"])
            .volumes([("/data", "v1")])
            .env([("A", "1"), ("B", "1")]);
        let b = ClsOptions::new().secrets(["c"]).env([("B", "2")]);
        let o = a.stack(&b).apply(&FunctionOptions::DEFAULT).unwrap();
        assert_eq!(
            o.secrets.iter().map(|s| s.as_ref()).collect::<Vec<_>>(),
            ["c"]
        );
        assert_eq!(o.volumes.len(), 1);
        let env: Vec<(String, String)> = o
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(env, [("A".into(), "1".into()), ("B".into(), "2".into())]);
    }

    #[test]
    fn out_of_bounds_values_are_named() {
        let err = ClsOptions::new()
            .retries(11)
            .apply(&FunctionOptions::DEFAULT)
            .unwrap_err();
        assert!(err.contains("`retries` is 11"), "{err}");
        let err = ClsOptions::new()
            .concurrency(4, 5)
            .apply(&FunctionOptions::DEFAULT)
            .unwrap_err();
        assert!(err.contains("`target_inputs` is 5"), "{err}");
        let err = ClsOptions::new()
            .volumes([("data", "v")])
            .apply(&FunctionOptions::DEFAULT)
            .unwrap_err();
        assert!(err.contains("must be absolute"), "{err}");
    }
}
