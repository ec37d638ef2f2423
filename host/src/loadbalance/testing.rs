//! Test helpers for the balancer tests: providers (listed, never called), consumers, calls.

use std::sync::Arc;

use crate::rpc::{Invocation, Invoker};
use crate::testing::ListedInvoker;
use crate::url::Url;

/// A provider at `10.0.0.{n}:20880` with the given extra URL query (may be empty).
pub(crate) fn provider(n: u8, query: &str) -> Arc<ListedInvoker> {
    let url = Url::parse(&format!(
        "dubbo://10.0.0.{n}:20880/org.apache.dubbo.demo.DemoService?{query}"
    ))
    .expect("test URL parses");
    Arc::new(ListedInvoker::new(url))
}

/// Providers with the given weights.
pub(crate) fn weighted(weights: &[u32]) -> Vec<Arc<ListedInvoker>> {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| provider(i as u8 + 1, &format!("weight={w}")))
        .collect()
}

/// The same providers as trait objects, as balancers receive them.
pub(crate) fn as_dyn(providers: &[Arc<ListedInvoker>]) -> Vec<Arc<dyn Invoker>> {
    providers
        .iter()
        .map(|p| p.clone() as Arc<dyn Invoker>)
        .collect()
}

/// The reference's URL.
pub(crate) fn consumer(query: &str) -> Url {
    Url::parse(&format!(
        "consumer://10.0.0.100/org.apache.dubbo.demo.DemoService?{query}"
    ))
    .expect("test URL parses")
}

/// A `sayHello` call with the given arguments.
pub(crate) fn invocation(args: Vec<crate::hessian2::Value>) -> Invocation {
    Invocation {
        method: "sayHello".into(),
        parameter_types: "Ljava/lang/String;".into(),
        args,
        attachments: Vec::new(),
    }
}

/// How often each index was picked over `n` calls of `pick`.
pub(crate) fn histogram(len: usize, n: usize, mut pick: impl FnMut() -> usize) -> Vec<usize> {
    let mut counts = vec![0; len];
    for _ in 0..n {
        counts[pick()] += 1;
    }
    counts
}
