//! [`TraceParent`]: the W3C `traceparent` value, parsed, checked and
//! written.
//!
//! Version `00` only: `00-<32 hex trace id>-<16 hex parent id>-<2 hex
//! flags>`, 55 characters, lowercase hex, neither id all zeros
//! (<https://www.w3.org/TR/trace-context/#traceparent-header>).

use std::fmt;

/// A trace context as the W3C `traceparent` header carries it: which trace
/// a piece of work belongs to, and the span it runs under.
///
/// Every call carries one to the container that runs it; see
/// [`trace::current`](crate::trace::current) and
/// [`trace::scope`](crate::trace::scope).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: TraceId,
    span_id: SpanId,
    flags: u8,
}

/// A trace's id: 16 bytes, never all zeros; written as 32 lowercase hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId([u8; 16]);

/// A span's id: 8 bytes, never all zeros; written as 16 lowercase hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId([u8; 8]);

/// The length of a version-00 `traceparent`.
pub(crate) const TRACEPARENT_LEN: usize = 55;

/// The `sampled` bit of the flags.
const SAMPLED: u8 = 0x01;

impl TraceParent {
    /// Parses a `traceparent` value; `None` if it is not a valid version-00
    /// one (as W3C asks of a receiver: an invalid value is ignored).
    pub fn parse(header: &str) -> Option<TraceParent> {
        Self::check(header).ok()
    }

    /// Parses a `traceparent` value, or says what is wrong with it.
    pub fn check(header: &str) -> Result<TraceParent, String> {
        Self::check_bytes(header.as_bytes())
    }

    /// [`TraceParent::check`] of a value as bytes (ASCII when valid).
    pub(crate) fn check_bytes(b: &[u8]) -> Result<TraceParent, String> {
        if b.len() != TRACEPARENT_LEN {
            return Err(format!(
                "a traceparent is {TRACEPARENT_LEN} characters \
                 (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`), not {}",
                b.len()
            ));
        }
        if &b[..2] != b"00" {
            return Err("only version `00` of traceparent is understood".into());
        }
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err("a traceparent's four fields are separated by `-` \
                 (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`)"
                .into());
        }
        let not_hex = || "a traceparent's ids and flags are lowercase hex digits".to_owned();
        let mut trace_id = [0; 16];
        decode_hex(&b[3..35], &mut trace_id).ok_or_else(not_hex)?;
        let mut span_id = [0; 8];
        decode_hex(&b[36..52], &mut span_id).ok_or_else(not_hex)?;
        let mut flags = [0; 1];
        decode_hex(&b[53..55], &mut flags).ok_or_else(not_hex)?;
        if trace_id == [0; 16] {
            return Err("a traceparent's trace id cannot be all zeros".into());
        }
        if span_id == [0; 8] {
            return Err("a traceparent's parent id cannot be all zeros".into());
        }
        Ok(TraceParent {
            trace_id: TraceId(trace_id),
            span_id: SpanId(span_id),
            flags: flags[0],
        })
    }

    /// The start of a new trace: a random trace id and span id, sampled.
    pub fn new_root() -> TraceParent {
        TraceParent {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            flags: SAMPLED,
        }
    }

    /// A span under this one: the same trace and flags, a new span id.
    pub fn child(&self) -> TraceParent {
        TraceParent {
            span_id: SpanId::random(),
            ..*self
        }
    }

    /// A trace context from its parts; `None` if either id is all zeros.
    pub fn from_parts(trace_id: [u8; 16], span_id: [u8; 8], sampled: bool) -> Option<TraceParent> {
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(TraceParent {
            trace_id: TraceId(trace_id),
            span_id: SpanId(span_id),
            flags: if sampled { SAMPLED } else { 0 },
        })
    }

    /// The trace this belongs to.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The span that what runs with this context runs under (the
    /// header's "parent id").
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// Whether the trace is sampled (recorded by whoever traces).
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// The `traceparent` value.
    pub fn header(&self) -> String {
        let mut out = Vec::with_capacity(TRACEPARENT_LEN);
        out.extend_from_slice(b"00-");
        encode_hex(&self.trace_id.0, &mut out);
        out.push(b'-');
        encode_hex(&self.span_id.0, &mut out);
        out.push(b'-');
        encode_hex(&[self.flags], &mut out);
        String::from_utf8(out).expect("hex digits and dashes are ASCII")
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header())
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

