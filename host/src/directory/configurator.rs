//! Configurators: dynamic overrides of provider settings written to the registry by operators
//! (Dubbo Admin), as `override://` URLs (set parameters) and `absent://` URLs (set parameters
//! only where missing). `override://0.0.0.0/...` applies to every provider, `override://IP[:PORT]`
//! to one; `disabled=true` takes a provider out of the directory; `empty://` clears them all.

use crate::url::Url;

/// Parameters of a configurator URL that describe the rule rather than set anything.
const RULE_KEYS: &[&str] = &[
    "category",
    "dynamic",
    "enabled",
    "configVersion",
    "check",
    "side",
    "interface",
    "application",
    "anyhost",
    "compatible_config",
    "providerAddresses",
];

/// One parsed configurator rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Configurator {
    /// `true` for `absent://`: only fill in missing parameters.
    absent: bool,
    host: String,
    port: u16,
    application: Option<String>,
    params: Vec<(String, String)>,
}

impl Configurator {
    /// Reads `override://` and `absent://` URLs; other protocols and disabled rules give None.
    pub fn from_url(url: &Url) -> Option<Configurator> {
        let absent = match url.protocol.as_str() {
            "override" => false,
            "absent" => true,
            _ => return None,
        };
        if !url.param_bool("enabled", true) {
            return None;
        }
        let params: Vec<(String, String)> = url
            .params
            .iter()
            .filter(|(k, _)| !RULE_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if params.is_empty() {
            return None;
        }
        Some(Configurator {
            absent,
            host: url.host.clone(),
            port: url.port,
            application: url.param("application").map(str::to_string),
            params,
        })
    }

    /// Whether this rule is about `provider`, called from application `app`.
    fn applies_to(&self, provider: &Url, app: &str) -> bool {
        let host_ok = self.host == "0.0.0.0" || self.host == "*" || self.host == provider.host;
        let port_ok = self.port == 0 || self.port == provider.port;
        let app_ok = self
            .application
            .as_deref()
            .is_none_or(|a| a == "*" || a.split(',').any(|x| x.trim() == app));
        host_ok && port_ok && app_ok
    }

    /// Applies the rule to a merged provider URL.
    pub fn configure(&self, url: &mut Url, app: &str) {
        if !self.applies_to(url, app) {
            return;
        }
        for (k, v) in &self.params {
            if self.absent && url.params.contains_key(k) {
                continue;
            }
            url.params.insert(k.clone(), v.clone());
        }
    }
}

/// Parses the configurator URLs of a snapshot. An `empty://` URL clears the rules (Dubbo).
pub fn from_urls(urls: &[Url]) -> Vec<Configurator> {
    if urls.iter().any(|u| u.protocol == "empty") {
        return Vec::new();
    }
    // Specific hosts after 0.0.0.0 so they win, as Dubbo sorts them.
    let mut rules: Vec<Configurator> = urls.iter().filter_map(Configurator::from_url).collect();
    rules.sort_by_key(|c| c.host != "0.0.0.0");
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("valid url")
    }

    #[test]
    fn override_for_all_then_for_one_host_the_specific_one_wins() {
        let rules = from_urls(&[
            url("override://10.0.0.2/I?category=configurators&weight=50"),
            url("override://0.0.0.0/I?category=configurators&weight=200&timeout=10"),
        ]);
        let mut a = url("dubbo://10.0.0.1:20880/I?weight=100");
        let mut b = url("dubbo://10.0.0.2:20880/I?weight=100");
        for r in &rules {
            r.configure(&mut a, "app");
            r.configure(&mut b, "app");
        }
        assert_eq!(a.param("weight"), Some("200"));
        assert_eq!(b.param("weight"), Some("50"));
        assert_eq!(b.param("timeout"), Some("10"));
    }

    #[test]
    fn absent_fills_only_missing_params_and_disabled_rules_are_ignored() {
        let rules = from_urls(&[
            url("absent://0.0.0.0/I?timeout=5&weight=1"),
            url("override://0.0.0.0/I?enabled=false&weight=9"),
        ]);
        let mut p = url("dubbo://10.0.0.1:20880/I?weight=100");
        for r in &rules {
            r.configure(&mut p, "app");
        }
        assert_eq!(p.param("weight"), Some("100"));
        assert_eq!(p.param("timeout"), Some("5"));
    }

    #[test]
    fn disabled_override_marks_one_provider_and_application_scopes_apply() {
        let rules = from_urls(&[
            url("override://10.0.0.1:20880/I?disabled=true"),
            url("override://0.0.0.0/I?application=other&weight=1"),
        ]);
        let mut p = url("dubbo://10.0.0.1:20880/I");
        for r in &rules {
            r.configure(&mut p, "app");
        }
        assert!(p.param_bool("disabled", false));
        assert_eq!(p.param("weight"), None, "rule for another application");
    }

    #[test]
    fn empty_url_clears_all_rules() {
        assert!(from_urls(&[
            url("override://0.0.0.0/I?weight=1"),
            url("empty://0.0.0.0/I")
        ])
        .is_empty());
    }
}
