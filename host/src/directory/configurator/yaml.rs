//! The Dubbo 2.7+ YAML form of configurators (`ConfiguratorConfig` documents, service or
//! application scope), turned into the same [`Configurator`] rules as the URL form.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{is_any, Configurator, ConfiguratorError, Side, ANY_HOST, RULE_KEYS};
use crate::url::Url;

fn yes() -> bool {
    true
}

/// A configurator document (Dubbo's `ConfiguratorConfig`); `configVersion` is accepted and
/// not checked, as Dubbo reads v2.7 and v3.0 documents alike.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    scope: Option<String>,
    key: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    configs: Option<Vec<Item>>,
}

/// One entry of `configs` (Dubbo's `ConfigItem`); `type` is accepted and ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    side: Option<String>,
    #[serde(default)]
    addresses: Vec<String>,
    #[serde(default)]
    provider_addresses: Vec<String>,
    #[serde(default)]
    applications: Vec<String>,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    parameters: BTreeMap<String, serde_norway::Value>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(rename = "match")]
    matches: Option<serde_norway::Value>,
}

impl Item {
    /// A short description for error messages.
    fn summary(&self) -> String {
        format!(
            "side: {}, addresses: {:?}",
            self.side.as_deref().unwrap_or("(none)"),
            self.addresses
        )
    }
}

/// Which rules a document's items are: a service's, or an application's (`key` names it).
enum Scope {
    Service,
    Application(String),
}

/// Parses a 2.7+ YAML configurator document for the reference whose consumer URL is
/// `consumer` (its interface, version and group pick `services`, its host picks
/// `side: consumer` items). Blank text and `enabled: false` give no rules.
pub fn from_yaml(text: &str, consumer: &Url) -> Result<Vec<Configurator>, ConfiguratorError> {
    let service = service_label(consumer);
    if text.trim().is_empty() {
        // Dubbo treats emptied config as deleted.
        return Ok(Vec::new());
    }
    let bad_rule = |reason: String| ConfiguratorError::BadRule {
        service: service.clone(),
        reason,
        excerpt: excerpt(text),
    };
    let doc: Doc = serde_norway::from_str(text).map_err(|e| ConfiguratorError::BadYaml {
        service: service.clone(),
        reason: e.to_string(),
        excerpt: excerpt(text),
    })?;
    if !doc.enabled {
        return Ok(Vec::new());
    }
    let scope = match doc.scope.as_deref().map(str::trim) {
        None | Some("") | Some("service") => Scope::Service,
        Some("application") => match doc.key.as_deref().map(str::trim) {
            Some(app) if !app.is_empty() => Scope::Application(app.to_string()),
            _ => {
                return Err(bad_rule(
                    "`scope: application` needs `key`, the application's name".into(),
                ))
            }
        },
        Some(other) => {
            return Err(bad_rule(format!(
                "unknown `scope: {other}`; expected `service` or `application`"
            )))
        }
    };
    let Some(items) = doc.configs else {
        return Err(bad_rule(
            "`configs` is missing; expected a list of items with `side`, `addresses` and \
             `parameters`"
                .into(),
        ));
    };
    let mut rules = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let parsed =
            item_rules(item, &scope, consumer).map_err(|reason| ConfiguratorError::BadItem {
                service: service.clone(),
                index,
                item: item.summary(),
                reason,
            })?;
        rules.extend(parsed);
    }
    rules.sort_by_key(|c| c.specific);
    Ok(rules)
}

