//! Where the stateful strategies (`roundrobin`, `consistenthash`) keep state per service method:
//! a sharded map keyed by a hash of the service key and method, and a snapshot of the provider
//! list that tells cheaply whether the list changed since the state was built.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::rpc::Invoker;
use crate::url::Url;

/// Shards of the per-method map; calls to different methods rarely share a lock.
const SHARDS: usize = 16;

/// Dubbo's `serviceKey.method` (`group/interface:version.method`) as a 64-bit hash, so a
/// lookup needs no `String`. Two methods colliding would only share balancing state; the pick
/// is still an index into the caller's list.
pub(crate) fn method_key(consumer: &Url, method: &str) -> u64 {
    // `DefaultHasher::new()` has fixed keys: the same method always lands in the same shard.
    let mut h = DefaultHasher::new();
    consumer.param("group").hash(&mut h);
    consumer.path.hash(&mut h);
    consumer.param("version").hash(&mut h);
    method.hash(&mut h);
    h.finish()
}

/// Per-method state of type `T`, behind one of [`SHARDS`] mutexes.
pub(crate) struct ByMethod<T> {
    shards: Vec<Mutex<HashMap<u64, T>>>,
}

impl<T> Default for ByMethod<T> {
    fn default() -> Self {
        ByMethod {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl<T> ByMethod<T> {
    /// Locks the shard holding `key`.
    pub(crate) fn shard(&self, key: u64) -> MutexGuard<'_, HashMap<u64, T>> {
        let shard = &self.shards[(key % SHARDS as u64) as usize];
        // A panic while holding the lock leaves at worst stale balancing state: keep going.
        shard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The provider list a piece of state was built for, compared by allocation identity. Holding
/// `Weak`s keeps the allocations from being reused, so an equal comparison really means the
/// same invokers in the same order; the directory reuses invokers for unchanged URLs.
#[derive(Default)]
pub(crate) struct Members(Vec<Weak<dyn Invoker>>);

impl Members {
    /// Snapshots `invokers`.
    pub(crate) fn of(invokers: &[Arc<dyn Invoker>]) -> Self {
        Members(invokers.iter().map(Arc::downgrade).collect())
    }

    /// Whether `invokers` is the same list, in the same order, as the snapshot.
    pub(crate) fn matches(&self, invokers: &[Arc<dyn Invoker>]) -> bool {
        self.0.len() == invokers.len()
            && self
                .0
                .iter()
                .zip(invokers)
                .all(|(w, a)| std::ptr::addr_eq(w.as_ptr(), Arc::as_ptr(a)))
    }
}
