//! The host's admin API seen from a test, and what the hot-swap and shutdown tests drive a host
//! with: a blocking HTTP client that tells a refused connection from one dropped without an
//! answer, a continuous load generator that tallies which version of the hello-http guest
//! answered, an atomic file replace, and a custom section that gives a component a new digest
//! with the same behaviour.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::process::{dechunk, workspace_binary, Running};

/// How long a host may take to start (a debug build compiling guests on a busy machine).
pub const STARTUP: Duration = Duration::from_secs(120);

/// How long one request may take before the client gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no HTTP response.
#[derive(Debug)]
pub enum NoResponse {
    /// The connection was refused: nothing listens there (any more).
    Refused(io::Error),
    /// Connected, but no complete response came: reset, closed early, timed out, or garbled.
    Dropped(String),
}

impl std::fmt::Display for NoResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoResponse::Refused(e) => write!(f, "connection refused: {e}"),
            NoResponse::Dropped(why) => write!(f, "no response: {why}"),
        }
    }
}

/// Connects to `addr` and sends one request with `Connection: close`; the response is read
/// with `read_response`. Returns once the request is written.
pub fn send_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<TcpStream, NoResponse> {
    let mut s = TcpStream::connect(addr).map_err(|e| match e.kind() {
        io::ErrorKind::ConnectionRefused => NoResponse::Refused(e),
        _ => NoResponse::Dropped(format!("connect {addr}: {e}")),
    })?;
    s.set_read_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(REQUEST_TIMEOUT)))
        .map_err(|e| NoResponse::Dropped(format!("set timeouts: {e}")))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body))
        .map_err(|e| NoResponse::Dropped(format!("send {method} {path}: {e}")))?;
    Ok(s)
}

/// Reads the whole response of a request sent by `send_request`: status and body.
pub fn read_response(mut s: TcpStream) -> Result<(u16, Vec<u8>), NoResponse> {
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        return Err(NoResponse::Dropped(format!(
            "read after {} bytes: {e}",
            raw.len()
        )));
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            NoResponse::Dropped(format!(
                "not an HTTP response ({} bytes): {:?}",
                raw.len(),
                String::from_utf8_lossy(&raw)
            ))
        })?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| NoResponse::Dropped(format!("no status in {head:?}")))?;
    let body = &raw[split + 4..];
    if head.contains("transfer-encoding: chunked") {
        if !body.ends_with(b"0\r\n\r\n") {
            return Err(NoResponse::Dropped(format!(
                "chunked body cut short: {:?}",
                String::from_utf8_lossy(body)
            )));
        }
        return Ok((status, dechunk(body)));
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    match length {
        Some(n) if body.len() < n => Err(NoResponse::Dropped(format!(
            "body of {} bytes, content-length {n}",
            body.len()
        ))),
        Some(n) => Ok((status, body[..n].to_vec())),
        None => Ok((status, body.to_vec())),
    }
}

/// One request and its response.
pub fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), NoResponse> {
    read_response(send_request(addr, method, path, headers, body)?)
}

/// `GET path`; returns the status and the body as text. Panics when there is no response.
pub fn get(addr: &str, path: &str) -> (u16, String) {
    text(exchange(addr, "GET", path, &[], &[]), "GET", path)
}

/// `GET path` with `Authorization: Bearer <token>` when `token` is given.
pub fn get_with(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    text(exchange(addr, "GET", path, &headers, &[]), "GET", path)
}

/// `PUT path` with `body` (and `Authorization: Bearer <token>` when `token` is given); returns
/// the status and the body as text. Panics when there is no response.
pub fn put(addr: &str, path: &str, body: &[u8], token: Option<&str>) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/wasm")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    text(exchange(addr, "PUT", path, &headers, body), "PUT", path)
}

fn text(result: Result<(u16, Vec<u8>), NoResponse>, method: &str, path: &str) -> (u16, String) {
    match result {
        Ok((status, body)) => (status, String::from_utf8_lossy(&body).into_owned()),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

/// Parses a JSON body; panics naming the body when it is not JSON.
pub fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The slot of guest `name` in a `GET /admin/guests` answer.
pub fn find_slot<'a>(guests: &'a Value, name: &str) -> Option<&'a Value> {
    guests
        .get("guests")?
        .as_array()?
        .iter()
        .find(|g| g.get("name").and_then(Value::as_str) == Some(name))
}

