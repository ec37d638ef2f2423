//! The invocation model shared by every layer of the call path: what a guest asks for
//! (`Invocation`), what comes back (`RpcResult`) and how it can fail (`RpcError`, the Rust side
//! of the WIT `rpc-error` variant).

use std::sync::Arc;

use crate::protocol::hessian2::Value;

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
        match self {
            RpcError::Timeout(_) => "timeout",
            RpcError::NoProvider(_) => "no-provider",
            RpcError::Network(_) => "network",
            RpcError::BizException { .. } => "biz-exception",
            RpcError::Forbidden(_) => "forbidden",
            RpcError::Serialization(_) => "serialization",
            RpcError::LimitExceeded(_) => "limit-exceeded",
            RpcError::Other(_) => "other",
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
