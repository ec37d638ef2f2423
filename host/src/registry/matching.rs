//! Which registry URLs a consumer takes: Dubbo's `UrlUtils.isMatch` (interface, category,
//! `enabled`, group, version, classifier), the category a URL belongs to, and the service key
//! (`group/interface:version`) a subscription is filed under in the cache file.

use crate::rpc::ServiceKey;
use crate::url::Url;

/// The wildcard Dubbo accepts for interface, group, version and classifier.
const ANY: &str = "*";

/// The category a URL is in when it does not say.
const DEFAULT_CATEGORY: &str = "providers";

/// What kind of record a registry URL is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    Providers,
    Routers,
    Configurators,
}

impl Category {
    /// The directory name under `/dubbo/{interface}`.
    pub(crate) fn dir(self) -> &'static str {
        match self {
            Category::Providers => "providers",
            Category::Routers => "routers",
            Category::Configurators => "configurators",
        }
    }

    /// Dubbo's `judgeCategory`: the `category` parameter wins, then the protocol
    /// (`override`/`absent` configure, `route`/`condition` route). `None` for `empty://`
    /// placeholders, which stand for "nothing here" and are never a record themselves.
    pub(crate) fn of(url: &Url) -> Option<Category> {
        if url.protocol == "empty" {
            return None;
        }
        match url.param("category") {
            Some("configurators") => return Some(Category::Configurators),
            Some("routers") => return Some(Category::Routers),
            Some("providers") => return Some(Category::Providers),
            _ => {}
        }
        Some(match url.protocol.as_str() {
            "override" | "absent" => Category::Configurators,
            "route" | "condition" => Category::Routers,
            _ => Category::Providers,
        })
    }
}

/// A parameter, with the empty string read as absent (Java's `StringUtils.isEmpty`).
fn non_empty<'a>(url: &'a Url, key: &str) -> Option<&'a str> {
    url.param(key).filter(|v| !v.is_empty())
}

/// The interface a URL is about: the `interface` parameter, else the path.
pub(crate) fn interface_of(url: &Url) -> &str {
    non_empty(url, "interface").unwrap_or(&url.path)
}

/// The cache-file key of a subscription, `group/interface:version` (Dubbo's `getServiceKey`).
pub(crate) fn service_key(consumer: &Url) -> ServiceKey {
    ServiceKey {
        interface: interface_of(consumer).to_string(),
        version: non_empty(consumer, "version").map(str::to_string),
        group: non_empty(consumer, "group").map(str::to_string),
    }
}

/// Dubbo's `isMatchCategory`: a consumer category list may hold `*` or exclude with `-name`.
fn category_matches(provider_category: &str, consumer_categories: Option<&str>) -> bool {
    let Some(list) = consumer_categories.filter(|c| !c.is_empty()) else {
        return provider_category == DEFAULT_CATEGORY;
    };
    let items: Vec<&str> = list.split(',').map(str::trim).collect();
    if items.contains(&ANY) {
        return true;
    }
    if items
        .iter()
        .any(|c| c.strip_prefix('-') == Some(provider_category))
    {
        return false;
    }
    items.contains(&provider_category)
}

