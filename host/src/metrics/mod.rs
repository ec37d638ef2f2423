//! Call metrics, recorded on every call: lock-free counters and latency histograms per
//! reference and Java method. Recording is the hot path and stays cheap: a call looks its
//! method's counters up by `&str` in a map it reads without a lock (the map is replaced, under
//! a lock, on a method's first call only), then does a few relaxed atomic adds. Rendering them
//! (Prometheus text, the admin views) is the admin API's job.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::rpc::RpcError;

/// A count that only goes up, updated with one relaxed atomic add.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds (`le`) of the histogram buckets in seconds; a last `+Inf` bucket takes the rest.
pub const BUCKET_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// [`BUCKET_BOUNDS`] in nanoseconds, so `observe` compares integers.
const BOUND_NANOS: [u64; 14] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The `le` label of each bucket, spelled as Prometheus client libraries spell it.
pub const BUCKET_LABELS: [&str; 15] = [
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
    "2.5", "5", "10", "+Inf",
];

/// Number of buckets including `+Inf`.
pub const BUCKETS: usize = BUCKET_LABELS.len();

/// A latency histogram over [`BUCKET_BOUNDS`] (plus `+Inf`): per-bucket counts and the total
/// time, each an atomic, so observing takes no lock and allocates nothing.
///
/// The count is the sum of the buckets, so `_count` always equals the `+Inf` bucket even while
/// calls are being observed; `_sum` may lag a concurrent observation by one.
#[derive(Debug)]
pub struct Histogram {
    /// Non-cumulative: `buckets[i]` counts observations in `(bound[i-1], bound[i]]`.
    buckets: [AtomicU64; BUCKETS],
    /// Total of all observations in nanoseconds; wraps only after ~584 years of summed time.
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one duration: in the first bucket whose bound is at least `d` (bounds are
    /// inclusive, as Prometheus's `le` says), else in `+Inf`.
    pub fn observe(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUND_NANOS.partition_point(|&bound| bound < nanos);
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Total of all observations.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed))
    }

    /// Cumulative counts per bucket, `+Inf` last (what `_bucket` samples show).
    pub fn cumulative(&self) -> [u64; BUCKETS] {
        let mut total = 0;
        let mut out = [0; BUCKETS];
        for (slot, bucket) in out.iter_mut().zip(&self.buckets) {
            total += bucket.load(Ordering::Relaxed);
            *slot = total;
        }
        out
    }
}

/// The error kinds counted per method, in the order of [`MethodMetrics`]' counters.
pub const ERROR_KINDS: [&str; 8] = RpcError::KINDS;

/// The position of `e`'s kind in [`ERROR_KINDS`].
fn error_index(e: &RpcError) -> usize {
    e.kind_index()
}

/// Counters of one Java method of one reference.
#[derive(Debug, Default)]
pub struct MethodMetrics {
    requests: Counter,
    errors: [Counter; ERROR_KINDS.len()],
    /// Calls a mock answered (force mode, or fail mode after a failure).
    mocked: Counter,
    rt: Histogram,
}

impl MethodMetrics {
    /// Counts a call as started; [`CallRecord::finish`] records how it ended. A call dropped
    /// before it ends (its guest gave up) stays counted as a request only.
    pub fn begin(&self) -> CallRecord<'_> {
        self.requests.inc();
        CallRecord {
            metrics: self,
            started: Instant::now(),
        }
    }

    /// Calls started.
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// Calls that ended with an error of `kind` (an [`ERROR_KINDS`] entry; 0 for others).
    pub fn errors(&self, kind: &str) -> u64 {
        ERROR_KINDS
            .iter()
            .zip(&self.errors)
            .find(|(k, _)| **k == kind)
            .map_or(0, |(_, c)| c.get())
    }

    /// Calls a mock answered.
    pub fn mocked(&self) -> u64 {
        self.mocked.get()
    }

    /// Latency of the calls that ended, successful or not.
    pub fn rt(&self) -> &Histogram {
        &self.rt
    }
}

/// Most methods tracked per reference. The generic `$invoke` lets a guest name any method, so
/// without a bound a guest could grow the map (and the scrape) without end; calls of methods
/// beyond it are counted under [`OVERFLOW_METHOD`].
pub const MAX_METHODS: usize = 256;

/// The `method` label of calls of methods beyond [`MAX_METHODS`].
pub const OVERFLOW_METHOD: &str = "(other)";

/// The call metrics of one reference, per Java method, created on each method's first call.
#[derive(Debug, Default)]
pub struct ReferenceMetrics {
    /// Read without a lock on every call of an untyped caller (the generic `$invoke`, `call`);
    /// replaced whole, under `adding`, when a method is called for the first time.
    methods: ArcSwap<HashMap<Arc<str>, Arc<MethodMetrics>>>,
    /// Held while a method's series is added, so that two first calls make one series.
    adding: Mutex<()>,
}

