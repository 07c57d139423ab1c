//! The functions linked into this binary, registered by `#[app::function]`.
//!
//! Each annotated function submits one [`FunctionDescriptor`] through
//! `inventory`; the container role looks handlers up here, and the manifest
//! (what `cargo xtask deploy` reads) is printed from here.

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::class::{ClsMethods, ServedInstance};
use crate::codec::{BatchOutcomes, CallFailure};
use crate::generator::GenEvent;
use crate::options::FunctionOptions;

/// How a container runs one input of a function.
#[derive(Clone, Copy)]
pub enum Handler {
    /// An `async fn`: polled as a task on the container's runtime.
    Async(fn(Bytes) -> BoxFuture<'static, Result<Bytes, CallFailure>>),
    /// A plain `fn`: run on a blocking thread, off the async workers.
    Blocking(fn(Bytes) -> Result<Bytes, CallFailure>),
    /// A batched `async fn`: one call takes a whole batch of inputs and
    /// returns one outcome per input, in order.
    BatchAsync(fn(Vec<Bytes>) -> BoxFuture<'static, BatchOutcomes>),
    /// A batched plain `fn`, run on a blocking thread.
    BatchBlocking(fn(Vec<Bytes>) -> BatchOutcomes),
    /// A generator: items stream back as they are produced, then its
    /// return value.
    Generator(fn(Bytes) -> Result<BoxStream<'static, GenEvent>, CallFailure>),
    /// A class: each container builds one instance and runs its methods.
    Class(ClassHandler),
}

/// Builds one instance of a class from its encoded parameters and runs its
/// `enter` hook; the error is the text the caller sees.
pub type StartInstance = fn(Bytes) -> BoxFuture<'static, Result<Arc<dyn ServedInstance>, String>>;

/// How a container serves a class.
#[derive(Clone, Copy)]
pub struct ClassHandler {
    /// Builds an instance from its encoded parameters and runs `enter`.
    pub start: StartInstance,
    /// The class's methods, for the manifest.
    pub methods: fn() -> Vec<MethodManifest>,
}

impl ClassHandler {
    /// The handler of class `C`.
    pub const fn of<C: ClsMethods>() -> ClassHandler {
        ClassHandler {
            start: crate::class::start_instance::<C>,
            methods: crate::class::method_manifests::<C>,
        }
    }
}

/// Everything the framework knows about one registered function or class.
pub struct FunctionDescriptor {
    /// App-unique name (the function's identifier unless `name = "..."`).
    pub name: &'static str,
    /// Where the function is defined, e.g. `hello::square`.
    pub rust_path: &'static str,
    /// Options from the attribute.
    pub options: FunctionOptions,
    /// Describes argument and return types; callers must match it.
    pub fingerprint: fn() -> String,
    /// Number of arguments, shown in the manifest.
    pub arity: usize,
    /// Runs one input.
    pub handler: Handler,
    /// Runs one HTTP request, for a web endpoint: an input whose method is
    /// [`crate::web::wire::WEB_INPUT_METHOD`].
    pub web: Option<Handler>,
}

/// The `inventory` item; one per `#[app::function]`.
pub struct Registration(pub &'static FunctionDescriptor);

inventory::collect!(Registration);

/// All functions linked into this binary, sorted by name.
pub fn functions() -> Vec<&'static FunctionDescriptor> {
    let mut all: Vec<_> = inventory::iter::<Registration>
        .into_iter()
        .map(|r| r.0)
        .collect();
    all.sort_by_key(|d| d.name);
    all
}

/// The function registered under `name`, if any.
pub fn find(name: &str) -> Option<&'static FunctionDescriptor> {
    inventory::iter::<Registration>
        .into_iter()
        .map(|r| r.0)
        .find(|d| d.name == name)
}

/// What a built binary declares: printed by the manifest role, read by deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub functions: Vec<FunctionManifest>,
}

/// One function of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionManifest {
    pub name: String,
    pub rust_path: String,
    pub fingerprint: String,
    pub arity: usize,
    pub options: FunctionOptions,
    /// Whether it is a generator (called with `remote_gen`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generator: bool,
    /// For a class, its methods; `None` for a function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<MethodManifest>>,
}

/// One method of a class in a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodManifest {
    pub name: String,
    pub fingerprint: String,
    pub arity: usize,
}

#[cfg(test)]
impl FunctionManifest {
    /// A one-argument function `name` with `options`, for the control
    /// plane's own tests.
    pub(crate) fn for_tests(name: &str, options: crate::options::FunctionOptions) -> Self {
        FunctionManifest {
            name: name.into(),
            rust_path: name.into(),
            fingerprint: String::new(),
            arity: 1,
            options,
            generator: false,
            methods: None,
        }
    }
}

