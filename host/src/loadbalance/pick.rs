//! Weighted random picks shared by the strategies: a prefix-sum pick over every provider
//! (`random`) and a one-pass pick among the providers tied for best (`leastactive`,
//! `shortestresponse`), both following Dubbo's rule that equal or all-zero weights mean uniform.

use std::cell::RefCell;
use std::sync::Arc;

use super::weight::weight;
use crate::rpc::Invoker;

thread_local! {
    // Prefix sums reused across calls so a pick allocates only when a thread first sees a
    // larger provider list than before.
    static PREFIX: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Picks an index with probability proportional to its weight, uniformly when all weights are
/// equal or all are zero.
pub(crate) fn weighted_random(invokers: &[Arc<dyn Invoker>], method: &str, now_ms: i64) -> usize {
    PREFIX.with(|cell| match cell.try_borrow_mut() {
        Ok(mut prefix) => pick_with(&mut prefix, invokers, method, now_ms),
        // Unreachable (nothing re-enters a pick), but a fresh buffer beats a panic.
        Err(_) => pick_with(&mut Vec::new(), invokers, method, now_ms),
    })
}

fn pick_with(
    prefix: &mut Vec<u64>,
    invokers: &[Arc<dyn Invoker>],
    method: &str,
    now_ms: i64,
) -> usize {
    prefix.clear();
    let mut total = 0u64;
    let mut first = None;
    let mut same = true;
    for invoker in invokers {
        let w = u64::from(weight(invoker.url(), method, now_ms));
        same &= *first.get_or_insert(w) == w;
        total += w;
        prefix.push(total);
    }
    if same || total == 0 {
        return fastrand::usize(..invokers.len());
    }
    let r = fastrand::u64(..total);
    // The first provider whose running total passes r; zero-weight ones never do.
    prefix.partition_point(|&p| p <= r)
}

/// A weighted random choice among candidates offered one at a time (reservoir sampling), so
/// ties are broken as Dubbo does without collecting them in a list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TieBreak {
    weighted: usize,
    total: u64,
    uniform: usize,
    count: u64,
}

impl TieBreak {
    /// Starts with one candidate.
    pub(crate) fn new(index: usize, weight: u32) -> Self {
        TieBreak {
            weighted: index,
            total: u64::from(weight),
            uniform: index,
            count: 1,
        }
    }

    /// Offers another candidate; it replaces the current choice with probability
    /// weight / (total weight so far), which makes every candidate's final chance
    /// weight / total.
    pub(crate) fn offer(&mut self, index: usize, weight: u32) {
        self.count += 1;
        if fastrand::u64(..self.count) == 0 {
            self.uniform = index;
        }
        let weight = u64::from(weight);
        if weight > 0 {
            self.total += weight;
            if fastrand::u64(..self.total) < weight {
                self.weighted = index;
            }
        }
    }

    /// The chosen index: weighted, or uniform when every candidate weighs 0.
    pub(crate) fn chosen(&self) -> usize {
        if self.total > 0 {
            self.weighted
        } else {
            self.uniform
        }
    }
}
