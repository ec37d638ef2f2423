//! `p2c`: power of two choices, in the spirit of Dubbo 3.2's `adaptive`. Two distinct providers
//! are drawn at random and the less loaded one is called, which avoids both herding onto one
//! "best" provider and the cost of scanning the whole list.
//!
//! Load is estimated from this consumer's own statistics since the invoker was created:
//!
//! ```text
//! load = (active + 1) × max(mean success µs, 1) × (calls + 1) / ((successes + 1) × weight)
//! ```
//!
//! Calls in flight and latency make a slow or busy provider costlier; the call/success ratio
//! makes a failing one costlier (a provider that only fails would otherwise look fastest, having
//! no latency); weight (with warmup) scales its share. A weight of 0 means infinite load. Dubbo's
//! `adaptive` also uses the provider's reported CPU load and an EWMA of latency returned in
//! response attachments, which dubbo:// providers here do not send, and resets the load of a
//! provider not picked for 2 × timeout; neither is done here.

use std::sync::Arc;

use super::weight::now_millis;
use super::weight_cache::WeightCache;
use super::LoadBalance;
use crate::rpc::{Invocation, Invoker};
use crate::url::Url;

/// Power-of-two-choices selection.
#[derive(Default)]
pub struct P2c {
    weights: WeightCache,
}

impl LoadBalance for P2c {
    fn select(&self, invokers: &[Arc<dyn Invoker>], consumer: &Url, inv: &Invocation) -> usize {
        let n = invokers.len();
        if n <= 1 {
            return 0;
        }
        let a = fastrand::usize(..n);
        // A draw from the other n - 1 indices: distinct from `a` and still uniform.
        let b = (a + 1 + fastrand::usize(..n - 1)) % n;
        let weights = self.weights.table(invokers, consumer, &inv.method);
        let now_ms = now_millis();
        let load_a = load(&*invokers[a], weights.weight(a, now_ms));
        let load_b = load(&*invokers[b], weights.weight(b, now_ms));
        // The pair is in random order, so ties (e.g. two untried providers) split evenly.
        if load_b < load_a {
            b
        } else {
            a
        }
    }
}

/// The load estimate of the module doc for a provider of weight `w`; lower is better.
fn load(invoker: &dyn Invoker, w: u32) -> f64 {
    if w == 0 {
        return f64::INFINITY;
    }
    let stats = invoker.stats();
    let succeeded = stats.succeeded() as f64;
    let calls = succeeded + stats.failed() as f64;
    let latency = stats.mean_success_micros().max(1) as f64;
    (f64::from(stats.active()) + 1.0) * latency * (calls + 1.0) / ((succeeded + 1.0) * f64::from(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadbalance::testing::{as_dyn, consumer, histogram, invocation, weighted};

    #[test]
    fn p2c_prefers_the_less_loaded_of_two() {
        let providers = weighted(&[100, 100]);
        let _busy: Vec<_> = (0..5).map(|_| providers[0].stats.begin()).collect();
        let invokers = as_dyn(&providers);
        let (url, inv) = (consumer(""), invocation(vec![]));
        let lb = P2c::default();
        let counts = histogram(2, 1_000, || lb.select(&invokers, &url, &inv));
        assert_eq!(counts, vec![0, 1_000]);
    }

    #[test]
    fn p2c_never_picks_the_most_loaded_of_many() {
        fastrand::seed(0x5eed);
        let providers = weighted(&[100; 4]);
        // Load grows with the index, so index 3 loses every pair it is drawn into.
        let _busy: Vec<_> = (0..4)
            .flat_map(|i| (0..i).map(move |_| i))
            .map(|i| providers[i].stats.begin())
            .collect();
        let invokers = as_dyn(&providers);
        let (url, inv) = (consumer(""), invocation(vec![]));
        let lb = P2c::default();
        let counts = histogram(4, 12_000, || lb.select(&invokers, &url, &inv));
        assert_eq!(counts[3], 0);
        // Index 0 wins every pair it is in: 3 of the 6 pairs, so about half the calls.
        assert!(counts[0] > 5_000 && counts[0] < 7_000, "{counts:?}");
        assert!(counts[0] > counts[1] && counts[1] > counts[2], "{counts:?}");
    }

    #[test]
    fn p2c_avoids_a_failing_provider() {
        let providers = weighted(&[100, 100]);
        for _ in 0..10_000 {
            providers[0].stats.begin().finish(false);
        }
        for _ in 0..10 {
            providers[1].stats.begin().finish(true);
        }
        let invokers = as_dyn(&providers);
        let (url, inv) = (consumer(""), invocation(vec![]));
        let lb = P2c::default();
        // Provider 0's load is ~100 (failures); provider 1's is its mean latency in µs / 100,
        // so it wins unless its ten instant calls averaged 10 ms.
        let counts = histogram(2, 100, || lb.select(&invokers, &url, &inv));
        assert_eq!(counts, vec![0, 100]);
    }
}
