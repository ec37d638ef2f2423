//! The invoker for one `dubbo://` provider (Java's `DubboInvoker`): a provider URL (consumer
//! settings merged) bound to its exchange clients — one shared client, or the reference's own
//! `connections` — taken in turn per call. What it sends comes from that URL, resolved once at
//! construction: the provider's `group` and `version` on the wire (so `group = "*"` reaches
//! providers of any group), its `token` as an attachment, the per-method `timeout`; and per
//! method, `actives` (at most N calls in flight to this provider, the next waiting up to its
//! timeout, Dubbo's `ActiveLimitFilter`) and oneway calls (`return=false`, `sent=true` to wait
//! for the write).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::pool::SharedClient;
use crate::rpc::{BoxFuture, CallStats, Invocation, Invoker, RpcError, RpcResult, ServiceKey};
use crate::url::Url;

/// Dubbo's default call timeout.
const DEFAULT_TIMEOUT_MS: u64 = 1000;

/// How one method is called, from the URL's `{method}.key` then `key` parameters.
struct MethodCall {
    timeout: Duration,
    /// `actives`: the calls allowed in flight at once; `None` for no limit.
    actives: Option<Arc<Semaphore>>,
    limit: usize,
    /// `return=false`: oneway, with `sent` saying whether to wait for the write.
    oneway: Option<bool>,
}

/// Calls one provider of one service.
pub struct DubboInvoker {
    url: Url,
    service: ServiceKey,
    /// `token`, sent with every call.
    token: Option<String>,
    clients: Vec<Arc<SharedClient>>,
    next: AtomicUsize,
    default: Arc<MethodCall>,
    /// Whether the URL sets anything per method; when not, every method uses `default`.
    per_method: bool,
    /// Methods with settings of their own, made on their first call.
    methods: Mutex<HashMap<Arc<str>, Arc<MethodCall>>>,
    stats: CallStats,
}

impl MethodCall {
    fn of(url: &Url, method: &str) -> MethodCall {
        let timeout = Duration::from_millis(
            url.method_param(method, "timeout")
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(DEFAULT_TIMEOUT_MS),
        );
        let limit = url.method_param_i64(method, "actives", 0).max(0) as usize;
        let oneway = match url.method_param(method, "return") {
            Some(r) if r.trim().eq_ignore_ascii_case("false") => Some(
                url.method_param(method, "sent")
                    .is_some_and(|s| s.trim().eq_ignore_ascii_case("true")),
            ),
            _ => None,
        };
        MethodCall {
            timeout,
            actives: (limit > 0).then(|| Arc::new(Semaphore::new(limit))),
            limit,
            oneway,
        }
    }
}

/// Whether `url` sets anything per method (`{method}.timeout`, `.actives`, `.return`, `.sent`).
fn has_method_settings(url: &Url) -> bool {
    url.params.keys().any(|k| {
        [".timeout", ".actives", ".return", ".sent"]
            .iter()
            .any(|s| k.ends_with(s))
    })
}

/// A method's settings as [`DubboInvoker::settings`] finds them.
enum Settings<'a> {
    Default(&'a MethodCall),
    Method(Arc<MethodCall>),
}

impl std::ops::Deref for Settings<'_> {
    type Target = MethodCall;

    fn deref(&self) -> &MethodCall {
        match self {
            Settings::Default(m) => m,
            Settings::Method(m) => m,
        }
    }
}

