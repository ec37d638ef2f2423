//! The demo's config file stays valid as the config format evolves.

use dubbo_wasm_host::config::{Config, Trigger};
use dubbo_wasm_host_tests::process::repo_root;

#[test]
fn demo_config_is_valid_and_points_at_the_built_example_guest() {
    let cfg = Config::load(&repo_root().join("guest-examples/demo.toml")).expect("valid demo.toml");
    assert_eq!(
        cfg.references[0].url.as_deref(),
        Some("dubbo://127.0.0.1:20880")
    );
    let guest = &cfg.guests[0];
    assert_eq!(guest.trigger, Trigger::Http);
    assert!(
        cfg.guest_path(guest)
            .ends_with("guest-examples/target/wasm32-wasip2/release/hello_http.wasm"),
        "{}",
        cfg.guest_path(guest).display()
    );
}
