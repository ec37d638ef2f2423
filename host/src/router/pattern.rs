//! Values and value patterns of condition rules: the glob (`v`, `v*`, `*v`, `a*b`, `*`) and
//! range (`1~100`, `~100`, `1~`) patterns Dubbo's `WildcardValuePattern` and `RangeValuePattern`
//! evaluate, and the [`Sample`] a pattern is matched against.
//!
//! A sample is borrowed pieces (plus a small stack buffer for numbers) so that matching a call
//! never allocates: `address` is `host` `:` `port` without being joined, and an `int` argument is
//! formatted on the stack the way Java's `String.valueOf` would print it.

use std::fmt::{self, Write as _};

use crate::hessian2::Value;

/// The value a condition key has for one call, as up to three pieces read in order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample<'a> {
    pieces: [&'a str; 3],
}

impl<'a> Sample<'a> {
    /// A sample that is one string.
    pub(crate) fn one(s: &'a str) -> Self {
        Sample {
            pieces: [s, "", ""],
        }
    }

    /// A sample that is `a` followed by `b` and `c`.
    pub(crate) fn joined(a: &'a str, b: &'a str, c: &'a str) -> Self {
        Sample { pieces: [a, b, c] }
    }

    fn bytes(&self) -> impl DoubleEndedIterator<Item = u8> + 'a {
        self.pieces.into_iter().flat_map(str::bytes)
    }

    fn len(&self) -> usize {
        self.pieces.iter().map(|p| p.len()).sum()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn equals(&self, s: &str) -> bool {
        self.len() == s.len() && self.bytes().eq(s.bytes())
    }

    fn starts_with(&self, prefix: &str) -> bool {
        self.len() >= prefix.len() && self.bytes().take(prefix.len()).eq(prefix.bytes())
    }

    fn ends_with(&self, suffix: &str) -> bool {
        self.len() >= suffix.len()
            && self
                .bytes()
                .rev()
                .take(suffix.len())
                .eq(suffix.bytes().rev())
    }

    /// The sample read as a decimal integer (optional `-`), if it is one.
    fn as_i64(&self) -> Option<i64> {
        let mut bytes = self.bytes().peekable();
        let negative = bytes.next_if_eq(&b'-').is_some();
        let mut n: i64 = 0;
        let mut digits = 0;
        for b in bytes {
            if !b.is_ascii_digit() {
                return None;
            }
            n = n.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
            digits += 1;
        }
        if digits == 0 {
            return None;
        }
        Some(if negative { -n } else { n })
    }
}

/// A small stack buffer numbers are printed into, so samples need no heap.
pub(crate) struct NumBuf {
    buf: [u8; 40],
    len: usize,
}

impl NumBuf {
    /// An empty buffer.
    pub(crate) fn new() -> Self {
        NumBuf {
            buf: [0; 40],
            len: 0,
        }
    }

    /// What was written so far.
    pub(crate) fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the bytes are always UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for NumBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes `v` as Java's `String.valueOf` prints it, for the scalar types a condition rule can
/// compare; `None` for values with no stable string form (lists, maps, objects, dates, bytes),
/// which then match no pattern.
pub(crate) fn write_java_string<'a>(v: &'a Value, buf: &'a mut NumBuf) -> Option<&'a str> {
    let ok = match v {
        Value::String(s) => return Some(s),
        Value::Null => return Some("null"),
        Value::Bool(b) => return Some(if *b { "true" } else { "false" }),
        Value::Int(i) => write!(buf, "{i}").is_ok(),
        Value::Long(l) => write!(buf, "{l}").is_ok(),
        Value::Double(d) => write_java_double(*d, buf).is_ok(),
        _ => false,
    };
    if !ok {
        return None;
    }
    let buf: &'a NumBuf = buf;
    Some(buf.as_str())
}

/// Java's `Double.toString`: plain decimal with at least one fraction digit between 10^-3 and
/// 10^7, computerized scientific notation (`1.0E10`) outside it.
fn write_java_double(d: f64, out: &mut NumBuf) -> fmt::Result {
    if d.is_nan() {
        return out.write_str("NaN");
    }
    if d.is_infinite() {
        return out.write_str(if d > 0.0 { "Infinity" } else { "-Infinity" });
    }
    let a = d.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        write!(out, "{d}")?;
        if !out.as_str().contains('.') {
            out.write_str(".0")?;
        }
        return Ok(());
    }
    let mut sci = NumBuf::new();
    write!(sci, "{d:e}")?;
    let (mantissa, exponent) = sci.as_str().split_once('e').ok_or(fmt::Error)?;
    out.write_str(mantissa)?;
    if !mantissa.contains('.') {
        out.write_str(".0")?;
    }
    write!(out, "E{exponent}")
}

/// Where the `*`s of a glob are, worked out once when the rule is parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `*`: anything.
    Any,
    /// No `*`: equal.
    Exact,
    /// Ends in `*`: starts with everything before the last `*`.
    Prefix(usize),
    /// Starts with the only `*`s: ends with everything after it.
    Suffix(usize),
    /// `a*b`: starts with what is before the first `*` and ends with what is after the last.
    Infix(usize, usize),
}

impl Shape {
    fn of(pattern: &str) -> Shape {
        if pattern == "*" {
            return Shape::Any;
        }
        match (pattern.find('*'), pattern.rfind('*')) {
            // Dubbo looks at the last `*` first, so `a*b*` is the prefix `a*b`.
            (Some(_), Some(last)) if last + 1 == pattern.len() => Shape::Prefix(last),
            (Some(_), Some(0)) => Shape::Suffix(1),
            (Some(first), Some(last)) => Shape::Infix(first, last),
            _ => Shape::Exact,
        }
    }
}

