//! Dubbo URLs (`protocol://host:port/path?k=v`), the one currency for provider, consumer,
//! router and override records. Parameters are kept sorted by key, as Dubbo prints them.

use std::collections::BTreeMap;
use std::fmt;

/// Why a string is not a Dubbo URL.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error(
        "`{0}` has no protocol: expected `protocol://host:port`, e.g. `dubbo://127.0.0.1:20880`"
    )]
    NoProtocol(String),
    #[error("`{0}` has no host: expected `protocol://host:port`")]
    NoHost(String),
    #[error("`{url}` has an invalid port `{port}`: expected a number from 1 to 65535")]
    BadPort { url: String, port: String },
    #[error("`{url}` has an invalid percent-encoding in `{part}`")]
    BadEncoding { url: String, part: String },
}

/// A parsed Dubbo URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    pub protocol: String,
    pub host: String,
    pub port: u16,
    /// Path without the leading `/`, usually the interface name.
    pub path: String,
    pub params: BTreeMap<String, String>,
}

impl Url {
    /// Parses `protocol://host[:port][/path][?k=v&...]`, decoding percent-encoded parameters.
    pub fn parse(s: &str) -> Result<Url, UrlError> {
        let (protocol, rest) = s
            .split_once("://")
            .filter(|(p, _)| !p.is_empty())
            .ok_or_else(|| UrlError::NoProtocol(s.to_string()))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        };
        // Credentials (`user:pass@`) are not used by dubbo:// providers; ignore them.
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let (host, port) =
            match authority.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(']') || p.is_empty() => {
                    let port = p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                        UrlError::BadPort {
                            url: s.to_string(),
                            port: p.to_string(),
                        }
                    })?;
                    (h, port)
                }
                _ => (authority, 0),
            };
        if host.is_empty() {
            return Err(UrlError::NoHost(s.to_string()));
        }
        let mut params = BTreeMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = |part: &str| UrlError::BadEncoding {
                url: s.to_string(),
                part: part.to_string(),
            };
            let k = decode_component(k).ok_or_else(|| bad(k))?;
            let v = decode_component(v).ok_or_else(|| bad(v))?;
            params.insert(k, v);
        }
        Ok(Url {
            protocol: protocol.to_string(),
            host: host.to_string(),
            port,
            path: path.to_string(),
            params,
        })
    }

    /// `host:port`, the key connections are shared by.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// A parameter's value, if present.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// A parameter parsed as a number, or `default` when absent or unparsable.
    pub fn param_u64(&self, key: &str, default: u64) -> u64 {
        self.param(key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }

    /// A parameter parsed as a signed number, or `default` when absent or unparsable.
    pub fn param_i64(&self, key: &str, default: i64) -> i64 {
        self.param(key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }

    /// A boolean parameter (`true`/`false`), or `default`.
    pub fn param_bool(&self, key: &str, default: bool) -> bool {
        match self.param(key).map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            _ => default,
        }
    }

    /// A method-level parameter as Dubbo keys it (`sayHello.timeout`), falling back to the
    /// interface-level `key`.
    pub fn method_param(&self, method: &str, key: &str) -> Option<&str> {
        let mut scoped = String::with_capacity(method.len() + 1 + key.len());
        scoped.push_str(method);
        scoped.push('.');
        scoped.push_str(key);
        self.param(&scoped).or_else(|| self.param(key))
    }

    /// [`Url::method_param`] parsed as a signed number, or `default`.
    pub fn method_param_i64(&self, method: &str, key: &str, default: i64) -> i64 {
        self.method_param(method, key)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.protocol, self.host)?;
        if self.port != 0 {
            write!(f, ":{}", self.port)?;
        }
        write!(f, "/{}", self.path)?;
        for (i, (k, v)) in self.params.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{}={}", encode_component(k), encode_component(v))?;
        }
        Ok(())
    }
}

/// Percent-decodes like Java's `URLDecoder` (`+` is a space). `None` on a broken escape.
pub fn decode_component(s: &str) -> Option<String> {
    if !s.contains(['%', '+']) {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes like Java's `URLEncoder.encode(s, "UTF-8")`.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_provider_url_with_encoded_params() {
        let u = Url::parse(
            "dubbo://10.0.0.1:20880/org.apache.dubbo.demo.DemoService?version=1.0.0&methods=sayHello%2CsayHi&side=provider",
        )
        .expect("valid url");
        assert_eq!(u.protocol, "dubbo");
        assert_eq!(u.host, "10.0.0.1");
        assert_eq!(u.port, 20880);
        assert_eq!(u.path, "org.apache.dubbo.demo.DemoService");
        assert_eq!(u.param("methods"), Some("sayHello,sayHi"));
        assert_eq!(u.address(), "10.0.0.1:20880");
    }

    #[test]
    fn prints_params_sorted_and_encoded_like_java() {
        let u = Url::parse("dubbo://h:1/I?b=x%2Cy&a=1").expect("valid url");
        assert_eq!(u.to_string(), "dubbo://h:1/I?a=1&b=x%2Cy");
    }

    #[test]
    fn refuses_urls_without_protocol_host_or_with_bad_port() {
        assert!(matches!(
            Url::parse("127.0.0.1:20880"),
            Err(UrlError::NoProtocol(_))
        ));
        assert!(matches!(
            Url::parse("dubbo://:20880"),
            Err(UrlError::NoHost(_))
        ));
        assert!(matches!(
            Url::parse("dubbo://h:99999"),
            Err(UrlError::BadPort { .. })
        ));
        assert!(matches!(
            Url::parse("dubbo://h:1/I?a=%zz"),
            Err(UrlError::BadEncoding { .. })
        ));
    }

    #[test]
    fn method_params_override_interface_params() {
        let u =
            Url::parse("dubbo://h:1/I?timeout=1000&sayHello.timeout=50&retries=x").expect("valid");
        assert_eq!(u.method_param_i64("sayHello", "timeout", 0), 50);
        assert_eq!(u.method_param_i64("other", "timeout", 0), 1000);
        assert_eq!(
            u.method_param_i64("other", "retries", 2),
            2,
            "unparsable falls back"
        );
        assert!(u.param_bool("missing", true));
    }

    #[test]
    fn java_url_encoding_round_trips() {
        let s = "consumer://10.0.0.1/I?category=consumers&x=a b/c";
        let e = encode_component(s);
        assert!(!e.contains([' ', '/', ':', '?', '&', '=']));
        assert_eq!(decode_component(&e).as_deref(), Some(s));
    }
}
