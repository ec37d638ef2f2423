//! TOML text for the host configs the tests write: the tables most of them share, built once.
//!
//! Each builder returns the lines of one table (or two, for [`listeners`]) without a final
//! newline, so a `format!` template puts it on a line of its own and may follow it with more
//! keys of the same table, the ones a test sets on purpose:
//!
//! ```
//! use dubbo_wasm_host_tests::config::{demo_reference, dubbo_url, listeners};
//!
//! let text = format!(
//!     "{}\ntimeout = 3000\n\n{}\n",
//!     demo_reference("demo", &dubbo_url("127.0.0.1:20880")),
//!     listeners()
//! );
//! assert!(text.contains("url = \"dubbo://127.0.0.1:20880\"\nwit = "));
//! assert!(text.contains("\ntimeout = 3000\n"));
//! ```

use std::path::Path;

/// The Java interface of the demo service the test provider exports.
pub const DEMO_INTERFACE: &str = "org.apache.dubbo.demo.DemoService";
/// The WIT interface a guest imports to call the demo service.
pub const DEMO_WIT: &str = "org-apache-dubbo:demo/demo-service";
/// The Java interface of the user service the test provider exports.
pub const USER_INTERFACE: &str = "org.apache.dubbo.samples.UserService";
/// The WIT interface a guest imports to call the user service.
pub const USER_WIT: &str = "org-apache-dubbo:samples/user-service";

/// The provider line of a reference called directly at `addr` (`host:port`).
pub fn dubbo_url(addr: &str) -> String {
    format!("url = \"dubbo://{addr}\"")
}

/// A `[[reference]]` table for version 1.0.0 of `interface`, bound to the guest interface
/// `wit`. `provider` is the line that says where the providers are: [`dubbo_url`] or
/// `registry = ["zk"]`.
pub fn reference(id: &str, interface: &str, provider: &str, wit: &str) -> String {
    format!(
        "[[reference]]\nid = \"{id}\"\ninterface = \"{interface}\"\nversion = \"1.0.0\"\n{provider}\nwit = \"{wit}\""
    )
}

/// [`reference`] to the demo service.
pub fn demo_reference(id: &str, provider: &str) -> String {
    reference(id, DEMO_INTERFACE, provider, DEMO_WIT)
}

/// [`reference`] to the user service.
pub fn user_reference(id: &str, provider: &str) -> String {
    reference(id, USER_INTERFACE, provider, USER_WIT)
}

/// A `[[registry]]` table: the ZooKeeper at `address` (`zookeeper://host:port`), known to
/// references as `id`.
pub fn zookeeper_registry(id: &str, address: &str) -> String {
    format!("[[registry]]\nid = \"{id}\"\naddress = \"{address}\"")
}

/// A `[[guest]]` table: the component at `path`, run by HTTP requests under `route` and
/// granted the references whose ids are `references`.
pub fn http_guest(name: &str, path: &Path, route: &str, references: &[&str]) -> String {
    let references = references
        .iter()
        .map(|id| format!("\"{id}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "[[guest]]\nname = \"{name}\"\npath = \"{}\"\ntrigger = \"http\"\nroute = \"{route}\"\nreferences = [{references}]",
        path.display()
    )
}

/// The `[http]` table, serving on `listen`.
pub fn http_listener(listen: &str) -> String {
    format!("[http]\nlisten = \"{listen}\"")
}

/// `[http]` and then `[admin]`, each on a free loopback port (`127.0.0.1:0`), so hosts of
/// parallel tests cannot clash. Keys that follow belong to `[admin]`.
pub fn listeners() -> String {
    format!(
        "{}\n\n[admin]\nlisten = \"127.0.0.1:0\"",
        http_listener("127.0.0.1:0")
    )
}
