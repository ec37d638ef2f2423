//! Call metrics and the read-only views the admin endpoint serves: lock-free counters and
//! latency histograms recorded on every call, Prometheus text (format 0.0.4) for references,
//! providers and registry sessions, the JSON of `GET /admin/references`, and the readiness
//! sentences of `GET /health`.
//!
//! Recording is the hot path and stays cheap: a call looks its method's counters up under a
//! read lock by `&str` (the entry is created, under the write lock, on the method's first call
//! only), then does a few relaxed atomic adds. Rendering runs per scrape and may allocate.
//!
//! The primitives ([`Counter`], [`Histogram`], [`write_family`], [`write_sample`]) are public so
//! that other parts of the host (per-guest metrics) render the same way.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{Display, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::loadbalance::weight::{now_millis, weight};
use crate::reference::{Reference, References};
use crate::rpc::{Invoker, RpcError};

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
const BUCKET_LABELS: [&str; 15] = [
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
    "2.5", "5", "10", "+Inf",
];

/// Number of buckets including `+Inf`.
const BUCKETS: usize = BUCKET_LABELS.len();

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

    /// Writes the samples of one series of a histogram family: `{name}_bucket` with `labels`
    /// plus `le` for every bucket (cumulative), `{name}_sum` in seconds and `{name}_count`.
    /// The family's `# HELP`/`# TYPE` lines are the caller's ([`write_family`] with
    /// `histogram`), since a family holds many series.
    pub fn write(&self, out: &mut String, name: &str, labels: &[(&str, &str)]) {
        // Sum read before the buckets, so a concurrent call never makes the sum cover more
        // observations than `_count` shows.
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let cumulative = self.cumulative();
        for (count, le) in cumulative.iter().zip(BUCKET_LABELS) {
            write_series(out, name, "_bucket", labels, Some(("le", le)));
            let _ = writeln!(out, " {count}");
        }
        write_series(out, name, "_sum", labels, None);
        let _ = writeln!(out, " {sum}");
        write_series(out, name, "_count", labels, None);
        let _ = writeln!(out, " {}", cumulative[BUCKETS - 1]);
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a metric family; `kind` is `counter`, `gauge` or
/// `histogram`. Call it once per family, before its samples. Backslashes and newlines in
/// `help` are escaped as the text format requires.
pub fn write_family(out: &mut String, name: &str, kind: &str, help: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// Writes one sample line `name{k="v",...} value`. Label values are escaped (backslash,
/// double quote, newline); names and label names must already be valid Prometheus names.
pub fn write_sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl Display) {
    write_series(out, name, "", labels, None);
    let _ = writeln!(out, " {value}");
}

/// Writes `{name}{suffix}{labels,extra}` (no braces when there are no labels).
fn write_series(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    extra: Option<(&str, &str)>,
) {
    out.push_str(name);
    out.push_str(suffix);
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    for (i, (key, value)) in labels.iter().copied().chain(extra).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
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
    rt: Histogram,
}

impl MethodMetrics {
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
    methods: RwLock<HashMap<Arc<str>, Arc<MethodMetrics>>>,
}

impl ReferenceMetrics {
    /// Counts a call of `method` as started; [`CallRecord::finish`] records how it ended. A
    /// call dropped before it ends (its guest gave up) stays counted as a request only.
    pub fn begin(&self, method: &Arc<str>) -> CallRecord {
        let metrics = self.entry(method);
        metrics.requests.inc();
        CallRecord {
            metrics,
            started: Instant::now(),
        }
    }

    /// The counters of `method`: found under the read lock, created under the write lock the
    /// first time (past [`MAX_METHODS`], the overflow entry, also found under the read lock).
    fn entry(&self, method: &Arc<str>) -> Arc<MethodMetrics> {
        if let Ok(methods) = self.methods.read() {
            if let Some(m) = methods.get(&**method) {
                return m.clone();
            }
            if methods.len() >= MAX_METHODS {
                if let Some(m) = methods.get(OVERFLOW_METHOD) {
                    return m.clone();
                }
            }
        }
        let mut methods = match self.methods.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(m) = methods.get(&**method) {
            return m.clone();
        }
        let key: Arc<str> = if methods.len() < MAX_METHODS {
            method.clone()
        } else {
            Arc::from(OVERFLOW_METHOD)
        };
        methods.entry(key).or_default().clone()
    }

    /// The counters of `method`, if it was called.
    pub fn method(&self, method: &str) -> Option<Arc<MethodMetrics>> {
        self.methods.read().ok()?.get(method).cloned()
    }

    /// Every method called so far with its counters, sorted by name.
    pub fn methods(&self) -> Vec<(Arc<str>, Arc<MethodMetrics>)> {
        let mut all: Vec<_> = match self.methods.read() {
            Ok(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(poisoned) => poisoned
                .into_inner()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// A call in flight, from [`ReferenceMetrics::begin`].
#[must_use = "finish the record with the call's result"]
pub struct CallRecord {
    metrics: Arc<MethodMetrics>,
    started: Instant,
}

impl CallRecord {
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

/// Every reference, sorted by id.
fn sorted(refs: &References) -> Vec<&Arc<Reference>> {
    let mut all: Vec<&Arc<Reference>> = refs.iter().collect();
    all.sort_by(|a, b| a.id().cmp(b.id()));
    all
}

/// What the provider gauges show for one address of one reference.
#[derive(Default)]
struct ProviderGauges {
    available: bool,
    active: u64,
    connections: usize,
}

/// The provider gauges of `r` by address. Two provider URLs at one address (rare: different
/// parameters) are combined: available if either is, active calls summed, and the larger
/// connection count (a shared connection would otherwise be counted twice).
fn provider_gauges(r: &Reference) -> BTreeMap<String, ProviderGauges> {
    let mut by_address: BTreeMap<String, ProviderGauges> = BTreeMap::new();
    for invoker in &r.directory().state().invokers {
        let g = by_address.entry(invoker.url().address()).or_default();
        g.available |= invoker.is_available();
        g.active += u64::from(invoker.stats().active());
        g.connections = g.connections.max(invoker.connections().0);
    }
    by_address
}

/// Registry session states, each rendered as its own series so dashboards can graph them.
const REGISTRY_STATES: [&str; 4] = ["connected", "suspended", "expired", "reconnecting"];

/// Writes the metrics of every reference, its providers and the registries in Prometheus text
/// format 0.0.4, each family's `# HELP`/`# TYPE` once:
///
/// - `dubbo_consumer_requests_total{reference,interface,method}`: calls started.
/// - `dubbo_consumer_errors_total{reference,interface,method,kind}`: calls failed, one series
///   for every kind of [`ERROR_KINDS`] (zeros included) for each method called, so that
///   `rate()` sees a series from its first error on.
/// - `dubbo_consumer_rt_seconds{reference,interface,method}`: latency of calls that ended.
/// - `dubbo_provider_available`, `dubbo_provider_active_requests`,
///   `dubbo_provider_connections` `{reference,address}`: per provider of the directory now.
/// - `dubbo_registry_session_state{registry,state}`: 1 for the current state, 0 for the others.
///
/// Methods appear after their first call; references, methods and addresses are sorted.
pub fn render_references(out: &mut String, refs: &References) {
    let references = sorted(refs);
    let calls: Vec<MethodSeries> = references
        .iter()
        .flat_map(|r| {
            r.metrics()
                .methods()
                .into_iter()
                .map(|(method, metrics)| MethodSeries {
                    reference: r.id(),
                    interface: &r.service().interface,
                    method,
                    metrics,
                })
        })
        .collect();

    const REQUESTS: &str = "dubbo_consumer_requests_total";
    write_family(
        out,
        REQUESTS,
        "counter",
        "Calls started, per reference and Java method.",
    );
    for s in &calls {
        write_sample(out, REQUESTS, &s.labels(), s.metrics.requests());
    }

    const ERRORS: &str = "dubbo_consumer_errors_total";
    write_family(
        out,
        ERRORS,
        "counter",
        "Calls failed, per reference, Java method and rpc-error kind.",
    );
    for s in &calls {
        let [reference, interface, method] = s.labels();
        for (kind, count) in ERROR_KINDS.iter().zip(&s.metrics.errors) {
            let labels = [reference, interface, method, ("kind", kind)];
            write_sample(out, ERRORS, &labels, count.get());
        }
    }

    const RT: &str = "dubbo_consumer_rt_seconds";
    write_family(
        out,
        RT,
        "histogram",
        "Latency of calls that ended (successful or not), in seconds.",
    );
    for s in &calls {
        s.metrics.rt.write(out, RT, &s.labels());
    }

    let providers: Vec<(&str, String, ProviderGauges)> = references
        .iter()
        .flat_map(|r| {
            provider_gauges(r)
                .into_iter()
                .map(|(address, g)| (r.id(), address, g))
        })
        .collect();
    for (family, help, value) in PROVIDER_GAUGES {
        write_family(out, family, "gauge", help);
        for (reference, address, g) in &providers {
            let labels = [("reference", *reference), ("address", address.as_str())];
            write_sample(out, family, &labels, value(g));
        }
    }

    const SESSION: &str = "dubbo_registry_session_state";
    write_family(
        out,
        SESSION,
        "gauge",
        "1 for the registry session's current state, 0 for the others.",
    );
    for (id, registry) in refs.registries() {
        let current = registry.state();
        for state in REGISTRY_STATES {
            let labels = [("registry", id.as_str()), ("state", state)];
            write_sample(out, SESSION, &labels, u8::from(state == current));
        }
        if !REGISTRY_STATES.contains(&current) {
            let labels = [("registry", id.as_str()), ("state", current)];
            write_sample(out, SESSION, &labels, 1);
        }
    }
}

/// One called method of one reference, as one scrape sees it.
struct MethodSeries<'a> {
    reference: &'a str,
    interface: &'a str,
    method: Arc<str>,
    metrics: Arc<MethodMetrics>,
}

impl MethodSeries<'_> {
    fn labels(&self) -> [(&str, &str); 3] {
        [
            ("reference", self.reference),
            ("interface", self.interface),
            ("method", &self.method),
        ]
    }
}

/// Reads one provider gauge's value.
type GaugeValue = fn(&ProviderGauges) -> u64;

/// The provider gauge families: name, help, value.
const PROVIDER_GAUGES: [(&str, &str, GaugeValue); 3] = [
    (
        "dubbo_provider_available",
        "Whether the provider may take calls now (1) or not (0).",
        |g| u64::from(g.available),
    ),
    (
        "dubbo_provider_active_requests",
        "Calls in flight to the provider.",
        |g| g.active,
    ),
    (
        "dubbo_provider_connections",
        "Open connections to the provider used by the reference.",
        |g| g.connections as u64,
    ),
];

/// The JSON of one provider for `GET /admin/references`.
fn provider_json(invoker: &Arc<dyn Invoker>, now_ms: i64) -> Value {
    let url = invoker.url();
    let stats = invoker.stats();
    json!({
        "url": url.to_string(),
        "address": url.address(),
        "weight": weight(url, "", now_ms),
        "available": invoker.is_available(),
        "active": stats.active(),
        "connections": invoker.connections().0,
        "succeeded": stats.succeeded(),
        "failed": stats.failed(),
    })
}

/// The body of `GET /admin/references`:
/// `{"references": [{"id", "interface", "version", "group", "consumer", "providers",
/// "routers", "registries"}]}`, references sorted by id, providers by URL. A provider is
/// `{"url", "address", "weight", "available", "active", "connections", "succeeded",
/// "failed"}`: `weight` is its interface-level weight now (warmup applied), `connections` the
/// open ones, `succeeded`/`failed` its call counts. `routers` describes the routers in effect
/// in the order they run; `registries` are the `[[registry]]` ids the reference follows
/// (empty for a direct `url`).
pub fn references_json(refs: &References) -> Value {
    let now_ms = now_millis();
    let references: Vec<Value> = sorted(refs)
        .into_iter()
        .map(|r| {
            let state = r.directory().state();
            let mut invokers: Vec<&Arc<dyn Invoker>> = state.invokers.iter().collect();
            invokers.sort_by_cached_key(|i| i.url().to_string());
            let providers: Vec<Value> = invokers
                .into_iter()
                .map(|i| provider_json(i, now_ms))
                .collect();
            let routers: Vec<String> = state.routers.iter().map(|r| r.describe()).collect();
            let service = r.service();
            json!({
                "id": r.id(),
                "interface": service.interface,
                "version": service.version,
                "group": service.group,
                "consumer": r.consumer().to_string(),
                "providers": providers,
                "routers": routers,
                "registries": r.registry_ids(),
            })
        })
        .collect();
    json!({ "references": references })
}

/// Why the host is not ready to serve, for `GET /health`: one sentence per reference with
/// `check = true` (the default) that has no available provider; empty means ready. References
/// with `check = false` chose to run without providers and never make the host unready.
pub fn unready(refs: &References) -> Vec<String> {
    sorted(refs)
        .into_iter()
        .filter(|r| r.check())
        .filter_map(|r| {
            let state = r.directory().state();
            if state.invokers.iter().any(|i| i.is_available()) {
                return None;
            }
            Some(if state.invokers.is_empty() {
                format!(
                    "reference `{}` ({}) has no provider listed",
                    r.id(),
                    r.service()
                )
            } else {
                format!(
                    "reference `{}` ({}) has {} provider(s) listed and none available",
                    r.id(),
                    r.service(),
                    state.invokers.len()
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReferenceConfig;
    use crate::directory::DirectoryState;
    use crate::protocol::dubbo::ConnectionPool;
    use crate::rpc::Invocation;

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
    fn histogram_renders_cumulative_buckets_sum_and_count() {
        let h = Histogram::new();
        h.observe(Duration::from_millis(2));
        h.observe(Duration::from_millis(200));
        let mut out = String::new();
        h.write(&mut out, "rt", &[("m", "a")]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 17, "15 buckets, sum, count:\n{out}");
        assert_eq!(lines[0], "rt_bucket{m=\"a\",le=\"0.0005\"} 0");
        assert_eq!(lines[2], "rt_bucket{m=\"a\",le=\"0.0025\"} 1");
        assert_eq!(lines[7], "rt_bucket{m=\"a\",le=\"0.1\"} 1");
        assert_eq!(lines[8], "rt_bucket{m=\"a\",le=\"0.25\"} 2");
        assert_eq!(lines[13], "rt_bucket{m=\"a\",le=\"10\"} 2");
        assert_eq!(lines[14], "rt_bucket{m=\"a\",le=\"+Inf\"} 2");
        assert_eq!(lines[15], "rt_sum{m=\"a\"} 0.202");
        assert_eq!(lines[16], "rt_count{m=\"a\"} 2");
    }

    #[test]
    fn label_values_and_help_are_escaped_per_the_text_format() {
        let mut out = String::new();
        write_family(&mut out, "x_total", "counter", "a \\ b\nc \"q\"");
        write_sample(
            &mut out,
            "x_total",
            &[("k", "back\\slash \"quoted\"\nnext"), ("e", "")],
            7,
        );
        write_sample(&mut out, "y", &[], 1.5);
        assert_eq!(
            out,
            "# HELP x_total a \\\\ b\\nc \"q\"\n\
             # TYPE x_total counter\n\
             x_total{k=\"back\\\\slash \\\"quoted\\\"\\nnext\",e=\"\"} 7\n\
             y 1.5\n"
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
        m.begin(&method)
            .finish::<()>(&Err(RpcError::Timeout("slow".into())));
        m.begin(&method).finish(&Ok(()));
        let counters = m.method("sayHello").expect("recorded");
        assert_eq!(counters.requests(), 2);
        assert_eq!(counters.errors("timeout"), 1);
        assert_eq!(counters.errors("network"), 0);
        assert_eq!(counters.rt().count(), 2);
    }

    #[test]
    fn methods_beyond_the_bound_share_one_series() {
        let m = ReferenceMetrics::default();
        for i in 0..MAX_METHODS + 5 {
            let name: Arc<str> = Arc::from(format!("m{i}"));
            m.begin(&name).finish(&Ok(()));
        }
        let all = m.methods();
        assert_eq!(all.len(), MAX_METHODS + 1);
        let other = m.method(OVERFLOW_METHOD).expect("overflow series");
        assert_eq!(other.requests(), 5);
    }

    fn unreachable_reference(id: &str, check: bool) -> ReferenceConfig {
        ReferenceConfig {
            id: id.to_string(),
            interface: "org.apache.dubbo.demo.DemoService".to_string(),
            url: Some("dubbo://127.0.0.1:1".to_string()),
            check: Some(check),
            retries: Some(0),
            timeout: Some(200),
            connect_timeout: Some(200),
            ..ReferenceConfig::default()
        }
    }

    async fn references(cfgs: Vec<ReferenceConfig>) -> References {
        let mut config = crate::config::Config::parse("", std::path::Path::new("metrics.toml"))
            .expect("an empty config is valid");
        config.references = cfgs;
        let pool = Arc::new(ConnectionPool::default());
        References::build(&config, &pool, &HashMap::new())
            .await
            .expect("references over direct urls build")
    }

    fn say_hello() -> Invocation {
        Invocation {
            method: Arc::from("sayHello"),
            parameter_types: Arc::from("Ljava/lang/String;"),
            args: vec![crate::protocol::hessian2::Value::String("x".into())],
            attachments: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_failed_call_shows_in_requests_errors_and_latency() {
        let refs = references(vec![unreachable_reference("demo", false)]).await;
        let r = refs.get("demo").expect("built");
        let err = r.invoke(&say_hello()).await.expect_err("port 1 is closed");
        assert_eq!(err.kind(), "network", "{err}");

        let mut out = String::new();
        render_references(&mut out, &refs);
        let call = "reference=\"demo\",interface=\"org.apache.dubbo.demo.DemoService\",method=\"sayHello\"";
        for line in [
            format!("dubbo_consumer_requests_total{{{call}}} 1"),
            format!("dubbo_consumer_errors_total{{{call},kind=\"network\"}} 1"),
            format!("dubbo_consumer_errors_total{{{call},kind=\"timeout\"}} 0"),
            format!("dubbo_consumer_rt_seconds_count{{{call}}} 1"),
            format!("dubbo_consumer_rt_seconds_bucket{{{call},le=\"+Inf\"}} 1"),
            "dubbo_provider_connections{reference=\"demo\",address=\"127.0.0.1:1\"} 0".to_string(),
            "dubbo_provider_active_requests{reference=\"demo\",address=\"127.0.0.1:1\"} 0"
                .to_string(),
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "missing `{line}` in:\n{out}"
            );
        }
        for family in [
            "dubbo_consumer_requests_total",
            "dubbo_consumer_errors_total",
            "dubbo_consumer_rt_seconds",
            "dubbo_provider_available",
            "dubbo_provider_active_requests",
            "dubbo_provider_connections",
            "dubbo_registry_session_state",
        ] {
            let help = format!("# HELP {family} ");
            assert_eq!(out.matches(&help).count(), 1, "{family} HELP once:\n{out}");
            assert_eq!(
                out.matches(&format!("# TYPE {family} ")).count(),
                1,
                "{family} TYPE once"
            );
        }
    }

    #[tokio::test]
    async fn references_json_lists_providers_sorted_by_reference_id() {
        let refs = references(vec![
            unreachable_reference("zeta", false),
            unreachable_reference("alpha", false),
        ])
        .await;
        let v = references_json(&refs);
        let list = v["references"].as_array().expect("array");
        let ids: Vec<&str> = list.iter().filter_map(|r| r["id"].as_str()).collect();
        assert_eq!(ids, ["alpha", "zeta"]);
        let alpha = &list[0];
        assert_eq!(alpha["interface"], "org.apache.dubbo.demo.DemoService");
        assert_eq!(alpha["version"], Value::Null);
        assert!(alpha["consumer"]
            .as_str()
            .is_some_and(|c| c.starts_with("consumer://")));
        assert_eq!(alpha["registries"], json!([]));
        assert_eq!(alpha["routers"], json!([]), "a direct url has no routers");
        let p = &alpha["providers"][0];
        assert_eq!(p["address"], "127.0.0.1:1");
        assert_eq!(p["weight"], 100);
        assert_eq!(p["connections"], 0);
        assert_eq!(p["succeeded"], 0);

        // Routers in effect are described in the order they run.
        let zeta = refs.get("zeta").expect("built");
        let invokers = zeta.directory().state().invokers.clone();
        let mut routers: Vec<Arc<dyn crate::router::Router>> = vec![
            Arc::new(crate::router::TagRouter::static_tags()),
            Arc::new(
                crate::router::ConditionRouter::new(
                    "method = sayHello => host = 10.0.0.1",
                    true,
                    true,
                    3,
                )
                .expect("valid rule"),
            ),
        ];
        crate::router::sort_by_priority(&mut routers);
        zeta.directory()
            .replace(DirectoryState { invokers, routers });
        let v = references_json(&refs);
        assert_eq!(
            v["references"][1]["routers"],
            json!([
                "condition: method = sayHello => host = 10.0.0.1 (priority=3, force=true, enabled=true)",
                "tag: providers' own dubbo.tag only (priority=100)"
            ])
        );
    }

    /// A registry session stuck in one state; nothing subscribes to it.
    struct StuckRegistry(&'static str);

    impl crate::registry::Registry for StuckRegistry {
        fn register<'a>(
            &'a self,
            _: &'a crate::url::Url,
        ) -> crate::rpc::BoxFuture<'a, Result<(), crate::registry::RegistryError>> {
            Box::pin(std::future::ready(Ok(())))
        }
        fn unregister<'a>(
            &'a self,
            _: &'a crate::url::Url,
        ) -> crate::rpc::BoxFuture<'a, Result<(), crate::registry::RegistryError>> {
            Box::pin(std::future::ready(Ok(())))
        }
        fn subscribe<'a>(
            &'a self,
            _: &'a crate::url::Url,
        ) -> crate::rpc::BoxFuture<
            'a,
            Result<
                tokio::sync::watch::Receiver<Arc<crate::registry::Snapshot>>,
                crate::registry::RegistryError,
            >,
        > {
            let (_, rx) = tokio::sync::watch::channel(Arc::default());
            Box::pin(std::future::ready(Ok(rx)))
        }
        fn state(&self) -> &'static str {
            self.0
        }
    }

    #[tokio::test]
    async fn registry_sessions_show_their_state_by_registry_id() {
        let config = crate::config::Config::parse("", std::path::Path::new("metrics.toml"))
            .expect("an empty config is valid");
        let registries: HashMap<String, Arc<dyn crate::registry::Registry>> = [
            ("zk-b", StuckRegistry("suspended")),
            ("zk-a", StuckRegistry("connected")),
        ]
        .into_iter()
        .map(|(id, r)| {
            (
                id.to_string(),
                Arc::new(r) as Arc<dyn crate::registry::Registry>,
            )
        })
        .collect();
        let pool = Arc::new(ConnectionPool::default());
        let refs = References::build(&config, &pool, &registries)
            .await
            .expect("nothing to build");
        let ids: Vec<&str> = refs
            .registries()
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(ids, ["zk-a", "zk-b"]);

        let mut out = String::new();
        render_references(&mut out, &refs);
        let session: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("dubbo_registry_session_state{"))
            .collect();
        assert_eq!(
            session,
            [
                "dubbo_registry_session_state{registry=\"zk-a\",state=\"connected\"} 1",
                "dubbo_registry_session_state{registry=\"zk-a\",state=\"suspended\"} 0",
                "dubbo_registry_session_state{registry=\"zk-a\",state=\"expired\"} 0",
                "dubbo_registry_session_state{registry=\"zk-a\",state=\"reconnecting\"} 0",
                "dubbo_registry_session_state{registry=\"zk-b\",state=\"connected\"} 0",
                "dubbo_registry_session_state{registry=\"zk-b\",state=\"suspended\"} 1",
                "dubbo_registry_session_state{registry=\"zk-b\",state=\"expired\"} 0",
                "dubbo_registry_session_state{registry=\"zk-b\",state=\"reconnecting\"} 0",
            ]
        );
    }

    /// A provider that is listed but refuses calls (read-only, or its connection closed).
    struct Unavailable {
        url: crate::url::Url,
        stats: crate::rpc::CallStats,
    }

    impl Invoker for Unavailable {
        fn url(&self) -> &crate::url::Url {
            &self.url
        }
        fn is_available(&self) -> bool {
            false
        }
        fn stats(&self) -> &crate::rpc::CallStats {
            &self.stats
        }
        fn invoke<'a>(
            &'a self,
            _: &'a Invocation,
        ) -> crate::rpc::BoxFuture<'a, Result<crate::rpc::RpcResult, RpcError>> {
            Box::pin(std::future::ready(Err(RpcError::Network("down".into()))))
        }
    }

    #[tokio::test]
    async fn only_checked_references_without_available_providers_make_the_host_unready() {
        let refs = references(vec![
            unreachable_reference("checked", true),
            unreachable_reference("unchecked", false),
        ])
        .await;
        // The registry takes every provider away.
        for r in refs.iter() {
            r.directory().replace(DirectoryState::default());
        }
        let why = unready(&refs);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].contains("`checked`") && why[0].contains("no provider listed"));

        let url =
            crate::url::Url::parse("dubbo://10.0.0.1:20880/org.apache.dubbo.demo.DemoService")
                .expect("valid url");
        let down: Arc<dyn Invoker> = Arc::new(Unavailable {
            url,
            stats: Default::default(),
        });
        for r in refs.iter() {
            r.directory().replace(DirectoryState {
                invokers: vec![down.clone()],
                routers: Vec::new(),
            });
        }
        let why = unready(&refs);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(
            why[0].contains("1 provider(s) listed and none available"),
            "{}",
            why[0]
        );

        let mut out = String::new();
        render_references(&mut out, &refs);
        assert!(
            out.lines().any(|l| l
                == "dubbo_provider_available{reference=\"checked\",address=\"10.0.0.1:20880\"} 0"),
            "{out}"
        );
    }
}
