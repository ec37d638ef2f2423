//! Turning what a registry holds for one interface (encoded child names under `providers`,
//! `routers` and `configurators`, plus the YAML dynamic-config nodes) into the [`Snapshot`] a
//! subscriber sees: decode, parse, match against the consumer, sort by category, and keep the
//! last providers when an empty list would otherwise wipe them (empty protection).

use crate::url::{decode_component, Url};

use super::matching::{is_match, Category};
use super::Snapshot;

/// What the watches last read for one subscription, before matching.
#[derive(Debug, Default, Clone)]
pub(crate) struct Raw {
    /// Child names (URL-encoded URLs) of `/dubbo/{iface}/providers`.
    pub providers: Vec<String>,
    /// Child names of `/dubbo/{iface}/routers`.
    pub routers: Vec<String>,
    /// Child names of `/dubbo/{iface}/configurators`.
    pub configurators: Vec<String>,
    pub configurators_yaml: Option<String>,
    pub condition_router_yaml: Option<String>,
    pub tag_router_yaml: Option<String>,
    pub migration_yaml: Option<String>,
    pub app_configurators_yaml: Option<String>,
    pub app_condition_router_yaml: Option<String>,
}

/// The consumer URL as Dubbo subscribes it: every category this registry serves.
pub(crate) fn subscription_url(consumer: &Url) -> Url {
    let mut url = consumer.clone();
    url.params.insert(
        "category".to_string(),
        "providers,configurators,routers".to_string(),
    );
    url
}

/// Decodes and parses child names; one that is not a URL is logged and skipped, so a single
/// bad record never hides the others.
pub(crate) fn decode_children(dir: &str, children: &[String]) -> Vec<Url> {
    children
        .iter()
        .filter_map(|name| {
            let parsed = decode_component(name)
                .ok_or_else(|| "broken percent-encoding".to_string())
                .and_then(|s| Url::parse(&s).map_err(|e| e.to_string()));
            match parsed {
                Ok(url) => Some(url),
                Err(error) => {
                    tracing::warn!(path = %format!("{dir}/{name}"), %error, "skipping a registry node that is not a URL");
                    None
                }
            }
        })
        .collect()
}

/// Builds the snapshot from parsed URLs (from ZooKeeper or the cache file) and YAML nodes.
/// `previous` is what subscribers saw last, kept for empty protection.
pub(crate) fn build(
    consumer: &Url,
    urls: impl IntoIterator<Item = Url>,
    yaml: [Option<String>; 6],
    previous: &Snapshot,
) -> Snapshot {
    let subscription = subscription_url(consumer);
    let [configurators_yaml, condition_router_yaml, tag_router_yaml, migration_yaml, app_configurators_yaml, app_condition_router_yaml] =
        yaml;
    let mut snap = Snapshot {
        configurators_yaml,
        condition_router_yaml,
        tag_router_yaml,
        migration_yaml,
        app_configurators_yaml,
        app_condition_router_yaml,
        ..Snapshot::default()
    };
    for url in urls {
        let Some(category) = Category::of(&url) else {
            continue;
        };
        if !is_match(&subscription, &url) {
            continue;
        }
        match category {
            Category::Providers => snap.providers.push(url),
            Category::Routers => snap.routers.push(url),
            Category::Configurators => snap.configurators.push(url),
        }
    }
    for list in [
        &mut snap.providers,
        &mut snap.routers,
        &mut snap.configurators,
    ] {
        list.sort_by_cached_key(Url::to_string);
        list.dedup();
    }
    if snap.providers.is_empty()
        && !previous.providers.is_empty()
        && consumer.param_bool("empty-protection", true)
    {
        tracing::warn!(
            service = %consumer.path,
            kept = previous.providers.len(),
            "the registry lists no providers; keeping the last ones (empty protection; set empty-protection=false on the reference to publish empty lists)"
        );
        snap.providers = previous.providers.clone();
    }
    snap
}

