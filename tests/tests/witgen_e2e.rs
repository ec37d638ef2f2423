//! `wit generate` end to end, the round trip the issue asks for: a real ZooKeeper; the test
//! provider publishes `UserService`'s service definition in the metadata report (Dubbo 3's
//! flat shape, and Dubbo 2.7's nested one); `dubbo-wasm-host wit generate --registry …` writes
//! the WIT package and prints the reference TOML; `check` accepts that TOML; a guest written
//! against the generated WIT (`tests/guests/generated-users`, built here for wasm32-wasip2 from
//! a copy whose `wit/deps/users` is the generated output, untouched) calls every method through
//! the host, and what it prints is asserted. The admin API serves the same WIT for the
//! configured reference.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use dubbo_wasm_host_tests::admin::{get_with, json};
use dubbo_wasm_host_tests::config::{demo_reference, dubbo_url, http_guest, http_listener};
use dubbo_wasm_host_tests::process::{
    hello_guest, repo_root, scratch_dir, start_provider_with, workspace_binary, Running,
};
use dubbo_wasm_host_tests::zookeeper::ZooKeeper;

const USER_SERVICE: &str = "org.apache.dubbo.samples.UserService";
const PACKAGE: &str = "generated:users";
const STARTUP: Duration = Duration::from_secs(30);

/// A test provider registered in `zk` as application `app`, publishing its definition in
/// `shape`; returns it and its `host:port`.
fn provider(zk: &ZooKeeper, app: &str, shape: &str) -> (Running, String) {
    let registry = zk.address();
    let (mut p, addr) = start_provider_with(&[
        "--registry",
        &registry,
        "--application",
        app,
        "--version",
        "1.0.0",
        "--publish-definition",
        shape,
    ]);
    let path = p.wait_for_line("published definition ", STARTUP);
    assert_eq!(
        path,
        format!("/dubbo/metadata/{USER_SERVICE}/1.0.0/provider/{app}")
    );
    p.wait_for_line("registered ", STARTUP);
    (p, addr)
}

fn host(args: &[&str]) -> Output {
    Command::new(workspace_binary("dubbo-wasm-host"))
        .args(args)
        .output()
        .expect("run dubbo-wasm-host")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `wit generate` against `zk` for `UserService` 1.0.0 with `extra` arguments, into `out`;
/// returns the run.
fn generate(zk: &ZooKeeper, out: &Path, extra: &[&str]) -> Output {
    let registry = zk.address();
    let out = out.display().to_string();
    let mut args = vec![
        "wit",
        "generate",
        "--registry",
        &registry,
        "--interface",
        USER_SERVICE,
        "--version",
        "1.0.0",
        "--package",
        PACKAGE,
        "--out",
        &out,
    ];
    args.extend_from_slice(extra);
    host(&args)
}

/// The guest crate assembled in `dir` for building: its sources, the host's `dubbo:host` WIT
/// as a dependency, and `wit/deps/users` for the generator to write into.
fn assemble_guest(dir: &Path) -> PathBuf {
    let source = repo_root().join("tests/guests/generated-users");
    for file in ["Cargo.toml", "Cargo.lock", "src/main.rs", "wit/world.wit"] {
        let to = dir.join(file);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(source.join(file), &to).unwrap_or_else(|e| panic!("copy {file}: {e}"));
    }
    let host_wit = dir.join("wit/deps/dubbo-host");
    std::fs::create_dir_all(&host_wit).expect("mkdir");
    std::fs::copy(
        repo_root().join("wit/dubbo-host/types.wit"),
        host_wit.join("types.wit"),
    )
    .expect("copy dubbo:host WIT");
    dir.join("wit/deps/users")
}

/// Builds the assembled guest for wasm32-wasip2 into the example guests' target dir (whose
/// wit-bindgen builds it reuses) and returns the component.
fn build_guest(dir: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let target_dir = repo_root().join("guest-examples/target");
    let out = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "the guest does not build against the generated WIT:\n{}",
        text(&out.stderr)
    );
    target_dir.join("wasm32-wasip2/release/generated-users.wasm")
}

