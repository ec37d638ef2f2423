//! `roundrobin`: smooth weighted round robin as nginx does it. On every call each provider's
//! `current` grows by its weight, the largest wins and gives back the total, so over any window
//! each provider is picked in proportion to its weight and picks of a heavy provider are spread
//! out (5,1,1 gives `a a b a c a a`, not `a a a a a b c`).
//!
//! State is kept per `serviceKey.method` and per provider identity (`protocol://host:port/path`),
//! so a provider keeps its place when the list is rebuilt around it. A provider absent from the
//! list for more than 60 s is forgotten, as in Dubbo. Dubbo updates the counters with atomics
//! and no lock; here one short critical section per call keeps the sequence exactly smooth under
//! concurrency, and the state is sharded by method so different methods do not contend.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::state::{method_key, ByMethod, Members};
use super::weight::{now_millis, WeightParams};
use super::LoadBalance;
use crate::rpc::{Invocation, Invoker};
use crate::url::Url;

/// How long the counter of a provider that left the list is kept in case it returns.
const RECYCLE_AFTER: Duration = Duration::from_secs(60);

/// Smooth weighted round robin selection.
#[derive(Default)]
pub struct RoundRobin {
    methods: ByMethod<MethodState>,
}

/// One method's counters, aligned with the provider list last seen.
#[derive(Default)]
struct MethodState {
    members: Members,
    slots: Vec<Slot>,
    /// Counters of providers that left the list, by identity, with when they left.
    departed: HashMap<String, (Slot, Instant)>,
}

#[derive(Debug, Clone)]
struct Slot {
    identity: String,
    /// The provider's weight parameters, parsed when it joined the list.
    params: WeightParams,
    /// The effective weight on the last call, to notice warmup and override changes.
    weight: u32,
    current: i64,
}

impl LoadBalance for RoundRobin {
    fn select(&self, invokers: &[Arc<dyn Invoker>], consumer: &Url, inv: &Invocation) -> usize {
        if invokers.len() <= 1 {
            return 0;
        }
        let now_ms = now_millis();
        let key = method_key(consumer, &inv.method);
        let mut shard = self.methods.shard(key);
        let state = shard.entry(key).or_default();
        if !state.members.matches(invokers) {
            state.realign(invokers, &inv.method);
        }
        let mut total = 0i64;
        let mut best = 0;
        let mut best_current = i64::MIN;
        for (i, slot) in state.slots.iter_mut().enumerate() {
            let w = slot.params.at(now_ms);
            if w != slot.weight {
                // A new weight (warmup, override) restarts the provider's counter, as Dubbo does.
                slot.weight = w;
                slot.current = 0;
            }
            slot.current += i64::from(w);
            total += i64::from(w);
            if slot.current > best_current {
                best_current = slot.current;
                best = i;
            }
        }
        if total == 0 {
            // All weights are 0: rotate through them as if all weighed 1.
            best_current = i64::MIN;
            for (i, slot) in state.slots.iter_mut().enumerate() {
                slot.current += 1;
                if slot.current > best_current {
                    best_current = slot.current;
                    best = i;
                }
            }
            total = state.slots.len() as i64;
        }
        state.slots[best].current -= total;
        best
    }
}

impl MethodState {
    /// Rebuilds the slots for a new provider list, carrying over the counters of providers
    /// that stay or come back within [`RECYCLE_AFTER`].
    fn realign(&mut self, invokers: &[Arc<dyn Invoker>], method: &str) {
        let now = Instant::now();
        self.departed
            .retain(|_, (_, left)| now.duration_since(*left) <= RECYCLE_AFTER);
        let mut previous: HashMap<String, Slot> = self
            .slots
            .drain(..)
            .map(|slot| (slot.identity.clone(), slot))
            .collect();
        self.slots = invokers
            .iter()
            .map(|invoker| {
                let url = invoker.url();
                let identity = identity(url);
                // The same provider may come back with new parameters (an override).
                let params = WeightParams::parse(url, method);
                let kept = previous
                    .remove(&identity)
                    .or_else(|| self.departed.remove(&identity).map(|(slot, _)| slot));
                match kept {
                    Some(slot) => Slot { params, ..slot },
                    None => Slot {
                        identity,
                        params,
                        weight: 0,
                        current: 0,
                    },
                }
            })
            .collect();
        for (identity, slot) in previous {
            self.departed.insert(identity, (slot, now));
        }
        self.members = Members::of(invokers);
    }
}

/// Dubbo's `toIdentityString` without credentials: what makes two URLs the same provider.
fn identity(url: &Url) -> String {
    format!("{}://{}:{}/{}", url.protocol, url.host, url.port, url.path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadbalance::testing::{as_dyn, consumer, histogram, invocation, weighted};

    #[test]
    fn roundrobin_is_smooth() {
        let rr = RoundRobin::default();
        let invokers = as_dyn(&weighted(&[5, 1, 1]));
        let (url, inv) = (consumer(""), invocation(vec![]));
        let names = ["a", "b", "c"];
        let sequence: Vec<_> = (0..14)
            .map(|_| names[rr.select(&invokers, &url, &inv)])
            .collect();
        let cycle = ["a", "a", "b", "a", "c", "a", "a"];
        assert_eq!(sequence[..7], cycle);
        assert_eq!(sequence[7..], cycle);
    }

    #[test]
    fn roundrobin_rotates_evenly_when_all_weights_are_zero() {
        let rr = RoundRobin::default();
        let invokers = as_dyn(&weighted(&[0, 0, 0]));
        let (url, inv) = (consumer(""), invocation(vec![]));
        let counts = histogram(3, 300, || rr.select(&invokers, &url, &inv));
        assert_eq!(counts, vec![100, 100, 100]);
    }

    #[test]
    fn roundrobin_keeps_counters_of_providers_that_stay() {
        let rr = RoundRobin::default();
        let providers = weighted(&[1, 1, 1]);
        let (url, inv) = (consumer(""), invocation(vec![]));
        let all = as_dyn(&providers);
        assert_eq!(rr.select(&all, &url, &inv), 0);
        // Counters are now [-2, 1, 1]. Provider 0 leaves; 1 and 2 keep theirs and 1 wins.
        let without_first = as_dyn(&providers[1..]);
        assert_eq!(rr.select(&without_first, &url, &inv), 0);
        // Provider 0 returns with its old counter (-2), so it waits its turn: counters go
        // [-1, 1, 3] -> pick 2, [0, 2, 1] -> pick 1, [1, 0, 2] -> pick 2. Had it been reset to
        // 0 it would have been picked second.
        let picks: Vec<_> = (0..3).map(|_| rr.select(&all, &url, &inv)).collect();
        assert_eq!(picks, vec![2, 1, 2]);
    }
}
