//! The condition rule language (`when => then`) parsed once into matchers.
//!
//! A side is conditions joined by `&`; each condition is `key = v1,v2` (any value matches) or
//! `key != v` (no value may match), values being globs, integer ranges (`1~100`) or, on the
//! then side, `$key` references to the consumer URL. Tokens follow Dubbo's
//! `([&!=,]*)\s*([^&!=,\s]+)`. The when side reads the consumer URL and the invocation (`method`,
//! `arguments[i]`, `attachments[k]`); the then side reads each provider URL.

use std::fmt::Write as _;

use super::pattern::{glob_matches_dynamic, write_java_string, Glob, NumBuf, Range, Sample};
use super::RouterError;
use crate::rpc::Invocation;
use crate::url::Url;

/// What Dubbo's `ArgumentConditionMatcher` yields for a missing argument: it matches `*` and
/// every `!=`, which we keep so rules behave the same.
const ARGUMENT_NOT_FOUND: &str = "dubbo_internal_not_found_argument_condition_value";

/// Which side of `=>` a condition is on; it decides what keys read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    When,
    Then,
}

/// Where a condition reads its value.
#[derive(Debug)]
enum Key {
    /// The invoked method name (`method` or `methods` on the when side).
    Method,
    /// `arguments[i]`, printed like Java's `String.valueOf`.
    Argument(usize),
    /// `attachments[k]`.
    Attachment(Box<str>),
    Host,
    Port,
    Protocol,
    Path,
    /// `host:port`, or `host` when the port is 0.
    Address,
    Param(Box<str>),
}

/// One value of a condition.
#[derive(Debug)]
enum Pattern {
    Glob(Glob),
    Range(Range),
    /// `$key` on the then side: a glob taken from the consumer URL at call time.
    ConsumerRef(Box<str>),
}

/// `key = matches` and/or `key != mismatches`.
#[derive(Debug)]
struct Condition {
    /// The key as written, to merge repeated keys and to name in errors.
    name: Box<str>,
    key: Key,
    matches: Vec<Pattern>,
    mismatches: Vec<Pattern>,
}

/// The conditions of one side; all must hold.
#[derive(Debug, Default)]
pub(crate) struct Conditions(Vec<Condition>);

/// A parsed `when => then` rule.
#[derive(Debug)]
pub(crate) struct ParsedRule {
    /// Empty when the when-part is empty or `true`: every call matches.
    pub(crate) when: Conditions,
    /// `None` when the then-part is empty or `false`: matching calls get no provider.
    pub(crate) then: Option<Conditions>,
}

/// Parses a rule such as `host = 10.0.0.1 & method = sayHello => region = hz`.
pub(crate) fn parse(rule: &str) -> Result<ParsedRule, RouterError> {
    let bad = |reason: String| RouterError::BadRule {
        rule: rule.to_string(),
        reason,
    };
    if rule.trim().is_empty() {
        return Err(bad("the rule is empty; expected `when => then`".into()));
    }
    let (when, then) = match rule.find("=>") {
        Some(i) => (rule[..i].trim(), rule[i + 2..].trim()),
        None => ("", rule.trim()),
    };
    let when = if when.is_empty() || when == "true" {
        Conditions::default()
    } else {
        parse_side(when, Side::When).map_err(bad)?
    };
    let then = if then.is_empty() || then == "false" {
        None
    } else {
        Some(parse_side(then, Side::Then).map_err(bad)?)
    };
    Ok(ParsedRule { when, then })
}

/// One `([&!=,]*)\s*([^&!=,\s]+)` match: the separator run right before the content (empty
/// at the start), where that run starts, and the content.
struct Token<'a> {
    at: usize,
    separator: &'a str,
    content: &'a str,
}

fn is_separator(b: u8) -> bool {
    matches!(b, b'&' | b'!' | b'=' | b',')
}

/// Java's `\s`: ASCII whitespace including vertical tab.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r')
}