/// The rules one item gives this consumer (none when it is about another consumer, service or
/// is disabled), or what is wrong with it.
fn item_rules(item: &Item, scope: &Scope, consumer: &Url) -> Result<Vec<Configurator>, String> {
    if !item.enabled {
        return Ok(Vec::new());
    }
    if item.matches.is_some() {
        // Ignoring `match` would apply the rule more widely than its author meant.
        return Err(
            "`match` conditions are not supported; narrow the item with `addresses`, \
                    `providerAddresses`, `applications` or `services` instead"
                .into(),
        );
    }
    let side = match item.side.as_deref().map(str::trim) {
        Some("consumer") => Side::Consumer,
        Some("provider") => Side::Provider,
        None | Some("") => {
            // Dubbo matches an item without `side` against nothing; say so rather than guess.
            tracing::warn!(
                service = %service_label(consumer),
                item = %item.summary(),
                "configurator item has no `side` and applies to nothing; add `side: consumer` or `side: provider`"
            );
            return Ok(Vec::new());
        }
        Some(other) => {
            return Err(format!(
                "unknown `side: {other}`; expected `consumer` or `provider`"
            ))
        }
    };
    let mut params = Vec::new();
    let mut conditions = Vec::new();
    for (k, v) in &item.parameters {
        let v = scalar(v).ok_or_else(|| {
            let found = match v {
                serde_norway::Value::Null => "empty",
                serde_norway::Value::Sequence(_) => "a list",
                serde_norway::Value::Mapping(_) => "a mapping",
                _ => "a tagged value",
            };
            format!("parameter `{k}` must be a string, number or boolean, not {found}")
        })?;
        match k.strip_prefix('~') {
            Some(key) => conditions.push((key.to_string(), v)),
            None if RULE_KEYS.contains(&k.as_str()) => {}
            None => params.push((k.clone(), v)),
        }
    }
    if params.is_empty() {
        return Err(
            "no `parameters` to set; name at least one setting, e.g. `parameters: {weight: 200}`"
                .into(),
        );
    }
    let application = match scope {
        Scope::Application(app) => {
            if !item.services.is_empty()
                && !item.services.iter().any(|s| names_service(s, consumer))
            {
                return Ok(Vec::new());
            }
            Some(app.clone())
        }
        // Dubbo reads `services` only in application scope: the path already names the service.
        Scope::Service => (!item.applications.is_empty()).then(|| item.applications.join(",")),
    };
    let provider_addresses = item
        .provider_addresses
        .iter()
        .map(|a| parse_address(a))
        .collect::<Result<Vec<_>, _>>()?;
    let addresses = if item.addresses.is_empty() {
        vec![(ANY_HOST.to_string(), 0)]
    } else {
        item.addresses
            .iter()
            .map(|a| parse_address(a))
            .collect::<Result<Vec<_>, _>>()?
    };
    let rule = |host: String, port: u16, specific: bool| Configurator {
        absent: false,
        host,
        port,
        provider_addresses: provider_addresses.clone(),
        application: application.clone(),
        application_side: side,
        conditions: conditions.clone(),
        specific,
        params: params.clone(),
    };
    Ok(match side {
        // `addresses` are consumers: the item counts once if one of them is this consumer,
        // and then reaches every provider (`providerAddresses` aside).
        Side::Consumer => {
            let mine = addresses.iter().any(|(h, _)| *h == consumer.host);
            let anyone = addresses.iter().any(|(h, _)| is_any(h));
            if mine || anyone {
                vec![rule(ANY_HOST.to_string(), 0, mine)]
            } else {
                Vec::new()
            }
        }
        Side::Provider => addresses
            .into_iter()
            .map(|(h, p)| {
                let specific = !is_any(&h);
                rule(h, p, specific)
            })
            .collect(),
    })
}

/// A parameter value as URL text.
fn scalar(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `host`, `host:port`, `[v6]:port` or a bare IPv6 address, as `(host, port)` (port 0: any).
fn parse_address(address: &str) -> Result<(String, u16), String> {
    let a = address.trim();
    let bad_port = |p: &str| format!("address `{a}`: port `{p}` is not a number from 0 to 65535");
    if a.is_empty() {
        return Err("an address is empty; use `0.0.0.0` for every host".into());
    }
    if let Some(rest) = a.strip_prefix('[') {
        let Some((host, tail)) = rest.split_once(']') else {
            return Err(format!("address `{a}`: `[` without `]`"));
        };
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad_port(p))?,
            None if tail.is_empty() => 0,
            None => return Err(format!("address `{a}`: unexpected `{tail}` after `]`")),
        };
        return Ok((host.to_string(), port));
    }
    match a.split_once(':') {
        Some((host, port)) if !port.contains(':') => {
            Ok((host.to_string(), port.parse().map_err(|_| bad_port(port))?))
        }
        _ => Ok((a.to_string(), 0)),
    }
}

/// Whether an application-scope `services` entry (`[group/]interface[:version]` or `*`) names
/// the consumer's service.
fn names_service(entry: &str, consumer: &Url) -> bool {
    let entry = entry.trim();
    if entry == "*" {
        return true;
    }
    let (group, rest) = match entry.split_once('/') {
        Some((g, r)) => (Some(g), r),
        None => (None, entry),
    };
    let (interface, version) = match rest.split_once(':') {
        Some((i, v)) => (i, Some(v)),
        None => (rest, None),
    };
    let same = |wanted: Option<&str>, key: &str| {
        wanted.is_none_or(|w| w == "*" || w == consumer.param(key).unwrap_or_default())
    };
    interface == interface_of(consumer) && same(group, "group") && same(version, "version")
}

fn interface_of(consumer: &Url) -> &str {
    consumer.param("interface").unwrap_or(&consumer.path)
}

/// `interface:version:group`, as the rule's ZooKeeper node is named.
fn service_label(consumer: &Url) -> String {
    format!(
        "{}:{}:{}",
        interface_of(consumer),
        consumer.param("version").unwrap_or_default(),
        consumer.param("group").unwrap_or_default()
    )
}

/// The start of a rule on one line, for error messages.
fn excerpt(text: &str) -> String {
    const LIMIT: usize = 160;
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}
