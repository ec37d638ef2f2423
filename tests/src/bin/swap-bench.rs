//! `swap-bench`: how long a hot swap takes, seen from outside. It runs the release host with
//! the release test provider, serves hello-http, and measures the time from the atomic rename
//! of the guest file to the first HTTP response from the new version:
//!
//! * precompiled: swapping back and forth between v1 and v2, digests the host has loaded before;
//! * fresh: v2 plus a custom section no run has used, so neither the host's nor Wasmtime's
//!   on-disk cache has its compiled code (each is followed by an unmeasured swap back to v1).
//!
//! For comparison it also compiles fresh variants in this process with the host's own engine
//! settings (the part of a fresh swap no file watch can avoid) and runs
//! `../shared/tools/loopback-limit` for the loopback floor of the same run. Each kind's floor
//! is what it cannot avoid: the watch's settle time after a rename, the compile (fresh only),
//! and one loopback round trip.
//!
//! ```sh
//! cargo build --release --workspace
//! target/release/swap-bench [N]      # N swaps of each kind, default 20
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use dubbo_wasm_host::config::{GuestConfig, Trigger};
use dubbo_wasm_host::wasm::watch::SETTLED;
use dubbo_wasm_host::wasm::{guest::compile_bytes, new_engine, MIN_POOL_INSTANCES};
use dubbo_wasm_host_tests::admin::{
    exchange, json, stage_beside, unique_variant, version_of, STARTUP,
};
use dubbo_wasm_host_tests::config::{demo_reference, dubbo_url, http_guest, listeners};
use dubbo_wasm_host_tests::process::{
    hello_guest, hello_guest_v2, repo_root, scratch_dir, Running,
};

/// How long one swap may take before the bench gives up.
const SWAP_LIMIT: Duration = Duration::from_secs(30);

fn main() -> anyhow::Result<()> {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => a.parse().context("N must be a number")?,
        None => 20,
    };
    if n == 0 {
        bail!("N must be at least 1");
    }
    let bin_dir = std::env::current_exe()?
        .parent()
        .map(Path::to_path_buf)
        .context("the bench binary has a directory")?;
    let v1 = std::fs::read(hello_guest())?;
    let v2 = std::fs::read(hello_guest_v2())?;

    let mut provider = Running::start(
        &binary(&bin_dir, "test-provider")?,
        &["--listen", "127.0.0.1:0"],
    );
    let provider_addr = provider.wait_for_line("listening on ", Duration::from_secs(20));
    let dir = scratch_dir("swap-bench");
    let guest = dir.join("hello.wasm");
    std::fs::write(&guest, &v1)?;
    let config = dir.join("host.toml");
    std::fs::write(&config, config_text(&provider_addr, &guest))?;
    let mut host = Running::start(
        &binary(&bin_dir, "dubbo-wasm-host")?,
        &["serve", "--config", &config.display().to_string()],
    );
    let admin = host.wait_for_line("admin API at http://", STARTUP);
    let line = host.wait_for_line("serving guest `hello` at http://", STARTUP);
    let http = line.split('/').next().unwrap_or_default().to_string();
    let admin = admin.trim_end_matches('/').to_string();
    let accepted = provider.stat("accepted");

    // Both versions loaded once, so that the first measured swap is precompiled too.
    swap(&http, &guest, &v2, "v2")?;
    swap(&http, &guest, &v1, "v1")?;

    let mut precompiled = Vec::with_capacity(n);
    for i in 0..n {
        let (bytes, version) = if i % 2 == 0 { (&v2, "v2") } else { (&v1, "v1") };
        precompiled.push(swap(&http, &guest, bytes, version)?);
    }
    if n % 2 == 1 {
        swap(&http, &guest, &v1, "v1")?;
    }

    let mut fresh = Vec::with_capacity(n);
    let mut host_load = Vec::with_capacity(n);
    for _ in 0..n {
        fresh.push(swap(&http, &guest, &unique_variant(&v2), "v2")?);
        host_load.push(load_ms(&admin)?);
        swap(&http, &guest, &v1, "v1")?;
    }
    let slot = json(&get(&admin, "/admin/guests/hello")?);
    let swaps = slot["swaps"].as_u64().unwrap_or_default();
    let reconnects = provider.stat("accepted") - accepted;
    host.kill();
    provider.kill();
    let _ = std::fs::remove_dir_all(&dir);

    let compile = compile_fresh(&v2, n)?;

    let loopback = loopback_floor()?;
    let compile_p50 = median(&mut compile.clone());
    println!("swap latency: rename of the guest file -> first HTTP response from the new version");
    println!(
        "N={n} each; {swaps} swaps in all; provider connections opened during the run: {reconnects}"
    );
    println!(
        "floors: loopback c=1 p50 {:.1} us (loopback-limit, this run); watch settle time {} ms; \
         fresh compile in-process p50 {:.2} ms",
        loopback.as_secs_f64() * 1e6,
        SETTLED.as_millis(),
        ms(compile_p50)
    );
    print_row(
        "precompiled (v1 <-> v2)",
        &mut precompiled,
        loopback,
        SETTLED + loopback,
    );
    print_row(
        "fresh (new custom section)",
        &mut fresh,
        loopback,
        SETTLED + compile_p50 + loopback,
    );
    let mut host_load: Vec<Duration> = host_load
        .into_iter()
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .collect();
    print_row(
        "  load_ms the host reports, fresh",
        &mut host_load,
        loopback,
        compile_p50,
    );
    print_row(
        "  compile in-process, fresh",
        &mut compile.clone(),
        loopback,
        compile_p50,
    );
    println!(
        "floor of a row: precompiled = settle + loopback; fresh = settle + compile p50 + loopback; \
         the two breakdown rows are compared with the in-process compile"
    );
    Ok(())
}