/// Splits `text` into tokens the way repeated `Matcher.find` does: a separator run followed by
/// whitespace and another run is dropped, and trailing separators are ignored.
fn tokenize(text: &str) -> Vec<Token<'_>> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    loop {
        let mut separator = (i, i);
        while i < bytes.len() && (is_separator(bytes[i]) || is_space(bytes[i])) {
            if is_separator(bytes[i]) {
                let start = i;
                while i < bytes.len() && is_separator(bytes[i]) {
                    i += 1;
                }
                separator = (start, i);
            } else {
                i += 1;
            }
        }
        if i >= bytes.len() {
            return tokens;
        }
        let start = i;
        while i < bytes.len() && !is_separator(bytes[i]) && !is_space(bytes[i]) {
            i += 1;
        }
        // Token boundaries are ASCII bytes, so these slices are on char boundaries.
        tokens.push(Token {
            at: separator.0,
            separator: &text[separator.0..separator.1],
            content: &text[start..i],
        });
    }
}

fn parse_side(text: &str, side: Side) -> Result<Conditions, String> {
    let mut conditions: Vec<Condition> = Vec::new();
    // The condition the next `=`/`!=` applies to, and the list the next `,` extends.
    let mut current: Option<usize> = None;
    let mut list: Option<(usize, bool)> = None;
    for Token {
        at,
        separator,
        content,
    } in tokenize(text)
    {
        match separator {
            "" | "&" => {
                let name = content
                    .strip_prefix("consumer.")
                    .or_else(|| content.strip_prefix("provider."))
                    .unwrap_or(content);
                let idx = match conditions.iter().position(|c| &*c.name == name) {
                    Some(idx) => idx,
                    None => {
                        conditions.push(Condition {
                            name: name.into(),
                            key: parse_key(name, side)?,
                            matches: Vec::new(),
                            mismatches: Vec::new(),
                        });
                        conditions.len() - 1
                    }
                };
                current = Some(idx);
                list = None;
            }
            "=" | "!=" => {
                let idx = current.ok_or_else(|| {
                    format!("`{separator}` at index {at} before `{content}` has no key before it")
                })?;
                let negated = separator == "!=";
                push_pattern(&mut conditions[idx], negated, content, side)?;
                list = Some((idx, negated));
            }
            "," => {
                let (idx, negated) = list.ok_or_else(|| {
                    format!("`,` at index {at} before `{content}` does not follow a value")
                })?;
                push_pattern(&mut conditions[idx], negated, content, side)?;
            }
            other => {
                return Err(format!(
                    "unexpected `{other}` at index {at} before `{content}`; expected `&`, `=`, `!=` or `,`"
                ))
            }
        }
    }
    if let Some(c) = conditions
        .iter()
        .find(|c| c.matches.is_empty() && c.mismatches.is_empty())
    {
        return Err(format!(
            "key `{}` has no value; expected `{} = value` or `{} != value`",
            c.name, c.name, c.name
        ));
    }
    Ok(Conditions(conditions))
}

fn push_pattern(c: &mut Condition, negated: bool, text: &str, side: Side) -> Result<(), String> {
    let pattern = if text.contains('~') {
        Pattern::Range(Range::parse(text).map_err(|e| format!("key `{}`: {e}", c.name))?)
    } else if let Some(reference) = text.strip_prefix('$').filter(|_| side == Side::Then) {
        // Dubbo resolves `$key` only on the then side; on the when side it is a literal.
        Pattern::ConsumerRef(reference.into())
    } else {
        Pattern::Glob(Glob::new(text))
    };
    if negated {
        c.mismatches.push(pattern);
    } else {
        c.matches.push(pattern);
    }
    Ok(())
}

fn parse_key(name: &str, side: Side) -> Result<Key, String> {
    let bracketed = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('['))
            .and_then(|rest| rest.strip_suffix(']'))
    };
    let call_only = |what: &str| {
        if side == Side::Then {
            Err(format!(
                "key `{name}` reads the {what} of the call, which only the when side (before `=>`) can do"
            ))
        } else {
            Ok(())
        }
    };
    if name.starts_with("arguments") {
        let index = bracketed("arguments")
            .and_then(|i| i.parse::<usize>().ok())
            .ok_or_else(|| {
                format!("unknown key `{name}`: expected `arguments[N]` with N an argument index")
            })?;
        call_only("arguments")?;
        return Ok(Key::Argument(index));
    }
    if name.starts_with("attachments") {
        let key = bracketed("attachments")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                format!("unknown key `{name}`: expected `attachments[KEY]` with a non-empty KEY")
            })?;
        call_only("attachments")?;
        return Ok(Key::Attachment(key.into()));
    }
    if name.contains(['[', ']']) {
        return Err(format!(
            "unknown key `{name}`: expected a URL parameter, `arguments[N]` or `attachments[KEY]`"
        ));
    }
    Ok(match name {
        "method" | "methods" if side == Side::When => Key::Method,
        "host" => Key::Host,
        "port" => Key::Port,
        "protocol" => Key::Protocol,
        "path" => Key::Path,
        "address" => Key::Address,
        _ => Key::Param(name.into()),
    })
}