/// A Dubbo glob (`UrlUtils.isMatchGlobPattern`).
#[derive(Clone, Debug)]
pub(crate) struct Glob {
    text: Box<str>,
    shape: Shape,
}

impl Glob {
    /// Compiles `pattern`.
    pub(crate) fn new(pattern: &str) -> Glob {
        Glob {
            text: pattern.into(),
            shape: Shape::of(pattern),
        }
    }

    /// Whether `value` matches.
    pub(crate) fn matches(&self, value: Sample<'_>) -> bool {
        glob_matches(&self.text, self.shape, value)
    }
}

/// Matches a glob only known at call time (a `$key` reference resolved against the consumer).
pub(crate) fn glob_matches_dynamic(pattern: &str, value: Sample<'_>) -> bool {
    glob_matches(pattern, Shape::of(pattern), value)
}

fn glob_matches(pattern: &str, shape: Shape, value: Sample<'_>) -> bool {
    if shape == Shape::Any {
        return true;
    }
    if pattern.is_empty() || value.is_empty() {
        return pattern.is_empty() && value.is_empty();
    }
    match shape {
        Shape::Any => true,
        Shape::Exact => value.equals(pattern),
        Shape::Prefix(end) => value.starts_with(&pattern[..end]),
        Shape::Suffix(start) => value.ends_with(&pattern[start..]),
        Shape::Infix(first, last) => {
            value.starts_with(&pattern[..first]) && value.ends_with(&pattern[last + 1..])
        }
    }
}

/// An inclusive integer range `lo~hi`; either end may be open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    lo: Option<i64>,
    hi: Option<i64>,
}

impl Range {
    /// Parses `lo~hi`, `~hi` or `lo~`; `Err` says what is wrong.
    pub(crate) fn parse(pattern: &str) -> Result<Range, String> {
        let (lo, hi) = pattern
            .split_once('~')
            .filter(|(_, hi)| !hi.contains('~'))
            .ok_or_else(|| format!("range `{pattern}` must be `lo~hi`, `~hi` or `lo~`"))?;
        let bound = |s: &str| -> Result<Option<i64>, String> {
            if s.is_empty() {
                return Ok(None);
            }
            s.parse()
                .map(Some)
                .map_err(|_| format!("range `{pattern}`: `{s}` is not an integer"))
        };
        let range = Range {
            lo: bound(lo)?,
            hi: bound(hi)?,
        };
        if range.lo.is_none() && range.hi.is_none() {
            return Err(format!("range `{pattern}` has neither bound"));
        }
        Ok(range)
    }

    /// Whether `value` is an integer inside the range.
    pub(crate) fn matches(&self, value: Sample<'_>) -> bool {
        value
            .as_i64()
            .is_some_and(|v| self.lo.is_none_or(|lo| v >= lo) && self.hi.is_none_or(|hi| v <= hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str, v: &str) -> bool {
        Glob::new(p).matches(Sample::one(v))
    }

    #[test]
    fn globs_match_exact_prefix_suffix_infix_and_anything() {
        assert!(glob("10.0.0.1", "10.0.0.1"));
        assert!(!glob("10.0.0.1", "10.0.0.10"));
        assert!(glob("10.0.*", "10.0.3.4"));
        assert!(!glob("10.0.*", "10.1.3.4"));
        assert!(glob("*Service", "DemoService"));
        assert!(glob("say*o", "sayHello"));
        assert!(!glob("say*o", "sayHi"));
        assert!(glob("*", ""));
        assert!(!glob("a", ""));
    }

    #[test]
    fn joined_samples_match_like_one_string() {
        let addr = Sample::joined("10.0.0.2", ":", "20880");
        assert!(Glob::new("10.0.0.2:20880").matches(addr));
        assert!(Glob::new("*:20880").matches(addr));
        assert!(Glob::new("10.0.0.2:*").matches(addr));
        assert!(!Glob::new("10.0.0.2:2088").matches(addr));
    }

    #[test]
    fn ranges_are_inclusive_and_may_be_open() {
        let r = Range::parse("1~100").expect("valid range");
        assert!(r.matches(Sample::one("1")) && r.matches(Sample::one("100")));
        assert!(!r.matches(Sample::one("101")) && !r.matches(Sample::one("x")));
        assert!(Range::parse("~0")
            .expect("valid")
            .matches(Sample::one("-5")));
        assert!(Range::parse("5~").expect("valid").matches(Sample::one("7")));
        assert!(Range::parse("~").is_err());
        assert!(Range::parse("a~3").is_err());
    }

    #[test]
    fn arguments_print_like_java_string_value_of() {
        let s = |v: Value| {
            let mut buf = NumBuf::new();
            write_java_string(&v, &mut buf).map(str::to_string)
        };
        assert_eq!(s(Value::Int(-7)).as_deref(), Some("-7"));
        assert_eq!(s(Value::Long(1 << 40)).as_deref(), Some("1099511627776"));
        assert_eq!(s(Value::Bool(true)).as_deref(), Some("true"));
        assert_eq!(s(Value::Null).as_deref(), Some("null"));
        assert_eq!(s(Value::Double(1.0)).as_deref(), Some("1.0"));
        assert_eq!(s(Value::Double(0.5)).as_deref(), Some("0.5"));
        assert_eq!(s(Value::Double(-0.0)).as_deref(), Some("-0.0"));
        assert_eq!(s(Value::Double(1e10)).as_deref(), Some("1.0E10"));
        assert_eq!(s(Value::Double(1.5e-5)).as_deref(), Some("1.5E-5"));
        assert_eq!(s(Value::Double(f64::NAN)).as_deref(), Some("NaN"));
        assert_eq!(s(Value::Binary(vec![1])), None);
    }
}
