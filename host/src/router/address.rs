//! Provider address patterns of tag rules (Dubbo's `NetUtils.matchIpExpression`): an exact
//! `host[:port]`, IPv4 segments with `*` and ranges (`192.168.1.*`, `10.0.0.1-63:20880`), CIDR
//! blocks (`10.0.0.0/8`, no port), and `0.0.0.0:port` for any host on that port.
//!
//! Unlike Dubbo, host names are compared as written and never resolved: routing runs on every
//! call and must not wait for DNS.

use std::net::{IpAddr, Ipv4Addr};

use super::RouterError;

/// One IPv4 segment pattern: an inclusive range (`7` is `7-7`, `*` is `0-255`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    lo: u8,
    hi: u8,
}

/// A parsed address pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AddressPattern {
    /// `0.0.0.0:port`.
    AnyHostOnPort(u16),
    /// IPv4 with `*` or `lo-hi` segments.
    Ipv4Range {
        segments: [Segment; 4],
        port: Option<u16>,
    },
    /// `ip/prefix`.
    Cidr { net: IpAddr, prefix: u8 },
    /// A single host (IP or name), optionally with a port.
    Exact {
        host: String,
        ip: Option<IpAddr>,
        port: Option<u16>,
    },
}

impl AddressPattern {
    /// Parses one entry of a tag's `addresses`.
    pub(crate) fn parse(text: &str) -> Result<AddressPattern, RouterError> {
        let bad = |reason: String| RouterError::BadAddress {
            address: text.to_string(),
            reason,
        };
        let text = text.trim();
        if let Some((net, prefix)) = text.split_once('/') {
            let net: IpAddr = net
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| bad(format!("`{net}` is not an IP address")))?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            let prefix = prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| bad(format!("prefix `{prefix}` is not a number from 0 to {max}")))?;
            return Ok(AddressPattern::Cidr { net, prefix });
        }
        let parse_port = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| bad(format!("port `{p}` is not a number from 0 to 65535")))
        };
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            // `[v6]` or `[v6]:port`.
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("`[` without `]`".into()))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(parse_port(p)?),
                None if after.is_empty() => None,
                None => return Err(bad(format!("unexpected `{after}` after `]`"))),
            };
            (host, port)
        } else if text.matches(':').count() > 1 {
            // A bare IPv6 address carries no port.
            (text, None)
        } else {
            match text.split_once(':') {
                Some((h, p)) => (h, Some(parse_port(p)?)),
                None => (text, None),
            }
        };
        if host == "0.0.0.0" {
            if let Some(port) = port {
                return Ok(AddressPattern::AnyHostOnPort(port));
            }
        }
        if host.contains(['*', '-'])
            && host
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'*' | b'-'))
        {
            return Ok(AddressPattern::Ipv4Range {
                segments: parse_segments(host).map_err(bad)?,
                port,
            });
        }
        Ok(AddressPattern::Exact {
            host: host.to_string(),
            ip: host.parse().ok(),
            port,
        })
    }

    /// Whether a provider at `host:port` is covered.
    pub(crate) fn matches(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match self {
            AddressPattern::AnyHostOnPort(p) => *p == port,
            AddressPattern::Ipv4Range { segments, port: p } => {
                p.is_none_or(|p| p == port)
                    && host.parse::<Ipv4Addr>().is_ok_and(|ip| {
                        ip.octets()
                            .iter()
                            .zip(segments)
                            .all(|(o, s)| (s.lo..=s.hi).contains(o))
                    })
            }
            AddressPattern::Cidr { net, prefix } => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| in_cidr(*net, *prefix, ip)),
            AddressPattern::Exact {
                host: h,
                ip,
                port: p,
            } => {
                p.is_none_or(|p| p == port)
                    && (h.eq_ignore_ascii_case(host)
                        || ip.is_some_and(|ip| host.parse::<IpAddr>() == Ok(ip)))
            }
        }
    }
}

fn parse_segments(host: &str) -> Result<[Segment; 4], String> {
    let mut segments = [Segment { lo: 0, hi: 255 }; 4];
    let mut parts = host.split('.');
    for slot in &mut segments {
        let part = parts
            .next()
            .ok_or_else(|| format!("`{host}` does not have four IPv4 segments"))?;
        let number = |s: &str| {
            s.parse::<u8>()
                .map_err(|_| format!("segment `{s}` of `{host}` is not a number from 0 to 255"))
        };
        *slot = match part {
            "*" => Segment { lo: 0, hi: 255 },
            _ => match part.split_once('-') {
                Some((lo, hi)) => Segment {
                    lo: number(lo)?,
                    hi: number(hi)?,
                },
                None => {
                    let n = number(part)?;
                    Segment { lo: n, hi: n }
                }
            },
        };
    }
    if parts.next().is_some() {
        return Err(format!("`{host}` has more than four IPv4 segments"));
    }
    Ok(segments)
}

fn in_cidr(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, host: &str, port: u16) -> bool {
        AddressPattern::parse(pattern)
            .expect("valid pattern")
            .matches(host, port)
    }

    #[test]
    fn exact_addresses_match_host_and_optional_port() {
        assert!(m("10.0.0.1:20880", "10.0.0.1", 20880));
        assert!(!m("10.0.0.1:20880", "10.0.0.1", 20881));
        assert!(m("10.0.0.1", "10.0.0.1", 20881));
        assert!(m("provider-a.local:20880", "PROVIDER-A.local", 20880));
        assert!(m("[::1]:20880", "::1", 20880));
        assert!(m("0:0:0:0:0:0:0:1", "::1", 20880));
    }

    #[test]
    fn wildcards_ranges_cidr_and_any_host() {
        assert!(m("10.0.0.*", "10.0.0.9", 1));
        assert!(m("10.0.0.1-63:20880", "10.0.0.63", 20880));
        assert!(!m("10.0.0.1-63:20880", "10.0.0.64", 20880));
        assert!(m("10.0.0.0/8", "10.200.3.4", 1));
        assert!(!m("10.0.0.0/8", "11.0.0.1", 1));
        assert!(m("0.0.0.0:20880", "192.168.1.1", 20880));
        assert!(!m("0.0.0.0:20880", "192.168.1.1", 20881));
    }

    #[test]
    fn malformed_patterns_say_what_is_wrong() {
        let err = AddressPattern::parse("10.0.0.1:http").expect_err("bad port");
        assert!(err.to_string().contains("port `http`"), "{err}");
        let err = AddressPattern::parse("10.0.*").expect_err("three segments");
        assert!(err.to_string().contains("four IPv4 segments"), "{err}");
        assert!(AddressPattern::parse("10.0.0.0/40").is_err());
    }
}
