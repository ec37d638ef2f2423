//! Weighted random picks shared by the strategies: a prefix-sum pick over every provider
//! (`random`) and the same pick among the providers tied for the lowest score (`leastactive`,
//! `shortestresponse`), both following Dubbo's rule that equal or all-zero weights mean uniform.

use std::cell::RefCell;
use std::cmp::Ordering;

thread_local! {
    // Prefix sums reused across calls so a pick allocates only when a thread first sees a
    // larger provider list than before.
    static PREFIX: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    // Indices tied for lowest score with the running total of their weights.
    static TIES: RefCell<Vec<(usize, u64)>> = const { RefCell::new(Vec::new()) };
}

/// Picks an index below `len` with probability proportional to `weight_of(index)`, uniformly
/// when all weights are equal or all are zero.
pub(crate) fn weighted_random(len: usize, weight_of: impl Fn(usize) -> u32) -> usize {
    PREFIX.with(|cell| match cell.try_borrow_mut() {
        Ok(mut prefix) => pick_with(&mut prefix, len, weight_of),
        // Unreachable (nothing re-enters a pick), but a fresh buffer beats a panic.
        Err(_) => pick_with(&mut Vec::new(), len, weight_of),
    })
}

fn pick_with(prefix: &mut Vec<u64>, len: usize, weight_of: impl Fn(usize) -> u32) -> usize {
    prefix.clear();
    let mut total = 0u64;
    let mut first = None;
    let mut same = true;
    for i in 0..len {
        let w = u64::from(weight_of(i));
        same &= *first.get_or_insert(w) == w;
        total += w;
        prefix.push(total);
    }
    if same || total == 0 {
        return fastrand::usize(..len);
    }
    let r = fastrand::u64(..total);
    // The first index whose running total passes r; zero-weight ones never do.
    prefix.partition_point(|&p| p <= r)
}

/// Picks among the indices with the lowest `score_of`, by weight as [`weighted_random`] does.
/// Each score is read once, so statistics moving during the scan cannot make the result
/// inconsistent; weights are only computed for indices that tie for lowest so far.
pub(crate) fn lowest_then_weighted<S: Ord>(
    len: usize,
    score_of: impl Fn(usize) -> S,
    weight_of: impl Fn(usize) -> u32,
) -> usize {
    TIES.with(|cell| match cell.try_borrow_mut() {
        Ok(mut ties) => lowest_with(&mut ties, len, score_of, weight_of),
        Err(_) => lowest_with(&mut Vec::new(), len, score_of, weight_of),
    })
}

fn lowest_with<S: Ord>(
    ties: &mut Vec<(usize, u64)>,
    len: usize,
    score_of: impl Fn(usize) -> S,
    weight_of: impl Fn(usize) -> u32,
) -> usize {
    ties.clear();
    let mut lowest: Option<S> = None;
    let mut total = 0u64;
    let mut first = 0u64;
    let mut same = true;
    for i in 0..len {
        let score = score_of(i);
        match lowest.as_ref().map(|l| score.cmp(l)) {
            Some(Ordering::Greater) => continue,
            Some(Ordering::Equal) => {
                let w = u64::from(weight_of(i));
                same &= w == first;
                total += w;
            }
            Some(Ordering::Less) | None => {
                ties.clear();
                lowest = Some(score);
                first = u64::from(weight_of(i));
                total = first;
                same = true;
            }
        }
        // (index, running total of the tied weights): the prefix sums of a weighted pick.
        ties.push((i, total));
    }
    if ties.len() == 1 {
        return ties[0].0;
    }
    if same || total == 0 {
        return ties[fastrand::usize(..ties.len())].0;
    }
    let r = fastrand::u64(..total);
    let k = ties.partition_point(|&(_, p)| p <= r);
    ties.get(k).map_or(0, |&(i, _)| i)
}
