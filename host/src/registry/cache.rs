//! The local registry cache file, in Dubbo's format so Java and Rust consumers can share one:
//! a Java properties file whose keys are service keys (`group/interface:version`) and whose
//! values are the last notified URLs, space-separated. Application-level discovery keeps its
//! records (mapping, instances, metadata per revision) under `dubbo.app-level.*` keys beside
//! them, as JSON text, which Java consumers sharing the file ignore. It is written after
//! changes (debounced, atomically through a temporary file and a rename) and read only when
//! ZooKeeper cannot be reached at subscribe time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::url::Url;

/// How long writes are held back so a burst of changes costs one write (Dubbo waits the same).
const DEBOUNCE: Duration = Duration::from_millis(500);

/// The comment Dubbo's `AbstractRegistry` writes at the top of the file.
const HEADER: &str = "Dubbo Registry Cache";

/// A cache file with a background writer. Dropping it flushes pending entries.
#[derive(Debug)]
pub(crate) struct CacheFile {
    updates: mpsc::UnboundedSender<(String, String)>,
}

impl CacheFile {
    /// Starts the writer for `path`; entries already in the file (other services, other runs)
    /// are kept.
    pub(crate) fn open(path: PathBuf) -> CacheFile {
        let (updates, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(path, rx));
        CacheFile { updates }
    }

    /// Records the URLs of one subscription; the file is rewritten shortly after.
    pub(crate) fn save(&self, key: String, urls: &[&Url]) {
        let value = urls
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        // The writer only stops when this handle is dropped, so a send cannot fail here.
        let _ = self.updates.send((key, value));
    }

    /// Records a text entry (application-level discovery: a mapping, an application's
    /// instances, a revision's metadata, as JSON); the file is rewritten shortly after.
    pub(crate) fn save_text(&self, key: String, value: String) {
        let _ = self.updates.send((key, value));
    }

    /// The text stored under `key`, read from the file now; `Ok(None)` when the file or the
    /// key is missing.
    pub(crate) async fn read_text(path: &Path, key: &str) -> io::Result<Option<String>> {
        Ok(read_file(path.to_path_buf()).await?.remove(key))
    }

    /// The URLs stored under `key`, read from the file now. `Ok(None)` when the file or the
    /// key is missing. Entries that do not parse as URLs are skipped with a warning.
    pub(crate) async fn read(path: &Path, key: &str) -> io::Result<Option<Vec<Url>>> {
        let entries = read_file(path.to_path_buf()).await?;
        let Some(value) = entries.get(key) else {
            return Ok(None);
        };
        let mut urls = Vec::new();
        for item in value.split_whitespace() {
            match Url::parse(item) {
                Ok(u) => urls.push(u),
                Err(e) => tracing::warn!(
                    file = %path.display(), key, error = %e,
                    "skipping an unparsable URL in the registry cache file"
                ),
            }
        }
        Ok(Some(urls))
    }
}

/// Reads and parses the whole file off the async threads; a missing file is empty.
async fn read_file(path: PathBuf) -> io::Result<BTreeMap<String, String>> {
    let text = tokio::task::spawn_blocking(move || match std::fs::read(&path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    })
    .await
    .map_err(io::Error::other)??;
    // Java writes properties as ISO-8859-1 with \u escapes for the rest, so bytes map to chars.
    let text: String = text.iter().map(|&b| b as char).collect();
    Ok(parse_properties(&text))
}

async fn write_loop(path: PathBuf, mut rx: mpsc::UnboundedReceiver<(String, String)>) {
    let mut entries = match read_file(path.clone()).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the registry cache file; starting it afresh");
            BTreeMap::new()
        }
    };
    while let Some((key, value)) = rx.recv().await {
        entries.insert(key, value);
        let deadline = tokio::time::Instant::now() + DEBOUNCE;
        let mut open = true;
        while open {
            tokio::select! {
                next = rx.recv() => match next {
                    Some((k, v)) => { entries.insert(k, v); }
                    None => open = false,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let text = store_properties(&entries, SystemTime::now());
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || write_atomically(&target, &text)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot write the registry cache file")
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "registry cache writer failed")
            }
        }
        if !open {
            break;
        }
    }
}

/// Writes next to the target and renames over it, so a reader never sees half a file.
fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text.as_bytes())?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Prints entries as `java.util.Properties.store` does: header and date comments, then
/// `key=value` lines with `\`-escapes and `\uXXXX` for anything outside printable ASCII.
pub(crate) fn store_properties(entries: &BTreeMap<String, String>, now: SystemTime) -> String {
    let mut out = format!("#{HEADER}\n#{}\n", java_date(now));
    for (k, v) in entries {
        escape_into(&mut out, k, true);
        out.push('=');
        escape_into(&mut out, v, false);
        out.push('\n');
    }
    out
}

/// Java's `Properties.saveConvert`: keys escape every space, values only a leading one.
fn escape_into(out: &mut String, s: &str, is_key: bool) {
    for (i, c) in s.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' ' if i == 0 || is_key => out.push_str("\\ "),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\x0c' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04X}");
                }
            }
        }
    }
}

