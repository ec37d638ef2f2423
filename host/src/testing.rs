//! Support shared by the tests, benchmarks and fuzz targets of this workspace: where the
//! third-party golden vectors are, equality of decoded values that treats NaN as equal, a
//! provider that is only listed, and a registry held in memory. Not part of the host's API.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::hessian2::Value;
use crate::registry::{InstanceSnapshot, Registry, RegistryError, Snapshot};
use crate::rpc::{BoxFuture, CallStats, Invocation, Invoker, RpcError, RpcResult};
use crate::url::Url;

/// `shared/vectors/<sub>`, found by walking up from `start` (a crate directory; in CI,
/// `shared/` is cloned beside the repository). Panics with what to do when it is missing.
pub fn vectors_dir(start: &Path, sub: &str) -> PathBuf {
    start
        .ancestors()
        .map(|d| d.join("shared/vectors").join(sub))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "shared/vectors/{sub} not found in {} or any parent: clone the shared vectors beside the repository",
                start.display()
            )
        })
}

/// Structural equality of decoded values in which two NaN doubles are equal (the derived
/// `PartialEq` says NaN != NaN, which would make any stream holding a NaN look broken).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Double(x), Value::Double(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::List(x), Value::List(y)) => {
            x.type_name == y.type_name
                && x.fixed_length == y.fixed_length
                && same_values(&x.items, &y.items)
        }
        (Value::Map(x), Value::Map(y)) => {
            x.type_name == y.type_name
                && x.entries.len() == y.entries.len()
                && x.entries
                    .iter()
                    .zip(&y.entries)
                    .all(|((ka, va), (kb, vb))| same_value(ka, kb) && same_value(va, vb))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.class == y.class && same_values(&x.values, &y.values)
        }
        _ => a == b,
    }
}

/// [`same_value`] element by element.
pub fn same_values(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y))
}

/// A provider that is only its URL and call statistics, never called: for directories, routers
/// and balancers exercised without a network (their tests and benchmarks).
pub struct ListedInvoker {
    pub url: Url,
    pub stats: CallStats,
}

impl ListedInvoker {
    /// A provider at `url`, with no calls recorded.
    pub fn new(url: Url) -> ListedInvoker {
        ListedInvoker {
            url,
            stats: CallStats::default(),
        }
    }
}

impl Invoker for ListedInvoker {
    fn url(&self) -> &Url {
        &self.url
    }

    fn is_available(&self) -> bool {
        true
    }

    fn stats(&self) -> &CallStats {
        &self.stats
    }

    fn invoke<'a>(&'a self, _inv: &'a Invocation) -> BoxFuture<'a, Result<RpcResult, RpcError>> {
        Box::pin(std::future::ready(Err(RpcError::Other(
            "a listed-only provider is never called".into(),
        ))))
    }
}

/// A registry held in memory: tests publish its interface-level snapshots and
/// application-level views, and read what was registered in it.
pub struct MemoryRegistry {
    pub interface: watch::Sender<Arc<Snapshot>>,
    pub instances: watch::Sender<Arc<InstanceSnapshot>>,
    pub registered: Mutex<Vec<Url>>,
    /// Application-level subscriptions made so far.
    pub instance_subscriptions: AtomicUsize,
    pub state: &'static str,
}

impl Default for MemoryRegistry {
    fn default() -> Self {
        MemoryRegistry {
            interface: watch::Sender::new(Arc::default()),
            instances: watch::Sender::new(Arc::default()),
            registered: Mutex::new(Vec::new()),
            instance_subscriptions: AtomicUsize::new(0),
            state: "connected",
        }
    }
}

impl MemoryRegistry {
    /// A registry whose session stays in `state`.
    pub fn in_state(state: &'static str) -> MemoryRegistry {
        MemoryRegistry {
            state,
            ..MemoryRegistry::default()
        }
    }
}

impl Registry for MemoryRegistry {
    fn register<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<(), RegistryError>> {
        if let Ok(mut r) = self.registered.lock() {
            r.push(url.clone());
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn unregister<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<(), RegistryError>> {
        if let Ok(mut r) = self.registered.lock() {
            r.retain(|u| u != url);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn subscribe<'a>(
        &'a self,
        _consumer: &'a Url,
    ) -> BoxFuture<'a, Result<watch::Receiver<Arc<Snapshot>>, RegistryError>> {
        Box::pin(std::future::ready(Ok(self.interface.subscribe())))
    }

    fn subscribe_instances<'a>(
        &'a self,
        _consumer: &'a Url,
    ) -> BoxFuture<'a, watch::Receiver<Arc<InstanceSnapshot>>> {
        self.instance_subscriptions.fetch_add(1, Ordering::Relaxed);
        Box::pin(std::future::ready(self.instances.subscribe()))
    }

    fn state(&self) -> &'static str {
        self.state
    }
}

/// A reply list: one `org.x.Blob` holding a string of `len` characters, then `copies`
/// back-references to it (`Q 1`: the list itself is ref 0), the shape of a reply that makes
/// a small frame expand into large copies.
pub fn blob_and_refs(len: usize, copies: usize) -> Value {
    use crate::hessian2::{List, Object};
    let blob = Value::Object(Object::new(
        "org.x.Blob",
        vec![("data".into(), Value::String("x".repeat(len)))],
    ));
    let mut items = vec![blob];
    items.extend(std::iter::repeat_n(Value::Ref(1), copies));
    Value::List(List::untyped(items))
}

/// The error of a result that must be one, without printing a large value when it is not.
pub trait Refused<E> {
    /// The error; panics (naming nothing of the value) when the result is `Ok`.
    fn refused(self) -> E;
}

impl<T, E> Refused<E> for Result<T, E> {
    fn refused(self) -> E {
        match self {
            Ok(_) => panic!("not refused"),
            Err(e) => e,
        }
    }
}
