//! A real ZooKeeper server for one test: the Debian `zookeeper` package's jars run as
//! `ZooKeeperServerMain` on 127.0.0.1 only, with a free port and a private data directory. It
//! can be stopped and started again on the same port and data (for outage tests), and is
//! killed and its directory removed when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::scratch_dir;

/// The longest session the test server grants, so expiry tests stay fast.
pub const MAX_SESSION: Duration = Duration::from_secs(4);

/// How long a cold JVM may take to start serving.
const STARTUP: Duration = Duration::from_secs(60);

/// Where the Debian package keeps the server's classpath (`CLASSPATH="..."`).
const DEBIAN_ENVIRONMENT: &str = "/etc/zookeeper/conf/environment";
/// The server jar; its manifest names the dependency jars in /usr/share/java.
const DEBIAN_JAR: &str = "/usr/share/java/zookeeper.jar";

/// A running (or stopped) test ZooKeeper server.
pub struct ZooKeeper {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl ZooKeeper {
    /// Starts a server on a free loopback port and waits until it serves clients.
    pub fn new() -> ZooKeeper {
        let port = free_port();
        let dir = scratch_dir("zookeeper");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("create ZooKeeper data dir");
        let config = format!(
            "tickTime=200\n\
             dataDir={data}\n\
             clientPort={port}\n\
             clientPortAddress=127.0.0.1\n\
             minSessionTimeout=400\n\
             maxSessionTimeout={max}\n\
             maxClientCnxns=0\n\
             forceSync=no\n\
             admin.enableServer=false\n\
             4lw.commands.whitelist=*\n",
            data = data.display(),
            max = MAX_SESSION.as_millis(),
        );
        std::fs::write(dir.join("zoo.cfg"), config).expect("write zoo.cfg");
        let mut zk = ZooKeeper {
            port,
            dir,
            child: None,
        };
        zk.start();
        zk
    }

    /// The client port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, a ZooKeeper connect string.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `zookeeper://127.0.0.1:PORT`, a Dubbo registry address.
    pub fn address(&self) -> String {
        format!("zookeeper://127.0.0.1:{}", self.port)
    }

    /// Starts the server again (same port, same data) if stopped, and waits until it answers.
    pub fn start(&mut self) {
        if self.child.is_some() {
            return;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open ZooKeeper log");
        let log_err = log.try_clone().expect("clone log handle");
        let java = std::env::var("JAVA").unwrap_or_else(|_| "java".to_string());
        let child = Command::new(&java)
            .args([
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.admin.enableServer=false",
                "-cp",
                &classpath(),
                "org.apache.zookeeper.server.ZooKeeperServerMain",
            ])
            .arg(self.dir.join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `{java}` for ZooKeeper: {e}; install it with `apt-get install -y zookeeper` (it pulls a JRE)")
            });
        self.child = Some(child);
        self.wait_ready();
    }

    /// Kills the server (as an outage would); clients see the connection drop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("zookeeper.log")
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        text.get(start..).unwrap_or(&text).to_string()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            // `ruok` answers before the server takes sessions; `srvr` reports a mode only then.
            if four_letter(self.port, "srvr").is_some_and(|r| r.contains("Mode: ")) {
                return;
            }
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    panic!(
                        "ZooKeeper exited ({status}) before answering on 127.0.0.1:{}; log:\n{}",
                        self.port,
                        self.log_tail()
                    );
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "ZooKeeper did not serve on 127.0.0.1:{} within {STARTUP:?}; log:\n{}",
                    self.port,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Default for ZooKeeper {
    fn default() -> Self {
        ZooKeeper::new()
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends a four-letter command and returns the reply, `None` if the server does not answer.
pub fn four_letter(port: u16, command: &str) -> Option<String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(command.as_bytes()).ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    Some(reply)
}

/// A port nothing listens on now (the OS hands out a fresh one).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free loopback port")
}

/// The server classpath: `ZOOKEEPER_CLASSPATH` if set, else the Debian package's own, else
/// its jar (whose manifest pulls in the dependencies).
fn classpath() -> String {
    if let Ok(cp) = std::env::var("ZOOKEEPER_CLASSPATH") {
        return cp;
    }
    let from_package = std::fs::read_to_string(DEBIAN_ENVIRONMENT)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let value = line.trim().strip_prefix("CLASSPATH=")?;
                Some(value.trim_matches('"').to_string())
            })
        })
        .filter(|cp| {
            cp.split(':')
                .any(|p| p.ends_with(".jar") && Path::new(p).exists())
        });
    let cp = from_package.unwrap_or_else(|| DEBIAN_JAR.to_string());
    assert!(
        cp.split(':').any(|p| p.ends_with(".jar") && Path::new(p).exists()),
        "no ZooKeeper jar on classpath `{cp}`: install it with `apt-get install -y zookeeper`, or set ZOOKEEPER_CLASSPATH"
    );
    cp
}