impl ReferenceMetrics {
    /// The counters of `method`, found without a lock; created the first time under a lock
    /// (past [`MAX_METHODS`], the overflow entry). A caller that calls the method repeatedly
    /// resolves them once and starts each call with [`MethodMetrics::begin`].
    pub fn entry(&self, method: &Arc<str>) -> Arc<MethodMetrics> {
        if let Some(m) = Self::find(&self.methods.load(), method) {
            return m;
        }
        let _adding = match self.adding.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let current = self.methods.load_full();
        if let Some(m) = Self::find(&current, method) {
            return m;
        }
        let key: Arc<str> = if current.len() < MAX_METHODS {
            method.clone()
        } else {
            Arc::from(OVERFLOW_METHOD)
        };
        let mut next = HashMap::clone(&current);
        let m = next.entry(key).or_default().clone();
        self.methods.store(Arc::new(next));
        m
    }

    /// `method`'s series in `methods`, or the overflow series once the map is full.
    fn find(
        methods: &HashMap<Arc<str>, Arc<MethodMetrics>>,
        method: &str,
    ) -> Option<Arc<MethodMetrics>> {
        match methods.get(method) {
            Some(m) => Some(m.clone()),
            None if methods.len() >= MAX_METHODS => methods.get(OVERFLOW_METHOD).cloned(),
            None => None,
        }
    }

    /// The counters of `method`, if it was called.
    pub fn method(&self, method: &str) -> Option<Arc<MethodMetrics>> {
        self.methods.load().get(method).cloned()
    }

    /// Every method called so far with its counters, sorted by name.
    pub fn methods(&self) -> Vec<(Arc<str>, Arc<MethodMetrics>)> {
        let mut all: Vec<_> = self
            .methods
            .load()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// A call in flight, from [`MethodMetrics::begin`].
#[must_use = "finish the record with the call's result"]
pub struct CallRecord<'a> {
    metrics: &'a MethodMetrics,
    started: Instant,
}

impl CallRecord<'_> {
    /// Counts the call as answered by a mock.
    pub fn mocked(&self) {
        self.metrics.mocked.inc();
    }

    /// Records the call's latency and, if it failed, its error kind.
    pub fn finish<T>(self, result: &Result<T, RpcError>) {
        self.metrics.rt.observe(self.started.elapsed());
        if let Err(e) = result {
            if let Some(c) = self.metrics.errors.get(error_index(e)) {
                c.inc();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_holds_them() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(500)); // exactly 0.0005: le is inclusive
        h.observe(Duration::from_micros(501)); // just above: next bucket
        h.observe(Duration::from_millis(30)); // (0.025, 0.05]
        h.observe(Duration::from_secs(11)); // beyond 10: +Inf
        let c = h.cumulative();
        assert_eq!(c[0], 1, "0.0005");
        assert_eq!(c[1], 2, "0.001");
        assert_eq!(c[5], 2, "0.025");
        assert_eq!(c[6], 3, "0.05");
        assert_eq!(c[13], 3, "10");
        assert_eq!(c[14], 4, "+Inf");
        assert_eq!(h.count(), 4);
        assert_eq!(
            h.sum(),
            Duration::from_micros(500 + 501 + 30_000 + 11_000_000)
        );
    }

    #[test]
    fn error_counters_follow_rpc_error_kinds() {
        let all = [
            RpcError::Timeout(String::new()),
            RpcError::NoProvider(String::new()),
            RpcError::Network(String::new()),
            RpcError::BizException {
                class_name: String::new(),
                message: String::new(),
            },
            RpcError::Forbidden(String::new()),
            RpcError::Serialization(String::new()),
            RpcError::LimitExceeded(String::new()),
            RpcError::Other(String::new()),
        ];
        for e in &all {
            assert_eq!(ERROR_KINDS[error_index(e)], e.kind());
        }
        let m = ReferenceMetrics::default();
        let method: Arc<str> = Arc::from("sayHello");
        m.entry(&method)
            .begin()
            .finish::<()>(&Err(RpcError::Timeout("slow".into())));
        m.entry(&method).begin().finish(&Ok(()));
        let counters = m.method("sayHello").expect("recorded");
        assert_eq!(counters.requests(), 2);
        assert_eq!(counters.errors("timeout"), 1);
        assert_eq!(counters.errors("network"), 0);
        assert_eq!(counters.rt().count(), 2);
    }

    #[test]
    fn first_calls_racing_on_threads_count_into_one_series_per_method() {
        let m = Arc::new(ReferenceMetrics::default());
        // Every thread makes the first call of each method at about the same time.
        let names: Vec<Arc<str>> = (0..200).map(|i| Arc::from(format!("m{i}"))).collect();
        let start = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (m, names, start) = (m.clone(), names.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for _ in 0..20 {
                        for name in &names {
                            m.entry(name).begin().finish(&Ok(()));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("caller thread");
        }
        let all = m.methods();
        assert_eq!(all.len(), names.len());
        for (name, series) in all {
            assert_eq!(series.requests(), 8 * 20, "{name}");
        }
    }

    #[test]
    fn methods_beyond_the_bound_share_one_series() {
        let m = ReferenceMetrics::default();
        for i in 0..MAX_METHODS + 5 {
            let name: Arc<str> = Arc::from(format!("m{i}"));
            m.entry(&name).begin().finish(&Ok(()));
        }
        let all = m.methods();
        assert_eq!(all.len(), MAX_METHODS + 1);
        let other = m.method(OVERFLOW_METHOD).expect("overflow series");
        assert_eq!(other.requests(), 5);
    }
}
