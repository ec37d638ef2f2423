//! Method-level URL parameters (`sayHello.weight`, falling back to `weight`) looked up without
//! allocating. Balancers read them for every provider on every call, where building the scoped
//! key in a fresh `String` (as [`Url::method_param`] does) would dominate the cost of a pick.

use crate::url::Url;

/// Longest `method.key` built on the stack; longer ones take the allocating path.
const SCOPED_KEY_MAX: usize = 128;

/// `url`'s `method.key` parameter, else its `key` parameter.
pub(crate) fn method_param<'a>(url: &'a Url, method: &str, key: &str) -> Option<&'a str> {
    let len = method.len() + 1 + key.len();
    if len > SCOPED_KEY_MAX {
        return url.method_param(method, key);
    }
    let mut buf = [0u8; SCOPED_KEY_MAX];
    buf[..method.len()].copy_from_slice(method.as_bytes());
    buf[method.len()] = b'.';
    buf[method.len() + 1..len].copy_from_slice(key.as_bytes());
    // Two `str`s joined by an ASCII dot are UTF-8, so this never takes the fallback.
    match std::str::from_utf8(&buf[..len]) {
        Ok(scoped) => url.param(scoped).or_else(|| url.param(key)),
        Err(_) => url.method_param(method, key),
    }
}

/// [`method_param`] parsed as a signed number, or `default` when absent or unparsable.
pub(crate) fn method_param_i64(url: &Url, method: &str, key: &str, default: i64) -> i64 {
    method_param(url, method, key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_level_value_wins_over_the_interface_level_one() {
        let url = Url::parse("dubbo://h:1/S?weight=5&sayHello.weight=7").expect("valid url");
        assert_eq!(method_param(&url, "sayHello", "weight"), Some("7"));
        assert_eq!(method_param(&url, "other", "weight"), Some("5"));
        assert_eq!(method_param_i64(&url, "none", "missing", 9), 9);
        let long = "m".repeat(200);
        assert_eq!(method_param(&url, &long, "weight"), Some("5"));
    }
}
