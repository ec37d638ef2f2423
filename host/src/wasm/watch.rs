//! Watching guest files for hot swap. The directory of each guest file is watched (a file
//! replaced by rename is a new inode, so watching the file itself would lose it), and a change
//! is reported once the file is whole: soon after a rename into place or after the writer
//! closes it, and only after a quiet second for changes that end in neither (a writer that
//! keeps the file open, a hard link). A half-written file is therefore not read while it is
//! being written; if it is, it fails to compile and is refused, and its completion is reported
//! again.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Quiet time after a rename into place or a close after writing: the file is whole then, so
/// this only folds the events of one replacement (a `cp` closes once, after its writes) into
/// one load.
pub const SETTLED: Duration = Duration::from_millis(10);
/// Quiet time after any other change.
pub const QUIET: Duration = Duration::from_millis(1000);

/// Watches guest files and sends a guest's name once its file changed and settled.
pub struct FileWatch {
    watcher: RecommendedWatcher,
    targets: Arc<Mutex<HashMap<PathBuf, String>>>,
    dirs: HashSet<PathBuf>,
}

/// A raw change to a guest's file: whose, and how soon it may be read.
type Change = (String, Duration);

impl FileWatch {
    /// Starts watching; settled changes go to `changed` as guest names.
    pub fn start(changed: mpsc::UnboundedSender<String>) -> notify::Result<FileWatch> {
        let targets: Arc<Mutex<HashMap<PathBuf, String>>> = Arc::default();
        let (raw_tx, raw_rx) = mpsc::unbounded_channel::<Change>();
        let seen = targets.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "guest file watch error");
                    return;
                }
            };
            let wait = match event.kind {
                EventKind::Modify(ModifyKind::Name(_))
                | EventKind::Access(AccessKind::Close(AccessMode::Write)) => SETTLED,
                EventKind::Create(_) | EventKind::Modify(_) => QUIET,
                _ => return,
            };
            let Ok(targets) = seen.lock() else { return };
            for path in &event.paths {
                if let Some(name) = targets.get(path) {
                    let _ = raw_tx.send((name.clone(), wait));
                }
            }
        })?;
        tokio::spawn(settle(raw_rx, changed));
        Ok(FileWatch {
            watcher,
            targets,
            dirs: HashSet::new(),
        })
    }

    /// Watches exactly these `(guest name, file)` pairs from now on.
    pub fn set_targets(&mut self, files: &[(String, PathBuf)]) {
        let mut targets = HashMap::new();
        let mut dirs = HashSet::new();
        for (name, file) in files {
            let (Some(dir), Some(file_name)) = (parent_dir(file), file.file_name()) else {
                continue;
            };
            targets.insert(dir.join(file_name), name.clone());
            dirs.insert(dir);
        }
        for gone in self.dirs.difference(&dirs) {
            let _ = self.watcher.unwatch(gone);
        }
        for dir in dirs.difference(&self.dirs) {
            if let Err(e) = self.watcher.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch guest directory; swap guests with PUT /admin/guests/{{name}} or SIGHUP");
            }
        }
        self.dirs = dirs;
        if let Ok(mut t) = self.targets.lock() {
            *t = targets;
        }
    }
}

/// The directory a file is in, canonical (events name files under the canonical path).
fn parent_dir(file: &Path) -> Option<PathBuf> {
    let dir = match file.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new("."),
        Some(p) => p,
        None => return None,
    };
    Some(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()))
}

