//! What a container is made of: its image (`image`) and its resources
//! (`cpu`, `memory`, `gpu`), as a grammar and bounds over plain values.
//!
//! One file, compiled twice: into `modal_runtime::options`, where
//! `FunctionOptions::validate` checks what a manifest or a client's
//! overrides carry, and into `modal-macros` (through `#[path]`), which
//! checks the same values at compile time and puts each error on the token
//! written. A proc-macro crate cannot depend on the runtime (the runtime
//! depends on it), and a copy would drift: with one file both ends accept
//! the same values and say the same thing about the others. Hence `std`
//! only, and no `crate::` paths, in here.

use std::fmt;
use std::ops::RangeInclusive;

/// The most CPU cores a container may request or be limited to.
pub const CPU_CORES_MAX: f64 = 1024.0;
/// Memory a container may request or be limited to, in MiB: 1 MiB to 4 TiB.
pub const MEMORY_MIB: RangeInclusive<u32> = 1..=4 << 20;
/// GPUs one container may ask for: a machine has at most 8.
pub const GPU_COUNT: RangeInclusive<u32> = 1..=8;
/// The longest GPU type name accepted (`"A100-80GB"` is 9).
pub const GPU_KIND_MAX_LEN: usize = 32;
/// The longest image reference accepted: Docker's limit on a name.
pub const IMAGE_REFERENCE_MAX_LEN: usize = 255;
/// The longest tag: Docker's limit.
pub const IMAGE_TAG_MAX_LEN: usize = 128;

/// Examples that end every message about an image reference.
const IMAGE_EXAMPLES: &str = "expected e.g. `ubuntu:22.04`, `ghcr.io/org/app:v1` or \
     `localhost:5000/app@sha256:` followed by 64 hex digits";

/// Checks a CPU request and optional limit, in cores: each greater than 0
/// and at most [`CPU_CORES_MAX`], the limit at least the request, and no
/// limit without a request.
pub fn check_cpu(request: Option<f64>, limit: Option<f64>) -> Result<(), String> {
    if let Some(request) = request {
        check_cpu_cores("`cpu`", request)?;
    }
    let Some(limit) = limit else {
        return Ok(());
    };
    check_cpu_cores("the `cpu` limit", limit)?;
    match request {
        None => Err(format!(
            "the `cpu` limit ({limit}) is set without a request: give both, e.g. `cpu = (0.5, {limit})`"
        )),
        Some(request) if limit < request => Err(format!(
            "`cpu = ({request}, {limit})`: the limit ({limit}) is below the request ({request}); \
             write `(request, limit)` with the limit at least the request"
        )),
        Some(_) => Ok(()),
    }
}

/// Checks one CPU value; `what` names it in the message (`` `cpu` ``).
pub fn check_cpu_cores(what: &str, cores: f64) -> Result<(), String> {
    // NaN fails the first test, infinity the second.
    if cores.is_nan() || cores <= 0.0 {
        return Err(format!("{what} is {cores}, but must be greater than 0"));
    }
    if cores > CPU_CORES_MAX {
        return Err(format!(
            "{what} is {cores}, but must be at most {CPU_CORES_MAX} cores"
        ));
    }
    Ok(())
}

/// Checks a memory request and optional limit, in MiB: each within
/// [`MEMORY_MIB`], the limit at least the request, and no limit without a
/// request.
pub fn check_memory(request_mib: Option<u32>, limit_mib: Option<u32>) -> Result<(), String> {
    if let Some(request) = request_mib {
        check_memory_mib("`memory`", i128::from(request))?;
    }
    let Some(limit) = limit_mib else {
        return Ok(());
    };
    check_memory_mib("the `memory` limit", i128::from(limit))?;
    match request_mib {
        None => Err(format!(
            "the `memory` limit ({limit} MiB) is set without a request: give both, e.g. \
             `memory = (512, {limit})`"
        )),
        Some(request) if limit < request => Err(format!(
            "`memory = ({request}, {limit})`: the limit ({limit} MiB) is below the request \
             ({request} MiB); write `(request, limit)` with the limit at least the request"
        )),
        Some(_) => Ok(()),
    }
}

/// Checks one memory value in MiB (as written: any integer, so that the
/// message shows what was given); `what` names it in the message.
pub fn check_memory_mib(what: &str, mib: i128) -> Result<(), String> {
    if (i128::from(*MEMORY_MIB.start())..=i128::from(*MEMORY_MIB.end())).contains(&mib) {
        Ok(())
    } else {
        Err(format!(
            "{what} is {mib} MiB, but must be between {} and {} MiB (4 TiB)",
            MEMORY_MIB.start(),
            MEMORY_MIB.end()
        ))
    }
}

