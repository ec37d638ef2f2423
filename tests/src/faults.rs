//! Fault injection for the test provider, so tests can pin the consumer's behaviour when a
//! provider misbehaves. Per call, through request attachments: `test.delay` (ms before the
//! reply) and `test.reply-bytes` (reply with a string of that many bytes). Per process, through
//! lines on stdin: `readonly`, `writable`, `close`, `garbage`, `heartbeat`, `mute-heartbeats`,
//! `answer-heartbeats`, `mute-metadata`, `answer-metadata` (whether `MetadataService` calls get
//! a reply), `hostile MODE [N|always]` and `hostile off` (the next N requests, default 1, or
//! every request get the hostile reply of `MODE`, see `hostile`), and `stats`, which prints
//! `stats accepted=N requests=N heartbeat-replies=N metadata-calls=N max-in-flight=N
//! hostile-sent=N peer-closed=N` (`peer-closed`: connections the consumer closed).

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::BytesMut;
use dubbo_wasm_host::hessian2::Value;
use dubbo_wasm_host::protocol::dubbo::frame::Frame;
use dubbo_wasm_host::protocol::dubbo::message::{
    decode_request, encode_event, encode_heartbeat_request, encode_response, DecodedRequest, Reply,
};
use tokio::sync::{broadcast, mpsc};

use crate::hostile::{Mode, Switch, Times};

/// A command sent to every open connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Send the read-only event `"R"`, as a Java provider does when it shuts down.
    ReadOnly,
    /// Send the writable event `"W"`.
    Writable,
    /// Close the connection.
    Close,
    /// Write bytes that are not a Dubbo frame.
    Garbage,
    /// Send a heartbeat request, which the consumer must answer.
    Heartbeat,
}

/// Provider-wide fault switches and counters.
pub struct Control {
    /// Connections accepted on the services' port (not on a separate metadata port).
    pub accepted: AtomicU64,
    /// Requests other than `MetadataService` calls.
    pub requests: AtomicU64,
    pub heartbeat_replies: AtomicU64,
    pub mute_heartbeats: AtomicBool,
    /// `MetadataService` requests, answered or not.
    pub metadata_calls: AtomicU64,
    /// Whether `MetadataService` calls go unanswered (other calls are still answered).
    pub mute_metadata: AtomicBool,
    /// Requests being served now, and the most ever served at once.
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
    /// Hostile replies handed to a connection's writer.
    pub hostile_sent: AtomicU64,
    /// Connections that ended because the consumer closed or reset them.
    pub peer_closed: AtomicU64,
    /// The hostile mode on, and how many more requests get it.
    hostile: Mutex<Option<(Mode, Times)>>,
    commands: broadcast::Sender<Command>,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            accepted: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            heartbeat_replies: AtomicU64::new(0),
            mute_heartbeats: AtomicBool::new(false),
            metadata_calls: AtomicU64::new(0),
            mute_metadata: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            hostile_sent: AtomicU64::new(0),
            peer_closed: AtomicU64::new(0),
            hostile: Mutex::new(None),
            commands: broadcast::channel(64).0,
        }
    }
}

impl Control {
    /// A receiver of connection commands, for one connection.
    pub fn subscribe(&self) -> broadcast::Receiver<Command> {
        self.commands.subscribe()
    }

    /// The counters as one line.
    pub fn stats_line(&self) -> String {
        format!(
            "stats accepted={} requests={} heartbeat-replies={} metadata-calls={} max-in-flight={} hostile-sent={} peer-closed={}",
            self.accepted.load(Ordering::Relaxed),
            self.requests.load(Ordering::Relaxed),
            self.heartbeat_replies.load(Ordering::Relaxed),
            self.metadata_calls.load(Ordering::Relaxed),
            self.max_in_flight.load(Ordering::Relaxed),
            self.hostile_sent.load(Ordering::Relaxed),
            self.peer_closed.load(Ordering::Relaxed)
        )
    }

    /// The hostile mode the next request gets, if one is on; counts it against `N`.
    pub fn take_hostile(&self) -> Option<Mode> {
        let mut on = self.hostile.lock().ok()?;
        let (mode, times) = (*on)?;
        match times {
            Times::Always => {}
            Times::Next(n) if n <= 1 => *on = None,
            Times::Next(n) => *on = Some((mode, Times::Next(n - 1))),
        }
        Some(mode)
    }

    /// Applies `hostile …` (the words after `hostile`).
    fn switch_hostile(&self, args: &str) -> String {
        let switch = match Switch::parse(args) {
            Ok(s) => s,
            Err(e) => return format!("error {e}"),
        };
        let Ok(mut on) = self.hostile.lock() else {
            return "error hostile state poisoned".to_string();
        };
        *on = match switch {
            Switch::On(_, Times::Next(0)) | Switch::Off => None,
            Switch::On(mode, times) => Some((mode, times)),
        };
        format!("ok hostile {}", args.trim())
    }