#[test]
fn a_guest_built_against_generated_wit_calls_every_method_of_the_provider() {
    let mut zk = ZooKeeper::new();
    zk.start();
    let (_provider, _) = provider(&zk, "users-app", "dubbo3");
    let work = scratch_dir("witgen");

    // Without --lenient, `Object echo(Object)` stops it, named with its type.
    let strict = generate(&zk, &work.join("strict"), &[]);
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict.stderr));
    let stderr = text(&strict.stderr);
    assert!(
        stderr.contains(&format!(
            "{USER_SERVICE}#echo(java.lang.Object): parameter 1 `java.lang.Object` has no WIT type"
        )),
        "{stderr}"
    );
    assert!(!work.join("strict/users.wit").exists());

    let guest_dir = work.join("guest");
    let wit_dir = assemble_guest(&guest_dir);
    let generated = generate(
        &zk,
        &wit_dir,
        &["--lenient", "--nullable", "UserService.findByName"],
    );
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    assert!(
        text(&generated.stderr).contains("warning: org.apache.dubbo.samples.UserService: `java.lang.Object echo(java.lang.Object)` is not typed"),
        "{}",
        text(&generated.stderr)
    );
    let wit = std::fs::read_to_string(wit_dir.join("users.wit")).expect("users.wit written");
    for expected in [
        "package generated:users;",
        "interface user-service {",
        "    get-user: func(id: s64) -> result<user, rpc-error>;",
        "    get-user-by-string: func(arg0: string) -> result<user, rpc-error>;",
        "    list-users: func(arg0: s32) -> result<list<user>, rpc-error>;",
        "    echo-map: func(arg0: list<tuple<string, s32>>) -> result<list<tuple<string, s32>>, rpc-error>;",
        "    find-by-name: func(name: option<string>) -> result<option<user>, rpc-error>;",
        "    notify: func(arg0: string) -> result<_, rpc-error>;",
        "        id: s64,",
        "        name: string,",
        "        age: s32,",
        "        tags: list<string>,",
    ] {
        assert!(wit.contains(expected), "`{expected}` missing from\n{wit}");
    }

    // The printed TOML is a config `check` accepts as it is.
    let toml = text(&generated.stdout);
    for expected in [
        "[[registry]]\nid = \"zk\"",
        "[[reference]]\nid = \"user-service\"\ninterface = \"org.apache.dubbo.samples.UserService\"\nversion = \"1.0.0\"\nregistry = [\"zk\"]\nwit = \"generated:users/user-service\"\njava-types = { user = \"org.apache.dubbo.samples.User\" }",
        "[reference.methods.get-user-by-string]\njava-name = \"getUser\"\nparameter-types = [\"java.lang.String\"]",
    ] {
        assert!(toml.contains(expected), "`{expected}` missing from\n{toml}");
    }
    let printed = work.join("printed.toml");
    std::fs::write(&printed, &toml).expect("write TOML");
    let checked = host(&["check", "--config", &printed.display().to_string()]);
    assert!(
        checked.status.success(),
        "check refused the printed TOML:\n{}\n{}\n{toml}",
        text(&checked.stdout),
        text(&checked.stderr)
    );
    assert!(text(&checked.stdout).contains("config OK"));

    let component = build_guest(&guest_dir);
    let config = work.join("host.toml");
    std::fs::write(
        &config,
        format!(
            "[application]\nname = \"witgen-e2e\"\ndata-dir = \"{}\"\n\n{toml}",
            work.join("data").display()
        ),
    )
    .expect("write config");
    let ran = host(&[
        "run",
        "--config",
        &config.display().to_string(),
        &component.display().to_string(),
    ]);
    assert!(
        ran.status.success(),
        "{}\n{}",
        text(&ran.stdout),
        text(&ran.stderr)
    );
    let lines: Vec<String> = text(&ran.stdout).lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        [
            "get-user: 7 user-7 27 [dubbo,😀]",
            "get-user-by-string: 5 alice 25 [dubbo,😀]",
            "list-users: 1,2,3",
            "find-by-name alice: 1 user-1 21 [dubbo,😀]",
            "find-by-name bob: none",
            "echo-map: z=1,a=-2",
            "echo-long: 9007199254740993",
            "notify: ok",
            "fail: error biz-exception: org.apache.dubbo.samples.UserNotFoundException: no such user",
            "echo (generic): {\"k\":[1,2]}",
        ]
    );
}