/// A GPU request as written in `gpu = "..."`: a type (or any type) and a
/// count. `"A100"`, `"h100:2"`, `"any"`, `"any:2"`, `"A100-80GB"`, `"L40S"`.
///
/// Only the syntax is checked, not a list of known types: which GPUs exist
/// is the backend's to say, and a new one should not need a new release.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GpuRequest {
    /// The GPU type in upper case (`"A100-80GB"`); `None` for any type.
    pub kind: Option<String>,
    /// How many, within [`GPU_COUNT`].
    pub count: u32,
}

impl GpuRequest {
    /// Parses `TYPE` or `TYPE:COUNT`, `TYPE` being `any` or letters, digits
    /// and `-` (case-insensitive, stored in upper case); the count is 1
    /// unless given. `Err` says what is wrong and what a valid one looks
    /// like.
    pub fn parse(gpu: &str) -> Result<Self, String> {
        let examples = "e.g. `gpu = \"A100\"`, `gpu = \"H100:2\"` or `gpu = \"any\"`";
        let (kind, count) = match gpu.split_once(':') {
            Some((kind, count)) => (kind, Some(count)),
            None => (gpu, None),
        };
        if kind.is_empty() {
            return Err(format!(
                "`gpu = \"{}\"` does not name a GPU type: write a type, or `any`, and an optional count, {examples}",
                gpu.escape_default()
            ));
        }
        let well_formed = kind.len() <= GPU_KIND_MAX_LEN
            && kind.starts_with(|c: char| c.is_ascii_alphanumeric())
            && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !well_formed {
            return Err(format!(
                "`gpu = \"{}\"`: the GPU type `{}` must be at most {GPU_KIND_MAX_LEN} ASCII letters, digits and `-`, starting with a letter or digit, {examples}",
                gpu.escape_default(),
                kind.escape_default()
            ));
        }
        let count = match count {
            None => 1,
            Some(count) => match count.parse::<u32>() {
                // `parse` takes a leading `+`; a count is digits only.
                Ok(n) if GPU_COUNT.contains(&n) && count.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => {
                    return Err(format!(
                        "`gpu = \"{}\"`: the count after `:` is `{}`, but must be an integer between {} and {}, e.g. `gpu = \"H100:2\"`",
                        gpu.escape_default(),
                        count.escape_default(),
                        GPU_COUNT.start(),
                        GPU_COUNT.end()
                    ));
                }
            },
        };
        let kind = (!kind.eq_ignore_ascii_case("any")).then(|| kind.to_ascii_uppercase());
        Ok(GpuRequest { kind, count })
    }
}

/// The normal form: `A100`, `H100:2`, `any`, `any:2` (a count of 1 is left
/// out); parsing it gives the same request.
impl fmt::Display for GpuRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_deref().unwrap_or("any"))?;
        if self.count != 1 {
            write!(f, ":{}", self.count)?;
        }
        Ok(())
    }
}

/// A Docker image reference split into its parts, borrowed from the text:
/// `[registry[:port]/]name[/name...][:tag][@sha256:<64 hex>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageReference<'a> {
    /// `registry.example.com:5000`, where the first component is one: it
    /// contains `.` or `:`, or is `localhost` (Docker's rule).
    pub registry: Option<&'a str>,
    /// `library/ubuntu`: one or more lowercase name components.
    pub path: &'a str,
    /// `22.04`, after the last `:` of the last component.
    pub tag: Option<&'a str>,
    /// `sha256:` and 64 hex digits, after `@`.
    pub digest: Option<&'a str>,
}

