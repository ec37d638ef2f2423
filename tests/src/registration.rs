//! Provider self-registration, as a Java Dubbo provider does it: the provider's
//! `dubbo://` URL becomes an ephemeral node under `/dubbo/{interface}/providers` in its own
//! ZooKeeper session. A graceful exit removes the node at once; a killed provider's node goes
//! only when its session expires, which is what consumers see from Java providers too.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dubbo_wasm_host::registry::{self, Registry, RegistryError, RegistryOptions};
use dubbo_wasm_host::url::Url;

use crate::provider::DEMO_SERVICE;

/// What a test provider says about itself in its registry URL.
#[derive(Debug, Clone)]
pub struct ProviderRecord {
    /// Host the provider is reachable on.
    pub host: String,
    /// Port the provider listens on.
    pub port: u16,
    /// `application` parameter.
    pub application: String,
    /// `version` parameter, if any.
    pub version: Option<String>,
    /// `group` parameter, if any.
    pub group: Option<String>,
    /// `weight` parameter, if any.
    pub weight: Option<u32>,
    /// More parameters (`enabled=false`, `tag=gray`, ...); they override the defaults.
    pub extra: Vec<(String, String)>,
}

impl ProviderRecord {
    /// A record for the demo provider on `127.0.0.1:port`.
    pub fn demo(port: u16) -> ProviderRecord {
        ProviderRecord {
            host: "127.0.0.1".to_string(),
            port,
            application: "demo-provider".to_string(),
            version: None,
            group: None,
            weight: None,
            extra: Vec::new(),
        }
    }

    /// The provider URL as the Java demo provider registers it:
    /// `dubbo://HOST:PORT/org.apache.dubbo.demo.DemoService?anyhost=false&application=..&dubbo=2.0.2&interface=..&methods=sayHello&side=provider&timestamp=..`.
    pub fn url(&self) -> Url {
        self.url_of(DEMO_SERVICE, "sayHello")
    }

    /// The provider URL of `interface` (with its `methods`), registered the same way.
    pub fn url_of(&self, interface: &str, methods: &str) -> Url {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let mut params = vec![
            ("anyhost", "false".to_string()),
            ("application", self.application.clone()),
            ("dubbo", "2.0.2".to_string()),
            ("interface", interface.to_string()),
            ("methods", methods.to_string()),
            ("side", "provider".to_string()),
            ("timestamp", now_ms.to_string()),
        ];
        if let Some(v) = &self.version {
            params.push(("version", v.clone()));
        }
        if let Some(g) = &self.group {
            params.push(("group", g.clone()));
        }
        if let Some(w) = self.weight {
            params.push(("weight", w.to_string()));
        }
        let mut url = Url {
            protocol: "dubbo".to_string(),
            host: self.host.clone(),
            port: self.port,
            path: interface.to_string(),
            params: params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        };
        for (k, v) in &self.extra {
            url.params.insert(k.clone(), v.clone());
        }
        url
    }
}

/// A provider URL registered in ZooKeeper for as long as this lives (and its session does).
pub struct Registration {
    registry: Arc<dyn Registry>,
    url: Url,
}

impl Registration {
    /// Opens a session to `registry_address` (`zookeeper://HOST:PORT`, Dubbo params such as
    /// `session=MS` honoured) and registers `url` as an ephemeral provider node.
    pub async fn register(registry_address: &str, url: Url) -> Result<Registration, RegistryError> {
        let mut address = Url::parse(registry_address).map_err(|e| RegistryError::Unreachable {
            address: registry_address.to_string(),
            timeout: Default::default(),
            reason: e.to_string(),
        })?;
        // A provider only writes; it has no subscriptions to cache.
        address
            .params
            .insert("file-cache".to_string(), "false".to_string());
        let application = url.param("application").unwrap_or("provider").to_string();
        let opts = RegistryOptions::from_address(address, &application, std::env::temp_dir());
        let registry = registry::connect(opts).await?;
        registry.register(&url).await?;
        Ok(Registration { registry, url })
    }

    /// The registered URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Removes the node now (graceful exit) and closes the session.
    pub async fn unregister(self) -> Result<(), RegistryError> {
        self.registry.unregister(&self.url).await
    }
}