impl DubboInvoker {
    /// Binds `url` (the provider, with consumer parameters merged) to `clients`; an empty
    /// list is refused by giving the invoker nothing to call (it reports unavailable). The
    /// service on the wire is `interface` with the URL's own `group` and `version`.
    pub fn new(url: Url, interface: &str, clients: Vec<Arc<SharedClient>>) -> Self {
        let param = |k: &str| {
            url.param(k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let service = ServiceKey {
            interface: interface.to_string(),
            version: param("version"),
            group: param("group"),
        };
        let token = param("token");
        let default = Arc::new(MethodCall::of(&url, ""));
        DubboInvoker {
            service,
            token,
            clients,
            next: AtomicUsize::new(0),
            default,
            per_method: has_method_settings(&url),
            methods: Mutex::new(HashMap::new()),
            url,
            stats: CallStats::default(),
        }
    }

    /// Starts connecting every client without waiting.
    pub fn connect_in_background(&self) {
        for client in &self.clients {
            let client = client.clone();
            tokio::spawn(async move {
                let _ = client.connection().await;
            });
        }
    }

    /// The service as sent on the wire: the interface with the provider's group and version.
    pub fn service(&self) -> &ServiceKey {
        &self.service
    }

    /// The timeout of `method`: its own `method.timeout`, else the reference's.
    pub fn timeout_for(&self, method: &str) -> Duration {
        self.settings(method).timeout
    }

    /// The settings of `method`: the reference's own, without a lock or a count on a shared
    /// `Arc`, unless the URL sets some per method.
    fn settings(&self, method: &str) -> Settings<'_> {
        if !self.per_method {
            return Settings::Default(&self.default);
        }
        let Ok(mut methods) = self.methods.lock() else {
            return Settings::Default(&self.default);
        };
        if let Some(m) = methods.get(method) {
            return Settings::Method(m.clone());
        }
        let m = Arc::new(MethodCall::of(&self.url, method));
        methods.insert(Arc::from(method), m.clone());
        Settings::Method(m)
    }

    async fn call(&self, inv: &Invocation) -> Result<RpcResult, RpcError> {
        let n = self.clients.len();
        if n == 0 {
            return Err(RpcError::Network(format!(
                "no connection configured for {}",
                self.url.address()
            )));
        }
        let settings = self.settings(&inv.method);
        let _slot = match &settings.actives {
            None => None,
            Some(sem) => Some(self.wait_for_slot(sem, &settings, inv).await?),
        };
        let client = match self.clients.as_slice() {
            [only] => only,
            clients => {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n)
                    .map(|i| &clients[(start + i) % n])
                    .find(|c| c.is_available())
                    .unwrap_or(&clients[start % n])
            }
        };
        let conn = client.connection().await?;
        let token = self.token.as_deref();
        if let Some(sent) = settings.oneway {
            conn.send_oneway(&self.service, token, inv, sent, settings.timeout)
                .await?;
            return Ok(RpcResult {
                value: crate::hessian2::Value::Null,
                attachments: Vec::new(),
            });
        }
        let active = self.stats.begin();
        let result = conn
            .invoke(&self.service, token, inv, settings.timeout)
            .await;
        // A business exception is a completed call, as Dubbo's RpcStatus counts it.
        active.finish(matches!(
            &result,
            Ok(_) | Err(RpcError::BizException { .. })
        ));
        result
    }

    /// One of the method's `actives` slots, waiting up to its timeout (Dubbo's
    /// `ActiveLimitFilter`).
    async fn wait_for_slot(
        &self,
        sem: &Arc<Semaphore>,
        settings: &MethodCall,
        inv: &Invocation,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, RpcError> {
        if let Ok(permit) = sem.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let started = Instant::now();
        match tokio::time::timeout(settings.timeout, sem.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(RpcError::LimitExceeded(format!(
                "Waiting concurrent invoke timeout in client-side for service: {}, method: {}, elapsed: {}, timeout: {}. concurrent invokes: {}. max concurrent invoke limit: {}",
                self.service.interface,
                inv.method,
                started.elapsed().as_millis(),
                settings.timeout.as_millis(),
                settings.limit - sem.available_permits(),
                settings.limit
            ))),
        }
    }

    /// The last connect failure of its clients, when none is connected.
    pub fn connect_error(&self) -> Option<RpcError> {
        self.clients.iter().find_map(|c| c.last_failure())
    }
}

impl Invoker for DubboInvoker {
    fn url(&self) -> &Url {
        &self.url
    }

    fn is_available(&self) -> bool {
        self.clients.iter().any(|c| c.is_available())
    }

    fn stats(&self) -> &CallStats {
        &self.stats
    }

    fn invoke<'a>(&'a self, inv: &'a Invocation) -> BoxFuture<'a, Result<RpcResult, RpcError>> {
        Box::pin(self.call(inv))
    }

    fn connections(&self) -> (usize, usize) {
        let open = self.clients.iter().filter(|c| c.is_connected()).count();
        (open, self.clients.len())
    }

    fn connect_error(&self) -> Option<RpcError> {
        DubboInvoker::connect_error(self)
    }
}