impl<'a> ImageReference<'a> {
    /// Parses a reference by Docker's grammar: name components
    /// `[a-z0-9]+` joined by `.`, `_`, `__` or dashes and separated by `/`;
    /// an optional registry (host name, optional `:port`) first; an optional
    /// tag `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; an optional `@sha256:`
    /// digest; at most 255 characters in all. `Err` names the part that is
    /// wrong and shows valid references.
    pub fn parse(reference: &'a str) -> Result<Self, String> {
        let fail = |why: String| {
            Err(format!(
                "`image = \"{}\"` is not a valid image reference: {why}; {IMAGE_EXAMPLES}",
                reference.escape_default()
            ))
        };
        if reference.is_empty() {
            return fail("it is empty".into());
        }
        let len = reference.chars().count();
        if len > IMAGE_REFERENCE_MAX_LEN {
            return fail(format!(
                "it is {len} characters long, but may be at most {IMAGE_REFERENCE_MAX_LEN}"
            ));
        }
        let (rest, digest) = match reference.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (reference, None),
        };
        if let Some(digest) = digest {
            let hex = digest.strip_prefix("sha256:");
            if !hex.is_some_and(|h| {
                h.len() == 64
                    && h.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            }) {
                return fail(format!(
                    "the digest `{}` must be `sha256:` followed by 64 lowercase hex digits",
                    digest.escape_default()
                ));
            }
        }
        // A tag follows the last `:` after the last `/`; a `:` before a `/`
        // is a registry's port.
        let last = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last..].rfind(':') {
            Some(i) => (&rest[..last + i], Some(&rest[last + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag
            && !is_tag(tag)
        {
            return fail(format!(
                "the tag `{}` must be 1 to {IMAGE_TAG_MAX_LEN} letters, digits, `_`, `.` or `-`, \
                 not starting with `.` or `-`",
                tag.escape_default()
            ));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first), path)
            }
            _ => (None, name),
        };
        if let Some(registry) = registry
            && !is_registry(registry)
        {
            return fail(format!(
                "the registry `{}` must be a host name with an optional port, e.g. \
                 `registry.example.com:5000`",
                registry.escape_default()
            ));
        }
        if path.is_empty() {
            return fail("it names no image".into());
        }
        for component in path.split('/') {
            if component.is_empty() {
                return fail("it has an empty name component (`//`, or `/` at an end)".into());
            }
            if !is_name_component(component) {
                let why = if component.chars().any(|c| c.is_ascii_uppercase()) {
                    "names are lowercase"
                } else {
                    "a name component is lowercase letters and digits, joined by `.`, `_`, `__` \
                     or `-`"
                };
                return fail(format!(
                    "`{}` is not a valid name component: {why}",
                    component.escape_default()
                ));
            }
        }
        Ok(ImageReference {
            registry,
            path,
            tag,
            digest,
        })
    }
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`.
fn is_name_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let run = i;
        while i < bytes.len() && alphanumeric(bytes[i]) {
            i += 1;
        }
        if i == run {
            // Empty, or starting with (or ending on) a separator.
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let separator = i;
        while i < bytes.len() && !alphanumeric(bytes[i]) {
            i += 1;
        }
        match &bytes[separator..i] {
            b"." | b"_" | b"__" => {}
            dashes if dashes.iter().all(|&b| b == b'-') => {}
            _ => return false,
        }
    }
}

fn is_tag(tag: &str) -> bool {
    tag.len() <= IMAGE_TAG_MAX_LEN
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `host[:port]`, the host being dot-separated labels of letters, digits
/// and inner `-`.
fn is_registry(registry: &str) -> bool {
    let (host, port) = match registry.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label)
        && port.is_none_or(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
        let parsed = ImageReference::parse("ubuntu:22.04").unwrap();
        assert_eq!(
            parsed,
            ImageReference {
                registry: None,
                path: "ubuntu",
                tag: Some("22.04"),
                digest: None
            }
        );
        let reference = format!("localhost:5000/team/app:v1.2-rc_3@{digest}");
        let parsed = ImageReference::parse(&reference).unwrap();
        assert_eq!(parsed.registry, Some("localhost:5000"));
        assert_eq!(parsed.path, "team/app");
        assert_eq!(parsed.tag, Some("v1.2-rc_3"));
        assert_eq!(parsed.digest, Some(digest.as_str()));
        let parsed = ImageReference::parse("ghcr.io/org/my__app--x.y").unwrap();
        assert_eq!(
            (parsed.registry, parsed.path, parsed.tag),
            (Some("ghcr.io"), "org/my__app--x.y", None)
        );
        for ok in [
            "python",
            "library/python:3.12-slim",
            "registry.example.com/a/b/c:latest",
            "a0:_tag",
            &format!("app@{digest}"),
            &format!("x:{}", "t".repeat(128)),
        ] {
            assert!(ImageReference::parse(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "it is empty"),
            ("Ubuntu:22.04", "names are lowercase"),
            ("MyOrg/app", "names are lowercase"),
            ("app:", "the tag ``"),
            ("app:.x", "the tag `.x`"),
            ("app:a/b", "the registry `app:a`"),
            ("a//b", "empty name component"),
            ("app/", "empty name component"),
            ("-app", "not a valid name component"),
            ("a___b", "not a valid name component"),
            ("a.-b", "not a valid name component"),
            ("app@sha256:abc", "the digest `sha256:abc`"),
            ("app@md5:00", "the digest"),
            ("bad_host.io/app", "the registry `bad_host.io`"),
            ("host:99999/app", "the registry `host:99999`"),
            ("localhost:5000/", "names no image"),
            ("ubuntu 22.04", "not a valid name component"),
        ] {
            let err = ImageReference::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.starts_with("`image = \""), "{err}");
            assert!(err.ends_with("64 hex digits"), "{err}");
        }
        let long = format!("a{}", "b".repeat(255));
        assert!(
            ImageReference::parse(&long)
                .unwrap_err()
                .contains("256 characters long, but may be at most 255")
        );
        let long_tag = format!("x:{}", "t".repeat(129));
        assert!(
            ImageReference::parse(&long_tag)
                .unwrap_err()
                .contains("the tag")
        );
    }

    #[test]
    fn gpu_requests_parse_and_print_back() {
        for (text, kind, count, normal) in [
            ("A100", Some("A100"), 1, "A100"),
            ("h100:2", Some("H100"), 2, "H100:2"),
            ("any", None, 1, "any"),
            ("ANY:2", None, 2, "any:2"),
            ("A100-80GB", Some("A100-80GB"), 1, "A100-80GB"),
            ("l40s:8", Some("L40S"), 8, "L40S:8"),
            ("H100:1", Some("H100"), 1, "H100"),
        ] {
            let gpu = GpuRequest::parse(text).unwrap();
            assert_eq!(gpu.kind.as_deref(), kind, "{text}");
            assert_eq!(gpu.count, count, "{text}");
            assert_eq!(gpu.to_string(), normal);
            assert_eq!(GpuRequest::parse(normal).unwrap(), gpu);
        }
        for (bad, why) in [
            ("", "does not name a GPU type"),
            (":2", "does not name a GPU type"),
            (
                "A100:0",
                "the count after `:` is `0`, but must be an integer between 1 and 8",
            ),
            ("A100:9", "is `9`"),
            ("A100:x", "is `x`"),
            ("A100:", "is ``"),
            ("A100:+2", "is `+2`"),
            ("A100:2:3", "is `2:3`"),
            ("A 100", "the GPU type `A 100`"),
            ("-A100", "the GPU type `-A100`"),
        ] {
            let err = GpuRequest::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.starts_with("`gpu = \""), "{err}");
        }
        assert!(GpuRequest::parse(&"A".repeat(33)).is_err());
    }

    #[test]
    fn resource_pairs() {
        assert!(check_cpu(Some(0.5), None).is_ok());
        assert!(check_cpu(Some(0.5), Some(0.5)).is_ok());
        assert!(check_cpu(Some(1024.0), Some(1024.0)).is_ok());
        assert!(check_cpu(None, None).is_ok());
        assert_eq!(
            check_cpu(Some(2.0), Some(0.5)).unwrap_err(),
            "`cpu = (2, 0.5)`: the limit (0.5) is below the request (2); write `(request, limit)` \
             with the limit at least the request"
        );
        assert_eq!(
            check_cpu(Some(0.0), None).unwrap_err(),
            "`cpu` is 0, but must be greater than 0"
        );
        assert!(
            check_cpu(Some(f64::NAN), None)
                .unwrap_err()
                .contains("greater than 0")
        );
        assert!(
            check_cpu(Some(1.0), Some(f64::INFINITY))
                .unwrap_err()
                .contains("at most 1024")
        );
        assert!(
            check_cpu(None, Some(2.0))
                .unwrap_err()
                .contains("set without a request")
        );
        assert!(check_memory(Some(512), Some(1024)).is_ok());
        assert!(check_memory(Some(4 << 20), None).is_ok());
        assert_eq!(
            check_memory(Some(1024), Some(512)).unwrap_err(),
            "`memory = (1024, 512)`: the limit (512 MiB) is below the request (1024 MiB); write \
             `(request, limit)` with the limit at least the request"
        );
        assert_eq!(
            check_memory(Some(0), None).unwrap_err(),
            "`memory` is 0 MiB, but must be between 1 and 4194304 MiB (4 TiB)"
        );
        assert!(
            check_memory(Some(1), Some((4 << 20) + 1))
                .unwrap_err()
                .starts_with("the `memory` limit is 4194305 MiB")
        );
        assert!(
            check_memory(None, Some(1))
                .unwrap_err()
                .contains("without a request")
        );
    }
}