impl Conditions {
    /// Whether a condition reads the call itself (its method, an argument or an attachment),
    /// not only the consumer's URL.
    pub(crate) fn reads_the_call(&self) -> bool {
        self.0
            .iter()
            .any(|c| matches!(c.key, Key::Method | Key::Argument(_) | Key::Attachment(_)))
    }

    /// Whether every condition holds for a call from `consumer` (the when side).
    pub(crate) fn matches_call(&self, consumer: &Url, inv: &Invocation) -> bool {
        self.0.iter().all(|c| {
            let mut buf = NumBuf::new();
            let sample = call_sample(&c.key, consumer, inv, &mut buf);
            c.holds(sample, None)
        })
    }

    /// Whether every condition holds for `provider`, `$key` values read from `consumer`
    /// (the then side).
    pub(crate) fn matches_provider(&self, provider: &Url, consumer: &Url) -> bool {
        self.0.iter().all(|c| {
            let mut buf = NumBuf::new();
            let sample = url_sample(&c.key, provider, &mut buf);
            c.holds(sample, Some(consumer))
        })
    }
}

impl Condition {
    /// Dubbo's `AbstractConditionMatcher.isMatch`: an absent value never holds; a mismatch
    /// wins over a match.
    fn holds(&self, sample: Option<Sample<'_>>, consumer: Option<&Url>) -> bool {
        let Some(sample) = sample else {
            return false;
        };
        let hit = |p: &Pattern| p.matches(sample, consumer);
        if self.mismatches.iter().any(hit) {
            return false;
        }
        self.matches.is_empty() || self.matches.iter().any(hit)
    }
}

impl Pattern {
    fn matches(&self, sample: Sample<'_>, consumer: Option<&Url>) -> bool {
        match self {
            Pattern::Glob(g) => g.matches(sample),
            Pattern::Range(r) => r.matches(sample),
            Pattern::ConsumerRef(key) => {
                let Some(consumer) = consumer else {
                    return false;
                };
                let mut buf = NumBuf::new();
                // Dubbo's `getRawParameter`: URL parts first, then parameters; a missing one
                // only matches an empty value.
                let resolved = match &**key {
                    "protocol" => Some(consumer.protocol.as_str()),
                    "host" => Some(consumer.host.as_str()),
                    "path" => Some(consumer.path.as_str()),
                    "port" => write!(buf, "{}", consumer.port).ok().map(|()| buf.as_str()),
                    other => consumer.param(other),
                };
                glob_matches_dynamic(resolved.unwrap_or(""), sample)
            }
        }
    }
}

/// The value of `key` for a call: method, argument and attachment keys read the invocation,
/// the rest the consumer URL.
fn call_sample<'a>(
    key: &'a Key,
    consumer: &'a Url,
    inv: &'a Invocation,
    buf: &'a mut NumBuf,
) -> Option<Sample<'a>> {
    match key {
        Key::Method => Some(Sample::one(&inv.method)),
        Key::Argument(i) => Some(Sample::one(match inv.args.get(*i) {
            Some(v) => write_java_string(v, buf)?,
            None => ARGUMENT_NOT_FOUND,
        })),
        Key::Attachment(k) => inv
            .attachments
            .iter()
            .find(|(name, _)| name == &**k)
            .map(|(_, v)| Sample::one(v)),
        _ => url_sample(key, consumer, buf),
    }
}