    /// Applies one stdin line; returns what to print, if anything.
    pub fn apply(&self, line: &str) -> Option<String> {
        let command = match line.trim() {
            "readonly" => Command::ReadOnly,
            "writable" => Command::Writable,
            "close" => Command::Close,
            "garbage" => Command::Garbage,
            "heartbeat" => Command::Heartbeat,
            "mute-heartbeats" => {
                self.mute_heartbeats.store(true, Ordering::Relaxed);
                return Some("ok mute-heartbeats".to_string());
            }
            "answer-heartbeats" => {
                self.mute_heartbeats.store(false, Ordering::Relaxed);
                return Some("ok answer-heartbeats".to_string());
            }
            "mute-metadata" => {
                self.mute_metadata.store(true, Ordering::Relaxed);
                return Some("ok mute-metadata".to_string());
            }
            "answer-metadata" => {
                self.mute_metadata.store(false, Ordering::Relaxed);
                return Some("ok answer-metadata".to_string());
            }
            "stats" => return Some(self.stats_line()),
            l if l == "hostile" || l.starts_with("hostile ") => {
                return Some(self.switch_hostile(&l["hostile".len()..]));
            }
            "" => return None,
            other => return Some(format!("unknown command {other:?}")),
        };
        let _ = self.commands.send(command);
        Some(format!("ok {}", line.trim()))
    }

    /// Reads commands from stdin until it closes, printing each answer on stdout.
    ///
    /// The blocking reads run on a thread of their own rather than tokio's stdin: a read
    /// in tokio's blocking pool cannot be cancelled and would hold up the runtime's shutdown,
    /// so a provider signalled to stop would not exit while its stdin stays open.
    pub async fn read_stdin(&self) {
        let (tx, mut rx) = mpsc::channel::<String>(16);
        let reader = std::thread::Builder::new()
            .name("stdin".to_string())
            .spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if tx.blocking_send(line).is_err() {
                        break;
                    }
                }
            });
        if let Err(e) = reader {
            tracing::warn!(error = %e, "cannot read commands from stdin");
            return;
        }
        while let Some(line) = rx.recv().await {
            if let Some(out) = self.apply(&line) {
                println!("{out}");
            }
        }
    }
}

/// The frame a connection sends for `command`, or `None` for `Close`.
pub fn command_frame(command: Command, event_id: u64) -> Option<BytesMut> {
    let mut out = BytesMut::new();
    match command {
        Command::ReadOnly => encode_event(&mut out, event_id, "R"),
        Command::Writable => encode_event(&mut out, event_id, "W"),
        Command::Heartbeat => encode_heartbeat_request(&mut out, event_id),
        Command::Garbage => out.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n"),
        Command::Close => return None,
    }
    Some(out)
}

/// What a request asks of the provider through `test.*` attachments.
#[derive(Debug, Default)]
pub struct CallFaults {
    pub delay: Option<Duration>,
    pub reply_bytes: Option<usize>,
}

impl CallFaults {
    /// Reads the `test.*` attachments of a request frame (nothing for other frames).
    pub fn of(frame: &Frame) -> CallFaults {
        if !frame.header.is_request() || frame.header.is_event() {
            return CallFaults::default();
        }
        let Ok(req) = decode_request(&frame.body) else {
            return CallFaults::default();
        };
        CallFaults::of_request(&req)
    }

    /// Reads the `test.*` attachments of a decoded request.
    pub fn of_request(req: &DecodedRequest) -> CallFaults {
        let number = |key: &str| req.attachment(key).and_then(|v| v.parse::<u64>().ok());
        CallFaults {
            delay: number("test.delay").map(Duration::from_millis),
            reply_bytes: number("test.reply-bytes").map(|n| n as usize),
        }
    }

    /// The oversized reply asked for, if any.
    pub fn big_reply(&self, id: u64) -> Option<BytesMut> {
        let n = self.reply_bytes?;
        let mut out = BytesMut::new();
        let value = Value::String("x".repeat(n));
        encode_response(&mut out, id, &Reply::Value(&value), None);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_answers_the_next_n_requests_or_all_until_off() {
        let c = Control::default();
        assert_eq!(c.take_hostile(), None);
        assert_eq!(c.apply("hostile deep").as_deref(), Some("ok hostile deep"));
        assert_eq!(c.take_hostile(), Some(Mode::Deep));
        assert_eq!(c.take_hostile(), None, "N defaults to 1");
        c.apply("hostile drip 2");
        assert_eq!(c.take_hostile(), Some(Mode::Drip));
        assert_eq!(c.take_hostile(), Some(Mode::Drip));
        assert_eq!(c.take_hostile(), None);
        c.apply("hostile bad-magic always");
        for _ in 0..5 {
            assert_eq!(c.take_hostile(), Some(Mode::BadMagic));
        }
        assert_eq!(c.apply("hostile off").as_deref(), Some("ok hostile off"));
        assert_eq!(c.take_hostile(), None);
        let refused = c.apply("hostile sideways").unwrap_or_default();
        assert!(
            refused.starts_with("error ") && refused.contains("sideways"),
            "{refused}"
        );
        assert!(c.stats_line().ends_with(" hostile-sent=0 peer-closed=0"));
    }
}
