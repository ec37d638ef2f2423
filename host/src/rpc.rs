//! The invocation model shared by every layer of the call path: what a guest asks for
//! (`Invocation`), what comes back (`RpcResult`) and how it can fail (`RpcError`, the Rust side
//! of the WIT `rpc-error` variant).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::hessian2::Value;
use crate::url::Url;

/// One remote method call, independent of which provider will serve it.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Java method name, e.g. `sayHello`.
    pub method: Arc<str>,
    /// JVM parameter descriptors concatenated, e.g. `Ljava/lang/String;I`.
    pub parameter_types: Arc<str>,
    pub args: Vec<Value>,
    /// Attachments sent with this call in addition to the reference's own.
    pub attachments: Vec<(String, String)>,
}

/// A successful reply: the returned value (`Value::Null` for null or void) and the
/// attachments the provider sent back.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcResult {
    pub value: Value,
    pub attachments: Vec<(String, Value)>,
}

/// Why a call failed. Each Dubbo failure maps to exactly one case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("no provider: {0}")]
    NoProvider(String),
    #[error("network: {0}")]
    Network(String),
    #[error("business exception {class_name}: {message}")]
    BizException { class_name: String, message: String },
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("serialization: {0}")]
    Serialization(String),
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    #[error("{0}")]
    Other(String),
}

impl RpcError {
    /// The WIT case name (`timeout`, `no-provider`, ...), also used in logs and metrics.
    pub fn kind(&self) -> &'static str {
        RpcError::KINDS[self.kind_index()]
    }

    /// Every kind, in the order of the cases of `dubbo:host/types.rpc-error`.
    pub const KINDS: [&'static str; 8] = [
        "timeout",
        "no-provider",
        "network",
        "biz-exception",
        "forbidden",
        "serialization",
        "limit-exceeded",
        "other",
    ];

    /// The position of this error's kind in [`RpcError::KINDS`].
    pub fn kind_index(&self) -> usize {
        match self {
            RpcError::Timeout(_) => 0,
            RpcError::NoProvider(_) => 1,
            RpcError::Network(_) => 2,
            RpcError::BizException { .. } => 3,
            RpcError::Forbidden(_) => 4,
            RpcError::Serialization(_) => 5,
            RpcError::LimitExceeded(_) => 6,
            RpcError::Other(_) => 7,
        }
    }

    /// The message, without the kind; a business exception's is `<class>: <message>`.
    pub fn message(&self) -> std::borrow::Cow<'_, str> {
        match self {
            RpcError::BizException {
                class_name,
                message,
            } => format!("{class_name}: {message}").into(),
            RpcError::Timeout(m)
            | RpcError::NoProvider(m)
            | RpcError::Network(m)
            | RpcError::Forbidden(m)
            | RpcError::Serialization(m)
            | RpcError::LimitExceeded(m)
            | RpcError::Other(m) => m.as_str().into(),
        }
    }

    /// Whether failover may retry the call on another provider: everything but a business
    /// exception and a refusal, which another provider would repeat.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            RpcError::BizException { .. } | RpcError::Forbidden(_) | RpcError::Serialization(_)
        )
    }
}

/// Which remote service a reference talks to: interface plus optional version and group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    pub interface: String,
    pub version: Option<String>,
    pub group: Option<String>,
}

impl ServiceKey {
    /// The version Dubbo puts on the wire: `0.0.0` when none is configured.
    pub fn wire_version(&self) -> &str {
        self.version.as_deref().unwrap_or("0.0.0")
    }
}

impl std::fmt::Display for ServiceKey {
    /// Dubbo's service key `group/interface:version`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(g) = &self.group {
            write!(f, "{g}/")?;
        }
        write!(f, "{}", self.interface)?;
        if let Some(v) = &self.version {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}

/// A boxed future, for trait methods that are called through `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Anything that can perform an invocation against one provider: what routers narrow, load
/// balancers pick from and clusters call.
pub trait Invoker: Send + Sync {
    /// The provider URL with the consumer's parameters merged in.
    fn url(&self) -> &Url;
    /// Whether a call may be sent now (connected or connectable, not read-only).
    fn is_available(&self) -> bool;
    /// Live call statistics, for the least-active and shortest-response balancers.
    fn stats(&self) -> &CallStats;
    /// Performs the call.
    fn invoke<'a>(&'a self, inv: &'a Invocation) -> BoxFuture<'a, Result<RpcResult, RpcError>>;
    /// Connections to the provider as `(open, configured)`, for metrics; `(0, 0)` for
    /// invokers that hold none.
    fn connections(&self) -> (usize, usize) {
        (0, 0)
    }
    /// Why the provider cannot be connected to, when the last attempt failed.
    fn connect_error(&self) -> Option<RpcError> {
        None
    }
}

/// Per-provider call counters (Dubbo's `RpcStatus`): calls in flight, and the count and total
/// time of successful calls.
#[derive(Debug, Default)]
pub struct CallStats {
    active: AtomicU32,
    succeeded: AtomicU64,
    succeeded_micros: AtomicU64,
    failed: AtomicU64,
}

impl CallStats {
    /// Counts a call as started; the returned guard records how it ended.
    pub fn begin(&self) -> ActiveCall<'_> {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveCall {
            stats: self,
            started: Instant::now(),
            done: false,
        }
    }

    /// Calls in flight.
    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// Successful calls so far.
    pub fn succeeded(&self) -> u64 {
        self.succeeded.load(Ordering::Relaxed)
    }

    /// Failed calls so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Mean time of a successful call in microseconds (0 before the first).
    pub fn mean_success_micros(&self) -> u64 {
        self.succeeded_micros
            .load(Ordering::Relaxed)
            .checked_div(self.succeeded())
            .unwrap_or(0)
    }
}

/// A call in flight; dropping it without `finish` counts it as failed (e.g. cancelled).
pub struct ActiveCall<'a> {
    stats: &'a CallStats,
    started: Instant,
    done: bool,
}

impl ActiveCall<'_> {
    /// Records the outcome of the call.
    pub fn finish(mut self, ok: bool) {
        self.record(ok);
    }

    fn record(&mut self, ok: bool) {
        if self.done {
            return;
        }
        self.done = true;
        self.stats.active.fetch_sub(1, Ordering::Relaxed);
        if ok {
            let micros = self.started.elapsed().as_micros() as u64;
            self.stats.succeeded.fetch_add(1, Ordering::Relaxed);
            self.stats
                .succeeded_micros
                .fetch_add(micros, Ordering::Relaxed);
        } else {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for ActiveCall<'_> {
    fn drop(&mut self) {
        self.record(false);
    }
}