/// Builds from the raw child lists of a ZooKeeper subscription.
pub(crate) fn build_from_raw(
    consumer: &Url,
    service_dir: &str,
    raw: &Raw,
    previous: &Snapshot,
) -> Snapshot {
    let mut urls = Vec::new();
    for (category, names) in [
        (Category::Providers, &raw.providers),
        (Category::Routers, &raw.routers),
        (Category::Configurators, &raw.configurators),
    ] {
        urls.extend(decode_children(
            &format!("{service_dir}/{}", category.dir()),
            names,
        ));
    }
    build(
        consumer,
        urls,
        [
            raw.configurators_yaml.clone(),
            raw.condition_router_yaml.clone(),
            raw.tag_router_yaml.clone(),
            raw.migration_yaml.clone(),
            raw.app_configurators_yaml.clone(),
            raw.app_condition_router_yaml.clone(),
        ],
        previous,
    )
}

/// The application whose tag-router rule applies: that of the first provider, if it says.
pub(crate) fn tag_router_application(providers: &[Url]) -> Option<String> {
    providers
        .first()
        .and_then(|p| p.param("application"))
        .filter(|a| !a.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::encode_component;

    const IFACE: &str = "org.apache.dubbo.demo.DemoService";

    fn consumer(query: &str) -> Url {
        Url::parse(&format!("consumer://10.0.0.9/{IFACE}?{query}")).expect("url")
    }

    fn provider(port: u16, query: &str) -> String {
        encode_component(&format!(
            "dubbo://10.0.0.1:{port}/{IFACE}?application=demo-provider&interface={IFACE}&{query}"
        ))
    }

    #[test]
    fn a_bad_child_is_skipped_and_the_rest_kept() {
        let raw = Raw {
            providers: vec![
                provider(20880, "version=1.0.0"),
                "not-a-url".to_string(),
                "dubbo%3A%2F%2F%zz".to_string(),
                provider(20881, "version=1.0.0"),
            ],
            routers: vec![encode_component(&format!(
                "condition://0.0.0.0/{IFACE}?category=routers&version=1.0.0&rule=x"
            ))],
            configurators: vec![encode_component(&format!(
                "override://0.0.0.0/{IFACE}?category=configurators&version=1.0.0&disabled=true"
            ))],
            condition_router_yaml: Some("scope: service".into()),
            ..Raw::default()
        };
        let snap = build_from_raw(
            &consumer("version=1.0.0"),
            "/dubbo/x",
            &raw,
            &Snapshot::default(),
        );
        let ports: Vec<u16> = snap.providers.iter().map(|p| p.port).collect();
        assert_eq!(ports, vec![20880, 20881]);
        assert_eq!(snap.routers.len(), 1);
        assert_eq!(snap.configurators.len(), 1);
        assert_eq!(
            snap.condition_router_yaml.as_deref(),
            Some("scope: service")
        );
        assert_eq!(
            tag_router_application(&snap.providers).as_deref(),
            Some("demo-provider")
        );
    }

    #[test]
    fn providers_are_filtered_by_version_group_and_enabled() {
        let raw = Raw {
            providers: vec![
                provider(1, "version=1.0.0"),
                provider(2, "version=2.0.0"),
                provider(3, "version=1.0.0&group=g"),
                provider(4, "version=1.0.0&enabled=false"),
                encode_component(&format!("empty://10.0.0.1/{IFACE}?category=providers")),
            ],
            ..Raw::default()
        };
        let snap = build_from_raw(&consumer("version=1.0.0"), "/d", &raw, &Snapshot::default());
        assert_eq!(
            snap.providers.iter().map(|p| p.port).collect::<Vec<_>>(),
            vec![1]
        );
    }

    #[test]
    fn empty_protection_keeps_the_last_providers_unless_disabled() {
        let full = Raw {
            providers: vec![provider(1, "")],
            ..Raw::default()
        };
        let empty = Raw::default();
        let protected = consumer("");
        let first = build_from_raw(&protected, "/d", &full, &Snapshot::default());
        assert_eq!(first.providers.len(), 1);
        let kept = build_from_raw(&protected, "/d", &empty, &first);
        assert_eq!(kept.providers, first.providers);
        let open = consumer("empty-protection=false");
        let wiped = build_from_raw(&open, "/d", &empty, &first);
        assert!(wiped.providers.is_empty());
    }
}