impl std::str::FromStr for TraceParent {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::check(s)
    }
}

impl TraceId {
    fn random() -> TraceId {
        loop {
            let id = fastrand::u128(..).to_be_bytes();
            if id != [0; 16] {
                return TraceId(id);
            }
        }
    }

    /// Its 16 bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }
}

impl SpanId {
    fn random() -> SpanId {
        loop {
            let id = fastrand::u64(..).to_be_bytes();
            if id != [0; 8] {
                return SpanId(id);
            }
        }
    }

    /// Its 8 bytes.
    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn encode_hex(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0x0f)]);
    }
}

/// Writes an id (at most 16 bytes) in hex, without allocating.
fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let mut out = [0_u8; 32];
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0x0f)];
    }
    let digits = &out[..bytes.len() * 2];
    f.write_str(std::str::from_utf8(digits).expect("hex digits are ASCII"))
}

/// Lowercase hex digits into `out` (exactly twice its length); `None` on
/// anything else, uppercase included (W3C allows lowercase only).
fn decode_hex(digits: &[u8], out: &mut [u8]) -> Option<()> {
    fn nibble(d: u8) -> Option<u8> {
        match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'a'..=b'f' => Some(d - b'a' + 10),
            _ => None,
        }
    }
    debug_assert_eq!(digits.len(), out.len() * 2);
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_w3c_example_round_trips() {
        let tp = TraceParent::parse(EXAMPLE).unwrap();
        assert_eq!(
            tp.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(tp.span_id().to_string(), "00f067aa0ba902b7");
        assert!(tp.sampled());
        assert_eq!(tp.header(), EXAMPLE);
        assert_eq!(tp.to_string(), EXAMPLE);
        let unsampled = TraceParent::parse(&EXAMPLE.replace("-01", "-00")).unwrap();
        assert!(!unsampled.sampled());
    }

    #[test]
    fn malformed_values_are_refused_saying_why() {
        let cases = [
            ("", "55 characters"),
            (&EXAMPLE[..54], "55 characters"),
            (&format!("{EXAMPLE}0"), "55 characters"),
            (&"x".repeat(1 << 20), "55 characters"),
            (&EXAMPLE.replacen("00", "01", 1), "version `00`"),
            (&EXAMPLE.replacen("00", "ff", 1), "version `00`"),
            (&EXAMPLE.replacen('-', "_", 1), "separated by `-`"),
            (&EXAMPLE.replace("4bf9", "4BF9"), "lowercase hex"),
            (&EXAMPLE.replace("4bf9", "4bg9"), "lowercase hex"),
            (&EXAMPLE.replace("-01", "-0z"), "lowercase hex"),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "trace id cannot be all zeros",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "parent id cannot be all zeros",
            ),
            // Multi-byte characters of the right byte length.
            (
                "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
                "lowercase hex",
            ),
        ];
        for (header, why) in cases {
            let err = TraceParent::check(header).unwrap_err();
            assert!(err.contains(why), "{header:?}: {err}");
            assert!(err.len() < 200, "the message stays short: {err}");
            assert!(TraceParent::parse(header).is_none());
        }
    }

    #[test]
    fn new_traces_and_children_are_valid_and_distinct() {
        let root = TraceParent::new_root();
        assert!(root.sampled());
        assert_eq!(TraceParent::parse(&root.header()), Some(root));
        let child = root.child();
        assert_eq!(child.trace_id(), root.trace_id());
        assert_ne!(child.span_id(), root.span_id());
        assert_ne!(TraceParent::new_root().trace_id(), root.trace_id());
    }

    #[test]
    fn parts_with_a_zero_id_make_no_context() {
        assert!(TraceParent::from_parts([0; 16], [1; 8], true).is_none());
        assert!(TraceParent::from_parts([1; 16], [0; 8], true).is_none());
        let tp = TraceParent::from_parts([1; 16], [2; 8], false).unwrap();
        assert!(!tp.sampled());
        assert_eq!(tp.trace_id().to_bytes(), [1; 16]);
    }
}
