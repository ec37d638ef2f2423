//! `shortestresponse`: sends the call to the provider expected to answer first, estimated as its
//! mean successful-call latency times (calls in flight + 1); ties are broken by weighted random.
//!
//! Dubbo averages over a sliding 30 s window; this uses the mean since the provider's invoker
//! was created ([`CallStats::mean_success_micros`]), which reacts more slowly to a provider that
//! becomes slow but needs no timer or per-call bookkeeping. A provider with no successful call
//! yet estimates 0 and so is tried first, as in Dubbo.
//!
//! [`CallStats::mean_success_micros`]: crate::rpc::CallStats::mean_success_micros

use std::sync::Arc;

use super::pick::lowest_then_weighted;
use super::weight::now_millis;
use super::weight_cache::WeightCache;
use super::LoadBalance;
use crate::rpc::{Invocation, Invoker};
use crate::url::Url;

/// Shortest-expected-response selection.
#[derive(Default)]
pub struct ShortestResponse {
    weights: WeightCache,
}

impl LoadBalance for ShortestResponse {
    fn select(&self, invokers: &[Arc<dyn Invoker>], consumer: &Url, inv: &Invocation) -> usize {
        if invokers.len() <= 1 {
            return 0;
        }
        let weights = self.weights.table(invokers, consumer, &inv.method);
        let now_ms = now_millis();
        lowest_then_weighted(
            invokers.len(),
            |i| {
                let stats = invokers[i].stats();
                stats
                    .mean_success_micros()
                    .saturating_mul(u64::from(stats.active()) + 1)
            },
            |i| weights.weight(i, now_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::loadbalance::testing::{as_dyn, consumer, histogram, invocation, weighted};

    #[test]
    fn shortestresponse_prefers_the_fast_provider() {
        let providers = weighted(&[100, 100, 100]);
        // Every provider has answered once, so none is preferred for being untried; sleeping
        // can only overshoot, which keeps the slow ones slow.
        for (i, p) in providers.iter().enumerate() {
            let call = p.stats.begin();
            if i != 1 {
                std::thread::sleep(Duration::from_millis(20));
            }
            call.finish(true);
        }
        let invokers = as_dyn(&providers);
        let (url, inv) = (consumer(""), invocation(vec![]));
        let lb = ShortestResponse::default();
        let counts = histogram(3, 1_000, || lb.select(&invokers, &url, &inv));
        assert_eq!(counts, vec![0, 1_000, 0]);
    }

    #[test]
    fn shortestresponse_counts_calls_in_flight() {
        let providers = weighted(&[100, 100]);
        for (i, p) in providers.iter().enumerate() {
            let call = p.stats.begin();
            std::thread::sleep(Duration::from_millis(if i == 0 { 1 } else { 5 }));
            call.finish(true);
        }
        // 100 calls queued on the fast one (>= 1 ms each) make it slower than the idle slow one
        // unless the slow one's single sleep overshot by ~100 ms.
        let _queued: Vec<_> = (0..100).map(|_| providers[0].stats.begin()).collect();
        let invokers = as_dyn(&providers);
        let (url, inv) = (consumer(""), invocation(vec![]));
        let lb = ShortestResponse::default();
        assert_eq!(lb.select(&invokers, &url, &inv), 1);
    }
}