#[test]
fn dubbo27_definitions_generate_the_same_wit_and_the_admin_api_serves_it() {
    let mut zk = ZooKeeper::new();
    zk.start();
    let (_flat, addr) = provider(&zk, "users-3", "dubbo3");
    let (_nested, _) = provider(&zk, "users-27", "dubbo27");
    let work = scratch_dir("witgen-shapes");
    let from_flat = generate(
        &zk,
        &work.join("3"),
        &["--lenient", "--application", "users-3"],
    );
    assert!(from_flat.status.success(), "{}", text(&from_flat.stderr));
    let from_nested = generate(
        &zk,
        &work.join("27"),
        &["--lenient", "--application", "users-27"],
    );
    assert!(
        from_nested.status.success(),
        "{}",
        text(&from_nested.stderr)
    );
    let wit = std::fs::read_to_string(work.join("3/users.wit")).expect("3");
    assert_eq!(
        std::fs::read_to_string(work.join("27/users.wit")).expect("27"),
        wit,
        "both shapes describe the same interface"
    );
    // Without --application the first one in name order is read.
    let first = generate(&zk, &work.join("first"), &["--lenient"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let unknown = generate(&zk, &work.join("none"), &["--application", "nobody"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown.stderr).contains("application `nobody` published no definition"),
        "{}",
        text(&unknown.stderr)
    );

    // A host whose reference `users` is bound to the generated package.
    let toml = text(&from_flat.stdout).replace("id = \"user-service\"", "id = \"users\"");
    let config = work.join("host.toml");
    std::fs::write(
        &config,
        format!(
            "[application]\nname = \"witgen-admin\"\ndata-dir = \"{data}\"\n\n{toml}\n{demo}\n\n{guest}\n\n{http}\n\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"s3cret\"\n",
            data = work.join("data").display(),
            demo = demo_reference("demo", &dubbo_url(&addr)),
            guest = http_guest("hello", &hello_guest(), "/hello", &["demo"]),
            http = http_listener("127.0.0.1:0"),
        ),
    )
    .expect("write config");
    // `--config F --reference R`: the reference's registry, interface, version and `wit`.
    let configured = host(&[
        "wit",
        "generate",
        "--config",
        &config.display().to_string(),
        "--reference",
        "users",
        "--lenient",
        "--out",
        &work.join("configured").display().to_string(),
    ]);
    assert!(configured.status.success(), "{}", text(&configured.stderr));
    assert_eq!(
        std::fs::read_to_string(work.join("configured/users.wit")).expect("configured"),
        wit
    );
    let printed = text(&configured.stdout);
    assert!(
        printed.contains("[[reference]]\nid = \"users\"\ninterface = \"org.apache.dubbo.samples.UserService\"\nversion = \"1.0.0\"\nregistry = [\"zk\"]\nwit = \"generated:users/user-service\""),
        "{printed}"
    );
    assert!(!printed.contains("[[registry]]"), "{printed}");

    let mut served = Running::start(
        &workspace_binary("dubbo-wasm-host"),
        &["serve", "--config", &config.display().to_string()],
    );
    let admin = served.wait_for_line("admin API at http://", STARTUP);
    let admin = admin.trim_end_matches('/');
    let (status, body) = get_with(admin, "/admin/references/users/wit", Some("s3cret"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body, wit,
        "the admin API serves what `wit generate --lenient` writes"
    );
    let (status, body) = get_with(admin, "/admin/references/users/wit", None);
    assert_eq!(status, 401, "{body}");
    let (status, body) = get_with(admin, "/admin/references/nope/wit", Some("s3cret"));
    assert_eq!(status, 404, "{body}");
    assert!(
        json(&body)["error"]
            .as_str()
            .is_some_and(|e| e.contains("no reference with id `nope`")),
        "{body}"
    );
    // `demo` has a direct url: no metadata report to read.
    let (status, body) = get_with(admin, "/admin/references/demo/wit", Some("s3cret"));
    assert_eq!(status, 404, "{body}");
    assert!(json(&body)["error"].is_string(), "{body}");
}
