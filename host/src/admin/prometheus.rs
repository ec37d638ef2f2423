//! `GET /metrics`: the Prometheus text format (0.0.4) of everything the host counts — calls per
//! reference and method, providers, registry sessions and guests — and the primitives that
//! write it. Rendering runs per scrape and may allocate.

use std::collections::BTreeMap;
use std::fmt::{Display, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::views::sorted;
use crate::host::Host;
use crate::metrics::{Histogram, MethodMetrics, BUCKETS, BUCKET_LABELS, ERROR_KINDS};
use crate::reference::{Reference, References};

/// Everything `GET /metrics` shows: references, providers and registries, then guests.
pub fn render_metrics(host: &Host, out: &mut String) {
    render_references(out, &host.references());
    let slots = host.slots_sorted();
    type Read = fn(&crate::wasm::GuestSlot) -> u64;
    let families: [(&str, &str, &str, Read); 5] = [
        (
            "dubbo_guest_requests_total",
            "counter",
            "HTTP requests routed to the guest.",
            |s| s.counters().requests.load(Ordering::Relaxed),
        ),
        (
            "dubbo_guest_traps_total",
            "counter",
            "Requests the guest failed: trap, time limit, or no response.",
            |s| s.counters().traps.load(Ordering::Relaxed),
        ),
        (
            "dubbo_guest_swaps_total",
            "counter",
            "Guest versions swapped in after the first.",
            |s| s.counters().swaps.load(Ordering::Relaxed),
        ),
        (
            "dubbo_guest_swaps_refused_total",
            "counter",
            "Guest versions refused (did not compile or bind); the previous version kept serving.",
            |s| s.counters().refused.load(Ordering::Relaxed),
        ),
        (
            "dubbo_guest_generation",
            "gauge",
            "Generation of the version serving now (1 at startup).",
            |s| s.generation(),
        ),
    ];
    let names: Vec<String> = slots
        .iter()
        .map(|s| s.current().name().to_string())
        .collect();
    for (name, kind, help, read) in families {
        write_family(out, name, kind, help);
        for (slot, guest) in slots.iter().zip(&names) {
            write_sample(out, name, &[("guest", guest)], read(slot));
        }
    }
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
/// - `dubbo_consumer_mock_total{reference,interface,method}`: calls a mock answered.
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
        for kind in ERROR_KINDS {
            let labels = [reference, interface, method, ("kind", kind)];
            write_sample(out, ERRORS, &labels, s.metrics.errors(kind));
        }
    }

    const MOCKED: &str = "dubbo_consumer_mock_total";
    write_family(
        out,
        MOCKED,
        "counter",
        "Calls a mock answered (mock=force:..., or mock=fail:... after a failure), per reference and Java method.",
    );
    for s in &calls {
        write_sample(out, MOCKED, &s.labels(), s.metrics.mocked());
    }

    const RT: &str = "dubbo_consumer_rt_seconds";
    write_family(
        out,
        RT,
        "histogram",
        "Latency of calls that ended (successful or not), in seconds.",
    );
    for s in &calls {
        write_histogram(out, s.metrics.rt(), RT, &s.labels());
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

/// Writes the samples of one series of a histogram family: `{name}_bucket` with `labels`
/// plus `le` for every bucket (cumulative), `{name}_sum` in seconds and `{name}_count`.
/// The family's `# HELP`/`# TYPE` lines are the caller's ([`write_family`] with
/// `histogram`), since a family holds many series.
pub fn write_histogram(out: &mut String, h: &Histogram, name: &str, labels: &[(&str, &str)]) {
    // Sum read before the buckets, so a concurrent call never makes the sum cover more
    // observations than `_count` shows.
    let sum = h.sum().as_secs_f64();
    let cumulative = h.cumulative();
    for (count, le) in cumulative.iter().zip(BUCKET_LABELS) {
        write_series(out, name, "_bucket", labels, Some(("le", le)));
        let _ = writeln!(out, " {count}");
    }
    write_series(out, name, "_sum", labels, None);
    let _ = writeln!(out, " {sum}");
    write_series(out, name, "_count", labels, None);
    let _ = writeln!(out, " {}", cumulative[BUCKETS - 1]);
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::admin::views::testing::{references, say_hello, unreachable_reference};
    use crate::protocol::dubbo::ConnectionPool;

    #[test]
    fn histogram_renders_cumulative_buckets_sum_and_count() {
        let h = Histogram::new();
        h.observe(Duration::from_millis(2));
        h.observe(Duration::from_millis(200));
        let mut out = String::new();
        write_histogram(&mut out, &h, "rt", &[("m", "a")]);
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
}
