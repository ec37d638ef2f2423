//! `consistenthash`: calls with the same key arguments always go to the same provider, and when
//! a provider leaves only the keys it served move. Each provider owns `hash.nodes` (default 160)
//! points on a 32-bit ring, four per MD5 of `host:port` + i; a call goes to the owner of the first
//! point at or after the MD5-derived hash of its key, wrapping around.
//!
//! The points and the key hash are Dubbo's, and the key is built from the arguments listed in
//! `hash.arguments` (default `0`) printed as Java's `String.valueOf` prints them (the
//! `java_string` module lists the limits), so a Java consumer with the same providers sends a
//! given key to the same provider. The ring is rebuilt only when the provider list or
//! `hash.nodes` changes. Weights do not apply, as in Dubbo.

use std::fmt;
use std::sync::Arc;

use md5::{Digest, Md5};

use super::java_string::write_java_string;
use super::param;
use super::state::{method_key, ByMethod, Members};
use super::LoadBalance;
use crate::rpc::{Invocation, Invoker};
use crate::url::Url;

/// Virtual nodes per provider when `hash.nodes` is not set.
pub const DEFAULT_NODES: i64 = 160;
/// Upper bound on `hash.nodes`, so a typo cannot make a ring of billions of points.
const MAX_NODES: i64 = 65_536;

/// Consistent-hash selection.
#[derive(Default)]
pub struct ConsistentHash {
    rings: ByMethod<Arc<Ring>>,
}

/// One method's ring: sorted points, each naming the index of its provider in `members`.
struct Ring {
    members: Members,
    nodes: i64,
    points: Vec<(u32, usize)>,
}

impl LoadBalance for ConsistentHash {
    fn select(&self, invokers: &[Arc<dyn Invoker>], consumer: &Url, inv: &Invocation) -> usize {
        if invokers.len() <= 1 {
            return 0;
        }
        let method = &*inv.method;
        // Fewer than 4 nodes would give a provider no point at all.
        let nodes = param::method_param_i64(consumer, method, "hash.nodes", DEFAULT_NODES)
            .clamp(4, MAX_NODES);
        let key = method_key(consumer, method);
        // Clone the ring out so the shard is locked only for a map lookup, not a ring search.
        let current = self.rings.shard(key).get(&key).cloned();
        let ring = match current {
            Some(ring) if ring.nodes == nodes && ring.members.matches(invokers) => ring,
            _ => {
                let ring = Arc::new(Ring::build(invokers, nodes));
                self.rings.shard(key).insert(key, ring.clone());
                ring
            }
        };
        let arguments = param::method_param(consumer, method, "hash.arguments").unwrap_or("0");
        ring.locate(key_hash(arguments, inv))
    }
}

impl Ring {
    fn build(invokers: &[Arc<dyn Invoker>], nodes: i64) -> Ring {
        let mut points = Vec::with_capacity(invokers.len() * nodes as usize);
        for (index, invoker) in invokers.iter().enumerate() {
            let address = invoker.url().address();
            for i in 0..nodes / 4 {
                let digest = Md5::new()
                    .chain_update(address.as_bytes())
                    .chain_update(i.to_string().as_bytes())
                    .finalize();
                for k in 0..4 {
                    points.push((ring_point(&digest, k), index));
                }
            }
        }
        // Dubbo fills a TreeMap, where a later provider's point overwrites an equal earlier
        // one: a stable sort then keeping the last of each run does the same.
        points.sort_by_key(|&(point, _)| point);
        let mut deduped: Vec<(u32, usize)> = Vec::with_capacity(points.len());
        for p in points {
            match deduped.last_mut() {
                Some(last) if last.0 == p.0 => *last = p,
                _ => deduped.push(p),
            }
        }
        Ring {
            members: Members::of(invokers),
            nodes,
            points: deduped,
        }
    }

    /// The provider owning the first point at or after `hash`, wrapping to the first point.
    fn locate(&self, hash: u32) -> usize {
        let i = self.points.partition_point(|&(point, _)| point < hash);
        self.points
            .get(i)
            .or(self.points.first())
            .map_or(0, |&(_, index)| index)
    }
}