/// The current slot of guest `name`, from `GET /admin/guests` (panics if it is not listed).
pub fn slot(admin: &str, name: &str) -> Value {
    let (status, body) = get(admin, "/admin/guests");
    assert_eq!(status, 200, "GET /admin/guests: {body}");
    let list = json(&body);
    find_slot(&list, name)
        .unwrap_or_else(|| panic!("no guest `{name}` in {body}"))
        .clone()
}

/// A `u64` field of a slot (`generation`, `swaps`, `refused`, `requests`, `traps`).
pub fn count(slot: &Value, field: &str) -> u64 {
    slot.get(field)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no number `{field}` in slot {slot}"))
}

/// The `digest` field of a slot.
pub fn digest_of(slot: &Value) -> String {
    slot.get("digest")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no `digest` in slot {slot}"))
        .to_string()
}

/// Polls `GET /admin/guests` every 10 ms until guest `name`'s slot satisfies `ok`; returns the
/// slot and how long it took. Panics after `limit` with the last slot seen.
pub fn wait_for_slot(
    admin: &str,
    name: &str,
    limit: Duration,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let start = Instant::now();
    loop {
        let s = slot(admin, name);
        if ok(&s) {
            return (s, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "guest `{name}`: {what} within {limit:?}; last slot: {s}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The lowercase hex SHA-256 of `bytes`, as the host reports a module's digest.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The value of the Prometheus sample `name` whose labels contain `label` (e.g.
/// `guest="hello"`), from a `/metrics` body.
pub fn metric(metrics: &str, name: &str, label: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once('}')?,
            None if rest.starts_with(' ') => ("", rest),
            None => return None,
        };
        if !labels.contains(label) {
            return None;
        }
        value.split_whitespace().next()?.parse().ok()
    })
}

/// A host serving a config: the process, its admin API and its HTTP trigger (`HOST:PORT`).
pub struct Host {
    pub process: Running,
    pub admin: String,
    pub http: String,
}

/// Runs `dubbo-wasm-host serve --config config` and waits for its admin line, which comes
/// first, then for the line of http guest `guest`.
pub fn serve(config: &Path, guest: &str) -> Host {
    let mut process = Running::start(
        &workspace_binary("dubbo-wasm-host"),
        &["serve", "--config", &config.display().to_string()],
    );
    let admin = process.wait_for_line("admin API at http://", STARTUP);
    let line = process.wait_for_line(&format!("serving guest `{guest}` at http://"), STARTUP);
    let http = line.split('/').next().unwrap_or_default().to_string();
    Host {
        process,
        admin: admin.trim_end_matches('/').to_string(),
        http,
    }
}

/// Which version of the hello-http guest wrote `body`: `v2` (`--features v2`) or `v1`.
pub fn version_of(body: &str) -> &'static str {
    if body.starts_with("v2: ") {
        "v2"
    } else {
        "v1"
    }
}

/// What a load generator saw.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Requests answered 200.
    pub ok: u64,
    /// Requests whose connection was refused (nothing listened); not failures.
    pub refused: u64,
    /// Requests answered with another status, or connected and never answered.
    pub failed: u64,
    /// The first few failures, each with its status and body or what went wrong.
    pub failures: Vec<String>,
    /// 200 answers by guest version (`version_of`), or by what the load's classifier says.
    pub versions: BTreeMap<&'static str, u64>,
    /// When the latest request answered 200 by each version was sent.
    pub latest_sent: BTreeMap<&'static str, Instant>,
    /// The version of each 200 answer where it differs from the previous answer, with the time
    /// since the load started: how the versions changed over time.
    pub changes: Vec<(Duration, &'static str)>,
}

/// How many failures a tally keeps in full.
const KEPT_FAILURES: usize = 10;

/// Threads issuing `GET`s to one URL back to back until stopped.
/// What a load calls a 200 answer, from its body.
pub type Classify = Arc<dyn Fn(&str) -> &'static str + Send + Sync>;

