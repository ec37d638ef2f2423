//! `random`, Dubbo's default: each call picks a provider at random in proportion to its weight
//! (uniformly when the weights are equal), which spreads load well with no shared state.

use std::sync::Arc;

use super::pick::weighted_random;
use super::weight::now_millis;
use super::weight_cache::WeightCache;
use super::LoadBalance;
use crate::rpc::{Invocation, Invoker};
use crate::url::Url;

/// Weighted random selection.
#[derive(Default)]
pub struct Random {
    weights: WeightCache,
}

impl LoadBalance for Random {
    fn select(&self, invokers: &[Arc<dyn Invoker>], consumer: &Url, inv: &Invocation) -> usize {
        if invokers.len() <= 1 {
            return 0;
        }
        let weights = self.weights.table(invokers, consumer, &inv.method);
        let now_ms = now_millis();
        weighted_random(invokers.len(), |i| weights.weight(i, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadbalance::testing::{as_dyn, consumer, histogram, invocation, weighted};

    const PICKS: usize = 100_000;

    #[test]
    fn random_follows_weights_within_tolerance() {
        // Seeded: the counts are the same on every run, and the tolerance leaves ~8 standard
        // deviations of room should the generator ever change.
        fastrand::seed(0x5eed);
        let random = Random::default();
        let invokers = as_dyn(&weighted(&[100, 200, 700]));
        let (url, inv) = (consumer(""), invocation(vec![]));
        let counts = histogram(3, PICKS, || random.select(&invokers, &url, &inv));
        for (count, expected) in counts.iter().zip([0.1, 0.2, 0.7]) {
            let share = *count as f64 / PICKS as f64;
            assert!((share - expected).abs() < 0.02, "{counts:?}");
        }
    }

    #[test]
    fn random_is_uniform_when_weights_are_equal() {
        fastrand::seed(0x5eed);
        let random = Random::default();
        let invokers = as_dyn(&weighted(&[50, 50, 50, 50]));
        let (url, inv) = (consumer(""), invocation(vec![]));
        let counts = histogram(4, PICKS, || random.select(&invokers, &url, &inv));
        for count in &counts {
            let share = *count as f64 / PICKS as f64;
            assert!((share - 0.25).abs() < 0.02, "{counts:?}");
        }
    }

    #[test]
    fn random_never_picks_a_zero_weight_provider_unless_all_are_zero() {
        fastrand::seed(0x5eed);
        let random = Random::default();
        let (url, inv) = (consumer(""), invocation(vec![]));
        let some_zero = as_dyn(&weighted(&[0, 100, 0]));
        let counts = histogram(3, 10_000, || random.select(&some_zero, &url, &inv));
        assert_eq!(counts, vec![0, 10_000, 0]);
        let all_zero = as_dyn(&weighted(&[0, 0]));
        let counts = histogram(2, 10_000, || random.select(&all_zero, &url, &inv));
        assert!(counts.iter().all(|c| *c > 4_000), "{counts:?}");
    }
}
