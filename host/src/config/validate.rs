//! Validation of a parsed configuration, one section at a time: what TOML types cannot say
//! (ids unique and resolved, strategy names known, URLs that are Dubbo addresses, listeners
//! safe), each problem reported with its field and a fix.

use std::collections::HashSet;

use super::{is_loopback_listen, Config, ConfigError, Trigger};
use crate::url::Url;

impl Config {
    fn invalid(
        &self,
        field: String,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            field,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.validate_references()?;
        self.validate_registries()?;
        self.validate_admin()?;
        self.validate_http()?;
        self.validate_guests()
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        match self.http.threads {
            Some(n) if n > super::MAX_HTTP_THREADS => Err(self.invalid(
                "http.threads".to_string(),
                format!(
                    "is {n}, more than the {} a host runs",
                    super::MAX_HTTP_THREADS
                ),
                "leave it out (one thread per CPU) or set at most one per CPU",
            )),
            _ => Ok(()),
        }
    }

    /// Refuses the second entry of a table array with an id or name already seen.
    fn unique<'a>(
        &self,
        seen: &mut HashSet<&'a str>,
        id: &'a str,
        field: String,
        table: &str,
    ) -> Result<(), ConfigError> {
        if seen.insert(id) {
            return Ok(());
        }
        let key = field.rsplit_once('.').map_or("id", |(_, k)| k).to_string();
        Err(self.invalid(
            field,
            format!("`{id}` is used twice"),
            format!("give each [[{table}]] its own {key}"),
        ))
    }

    fn validate_references(&self) -> Result<(), ConfigError> {
        let mut ids = HashSet::new();
        for (i, r) in self.references.iter().enumerate() {
            let at = |f: &str| format!("reference[{i}].{f}");
            self.unique(&mut ids, &r.id, at("id"), "reference")?;
            if r.interface.trim().is_empty() {
                return Err(self.invalid(
                    at("interface"),
                    "is empty",
                    "set the Java interface name, e.g. \"org.apache.dubbo.demo.DemoService\"",
                ));
            }
            for reg in &r.registry {
                if !self.registries.iter().any(|g| &g.id == reg) {
                    return Err(self.invalid(
                        at("registry"),
                        format!("names `{reg}`, which no [[registry]] has as id"),
                        format!("add a [[registry]] with id = \"{reg}\" or remove it"),
                    ));
                }
            }
            let clusters = crate::cluster::ClusterKind::NAMES;
            self.check_names(&at("cluster"), r.cluster.as_deref(), clusters)?;
            let balancers = crate::loadbalance::NAMES;
            self.check_names(&at("loadbalance"), r.loadbalance.as_deref(), balancers)?;
            self.check_mock(&at("mock"), r.mock.as_deref())?;
            for (m, mc) in &r.methods {
                let at = |f: &str| format!("reference[{i}].methods.{m}.{f}");
                self.check_names(&at("cluster"), mc.cluster.as_deref(), clusters)?;
                self.check_names(&at("loadbalance"), mc.loadbalance.as_deref(), balancers)?;
                self.check_mock(&at("mock"), mc.mock.as_deref())?;
            }
            let Some(urls) = &r.url else {
                if r.registry.is_empty() {
                    return Err(self.invalid(
                        at("url"),
                        "and `registry` are both missing",
                        "set `url = \"dubbo://host:port\"` or `registry = [\"<registry id>\"]`",
                    ));
                }
                continue;
            };
            for u in urls.split(';').map(str::trim).filter(|u| !u.is_empty()) {
                let parsed = Url::parse(u).map_err(|e| {
                    self.invalid(at("url"), e.to_string(), "write it as dubbo://host:port")
                })?;
                if parsed.protocol != "dubbo" || parsed.port == 0 {
                    return Err(self.invalid(
                        at("url"),
                        format!("`{u}` is not a dubbo:// address with a port"),
                        "write it as dubbo://host:port",
                    ));
                }
            }
            if r.heartbeat == Some(0) {
                return Err(self.invalid(
                    at("heartbeat"),
                    "is 0",
                    "set a read-idle time in milliseconds, e.g. 60000",
                ));
            }
            if r.read_stall == Some(0) {
                return Err(self.invalid(
                    at("read-stall"),
                    "is 0",
                    "set the milliseconds a started frame may take to arrive, e.g. 3000",
                ));
            }
            if r.payload.is_some_and(|p| p < 1024) {
                return Err(self.invalid(
                    at("payload"),
                    "is below 1024 bytes",
                    "set a limit in bytes, e.g. 8388608 (the Dubbo default)",
                ));
            }
            if let Some(w) = &r.wit {
                if !w.contains(':') || !w.contains('/') {
                    return Err(self.invalid(at("wit"), format!("`{w}` is not a WIT interface name"), "write it as namespace:package/interface, e.g. \"org-apache-dubbo:demo/demo-service\""));
                }
            }
        }
        Ok(())
    }

    fn validate_registries(&self) -> Result<(), ConfigError> {
        let mut registry_ids = HashSet::new();
        for (i, g) in self.registries.iter().enumerate() {
            let at = |f: &str| format!("registry[{i}].{f}");
            self.unique(&mut registry_ids, &g.id, at("id"), "registry")?;
            let parsed = Url::parse(&g.address).map_err(|e| {
                self.invalid(
                    at("address"),
                    e.to_string(),
                    "write it as zookeeper://host:port",
                )
            })?;
            if parsed.protocol != "zookeeper" {
                return Err(self.invalid(
                    at("address"),
                    format!(
                        "uses `{}://`; only zookeeper:// is supported",
                        parsed.protocol
                    ),
                    "write it as zookeeper://host:port",
                ));
            }
        }
        Ok(())
    }

    fn validate_admin(&self) -> Result<(), ConfigError> {
        if self.admin.enabled() {
            let listen = self.admin.listen();
            if listen.parse::<std::net::SocketAddr>().is_err() && !listen.starts_with("localhost:")
            {
                return Err(self.invalid(
                    "admin.listen".to_string(),
                    format!("`{listen}` is not an address with a port"),
                    "write it as host:port, e.g. \"127.0.0.1:9090\"",
                ));
            }
            if !is_loopback_listen(listen) && self.admin.token.as_deref().is_none_or(str::is_empty)
            {
                return Err(self.invalid(
                    "admin.listen".to_string(),
                    format!("is `{listen}`, reachable from other machines, and no `admin.token` is set"),
                    "set `token` under [admin] (clients then send `Authorization: Bearer <token>`), or listen on 127.0.0.1",
                ));
            }
        }
        Ok(())
    }

    fn validate_guests(&self) -> Result<(), ConfigError> {
        let ids: HashSet<&str> = self.references.iter().map(|r| r.id.as_str()).collect();
        let mut names = HashSet::new();
        for (i, g) in self.guests.iter().enumerate() {
            let at = |f: &str| format!("guest[{i}].{f}");
            self.unique(&mut names, &g.name, at("name"), "guest")?;
            for r in &g.references {
                if !ids.contains(r.as_str()) {
                    return Err(self.invalid(
                        at("references"),
                        format!("names `{r}`, which no [[reference]] has as id"),
                        format!("add a [[reference]] with id = \"{r}\" or remove it from the list"),
                    ));
                }
            }
            if let Some(n) = g.max_instances {
                let most = crate::wasm::MAX_POOL_INSTANCES / 2;
                if n == 0 || n > most {
                    return Err(self.invalid(
                        at("max-instances"),
                        format!("is {n}"),
                        format!("set from 1 to {most} (the host's instance pool holds twice every guest's max-instances, at most {})", crate::wasm::MAX_POOL_INSTANCES),
                    ));
                }
            }
            if g.instance_reuse == Some(0) {
                return Err(self.invalid(
                    at("instance-reuse"),
                    "is 0",
                    "set 1 for a fresh instance per request, or N for one instance serving up to N requests",
                ));
            }
            if g.trigger == Trigger::Http {
                match &g.route {
                    Some(r) if r.starts_with('/') => {}
                    _ => {
                        return Err(self.invalid(
                            at("route"),
                            "is missing or does not start with `/`",
                            "set e.g. route = \"/hello\"",
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    /// Refuses a `mock` the host cannot run (a Java mock class).
    fn check_mock(&self, field: &str, value: Option<&str>) -> Result<(), ConfigError> {
        let Some(v) = value else { return Ok(()) };
        if crate::cluster::mock::Mock::of_text(v).is_ok() {
            return Ok(());
        }
        Err(self.invalid(
            field.to_string(),
            format!("is `{v}`, a Java mock class, which cannot run in this host"),
            "use `return VALUE` (e.g. \"force:return null\", \"fail:return empty\") or `throw CLASS`",
        ))
    }

    fn check_names(
        &self,
        field: &str,
        value: Option<&str>,
        known: &[&str],
    ) -> Result<(), ConfigError> {
        match value {
            Some(v) if !known.contains(&v) => Err(self.invalid(
                field.to_string(),
                format!("is `{v}`, which is not a known strategy"),
                format!("use one of: {}", known.join(", ")),
            )),
            _ => Ok(()),
        }
    }
}
