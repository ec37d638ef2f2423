//! Runs the host and the test provider as child processes, reads what they print, and talks
//! HTTP to the host: the tests use the binaries exactly as a user does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The cargo profile directory the running test binary was built into (`target/debug`).
fn profile_dir() -> PathBuf {
    running_profile_dir().expect("test binary lives in target/<profile>/deps")
}

/// The profile directory of the running binary: `target/debug` for a test
/// (`target/debug/deps/e2e-<hash>`) and for a tool (`target/release/swap-bench`).
fn running_profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let profile = if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent()?
    } else {
        dir
    };
    Some(profile.to_path_buf())
}

/// A binary of this workspace, built by `cargo build --workspace` before the tests run.
pub fn workspace_binary(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first (./test.sh does)",
        path.display()
    );
    path
}

/// An example Rust guest (`hello_http`, `user_api`), built by `./test.sh` (see README).
pub fn example_guest(name: &str) -> PathBuf {
    let path = repo_root()
        .join("guest-examples/target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release --target wasm32-wasip2` in guest-examples/ (./test.sh does)",
        path.display()
    );
    path
}

/// The hello-http example guest.
pub fn hello_guest() -> PathBuf {
    example_guest("hello_http")
}

/// A child process whose stdout lines can be awaited and whose stderr is kept for messages.
/// It is killed when dropped.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    name: String,
}

impl Running {
    /// Starts `bin` with `args`.
    pub fn start(bin: &Path, args: &[&str]) -> Running {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let stdin = child.stdin.take();
        let (tx, rx) = channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let name = bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Running {
            child,
            stdin,
            lines: rx,
            stderr,
            name,
        }
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_string();
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{} printed no line starting with {prefix:?} within {timeout:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!(
                        "{} exited ({status:?}) before printing {prefix:?}; stderr:\n{}",
                        self.name,
                        self.stderr()
                    )
                }
            }
        }
    }

    /// Writes one line to the process's stdin (the test provider takes fault commands there).
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is piped");
        writeln!(stdin, "{line}").expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Sends a command and returns the rest of the reply line that starts with `reply`.
    pub fn command(&mut self, line: &str, reply: &str) -> String {
        self.send(line);
        self.wait_for_line(reply, Duration::from_secs(10))
    }

    /// The test provider's counter `name` (`accepted`, `requests`, `heartbeat-replies`).
    pub fn stat(&mut self, name: &str) -> u64 {
        let line = self.command("stats", "stats ");
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in stats line {line:?}"))
    }

    /// Waits until the test provider has accepted `n` connections (and so will pass commands
    /// to them).
    pub fn wait_accepted(&mut self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.stat("accepted") < n {
            assert!(
                Instant::now() < deadline,
                "provider never accepted {n} connections"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the process to exit and returns its exit code and stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the stderr reader a moment to drain the pipe.
                std::thread::sleep(Duration::from_millis(50));
                return (status.code(), self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}; stderr:\n{}",
                self.name,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts the test provider on a free loopback port; returns it and its `host:port`.
pub fn start_provider() -> (Running, String) {
    let mut p = Running::start(
        &workspace_binary("test-provider"),
        &["--listen", "127.0.0.1:0"],
    );
    let addr = p.wait_for_line("listening on ", Duration::from_secs(20));
    (p, addr)
}

/// A fresh scratch directory under `tmp/` of the cargo target directory (where Cargo points
/// integration tests with `CARGO_TARGET_TMPDIR`), so that test runs leave nothing in the
/// system's temp dir. What they wrote (a failed test's files, to be read) stays there until
/// `cargo clean`; the system temp dir is the fallback for a binary run from elsewhere.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let root = scratch_root().unwrap_or_else(std::env::temp_dir);
    let dir = root.join(format!("dwh-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// `<target>/tmp` for a binary of this workspace, or `None` when run from outside a target dir.
fn scratch_root() -> Option<PathBuf> {
    let profile = running_profile_dir()?;
    // A cargo target directory holds its profiles' fingerprints next to the binaries.
    if !profile.join(".fingerprint").is_dir() {
        return None;
    }
    Some(profile.parent()?.join("tmp"))
}

/// A minimal HTTP/1.1 GET; returns the status code and the body.
pub fn http_get(addr: &str, path_and_query: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set timeout");
    write!(
        s,
        "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Joins the chunks of a chunked body (bytes: a chunk may end inside a UTF-8 character).
pub(crate) fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..eol]).unwrap_or("0");
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let rest = &body[eol + 2..];
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest[..n]);
        body = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// The second version of the hello-http example guest (`--features v2`: every body starts
/// with `v2: `), built by `./test.sh` for the hot-swap tests.
pub fn hello_guest_v2() -> PathBuf {
    example_guest("hello_http_v2")
}

/// Starts the test provider on a free loopback port with more arguments (e.g.
/// `["--delay-ms", "300"]`); returns it and its `host:port`.
pub fn start_provider_with(args: &[&str]) -> (Running, String) {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut p = Running::start(&workspace_binary("test-provider"), &all);
    let addr = p.wait_for_line("listening on ", Duration::from_secs(20));
    (p, addr)
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the signal `name` (`HUP`, `TERM`, `INT`) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap_or_else(|e| panic!("cannot run `kill -{name}`: {e}"));
        assert!(status.success(), "`kill -{name} {}` failed", self.pid());
    }

    /// The exit code if the process has exited (`Some(None)` when a signal ended it), without
    /// waiting.
    pub fn try_exit(&mut self) -> Option<Option<i32>> {
        self.child.try_wait().ok().flatten().map(|s| s.code())
    }
}
