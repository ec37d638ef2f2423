//! Test doubles for router tests: providers that are only a URL, and helpers to build
//! consumers and calls.

use std::sync::Arc;

use crate::rpc::{Invocation, Invoker};
use crate::testing::ListedInvoker;
use crate::url::Url;

/// A provider at `url` (a full `dubbo://` URL).
pub(crate) fn provider(url: &str) -> Arc<dyn Invoker> {
    Arc::new(ListedInvoker::new(
        Url::parse(url).expect("test provider URL"),
    ))
}

/// Four providers: two in region hz, one gold-tagged in sh, one on port 20881 without version.
pub(crate) fn providers() -> Vec<Arc<dyn Invoker>> {
    [
        "dubbo://10.0.0.1:20880/org.apache.dubbo.demo.DemoService?region=hz&version=1.0.0",
        "dubbo://10.0.0.2:20880/org.apache.dubbo.demo.DemoService?region=hz&version=1.0.0",
        "dubbo://10.0.0.3:20880/org.apache.dubbo.demo.DemoService?region=sh&version=1.0.0&dubbo.tag=gold",
        "dubbo://10.0.0.4:20881/org.apache.dubbo.demo.DemoService?region=bj",
    ]
    .into_iter()
    .map(provider)
    .collect()
}

/// A consumer URL on `host` with the extra `query` parameters (`k=v&...`).
pub(crate) fn consumer(host: &str, query: &str) -> Url {
    Url::parse(&format!(
        "consumer://{host}/org.apache.dubbo.demo.DemoService?application=demo-consumer&{query}"
    ))
    .expect("test consumer URL")
}

/// A call of `method` without arguments or attachments.
pub(crate) fn call(method: &str) -> Invocation {
    Invocation {
        method: method.into(),
        parameter_types: "".into(),
        args: Vec::new(),
        attachments: Vec::new(),
    }
}

/// `host:port` of each routed provider, in order.
pub(crate) fn addresses(invokers: &[Arc<dyn Invoker>]) -> Vec<String> {
    invokers.iter().map(|i| i.url().address()).collect()
}
