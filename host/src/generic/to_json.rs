//! Hessian2 results to generic JSON: objects carry their Java `class` first, back-references
//! resolve (a cycle prints as `{"$ref": n}`), and what is printed is bounded by a budget
//! relative to the reply, however its references are shared.
//!
//! One walk serves both forms: text written to any `io::Write` as it is produced (what `call`
//! and `generic.invoke` use, so a large result is never held twice) and a `serde_json` tree.
//! Both count the JSON text the value prints as, so both refuse the same results: at most
//! [`BUDGET_FACTOR`] times the memory the reply decoded to (see
//! [`crate::hessian2::decoded_size`]), at least [`BUDGET_FLOOR`] bytes. A back-reference
//! prints what it points to again, so this is what stops a small reply full of references
//! from printing as gigabytes; it also stops a class or field name of 64 KiB repeated by a
//! million 2-byte objects.

use std::borrow::Cow;
use std::io::{self, Write};

use serde_json::Value as Json;

use crate::hessian2::{decoded_size, ref_table, Value};

/// Refs are expanded only this deep, so a chain of back-references cannot overflow the stack;
/// deeper ones print as `{"$ref": n}`.
const MAX_REF_DEPTH: usize = 256;

/// A result may print as at most this many times the bytes its reply decoded to ...
pub const BUDGET_FACTOR: usize = 4;
/// ... or this many bytes, whichever is more, so that small results are never refused.
pub const BUDGET_FLOOR: usize = 8 << 20;

/// Why a result could not be printed as JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Printing would exceed the budget.
    #[error("the result would print as more than {limit} bytes of JSON (back-references print what they point to again; a reply that decoded to {decoded} bytes may print as at most {factor}x that, at least {floor} bytes)", factor = BUDGET_FACTOR, floor = BUDGET_FLOOR)]
    OverBudget {
        /// The budget in bytes of JSON text.
        limit: usize,
        /// What the reply's values take in memory.
        decoded: usize,
    },
    /// The text could not be written.
    #[error("cannot write the JSON: {0}")]
    Io(#[from] io::Error),
}

/// The JSON tree of a result, resolving `Value::Ref(n)` through `ref_table(roots)`: a ref to
/// a value being printed (a cycle) prints as `{"$ref": n}`, other refs print the value again.
pub fn hessian_to_json(v: &Value, roots: &[Value]) -> Result<Json, JsonError> {
    let mut tree = Tree::default();
    Walker::new(roots).value(v, &mut tree)?;
    Ok(tree.done.unwrap_or(Json::Null))
}

/// [`hessian_to_json`] as text, written to `out` as it is produced (wrap a raw stream in a
/// `BufWriter`). The result is walked once without output first, so nothing is written when
/// it is over budget.
pub fn write_hessian_json<W: Write>(v: &Value, roots: &[Value], out: W) -> Result<(), JsonError> {
    let mut walker = Walker::new(roots);
    walker.value(v, &mut Count)?;
    // The same tables for the second pass, with the whole budget again.
    walker.left = walker.limit;
    let mut text = Text::new(out);
    walker.value(v, &mut text)?;
    text.out.flush()?;
    Ok(())
}

/// [`hessian_to_json`] as a string of JSON text.
pub fn hessian_to_json_text(v: &Value, roots: &[Value]) -> Result<String, JsonError> {
    let mut out = Text::new(Vec::new());
    Walker::new(roots).value(v, &mut out)?;
    let out = out.out;
    // The text sink writes only `serde_json` output and ASCII punctuation.
    String::from_utf8(out).map_err(|e| JsonError::Io(io::Error::new(io::ErrorKind::InvalidData, e)))
}

/// A scalar JSON value.
enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// A finite double.
    Double(f64),
    Str(&'a str),
}

/// Where the walk's JSON goes.
trait Sink {
    fn scalar(&mut self, s: Scalar<'_>) -> io::Result<()>;
    /// Starts an array (`object == false`) or an object.
    fn begin(&mut self, object: bool) -> io::Result<()>;
    fn key(&mut self, k: &str) -> io::Result<()>;
    fn end(&mut self) -> io::Result<()>;
}

/// JSON text to a writer.
struct Text<W> {
    out: W,
    /// For each open container: whether it is an object, and whether it has no element yet.
    open: Vec<(bool, bool)>,
    /// A key was just written: the next value follows its colon without a comma.
    after_key: bool,
}

impl<W: Write> Text<W> {
    fn new(out: W) -> Self {
        Text {
            out,
            open: Vec::new(),
            after_key: false,
        }
    }

