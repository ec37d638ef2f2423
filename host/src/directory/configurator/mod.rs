//! Configurators: dynamic overrides of provider settings written to the registry by operators
//! (Dubbo Admin), in two forms.
//!
//! - Old URL form (Dubbo 2.2+), under `/dubbo/{iface}/configurators`: `override://` URLs set
//!   parameters and `absent://` URLs set them only where missing. `override://0.0.0.0/...`
//!   applies to every provider, `override://IP[:PORT]` to one; `disabled=true` takes a provider
//!   out of the directory; `empty://` clears them all.
//! - YAML form (Dubbo 2.7+ dynamic config), at
//!   `/dubbo/config/dubbo/{iface}:{version}:{group}.configurators` (service scope) or
//!   `{app}.configurators` (application scope). Dubbo turns each `configs` item into
//!   `override://` URLs; [`from_yaml`] turns it into the same [`Configurator`] rules directly.
//!   A `side: consumer` item is about this consumer, so it counts only when its `addresses`
//!   name this consumer's host (or `0.0.0.0`), and then reaches every provider (or those in
//!   `providerAddresses`). A `side: provider` item is about the providers its `addresses` and
//!   `providerAddresses` name; Java providers apply those to themselves and re-register, which
//!   a consumer cannot make them do, so it applies them to its own view of them instead.

mod yaml;

use crate::url::Url;

pub use yaml::from_yaml;

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

/// The address Dubbo uses for "every host".
const ANY_HOST: &str = "0.0.0.0";

/// Why a YAML configurator document was refused. It then has no effect; the caller logs this
/// and keeps the other rules.
#[derive(Debug, thiserror::Error)]
pub enum ConfiguratorError {
    /// The text is not YAML, or not shaped like a configurator document.
    #[error("configurator rule for `{service}` is not valid: {reason}\n  rule: {excerpt}")]
    BadYaml {
        service: String,
        reason: String,
        excerpt: String,
    },
    /// A document-level field is wrong.
    #[error("configurator rule for `{service}`: {reason}\n  rule: {excerpt}")]
    BadRule {
        service: String,
        reason: String,
        excerpt: String,
    },
    /// One entry of `configs` is wrong.
    #[error("configurator rule for `{service}`, `configs[{index}]` ({item}): {reason}")]
    BadItem {
        service: String,
        index: usize,
        item: String,
        reason: String,
    },
}

/// Whose application a rule's `application` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// This consumer's (`application` of the consumer URL).
    Consumer,
    /// The provider's (`remote.application` of the merged URL).
    Provider,
}