/// The `k`-th of the four ring points in an MD5 digest: bytes 4k..4k+4, little-endian.
fn ring_point(digest: &[u8], k: usize) -> u32 {
    u32::from_le_bytes([
        digest[4 * k],
        digest[4 * k + 1],
        digest[4 * k + 2],
        digest[4 * k + 3],
    ])
}

/// The ring position of a call: MD5 over the concatenated string forms of the arguments at
/// the indices in `arguments` (a comma list; indices that are not numbers or out of range are
/// skipped, where Dubbo would fail on the former), streamed into the digest without a `String`.
fn key_hash(arguments: &str, inv: &Invocation) -> u32 {
    let mut md5 = DigestWriter(Md5::new());
    for index in arguments.split(',') {
        if let Some(arg) = index
            .trim()
            .parse::<usize>()
            .ok()
            .and_then(|i| inv.args.get(i))
        {
            // Writing into a digest cannot fail.
            let _ = write_java_string(&mut md5, arg);
        }
    }
    ring_point(&md5.0.finalize(), 0)
}

/// Feeds formatted text straight into an MD5 digest.
struct DigestWriter(Md5);

impl fmt::Write for DigestWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hessian2::Value;
    use crate::loadbalance::testing::{as_dyn, consumer, invocation, weighted};

    fn call(arg: &str) -> Invocation {
        invocation(vec![Value::String(arg.into())])
    }

    #[test]
    fn ring_points_follow_dubbos_byte_order() {
        let digest = Md5::digest(b"10.0.0.1:208800");
        let expected = (u32::from(digest[7]) << 24)
            | (u32::from(digest[6]) << 16)
            | (u32::from(digest[5]) << 8)
            | u32::from(digest[4]);
        assert_eq!(ring_point(&digest, 1), expected);
    }

    #[test]
    fn consistenthash_sends_the_same_argument_to_the_same_provider() {
        let ch = ConsistentHash::default();
        let invokers = as_dyn(&weighted(&[100; 5]));
        let url = consumer("");
        for user in ["alice", "bob", "carol", "dave"] {
            let first = ch.select(&invokers, &url, &call(user));
            for _ in 0..20 {
                assert_eq!(ch.select(&invokers, &url, &call(user)), first, "{user}");
            }
        }
        // Keys spread: 200 users do not all land on one provider.
        let mut used = [false; 5];
        for i in 0..200 {
            used[ch.select(&invokers, &url, &call(&format!("user-{i}")))] = true;
        }
        assert!(used.iter().all(|u| *u), "{used:?}");
    }

    #[test]
    fn consistenthash_moves_only_the_keys_of_a_removed_provider() {
        let ch = ConsistentHash::default();
        let providers = weighted(&[100; 5]);
        let all = as_dyn(&providers);
        let url = consumer("");
        let keys: Vec<String> = (0..2_000).map(|i| format!("order-{i}")).collect();
        let before: Vec<usize> = keys
            .iter()
            .map(|k| ch.select(&all, &url, &call(k)))
            .collect();
        // Provider 2 leaves; indices above it shift down by one in the new list.
        let remaining: Vec<_> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .map(|(_, p)| p.clone())
            .collect();
        let mut moved_from_survivors = 0;
        for (key, old) in keys.iter().zip(&before) {
            let new = ch.select(&remaining, &url, &call(key));
            let new = if new >= 2 { new + 1 } else { new };
            if *old != 2 && new != *old {
                moved_from_survivors += 1;
            }
            assert_ne!(new, 2);
        }
        assert_eq!(moved_from_survivors, 0);
    }

    #[test]
    fn hash_arguments_choose_which_arguments_form_the_key() {
        let ch = ConsistentHash::default();
        let invokers = as_dyn(&weighted(&[100; 5]));
        let url = consumer("hash.arguments=1");
        let pick = |a: &str, b: i32| {
            ch.select(
                &invokers,
                &url,
                &invocation(vec![Value::String(a.into()), Value::Int(b)]),
            )
        };
        // Only the second argument matters: varying the first never changes the provider.
        for b in 0..50 {
            let first = pick("x", b);
            assert!(["y", "z", "w"].iter().all(|a| pick(a, b) == first));
        }
    }
}
