//! `dubbo-wasm-host bench`: a load generator for Dubbo services, as `wrk` is for HTTP and
//! `ghz` for gRPC, going through the same reference a guest uses (cluster, load balancer,
//! routers, the shared connection pool). Closed loop by default (`concurrency` callers, each
//! calling again as soon as its call ends); open loop with a `rate` (calls started at fixed
//! intervals whatever the latency, each timed from when it was due, so a slow provider shows
//! in the latency instead of in a lower rate). A line a second on stderr; a report at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::reference::Reference;
use crate::rpc::{Invocation, RpcError};

/// How one bench runs.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Callers (closed loop), or calls in flight at most (open loop).
    pub concurrency: usize,
    /// How long calls are made, after `warmup`.
    pub duration: Duration,
    /// Calls made before counting starts, to open connections and warm caches.
    pub warmup: Duration,
    /// Calls per second to start (open loop); `None` for a closed loop.
    pub rate: Option<f64>,
    /// Print a progress line every second on stderr.
    pub progress: bool,
}

/// Latencies, in a log-linear histogram: 2⁷ buckets per power of two of nanoseconds (under
/// 1 % error), so recording is an index and an add.
#[derive(Clone)]
pub struct Latencies {
    counts: Vec<u64>,
    max: u64,
    total: u64,
}

/// Sub-buckets per power of two.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            counts: vec![0; (64 - SUB_BITS as usize + 1) * SUB as usize],
            max: 0,
            total: 0,
        }
    }
}

impl Latencies {
    fn index(nanos: u64) -> usize {
        if nanos < SUB {
            return nanos as usize;
        }
        let exp = 63 - nanos.leading_zeros() - SUB_BITS + 1;
        let sub = (nanos >> (exp - 1)) - SUB;
        (exp as u64 * SUB + sub) as usize
    }

    /// The smallest latency of bucket `i`.
    fn value(i: usize) -> u64 {
        let (exp, sub) = ((i as u64) / SUB, (i as u64) % SUB);
        if exp == 0 {
            return sub;
        }
        (SUB + sub) << (exp - 1)
    }

    /// Records one call of `d`.
    pub fn record(&mut self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        if let Some(c) = self.counts.get_mut(Self::index(nanos)) {
            *c += 1;
        }
        self.max = self.max.max(nanos);
        self.total += 1;
    }

    /// Adds `other`'s calls.
    pub fn merge(&mut self, other: &Latencies) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.max = self.max.max(other.max);
        self.total += other.total;
    }

    /// Calls recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0..=1).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(Self::value(i).min(self.max));
            }
        }
        Duration::from_nanos(self.max)
    }

    /// The longest call.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max)
    }
}

/// What a bench measured.
pub struct Report {
    pub calls: u64,
    pub elapsed: Duration,
    /// Failed calls by rpc-error kind, in the order of [`RpcError::KINDS`].
    pub errors: [u64; 8],
    /// Latencies of every call that ended, failed or not.
    pub latency: Latencies,
}