impl Manifest {
    /// The manifest of the functions linked into this binary.
    pub fn of_this_binary() -> Manifest {
        Manifest {
            functions: functions()
                .into_iter()
                .map(|d| FunctionManifest {
                    name: d.name.to_owned(),
                    rust_path: d.rust_path.to_owned(),
                    fingerprint: (d.fingerprint)(),
                    arity: d.arity,
                    options: d.options.clone(),
                    generator: matches!(d.handler, Handler::Generator(_)),
                    methods: match d.handler {
                        Handler::Class(class) => Some((class.methods)()),
                        _ => None,
                    },
                })
                .collect(),
        }
    }

    /// Runs `binary` in its manifest role and reads what it prints.
    pub fn read_from_binary(binary: &std::path::Path) -> Result<Manifest, String> {
        let output = std::process::Command::new(binary)
            .env("MODAL_ROLE", "manifest")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} failed to print its manifest ({}): {}",
                binary.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        serde_json::from_slice(&output.stdout).map_err(|e| {
            format!(
                "{} did not print a manifest ({e}); is its `main` marked #[app::main]?",
                binary.display()
            )
        })
    }

    /// Checks names are unique and options within bounds.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for f in &self.functions {
            if !seen.insert(f.name.as_str()) {
                return Err(format!(
                    "two functions or classes are registered as `{}`; give one a different `name = \"...\"`",
                    f.name
                ));
            }
            f.options
                .validate()
                .map_err(|e| format!("function `{}`: {e}", f.name))?;
        }
        for f in &self.functions {
            if f.options.schedule.is_some() {
                check_scheduled(f)?;
            }
        }
        let mut labels = std::collections::HashMap::new();
        for f in &self.functions {
            let Some(endpoint) = &f.options.web else {
                continue;
            };
            if f.methods.is_some() {
                return Err(format!(
                    "class `{}` cannot be a web endpoint: mark a function instead",
                    f.name
                ));
            }
            if let Some(other) = labels.insert(endpoint.label.as_ref(), f.name.as_str()) {
                return Err(format!(
                    "`{other}` and `{}` are both web endpoints labelled `{}`; give one a \
                     different `label = \"...\"`",
                    f.name, endpoint.label
                ));
            }
        }
        Ok(())
    }
}

/// A scheduled function is called with nothing: no arguments, no class
/// instance to bind, no caller to stream items to.
fn check_scheduled(f: &FunctionManifest) -> Result<(), String> {
    let why = if f.methods.is_some() {
        "a class cannot run on a schedule: put `schedule` on a function without arguments"
    } else if f.arity != 0 {
        "a function with arguments cannot run on a schedule: nothing would supply them"
    } else if f.generator {
        "a generator cannot run on a schedule: nobody would read its items"
    } else {
        return Ok(());
    };
    Err(format!("function `{}`: {why}", f.name))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::options::Schedule;

    fn scheduled(arity: usize, schedule: Schedule) -> Manifest {
        Manifest {
            functions: vec![FunctionManifest {
                name: "report".into(),
                rust_path: "app::report".into(),
                fingerprint: "() -> ()".into(),
                arity,
                options: FunctionOptions {
                    schedule: Some(schedule),
                    ..FunctionOptions::DEFAULT
                },
                generator: false,
                methods: None,
            }],
        }
    }

    /// A manifest is input: a schedule the macro would refuse is refused
    /// at deploy too.
    #[test]
    fn schedules_are_checked_at_deploy() {
        let hourly = Schedule::Cron {
            expression: Cow::Borrowed("0 * * * *"),
            timezone: Some(Cow::Borrowed("Europe/Paris")),
        };
        assert_eq!(scheduled(0, hourly.clone()).validate(), Ok(()));
        let err = scheduled(1, hourly).validate().unwrap_err();
        assert!(err.contains("with arguments"), "{err}");
        for (bad, wanted) in [
            (
                Schedule::Cron {
                    expression: Cow::Borrowed("0 * * *"),
                    timezone: None,
                },
                "not a cron expression",
            ),
            (
                Schedule::Cron {
                    expression: Cow::Borrowed("0 * * * *"),
                    timezone: Some(Cow::Borrowed("Nowhere/Town")),
                },
                "not a known time zone",
            ),
            (Schedule::Period { millis: 0 }, "greater than 0"),
        ] {
            let err = scheduled(0, bad).validate().unwrap_err();
            assert!(err.contains(wanted), "{err}");
            assert!(err.starts_with("function `report`"), "{err}");
        }
        let mut class = scheduled(0, Schedule::Period { millis: 60_000 });
        class.functions[0].methods = Some(Vec::new());
        assert!(class.validate().unwrap_err().contains("a class"));
    }
}