/// A sibling binary of this one (the same cargo profile).
fn binary(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: run `cargo build --release --workspace` first",
            path.display()
        );
    }
    Ok(path)
}

fn config_text(provider: &str, guest: &Path) -> String {
    format!(
        r#"
[application]
name = "swap-bench"

{reference}
timeout = 3000

{guest}

{listeners}
"#,
        reference = demo_reference("demo", &dubbo_url(provider)),
        guest = http_guest("hello", guest, "/hello", &["demo"]),
        listeners = listeners(),
    )
}

fn get(addr: &str, path: &str) -> anyhow::Result<String> {
    match exchange(addr, "GET", path, &[], &[]) {
        Ok((200, body)) => Ok(String::from_utf8_lossy(&body).into_owned()),
        Ok((status, body)) => bail!(
            "GET {path}: status {status}: {}",
            String::from_utf8_lossy(&body)
        ),
        Err(e) => bail!("GET {path}: {e}"),
    }
}

/// Renames `bytes` over `guest` and sends requests back to back until `version` answers;
/// returns the time from the rename to that answer.
fn swap(http: &str, guest: &Path, bytes: &[u8], version: &str) -> anyhow::Result<Duration> {
    let staged = stage_beside(guest, bytes);
    let renamed = Instant::now();
    std::fs::rename(&staged, guest)?;
    loop {
        let body = get(http, "/hello?name=bench")?;
        if version_of(&body) == version {
            return Ok(renamed.elapsed());
        }
        if renamed.elapsed() > SWAP_LIMIT {
            bail!("{version} never answered within {SWAP_LIMIT:?} of the rename");
        }
    }
}

/// The `load_ms` the host reports for the current version of `hello`.
fn load_ms(admin: &str) -> anyhow::Result<f64> {
    let slot = json(&get(admin, "/admin/guests/hello")?);
    slot["load_ms"]
        .as_f64()
        .with_context(|| format!("no load_ms in {slot}"))
}

/// Compiles `n` fresh variants of `component` with an engine built as the host builds its own.
fn compile_fresh(component: &[u8], n: usize) -> anyhow::Result<Vec<Duration>> {
    let engine = new_engine(MIN_POOL_INSTANCES)?;
    let cfg = GuestConfig {
        name: "bench".to_string(),
        path: PathBuf::from("bench.wasm"),
        trigger: Trigger::Http,
        route: None,
        references: Vec::new(),
        max_memory_mib: None,
        timeout: None,
        max_instances: None,
        instance_reuse: None,
    };
    (0..n)
        .map(|_| {
            let bytes = unique_variant(component);
            let started = Instant::now();
            compile_bytes(&engine, &cfg, &bytes, Path::new("bench.wasm"))?;
            Ok(started.elapsed())
        })
        .collect()
}

/// The c=1 round-trip p50 of `../shared/tools/loopback-limit`, run now.
fn loopback_floor() -> anyhow::Result<Duration> {
    let tool = repo_root().join("../shared/tools/loopback-limit");
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "/tmp/ll-target".into());
    let out = Command::new("cargo")
        .args(["run", "--release", "--quiet", "--"])
        .arg("../../vectors/dubbo/java-dubbo-2.7.23")
        .current_dir(&tool)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .with_context(|| format!("run loopback-limit in {}", tool.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "loopback-limit failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    print!("{text}");
    let p50 = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("p50_us="))
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("no p50_us= in loopback-limit's output: {text}"))?;
    Ok(Duration::from_secs_f64(p50 / 1e6))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    quantile(samples, 0.5)
}

/// The nearest-rank `q` quantile of sorted `samples`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One line of results: min, p50, p90, max, the p50 against the loopback round trip and
/// against `floor`, the least this kind of swap can take.
fn print_row(what: &str, samples: &mut [Duration], loopback: Duration, floor: Duration) {
    let p50 = median(samples);
    println!(
        "{what:<34} min {:7.2} ms  p50 {:7.2} ms  p90 {:7.2} ms  max {:7.2} ms  \
         p50/loopback {:>6.0}x  floor {:7.2} ms  p50/floor {:5.2}x",
        ms(samples[0]),
        ms(p50),
        ms(quantile(samples, 0.9)),
        ms(samples[samples.len() - 1]),
        p50.as_secs_f64() / loopback.as_secs_f64(),
        ms(floor),
        p50.as_secs_f64() / floor.as_secs_f64()
    );
}