/// Whether the consumer wants this registry URL: Dubbo's `UrlUtils.isMatch`. Interface equal
/// (or `*` on either side), category listed by the consumer, provider not `enabled=false`
/// (unless the consumer asks for `enabled=*`), group `*`/equal/in the consumer's comma list,
/// version `*`/equal, classifier `*`/equal.
pub fn is_match(consumer: &Url, provider: &Url) -> bool {
    let (ci, pi) = (interface_of(consumer), interface_of(provider));
    if !(ci == ANY || pi == ANY || ci == pi) {
        return false;
    }
    let provider_category = non_empty(provider, "category").unwrap_or(DEFAULT_CATEGORY);
    if !category_matches(provider_category, non_empty(consumer, "category")) {
        return false;
    }
    if !provider.param_bool("enabled", true) && consumer.param("enabled") != Some(ANY) {
        return false;
    }
    let (cg, pg) = (non_empty(consumer, "group"), non_empty(provider, "group"));
    let group_ok = cg == Some(ANY)
        || cg == pg
        || matches!((cg, pg), (Some(list), Some(g)) if list.split(',').any(|c| c.trim() == g));
    let (cv, pv) = (
        non_empty(consumer, "version"),
        non_empty(provider, "version"),
    );
    let version_ok = cv == Some(ANY) || cv == pv;
    let cc = non_empty(consumer, "classifier").unwrap_or(ANY);
    let classifier_ok = cc == ANY || Some(cc) == non_empty(provider, "classifier");
    group_ok && version_ok && classifier_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const IFACE: &str = "org.apache.dubbo.demo.DemoService";

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test url parses")
    }

    fn consumer(query: &str) -> Url {
        url(&format!(
            "consumer://10.0.0.9/{IFACE}?category=providers,configurators,routers&{query}"
        ))
    }

    fn provider(query: &str) -> Url {
        url(&format!(
            "dubbo://10.0.0.1:20880/{IFACE}?interface={IFACE}&{query}"
        ))
    }

    #[test]
    fn version_must_be_equal_unless_the_consumer_says_star() {
        let p = provider("version=1.0.0");
        assert!(is_match(&consumer("version=1.0.0"), &p));
        assert!(!is_match(&consumer("version=2.0.0"), &p));
        assert!(
            !is_match(&consumer(""), &p),
            "no version only matches no version"
        );
        assert!(is_match(&consumer("version=*"), &p));
        assert!(is_match(&consumer(""), &provider("")));
    }

    #[test]
    fn group_may_be_star_equal_or_in_a_comma_list() {
        let p = provider("group=blue");
        assert!(is_match(&consumer("group=blue"), &p));
        assert!(is_match(&consumer("group=*"), &p));
        assert!(is_match(&consumer("group=red,blue"), &p));
        assert!(!is_match(&consumer("group=red,green"), &p));
        assert!(
            !is_match(&consumer(""), &p),
            "an ungrouped consumer skips grouped providers"
        );
        assert!(!is_match(&consumer("group=red"), &provider("")));
        assert!(
            is_match(&consumer("group="), &provider("")),
            "empty is absent"
        );
    }

    #[test]
    fn disabled_providers_are_skipped_unless_the_consumer_wants_all() {
        let p = provider("enabled=false");
        assert!(!is_match(&consumer(""), &p));
        assert!(is_match(&consumer("enabled=*"), &p));
        assert!(is_match(&consumer(""), &provider("enabled=true")));
    }

    #[test]
    fn interface_must_match_or_be_star() {
        let other = url("dubbo://10.0.0.1:20880/com.foo.Other?interface=com.foo.Other");
        assert!(!is_match(&consumer(""), &other));
        let any = url("consumer://10.0.0.9/*?category=providers");
        assert!(is_match(&any, &other));
        let by_path = url(&format!("dubbo://10.0.0.1:20880/{IFACE}"));
        assert!(
            is_match(&consumer(""), &by_path),
            "path stands in for interface"
        );
    }

    #[test]
    fn categories_follow_the_consumer_list() {
        let router = url(&format!("condition://0.0.0.0/{IFACE}?category=routers"));
        assert!(is_match(&consumer(""), &router));
        let only_providers = url(&format!("consumer://10.0.0.9/{IFACE}?category=providers"));
        assert!(!is_match(&only_providers, &router));
        assert!(is_match(&only_providers, &provider("")));
        let none = url(&format!("consumer://10.0.0.9/{IFACE}"));
        assert!(is_match(&none, &provider("")), "no list means providers");
        let all_but = url(&format!("consumer://10.0.0.9/{IFACE}?category=*"));
        assert!(is_match(&all_but, &router));
        let excluded = url(&format!(
            "consumer://10.0.0.9/{IFACE}?category=-routers,routers"
        ));
        assert!(!is_match(&excluded, &router));
    }

    #[test]
    fn classifier_must_match_when_the_consumer_sets_one() {
        assert!(is_match(
            &consumer("classifier=a"),
            &provider("classifier=a")
        ));
        assert!(!is_match(
            &consumer("classifier=a"),
            &provider("classifier=b")
        ));
        assert!(is_match(&consumer(""), &provider("classifier=b")));
    }

    #[test]
    fn category_is_judged_by_parameter_then_protocol() {
        assert_eq!(
            Category::of(&url("override://0.0.0.0/I?disabled=true")),
            Some(Category::Configurators)
        );
        assert_eq!(
            Category::of(&url("condition://0.0.0.0/I?rule=x")),
            Some(Category::Routers)
        );
        assert_eq!(
            Category::of(&url("dubbo://h:1/I?category=routers")),
            Some(Category::Routers)
        );
        assert_eq!(
            Category::of(&url("dubbo://h:1/I")),
            Some(Category::Providers)
        );
        assert_eq!(Category::of(&url("empty://h/I?category=providers")), None);
    }

    #[test]
    fn service_key_is_group_interface_version() {
        let c = consumer("group=g&version=1.0.0");
        assert_eq!(service_key(&c).to_string(), format!("g/{IFACE}:1.0.0"));
        assert_eq!(service_key(&consumer("")).to_string(), IFACE);
    }
}