    fn separate(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.after_key) {
            return Ok(());
        }
        if let Some((_, first)) = self.open.last_mut() {
            if !std::mem::take(first) {
                self.out.write_all(b",")?;
            }
        }
        Ok(())
    }
}

impl<W: Write> Sink for Text<W> {
    fn scalar(&mut self, s: Scalar<'_>) -> io::Result<()> {
        self.separate()?;
        match s {
            Scalar::Null => self.out.write_all(b"null"),
            Scalar::Bool(true) => self.out.write_all(b"true"),
            Scalar::Bool(false) => self.out.write_all(b"false"),
            Scalar::Int(i) => write!(self.out, "{i}"),
            Scalar::Double(d) => serde_json::to_writer(&mut self.out, &d).map_err(io::Error::from),
            Scalar::Str(s) => serde_json::to_writer(&mut self.out, s).map_err(io::Error::from),
        }
    }

    fn begin(&mut self, object: bool) -> io::Result<()> {
        self.separate()?;
        self.open.push((object, true));
        self.out.write_all(if object { b"{" } else { b"[" })
    }

    fn key(&mut self, k: &str) -> io::Result<()> {
        self.separate()?;
        serde_json::to_writer(&mut self.out, k).map_err(io::Error::from)?;
        self.out.write_all(b":")?;
        self.after_key = true;
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        match self.open.pop() {
            Some((true, _)) => self.out.write_all(b"}"),
            _ => self.out.write_all(b"]"),
        }
    }
}

/// Nothing: a walk that only charges the budget.
struct Count;

impl Sink for Count {
    fn scalar(&mut self, _: Scalar<'_>) -> io::Result<()> {
        Ok(())
    }
    fn begin(&mut self, _: bool) -> io::Result<()> {
        Ok(())
    }
    fn key(&mut self, _: &str) -> io::Result<()> {
        Ok(())
    }
    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `serde_json` tree.
#[derive(Default)]
struct Tree {
    open: Vec<Open>,
    done: Option<Json>,
}

enum Open {
    Array(Vec<Json>),
    Object(serde_json::Map<String, Json>, String),
}

impl Tree {
    fn put(&mut self, v: Json) {
        match self.open.last_mut() {
            Some(Open::Array(items)) => items.push(v),
            Some(Open::Object(map, key)) => {
                map.insert(std::mem::take(key), v);
            }
            None => self.done = Some(v),
        }
    }
}

impl Sink for Tree {
    fn scalar(&mut self, s: Scalar<'_>) -> io::Result<()> {
        self.put(match s {
            Scalar::Null => Json::Null,
            Scalar::Bool(b) => Json::Bool(b),
            Scalar::Int(i) => Json::from(i),
            Scalar::Double(d) => serde_json::Number::from_f64(d)
                .map(Json::Number)
                .unwrap_or_else(|| Json::String(java_double_text(d).to_string())),
            Scalar::Str(s) => Json::String(s.to_string()),
        });
        Ok(())
    }

    fn begin(&mut self, object: bool) -> io::Result<()> {
        self.open.push(if object {
            Open::Object(serde_json::Map::new(), String::new())
        } else {
            Open::Array(Vec::new())
        });
        Ok(())
    }

    fn key(&mut self, k: &str) -> io::Result<()> {
        if let Some(Open::Object(_, key)) = self.open.last_mut() {
            *key = k.to_string();
        }
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        let v = match self.open.pop() {
            Some(Open::Array(items)) => Json::Array(items),
            Some(Open::Object(map, _)) => Json::Object(map),
            None => return Ok(()),
        };
        self.put(v);
        Ok(())
    }
}

/// The walk over one result: reference resolution, cycle detection and the budget.
struct Walker<'a> {
    table: Vec<&'a Value>,
    /// The containers being printed, outermost first, compared by address.
    ancestors: Vec<&'a Value>,
    /// Bytes of JSON text that may still be printed.
    left: usize,
    limit: usize,
    decoded: usize,
}

impl<'a> Walker<'a> {
    fn new(roots: &'a [Value]) -> Self {
        let decoded = decoded_size(roots);
        let limit = decoded.saturating_mul(BUDGET_FACTOR).max(BUDGET_FLOOR);
        Walker {
            table: ref_table(roots),
            ancestors: Vec::new(),
            left: limit,
            limit,
            decoded,
        }
    }