/// One parsed configurator rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Configurator {
    /// `true` for `absent://`: only fill in missing parameters.
    absent: bool,
    /// Provider host the rule is about; `0.0.0.0` (or `*`) for all.
    host: String,
    /// Provider port the rule is about; 0 for any.
    port: u16,
    /// `providerAddresses`: when not empty, only these `(host, port)` (port 0: any).
    provider_addresses: Vec<(String, u16)>,
    /// Comma-separated application names the rule is limited to.
    application: Option<String>,
    application_side: Side,
    /// `~key: value` parameters: the provider URL must already have `key=value`.
    conditions: Vec<(String, String)>,
    /// Whether the rule names one host rather than all; specific rules run last, so they win.
    specific: bool,
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
            provider_addresses: Vec::new(),
            application: url.param("application").map(str::to_string),
            application_side: Side::Consumer,
            conditions: Vec::new(),
            specific: url.host != ANY_HOST,
            params,
        })
    }

    /// Whether this rule is about `provider` (a merged URL), called from application `app`.
    fn applies_to(&self, provider: &Url, app: &str) -> bool {
        let host_ok = is_any(&self.host) || self.host == provider.host;
        let port_ok = self.port == 0 || self.port == provider.port;
        let listed = self.provider_addresses.is_empty()
            || self.provider_addresses.iter().any(|(h, p)| {
                is_any(h) || (*h == provider.host && (*p == 0 || *p == provider.port))
            });
        let whose = match self.application_side {
            Side::Consumer => app,
            Side::Provider => provider.param("remote.application").unwrap_or_default(),
        };
        let app_ok = self
            .application
            .as_deref()
            .is_none_or(|a| a == "*" || a.split(',').any(|x| x.trim() == whose));
        let conditions_ok = self
            .conditions
            .iter()
            .all(|(k, v)| v == "*" || provider.param(k) == Some(v.as_str()));
        host_ok && port_ok && listed && app_ok && conditions_ok
    }

    /// Applies the rule to the consumer URL itself, where Dubbo's directory reads what is not
    /// per provider (`mock`): only rules about every host or this consumer's host, and about
    /// no provider address or provider application in particular.
    pub fn configure_consumer(&self, url: &mut Url, app: &str) {
        if self.application_side == Side::Provider
            || self.port != 0
            || self.provider_addresses.iter().any(|(h, _)| !is_any(h))
        {
            return;
        }
        self.configure(url, app);
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

fn is_any(host: &str) -> bool {
    host == ANY_HOST || host == "*"
}

/// Parses the configurator URLs of a snapshot. An `empty://` URL clears the rules (Dubbo).
pub fn from_urls(urls: &[Url]) -> Vec<Configurator> {
    if urls.iter().any(|u| u.protocol == "empty") {
        return Vec::new();
    }
    // Specific hosts after 0.0.0.0 so they win, as Dubbo sorts them.
    let mut rules: Vec<Configurator> = urls.iter().filter_map(Configurator::from_url).collect();
    rules.sort_by_key(|c| c.specific);
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{is_enabled, merge};

    fn url(s: &str) -> Url {
        Url::parse(s).expect("valid url")
    }

    /// The consumer the YAML tests parse for: host 10.0.0.9, application `app`.
    fn consumer() -> Url {
        url("consumer://10.0.0.9/I?application=app&interface=I&version=1.0.0")
    }

    /// Providers 10.0.0.1 and 10.0.0.2 (application `papp`) as the directory merges them.
    fn merged() -> [Url; 2] {
        ["10.0.0.1", "10.0.0.2"].map(|h| {
            merge(
                &url(&format!(
                    "dubbo://{h}:20880/I?application=papp&version=1.0.0&weight=100"
                )),
                &consumer(),
            )
        })
    }

    fn configured(rules: &[Configurator]) -> [Url; 2] {
        let mut urls = merged();
        for u in &mut urls {
            for r in rules {
                r.configure(u, "app");
            }
        }
        urls
    }

    fn yaml(text: &str) -> Vec<Configurator> {
        from_yaml(text, &consumer()).unwrap_or_else(|e| panic!("{e}"))
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

    #[test]
    fn yaml_provider_item_overrides_the_weight_of_one_provider() {
        let rules = yaml(
            "configVersion: v2.7\nscope: service\nkey: I:1.0.0\nenabled: true\nconfigs:\n\
             - side: provider\n  addresses: [\"10.0.0.2:20880\"]\n  parameters:\n    weight: 50\n",
        );
        let [a, b] = configured(&rules);
        assert_eq!(a.param("weight"), Some("100"));
        assert_eq!(b.param("weight"), Some("50"));
    }

    #[test]
    fn yaml_consumer_item_for_0_0_0_0_sets_the_timeout_of_every_provider() {
        let rules = yaml(
            "configVersion: v2.7\nscope: service\nkey: I:1.0.0\nconfigs:\n\
             - side: consumer\n  addresses: [0.0.0.0]\n  parameters: {timeout: 5000}\n",
        );
        let [a, b] = configured(&rules);
        assert_eq!(a.param("timeout"), Some("5000"));
        assert_eq!(b.param("timeout"), Some("5000"));
    }

    #[test]
    fn yaml_consumer_item_counts_only_when_it_names_this_consumer_and_then_beats_0_0_0_0() {
        let other_consumer = yaml(
            "configs:\n- side: consumer\n  addresses: [10.0.0.77]\n  parameters: {timeout: 1}\n",
        );
        assert!(other_consumer.is_empty(), "{other_consumer:?}");
        // Listed specific-first: the rule naming this consumer must still win.
        let rules = yaml(
            "configs:\n\
             - side: consumer\n  addresses: [10.0.0.9]\n  providerAddresses: [\"10.0.0.1:20880\"]\n  parameters: {timeout: 7}\n\
             - side: consumer\n  parameters: {timeout: 5000}\n",
        );
        let [a, b] = configured(&rules);
        assert_eq!(a.param("timeout"), Some("7"));
        assert_eq!(
            b.param("timeout"),
            Some("5000"),
            "outside providerAddresses"
        );
    }

    #[test]
    fn yaml_disabled_parameter_takes_one_provider_out() {
        let rules = yaml(
            "configVersion: v2.7\nscope: service\nkey: I:1.0.0\nconfigs:\n\
             - side: provider\n  addresses: [10.0.0.1]\n  parameters: {disabled: true}\n",
        );
        let [a, b] = configured(&rules);
        assert!(!is_enabled(&a));
        assert!(is_enabled(&b));
    }

    #[test]
    fn yaml_applications_limit_items_to_the_named_side_s_application() {
        let rules = yaml(
            "configs:\n\
             - side: consumer\n  applications: [other]\n  parameters: {timeout: 1}\n\
             - side: consumer\n  applications: [app]\n  parameters: {retries: 5}\n\
             - side: provider\n  applications: [papp]\n  parameters: {weight: 7}\n\
             - side: provider\n  applications: [app]\n  parameters: {loadbalance: p2c}\n",
        );
        let [a, _] = configured(&rules);
        assert_eq!(a.param("timeout"), None, "another consumer application");
        assert_eq!(a.param("retries"), Some("5"));
        assert_eq!(a.param("weight"), Some("7"), "the provider's application");
        assert_eq!(a.param("loadbalance"), None, "`app` is not the provider's");
    }

    #[test]
    fn yaml_application_scope_uses_key_as_the_application_and_filters_services() {
        let rules = yaml(
            "scope: application\nkey: app\nconfigs:\n\
             - side: consumer\n  services: [\"I:1.0.0\"]\n  parameters: {timeout: 11}\n\
             - side: consumer\n  services: [J]\n  parameters: {retries: 9}\n\
             - side: consumer\n  services: [\"I:2.0.0\"]\n  parameters: {sticky: true}\n",
        );
        let [a, _] = configured(&rules);
        assert_eq!(a.param("timeout"), Some("11"));
        assert_eq!(a.param("retries"), None, "another service");
        assert_eq!(a.param("sticky"), None, "another version");
        let elsewhere = yaml(
            "scope: application\nkey: other\nconfigs:\n- side: consumer\n  parameters: {timeout: 1}\n",
        );
        let [a, _] = configured(&elsewhere);
        assert_eq!(a.param("timeout"), None, "another application's document");
    }

    #[test]
    fn yaml_disabled_documents_and_items_are_ignored() {
        assert!(
            yaml("enabled: false\nconfigs:\n- side: consumer\n  parameters: {timeout: 1}\n")
                .is_empty()
        );
        let rules = yaml(
            "configs:\n\
             - side: consumer\n  enabled: false\n  parameters: {timeout: 1}\n\
             - side: consumer\n  parameters: {retries: 4}\n",
        );
        let [a, _] = configured(&rules);
        assert_eq!(a.param("timeout"), None);
        assert_eq!(a.param("retries"), Some("4"));
        assert!(yaml("  \n").is_empty(), "an emptied node means no rules");
    }

    #[test]
    fn yaml_errors_name_the_rule_and_what_is_wrong() {
        let err = |text: &str| match from_yaml(text, &consumer()) {
            Ok(rules) => panic!("accepted {text:?}: {rules:?}"),
            Err(e) => e.to_string(),
        };
        let e = err("configs: [side: consumer");
        assert!(
            e.contains("`I:1.0.0:`") && e.contains("configs: [side"),
            "{e}"
        );
        let e = err("configs:\n- side: server\n  parameters: {timeout: 1}\n");
        assert!(
            e.contains("configs[0]") && e.contains("unknown `side: server`"),
            "{e}"
        );
        let e = err("configs:\n- side: consumer\n  parameters: {}\n");
        assert!(e.contains("no `parameters`"), "{e}");
        let e = err("configs:\n- side: provider\n  addresses: [\"10.0.0.1:x\"]\n  parameters: {weight: 1}\n");
        assert!(e.contains("port `x`"), "{e}");
        let e = err("scope: cluster\nconfigs: []\n");
        assert!(e.contains("unknown `scope: cluster`"), "{e}");
        let e = err("key: I\n");
        assert!(e.contains("`configs` is missing"), "{e}");
        let e = err("configs:\n- side: consumer\n  parameters: {timeout: [1, 2]}\n");
        assert!(e.contains("parameter `timeout`"), "{e}");
    }
}