pub struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    threads: Vec<JoinHandle<()>>,
    sent: Arc<AtomicU64>,
}

impl Load {
    /// Starts `threads` threads sending `GET path` to `addr`, telling answers apart by guest
    /// version.
    pub fn start(addr: &str, path: &str, threads: usize) -> Load {
        Load::start_with(addr, path, threads, Arc::new(version_of))
    }

    /// [`Load::start`], telling answers apart with `classify` (e.g. by provider).
    pub fn start_with(addr: &str, path: &str, threads: usize, classify: Classify) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let sent = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let threads = (0..threads)
            .map(|_| {
                let (stop, tally, sent) = (stop.clone(), tally.clone(), sent.clone());
                let classify = classify.clone();
                let (addr, path) = (addr.to_string(), path.to_string());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let at = Instant::now();
                        sent.fetch_add(1, Ordering::Relaxed);
                        let result = exchange(&addr, "GET", &path, &[], &[]);
                        let refused = matches!(result, Err(NoResponse::Refused(_)));
                        record(&tally, &*classify, started, at, result);
                        if refused {
                            // Nothing listens: do not spin.
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            tally,
            threads,
            sent,
        }
    }

    /// What was seen so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Requests sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Waits until a request sent after `since` is answered 200 by `version`; returns the time
    /// from `since` until that was seen. Panics after `limit` with the tally.
    pub fn wait_for_version(&self, version: &str, since: Instant, limit: Duration) -> Duration {
        loop {
            let seen = self
                .tally
                .lock()
                .ok()
                .and_then(|t| t.latest_sent.get(version).copied())
                .is_some_and(|at| at > since);
            if seen {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < limit,
                "no answer from {version} within {limit:?}; tally: {:?}",
                self.tally()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until `n` more requests have been answered 200 than `after`.
    pub fn wait_for_ok(&self, after: u64, n: u64, limit: Duration) {
        let start = Instant::now();
        while self.tally().ok < after + n {
            assert!(
                start.elapsed() < limit,
                "fewer than {n} answers within {limit:?}; tally: {:?}",
                self.tally()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stops the threads (each finishes its current request) and returns the tally.
    pub fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        self.tally.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

fn record(
    tally: &Mutex<Tally>,
    classify: &(dyn Fn(&str) -> &'static str + Send + Sync),
    started: Instant,
    sent_at: Instant,
    result: Result<(u16, Vec<u8>), NoResponse>,
) {
    let Ok(mut t) = tally.lock() else { return };
    let failure = match result {
        Ok((200, body)) => {
            let version = classify(&String::from_utf8_lossy(&body));
            t.ok += 1;
            *t.versions.entry(version).or_insert(0) += 1;
            let latest = t.latest_sent.entry(version).or_insert(sent_at);
            *latest = (*latest).max(sent_at);
            if t.changes.last().map(|(_, v)| *v) != Some(version) {
                t.changes.push((started.elapsed(), version));
            }
            return;
        }
        Err(NoResponse::Refused(_)) => {
            t.refused += 1;
            return;
        }
        Ok((status, body)) => format!("status {status}: {}", String::from_utf8_lossy(&body)),
        Err(e) => e.to_string(),
    };
    t.failed += 1;
    if t.failures.len() < KEPT_FAILURES {
        let at = started.elapsed();
        t.failures.push(format!("at {at:?}: {failure}"));
    }
}

/// A response's status and body, or why there was none.
pub type Answer = Result<(u16, String), String>;

/// A request whose response is being read on its own thread.
pub struct Pending {
    /// When the request had been written.
    pub sent_at: Instant,
    reader: JoinHandle<(Answer, Instant)>,
}

impl Pending {
    /// Sends `GET path` to `addr` and returns once it is written; the response is read on a
    /// thread. Panics when the request cannot be sent.
    pub fn get(addr: &str, path: &str) -> Pending {
        let stream =
            send_request(addr, "GET", path, &[], &[]).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let sent_at = Instant::now();
        let reader = std::thread::spawn(move || {
            let result = read_response(stream)
                .map(|(status, body)| (status, String::from_utf8_lossy(&body).into_owned()))
                .map_err(|e| e.to_string());
            (result, Instant::now())
        });
        Pending { sent_at, reader }
    }

    /// Waits for the response: status and body (or why there was none), and when it came.
    pub fn wait(self) -> (Answer, Instant) {
        self.reader
            .join()
            .unwrap_or_else(|_| (Err("reader thread panicked".to_string()), Instant::now()))
    }
}

/// Replaces `target` with `bytes` the way deploy tools do: writes a temporary file in the same
/// directory, syncs it, and renames it over `target`, so a reader sees the old or the new file,
/// never a part.
pub fn replace_atomically(target: &Path, bytes: &[u8]) {
    let staged = stage_beside(target, bytes);
    std::fs::rename(&staged, target)
        .unwrap_or_else(|e| panic!("rename {} to {}: {e}", staged.display(), target.display()));
}

/// The first half of `replace_atomically`: `bytes` written and synced to a new temporary file
/// beside `target`, ready to be renamed over it.
pub fn stage_beside(target: &Path, bytes: &[u8]) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = target.parent().expect("target has a directory");
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut f =
        std::fs::File::create(&tmp).unwrap_or_else(|e| panic!("create {}: {e}", tmp.display()));
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    tmp
}

/// `component` with a custom section `name` holding `payload` appended: the same component to
/// the host (custom sections carry no semantics) with another digest, so neither the host's
/// nor Wasmtime's cache of compiled code has it.
pub fn with_custom_section(component: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(name.len() + payload.len() + 5);
    leb128(name.len(), &mut content);
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(payload);
    let mut out = Vec::with_capacity(component.len() + content.len() + 6);
    out.extend_from_slice(component);
    out.push(0); // custom section id
    leb128(content.len(), &mut out);
    out.extend_from_slice(&content);
    out
}

/// `component` with a custom section no other call of this function (in any process) gave it.
pub fn unique_variant(component: &[u8]) -> Vec<u8> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let payload = format!(
        "{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    with_custom_section(
        component,
        "dubbo-wasm-host-tests.unique",
        payload.as_bytes(),
    )
}

/// Unsigned LEB128, as the Wasm binary format writes sizes.
fn leb128(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_section_is_id_zero_with_leb128_sizes() {
        let out = with_custom_section(b"\0asm", "n", &[7; 200]);
        // content: name length 1, "n", 200 payload bytes = 202 = 0xca 0x01 in LEB128
        assert_eq!(&out[..4], b"\0asm");
        assert_eq!(&out[4..9], &[0, 0xca, 0x01, 1, b'n']);
        assert_eq!(out.len(), 4 + 3 + 202);
    }

    #[test]
    fn a_component_with_a_unique_section_compiles_and_has_another_digest() {
        let v1 = std::fs::read(crate::process::hello_guest()).expect("read hello_http.wasm");
        let variant = unique_variant(&v1);
        assert_ne!(sha256_hex(&variant), sha256_hex(&v1));
        assert_ne!(unique_variant(&v1), variant);
        let engine = dubbo_wasm_host::wasm::new_engine(dubbo_wasm_host::wasm::MIN_POOL_INSTANCES)
            .expect("engine");
        let cfg = dubbo_wasm_host::config::GuestConfig {
            name: "variant".to_string(),
            path: "variant.wasm".into(),
            trigger: dubbo_wasm_host::config::Trigger::Http,
            route: None,
            references: Vec::new(),
            max_memory_mib: None,
            timeout: None,
            max_instances: None,
            instance_reuse: None,
        };
        dubbo_wasm_host::wasm::guest::compile_bytes(&engine, &cfg, &variant, Path::new("variant"))
            .expect("the variant compiles");
    }

    #[test]
    fn metric_reads_a_labelled_sample() {
        let text = "# TYPE x counter\nx{guest=\"a\"} 3\nx{guest=\"b\"} 5\ny 1\n";
        assert_eq!(metric(text, "x", "guest=\"b\""), Some(5.0));
        assert_eq!(metric(text, "y", ""), Some(1.0));
        assert_eq!(metric(text, "x", "guest=\"c\""), None);
    }
}