impl Report {
    /// Calls per second.
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Failed calls.
    pub fn failed(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// The report as text lines.
    pub fn text(&self) -> String {
        let us = |d: Duration| format!("{:.1} µs", d.as_secs_f64() * 1e6);
        let mut out = format!(
            "calls: {}  in {:.2} s  ({:.0} calls/s)\nlatency: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}\n",
            self.calls,
            self.elapsed.as_secs_f64(),
            self.rate(),
            us(self.latency.quantile(0.50)),
            us(self.latency.quantile(0.90)),
            us(self.latency.quantile(0.99)),
            us(self.latency.quantile(0.999)),
            us(self.latency.max()),
        );
        let errors: Vec<String> = RpcError::KINDS
            .iter()
            .zip(self.errors)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        out.push_str(&format!(
            "errors: {}\n",
            if errors.is_empty() {
                "none".to_string()
            } else {
                errors.join(", ")
            }
        ));
        out
    }

    /// The report as one JSON object (latencies in microseconds).
    pub fn json(&self) -> serde_json::Value {
        let us = |d: Duration| (d.as_secs_f64() * 1e7).round() / 10.0;
        let errors: serde_json::Map<String, serde_json::Value> = RpcError::KINDS
            .iter()
            .zip(self.errors)
            .map(|(k, n)| (k.to_string(), n.into()))
            .collect();
        serde_json::json!({
            "calls": self.calls,
            "seconds": self.elapsed.as_secs_f64(),
            "calls_per_sec": (self.rate() * 10.0).round() / 10.0,
            "latency_us": {
                "p50": us(self.latency.quantile(0.50)),
                "p90": us(self.latency.quantile(0.90)),
                "p99": us(self.latency.quantile(0.99)),
                "p99.9": us(self.latency.quantile(0.999)),
                "max": us(self.latency.max()),
            },
            "errors": errors,
        })
    }
}

/// What the callers share: counts for the progress line, and the latencies at the end.
#[derive(Default)]
struct Shared {
    calls: AtomicU64,
    failed: AtomicU64,
    errors: [AtomicU64; 8],
    latencies: Mutex<Latencies>,
}

impl Shared {
    fn count(&self, result: &Result<crate::rpc::RpcResult, RpcError>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            self.errors[e.kind_index()].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Calls `inv` through `reference` as `opts` says and reports.
pub async fn run(reference: Arc<Reference>, inv: Invocation, opts: &BenchOptions) -> Report {
    let inv = Arc::new(inv);
    if !opts.warmup.is_zero() {
        let _ = load(&reference, &inv, opts, opts.warmup, false).await;
    }
    let (shared, elapsed) = load(&reference, &inv, opts, opts.duration, opts.progress).await;
    let latency = shared
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    let mut errors = [0; 8];
    for (e, c) in errors.iter_mut().zip(&shared.errors) {
        *e = c.load(Ordering::Relaxed);
    }
    Report {
        calls: shared.calls.load(Ordering::Relaxed),
        elapsed,
        errors,
        latency,
    }
}

/// One phase of calls for `length`.
async fn load(
    reference: &Arc<Reference>,
    inv: &Arc<Invocation>,
    opts: &BenchOptions,
    length: Duration,
    progress: bool,
) -> (Arc<Shared>, Duration) {
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let end = tokio::time::Instant::now() + length;
    let reporter = progress.then(|| tokio::spawn(report_progress(shared.clone(), started)));
    match opts.rate {
        None => closed_loop(reference, inv, opts.concurrency, &shared, end).await,
        Some(rate) => open_loop(reference, inv, opts.concurrency, rate, &shared, end).await,
    }
    if let Some(r) = reporter {
        r.abort();
    }
    (shared, started.elapsed())
}

async fn closed_loop(
    reference: &Arc<Reference>,
    inv: &Arc<Invocation>,
    concurrency: usize,
    shared: &Arc<Shared>,
    end: tokio::time::Instant,
) {
    let callers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (reference, inv, shared) = (reference.clone(), inv.clone(), shared.clone());
            tokio::spawn(async move {
                let mut mine = Latencies::default();
                // As a guest's import holds it: the method resolved once.
                let site = reference.site(&inv.method);
                while tokio::time::Instant::now() < end {
                    let at = Instant::now();
                    let result = reference.invoke_at(&site, &inv, None).await;
                    mine.record(at.elapsed());
                    shared.count(&result);
                }
                if let Ok(mut all) = shared.latencies.lock() {
                    all.merge(&mine);
                }
            })
        })
        .collect();
    for c in callers {
        let _ = c.await;
    }
}

async fn open_loop(
    reference: &Arc<Reference>,
    inv: &Arc<Invocation>,
    concurrency: usize,
    rate: f64,
    shared: &Arc<Shared>,
    end: tokio::time::Instant,
) {
    let gap = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let mut tick = tokio::time::interval(gap);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let site = Arc::new(reference.site(&inv.method));
    let mut calls = tokio::task::JoinSet::new();
    loop {
        let due = tick.tick().await;
        if due >= end {
            break;
        }
        // At most `concurrency` in flight: a call waits for a slot, and its wait counts.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let (reference, inv, shared) = (reference.clone(), inv.clone(), shared.clone());
        let site = site.clone();
        calls.spawn(async move {
            let result = reference.invoke_at(&site, &inv, None).await;
            let took = due.elapsed();
            drop(slot);
            shared.count(&result);
            if let Ok(mut all) = shared.latencies.lock() {
                all.record(took);
            }
        });
        while calls.try_join_next().is_some() {}
    }
    while calls.join_next().await.is_some() {}
}

async fn report_progress(shared: Arc<Shared>, started: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let (mut calls, mut failed) = (0, 0);
    loop {
        tick.tick().await;
        let (c, f) = (
            shared.calls.load(Ordering::Relaxed),
            shared.failed.load(Ordering::Relaxed),
        );
        eprintln!(
            "{:>4.0}s  {:>9} calls/s  {:>6} errors",
            started.elapsed().as_secs_f64(),
            c - calls,
            f - failed
        );
        (calls, failed) = (c, f);
    }
}

/// Reads `10s`, `500ms`, `2m` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{text}`: the unit must be ms, s or m")),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("`{text}` must be more than zero"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut l = Latencies::default();
        for us in 1..=10_000u64 {
            l.record(Duration::from_micros(us));
        }
        for (q, want) in [
            (0.5, 5_000.0),
            (0.9, 9_000.0),
            (0.99, 9_900.0),
            (0.999, 9_990.0),
        ] {
            let got = l.quantile(q).as_secs_f64() * 1e6;
            assert!((got - want).abs() / want < 0.01, "p{q}: {got} vs {want}");
        }
        assert_eq!(l.max(), Duration::from_micros(10_000));
        assert_eq!(l.count(), 10_000);
        let mut other = Latencies::default();
        other.record(Duration::from_secs(1));
        l.merge(&other);
        assert_eq!(l.max(), Duration::from_secs(1));
    }

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
    }
}