/// Holds each guest's raw changes until its file has been quiet for the time its last change
/// asks, then sends the guest's name once.
async fn settle(mut raw: mpsc::UnboundedReceiver<Change>, changed: mpsc::UnboundedSender<String>) {
    let mut due: HashMap<String, Instant> = HashMap::new();
    loop {
        let next = due.values().min().copied();
        let received = match next {
            Some(at) => tokio::select! {
                r = raw.recv() => r.map(Some),
                () = tokio::time::sleep_until(at) => Some(None),
            },
            None => raw.recv().await.map(Some),
        };
        match received {
            None => return,
            Some(Some((name, wait))) => {
                due.insert(name, Instant::now() + wait);
            }
            Some(None) => {
                let now = Instant::now();
                let ready: Vec<String> = due
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(n, _)| n.clone())
                    .collect();
                for name in ready {
                    due.remove(&name);
                    if changed.send(name).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory holding guest file `g.wasm`, and a watch on it (spelled `spelled`
    /// relative to the directory when given).
    struct Watched {
        dir: PathBuf,
        file: PathBuf,
        rx: mpsc::UnboundedReceiver<String>,
        _watch: FileWatch,
    }

    impl Watched {
        fn new(tag: &str, spelled: Option<&str>) -> Watched {
            let dir = std::env::temp_dir().join(format!(
                "dwh-watch-{tag}-{}-{}",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::fs::create_dir_all(dir.join("sub")).expect("scratch dir");
            let file = dir.join("g.wasm");
            std::fs::write(&file, b"one").expect("write");
            let (tx, rx) = mpsc::unbounded_channel();
            let mut watch = FileWatch::start(tx).expect("watcher");
            let target = spelled.map_or_else(|| file.clone(), |s| dir.join(s));
            watch.set_targets(&[("g".to_string(), target)]);
            Watched {
                dir,
                file,
                rx,
                _watch: watch,
            }
        }

        async fn next(&mut self, within: Duration) -> Option<String> {
            tokio::time::timeout(within, self.rx.recv())
                .await
                .ok()
                .flatten()
        }
    }

    impl Drop for Watched {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[tokio::test]
    async fn rename_into_place_is_reported_once_and_other_files_are_not() {
        let mut w = Watched::new("rename", None);
        std::fs::write(w.dir.join("other.wasm"), b"x").expect("write other");
        let tmp = w.dir.join(".g.wasm.tmp");
        std::fs::write(&tmp, b"two").expect("write tmp");
        std::fs::rename(&tmp, &w.file).expect("rename");
        assert_eq!(w.next(Duration::from_secs(5)).await.as_deref(), Some("g"));
        assert_eq!(
            w.next(Duration::from_millis(1500)).await,
            None,
            "one report per settled change"
        );
    }

    #[tokio::test]
    async fn a_hard_link_put_in_place_as_cargo_does_is_reported_after_the_quiet_time() {
        let mut w = Watched::new("link", None);
        let built = w.dir.join("deps-g.wasm");
        std::fs::write(&built, b"two").expect("write the build output");
        // What cargo does to uplift an artifact: remove the old file, hard-link the new one.
        std::fs::remove_file(&w.file).expect("remove");
        std::fs::hard_link(&built, &w.file).expect("link");
        let started = Instant::now();
        assert_eq!(w.next(Duration::from_secs(5)).await.as_deref(), Some("g"));
        assert!(
            started.elapsed() >= QUIET - Duration::from_millis(100),
            "a created file is read only after the quiet time, as a writer may still be at it"
        );
    }

    #[tokio::test]
    async fn a_relative_path_is_matched() {
        // `dir/./sub/../g.wasm`: the same file, spelled as config paths often are.
        let mut w = Watched::new("relative", Some("./sub/../g.wasm"));
        std::fs::write(w.dir.join(".tmp"), b"two").expect("write tmp");
        std::fs::rename(w.dir.join(".tmp"), &w.file).expect("rename");
        assert_eq!(w.next(Duration::from_secs(5)).await.as_deref(), Some("g"));
    }

    #[tokio::test]
    async fn a_file_being_written_is_reported_only_after_the_writer_closes_it() {
        use std::io::Write;
        let mut w = Watched::new("write", None);
        let mut f = std::fs::File::create(&w.file).expect("open for writing");
        f.write_all(b"first half").expect("write");
        f.flush().expect("flush");
        // Well past SETTLED, well before QUIET: nothing may be reported while it is open.
        assert_eq!(w.next(Duration::from_millis(400)).await, None);
        f.write_all(b" second half").expect("write");
        drop(f);
        assert_eq!(w.next(Duration::from_secs(5)).await.as_deref(), Some("g"));
    }
}