    /// Takes `bytes` of text (plus one for a separator) from the budget.
    fn charge(&mut self, bytes: usize) -> Result<(), JsonError> {
        match self.left.checked_sub(bytes.saturating_add(1)) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(JsonError::OverBudget {
                limit: self.limit,
                decoded: self.decoded,
            }),
        }
    }

    fn scalar(&mut self, s: Scalar<'_>, sink: &mut impl Sink) -> Result<(), JsonError> {
        self.charge(match &s {
            Scalar::Null => 4,
            Scalar::Bool(_) => 5,
            Scalar::Int(i) => int_text_len(*i),
            // The longest shortest-round-trip form, e.g. -2.2250738585072014e-308.
            Scalar::Double(_) => 24,
            Scalar::Str(s) => quoted_len(s),
        })?;
        sink.scalar(s)?;
        Ok(())
    }

    fn key(&mut self, k: &str, sink: &mut impl Sink) -> Result<(), JsonError> {
        self.charge(quoted_len(k))?;
        sink.key(k)?;
        Ok(())
    }

    fn begin(&mut self, object: bool, sink: &mut impl Sink) -> Result<(), JsonError> {
        // The opening and the closing bracket.
        self.charge(1)?;
        sink.begin(object)?;
        Ok(())
    }

    fn value<S: Sink>(&mut self, v: &'a Value, sink: &mut S) -> Result<(), JsonError> {
        match v {
            Value::Null => self.scalar(Scalar::Null, sink),
            Value::Bool(b) => self.scalar(Scalar::Bool(*b), sink),
            Value::Int(i) => self.scalar(Scalar::Int(i64::from(*i)), sink),
            Value::Long(l) | Value::Date(l) => self.scalar(Scalar::Int(*l), sink),
            Value::Double(d) if d.is_finite() => self.scalar(Scalar::Double(*d), sink),
            Value::Double(d) => self.scalar(Scalar::Str(java_double_text(*d)), sink),
            Value::String(s) => self.scalar(Scalar::Str(s), sink),
            Value::Binary(b) => {
                self.begin(false, sink)?;
                for &x in b {
                    self.scalar(Scalar::Int(i64::from(x)), sink)?;
                }
                sink.end()?;
                Ok(())
            }
            Value::List(l) => {
                self.ancestors.push(v);
                self.begin(false, sink)?;
                for item in &l.items {
                    self.value(item, sink)?;
                }
                sink.end()?;
                self.ancestors.pop();
                Ok(())
            }
            Value::Map(m) => {
                self.ancestors.push(v);
                self.begin(true, sink)?;
                for (k, val) in &m.entries {
                    let key = self.key_text(k)?;
                    self.key(&key, sink)?;
                    self.value(val, sink)?;
                }
                sink.end()?;
                self.ancestors.pop();
                Ok(())
            }
            Value::Object(o) => {
                self.ancestors.push(v);
                self.begin(true, sink)?;
                self.key("class", sink)?;
                self.scalar(Scalar::Str(&o.class.name), sink)?;
                for (name, val) in o.class.fields.iter().zip(&o.values) {
                    self.key(name, sink)?;
                    self.value(val, sink)?;
                }
                sink.end()?;
                self.ancestors.pop();
                Ok(())
            }
            Value::Ref(n) => {
                let target = self.table.get(*n as usize).copied();
                match target {
                    Some(t)
                        if self.ancestors.len() < MAX_REF_DEPTH
                            && !self.ancestors.iter().any(|a| std::ptr::eq(*a, t)) =>
                    {
                        self.value(t, sink)
                    }
                    _ => {
                        self.begin(true, sink)?;
                        self.key("$ref", sink)?;
                        self.scalar(Scalar::Int(i64::from(*n)), sink)?;
                        sink.end()?;
                        Ok(())
                    }
                }
            }
        }
    }

    /// A map key as JSON object key text: strings as they are, anything else as its JSON text
    /// (counted against the budget like the rest).
    fn key_text(&mut self, k: &'a Value) -> Result<Cow<'a, str>, JsonError> {
        Ok(match k {
            Value::String(s) => Cow::Borrowed(s),
            Value::Double(d) if !d.is_finite() => Cow::Borrowed(java_double_text(*d)),
            other => {
                let mut text = Text::new(Vec::new());
                self.value(other, &mut text)?;
                Cow::Owned(String::from_utf8_lossy(&text.out).into_owned())
            }
        })
    }
}

/// The length of `s` as a JSON string: quotes, and escapes for `"`, `\` and control characters.
fn quoted_len(s: &str) -> usize {
    let escapes: usize = s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
            0x00..=0x1f => 5,
            _ => 0,
        })
        .sum();
    s.len() + escapes + 2
}

/// The number of characters of `i` in decimal.
fn int_text_len(i: i64) -> usize {
    let mut n = i.unsigned_abs();
    let mut len = usize::from(i < 0) + 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

fn java_double_text(d: f64) -> &'static str {
    if d.is_nan() {
        "NaN"
    } else if d > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}
