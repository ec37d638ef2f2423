//! `leastactive`: sends the call to the provider with the fewest calls in flight from this
//! consumer, so slow providers receive less; ties are broken by weighted random.
//!
//! As in Dubbo, "in flight" is what this consumer counts ([`CallStats::active`]), not the
//! provider's own load.
//!
//! [`CallStats::active`]: crate::rpc::CallStats::active

use std::sync::Arc;

use super::pick::lowest_then_weighted;
use super::weight::now_millis;
use super::weight_cache::WeightCache;
use super::LoadBalance;
use crate::rpc::{Invocation, Invoker};
use crate::url::Url;

/// Least-active selection.
#[derive(Default)]
pub struct LeastActive {
    weights: WeightCache,
}

impl LoadBalance for LeastActive {
    fn select(&self, invokers: &[Arc<dyn Invoker>], consumer: &Url, inv: &Invocation) -> usize {
        if invokers.len() <= 1 {
            return 0;
        }
        let weights = self.weights.table(invokers, consumer, &inv.method);
        let now_ms = now_millis();
        lowest_then_weighted(
            invokers.len(),
            |i| invokers[i].stats().active(),
            |i| weights.weight(i, now_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadbalance::testing::{as_dyn, consumer, histogram, invocation, weighted};

    #[test]
    fn leastactive_prefers_the_idle_provider() {
        let providers = weighted(&[100, 100, 100]);
        let busy: Vec<_> = [0, 2]
            .iter()
            .flat_map(|&i| (0..3).map(move |_| i))
            .map(|i| providers[i].stats.begin())
            .collect();
        let invokers = as_dyn(&providers);
        let (url, inv) = (consumer(""), invocation(vec![]));
        let lb = LeastActive::default();
        let counts = histogram(3, 1_000, || lb.select(&invokers, &url, &inv));
        assert_eq!(counts, vec![0, 1_000, 0]);
        drop(busy);
    }

    #[test]
    fn leastactive_breaks_ties_by_weight() {
        fastrand::seed(0x5eed);
        let providers = weighted(&[100, 300, 600]);
        let _busy = providers[2].stats.begin();
        let invokers = as_dyn(&providers);
        let (url, inv) = (consumer(""), invocation(vec![]));
        let lb = LeastActive::default();
        let counts = histogram(3, 40_000, || lb.select(&invokers, &url, &inv));
        assert_eq!(counts[2], 0);
        let share = counts[1] as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.02, "{counts:?}");
    }
}