/// The value of `key` in `url`, the way Dubbo's `URL.toMap` exposes it (port and address
/// without a port only when the port is set).
fn url_sample<'a>(key: &'a Key, url: &'a Url, buf: &'a mut NumBuf) -> Option<Sample<'a>> {
    match key {
        Key::Host => Some(Sample::one(&url.host)),
        Key::Protocol => Some(Sample::one(&url.protocol)),
        Key::Path => Some(Sample::one(&url.path)),
        Key::Port => port_str(url.port, buf).map(Sample::one),
        Key::Address => Some(match port_str(url.port, buf) {
            Some(p) => Sample::joined(&url.host, ":", p),
            None => Sample::one(&url.host),
        }),
        Key::Param(name) => url.param(name).map(Sample::one),
        // Call keys are refused on the then side when the rule is parsed.
        Key::Method | Key::Argument(_) | Key::Attachment(_) => None,
    }
}

/// `port` printed into `buf`, or `None` for 0 (no port).
fn port_str(port: u16, buf: &mut NumBuf) -> Option<&str> {
    if port == 0 {
        return None;
    }
    write!(buf, "{port}").ok()?;
    let buf: &NumBuf = buf;
    Some(buf.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seps(text: &str) -> Vec<(String, String)> {
        tokenize(text)
            .into_iter()
            .map(|t| (t.separator.to_string(), t.content.to_string()))
            .collect()
    }

    #[test]
    fn tokens_follow_dubbos_route_pattern() {
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            seps("host = 1.2.3.4,5.6.7.8 & method!=find*"),
            pairs(&[
                ("", "host"),
                ("=", "1.2.3.4"),
                (",", "5.6.7.8"),
                ("&", "method"),
                ("!=", "find*")
            ])
        );
        // A separator run followed by whitespace and another run is dropped, like the regex.
        assert_eq!(seps("a = = b"), pairs(&[("", "a"), ("=", "b")]));
        assert_eq!(seps("a = b ,"), pairs(&[("", "a"), ("=", "b")]));
    }

    #[test]
    fn unparsable_rules_name_the_rule_and_the_problem() {
        let err = parse("= 1.2.3.4 => host = 5.6.7.8")
            .expect_err("value without key")
            .to_string();
        assert!(err.contains("`= 1.2.3.4 => host = 5.6.7.8`"), "{err}");
        assert!(err.contains("no key before it"), "{err}");
        let err = parse("host == 1 => x = 2")
            .expect_err("bad separator")
            .to_string();
        assert!(err.contains("unexpected `==`"), "{err}");
        let err = parse("host => region = hz")
            .expect_err("no value")
            .to_string();
        assert!(err.contains("key `host` has no value"), "{err}");
        assert!(parse("   ").is_err());
    }

    #[test]
    fn unknown_key_types_are_refused() {
        let err = parse("arguments[x] = 1 => region = hz")
            .expect_err("bad index")
            .to_string();
        assert!(err.contains("unknown key `arguments[x]`"), "{err}");
        let err = parse("foo[1] = 1 => region = hz")
            .expect_err("bad key")
            .to_string();
        assert!(err.contains("unknown key `foo[1]`"), "{err}");
        let err = parse("=> attachments[t] = a")
            .expect_err("then side reads providers")
            .to_string();
        assert!(err.contains("only the when side"), "{err}");
    }

    #[test]
    fn empty_or_true_when_and_empty_or_false_then_are_special() {
        let r = parse("=> host = 1.2.3.4").expect("valid");
        assert!(r.when.0.is_empty() && r.then.is_some());
        let r = parse("true => false").expect("valid");
        assert!(r.when.0.is_empty() && r.then.is_none());
        let r = parse("host = 1.2.3.4 =>").expect("valid");
        assert!(r.then.is_none());
        // Without `=>` the whole text is the then-part.
        let r = parse("region = hz").expect("valid");
        assert!(r.when.0.is_empty() && r.then.is_some());
    }

    #[test]
    fn consumer_and_provider_prefixes_are_dropped_from_keys() {
        let r = parse("consumer.host = 1.2.3.4 => provider.region = hz").expect("valid");
        assert!(matches!(r.when.0[0].key, Key::Host));
        assert!(matches!(&r.then.expect("then").0[0].key, Key::Param(p) if &**p == "region"));
    }
}