/// Parses `java.util.Properties.load` syntax: `#`/`!` comments, `=`, `:` or whitespace
/// separators, backslash line continuations and escapes. Later keys win, as in Java.
pub(crate) fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    while let Some(first) = lines.next() {
        let first = first.trim_start_matches([' ', '\t', '\x0c']);
        if first.is_empty() || first.starts_with(['#', '!']) {
            continue;
        }
        let mut logical = String::from(first);
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start_matches([' ', '\t', '\x0c'])),
                None => break,
            }
        }
        let (key, value) = split_key_value(&logical);
        entries.insert(unescape(key), unescape(value));
    }
    entries
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits at the first unescaped `=`, `:` or whitespace, eating the separator and the
/// whitespace around it.
fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => break,
            _ => i += 1,
        }
    }
    let key_end = i.min(bytes.len());
    let mut j = key_end;
    while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\x0c') {
        j += 1;
    }
    if j < bytes.len() && matches!(bytes[j], b'=' | b':') {
        j += 1;
        while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\x0c') {
            j += 1;
        }
    }
    (&line[..key_end], &line[j..])
}

/// Undoes `\t`, `\n`, `\r`, `\f`, `\uXXXX` (surrogate pairs included) and `\x` → `x`.
fn unescape(s: &str) -> String {
    let mut units: Vec<u16> = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u16; 2];
            units.extend_from_slice(c.encode_utf16(&mut buf));
            continue;
        }
        match chars.next() {
            Some('t') => units.push('\t' as u16),
            Some('n') => units.push('\n' as u16),
            Some('r') => units.push('\r' as u16),
            Some('f') => units.push(0x0c),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u16::from_str_radix(&hex, 16) {
                    Ok(unit) if hex.len() == 4 => units.push(unit),
                    // Java throws here; a cache file is best effort, so keep the text.
                    _ => units.extend("\\u".encode_utf16().chain(hex.encode_utf16())),
                }
            }
            Some(other) => {
                let mut buf = [0u16; 2];
                units.extend_from_slice(other.encode_utf16(&mut buf));
            }
            None => {}
        }
    }
    String::from_utf16_lossy(&units)
}

/// `java.util.Date.toString()` in UTC, e.g. `Sat Nov 21 22:37:28 UTC 2026`, for the comment
/// line Java writes under the header.
fn java_date(now: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), days counted from 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        year
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDER: &str = "dubbo://10.0.0.1:20880/org.apache.dubbo.demo.DemoService?anyhost=false&application=demo-provider&interface=org.apache.dubbo.demo.DemoService&methods=sayHello%2CsayHi&version=1.0.0";

    #[test]
    fn properties_round_trip_with_java_escapes() {
        let mut entries = BTreeMap::new();
        entries.insert(
            "blue/org.apache.dubbo.demo.DemoService:1.0.0".to_string(),
            format!("{PROVIDER} override://0.0.0.0/org.apache.dubbo.demo.DemoService?category=configurators"),
        );
        entries.insert(
            "key with spaces".to_string(),
            " leading space#!=:\\é€".to_string(),
        );
        let text = store_properties(&entries, UNIX_EPOCH);
        assert!(
            text.starts_with("#Dubbo Registry Cache\n#Thu Jan 01 00:00:00 UTC 1970\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "blue/org.apache.dubbo.demo.DemoService\\:1.0.0=dubbo\\://10.0.0.1\\:20880/"
            ),
            "colons escaped as Java does: {text}"
        );
        assert!(
            text.contains("key\\ with\\ spaces=\\ leading space\\#\\!\\=\\:\\\\\\u00E9\\u20AC\n"),
            "{text}"
        );
        assert!(text.is_ascii());
        assert_eq!(parse_properties(&text), entries);
    }

    #[test]
    fn parses_what_java_writes_and_reads() {
        // As java.util.Properties accepts: `:` or space separators, continuations, comments.
        let text =
            "# comment\n! another\n  a:1\nb  2\nc = x \\\n    y\\\\\nd\\ e=\\u0041\\t\r\nempty\n";
        let p = parse_properties(text);
        assert_eq!(p.get("a").map(String::as_str), Some("1"));
        assert_eq!(p.get("b").map(String::as_str), Some("2"));
        assert_eq!(p.get("c").map(String::as_str), Some("x y\\"));
        assert_eq!(p.get("d e").map(String::as_str), Some("A\t"));
        assert_eq!(p.get("empty").map(String::as_str), Some(""));
        assert_eq!(p.len(), 5);
    }

    #[test]
    fn java_date_matches_date_to_string() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_304_248);
        assert_eq!(java_date(t), "Sat Nov 21 23:37:28 UTC 2026");
    }

    #[tokio::test]
    async fn cache_file_round_trip_keeps_other_entries() {
        let dir = std::env::temp_dir().join(format!(
            "dwh-cache-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let path = dir.join("dubbo-registry-app-127.0.0.1-2181.cache");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::write(
            &path,
            "#Dubbo Registry Cache\nother/com.foo.Bar\\:1=dubbo\\://h\\:1/com.foo.Bar\n",
        )
        .expect("seed file");
        let provider = Url::parse(PROVIDER).expect("url");
        let cache = CacheFile::open(path.clone());
        cache.save(
            "org.apache.dubbo.demo.DemoService:1.0.0".into(),
            &[&provider, &provider],
        );
        drop(cache);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let urls = loop {
            if let Some(urls) = CacheFile::read(&path, "org.apache.dubbo.demo.DemoService:1.0.0")
                .await
                .expect("read")
            {
                break urls;
            }
            assert!(std::time::Instant::now() < deadline, "cache never written");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(urls, vec![provider.clone(), provider]);
        let kept = CacheFile::read(&path, "other/com.foo.Bar:1")
            .await
            .expect("read");
        assert_eq!(
            kept.map(|u| u.len()),
            Some(1),
            "entries of other services survive"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
