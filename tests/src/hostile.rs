//! Hostile replies for the test provider: every reply a broken or malicious provider can send
//! a consumer, so end-to-end tests can show that each costs only that call or that connection.
//!
//! The bytes are written here by hand, not by the host's encoder: the host's encoder cannot
//! write what is wrong (a dangling reference, a length it does not follow, a frame cut short),
//! and a codec bug must not be able to hide itself by being on both sides. A `dubbo://` frame
//! is a 16-byte header (magic `0xdabb`, flags, status, request id, body length) and a Hessian2
//! body; a response body is the response flag (an int) and then the value.
//!
//! Modes are switched on with the stdin command `hostile MODE [N|always]` (see `faults`).

use std::fmt;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;

/// Frame flags: request, two-way, event, and the Hessian2 serialization id.
const REQUEST: u8 = 0x80;
const TWO_WAY: u8 = 0x40;
const EVENT: u8 = 0x20;
const HESSIAN2: u8 = 0x02;
/// Response status OK.
const OK: u8 = 20;
/// Response flag `RESPONSE_VALUE` as a one-byte Hessian2 int (1 + 0x90).
const VALUE: u8 = 0x91;
/// Dubbo's default `payload` limit, 8 MiB.
const PAYLOAD: u32 = 8 * 1024 * 1024;
/// An id far above any a consumer in a test has sent (they count up from 1).
const NEVER_SENT: u64 = 1 << 48;

/// One kind of hostile reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A header promising 1000 body bytes, 10 sent, and that reply never completes; the
    /// provider keeps reading the connection and writes its later replies after it.
    Stall,
    /// Like `Stall`, and nothing more is written on that connection (it is still read, to see
    /// the consumer close it).
    StallSilent,
    /// A valid reply sent one byte per second.
    Drip,
    /// A 2 MB list of 1 M back-references `Q 0x90` to the list itself.
    SelfRefs,
    /// A back-reference to an object never defined.
    Dangling,
    /// An object whose class definition index does not exist.
    DanglingClass,
    /// A typed list referring to a type never defined.
    DanglingType,
    /// 100 000 nested untyped lists.
    Deep,
    /// A fixed list claiming 2^31 − 1 entries (the largest int), with one there.
    HugeList,
    /// A class definition claiming 2^31 − 1 fields, with one there.
    HugeClass,
    /// A frame whose magic is not `0xdabb`.
    BadMagic,
    /// A well-formed reply to a request id the consumer never sent.
    UnknownId,
    /// A request frame, sent by the provider to the consumer.
    ProviderRequest,
    /// An event the consumer does not expect (not a heartbeat, not read-only or writable).
    UnknownEvent,
    /// A header announcing a body over the default payload (8 MiB + 1 bytes).
    Oversize,
    /// A body that ends in the middle of a value; the header's length matches what is sent.
    Truncated,
}

impl Mode {
    /// Every mode, in the order of the rows and then the protocol violations.
    pub const ALL: [Mode; 16] = [
        Mode::Stall,
        Mode::StallSilent,
        Mode::Drip,
        Mode::SelfRefs,
        Mode::Dangling,
        Mode::DanglingClass,
        Mode::DanglingType,
        Mode::Deep,
        Mode::HugeList,
        Mode::HugeClass,
        Mode::BadMagic,
        Mode::UnknownId,
        Mode::ProviderRequest,
        Mode::UnknownEvent,
        Mode::Oversize,
        Mode::Truncated,
    ];

    /// The name the stdin command uses.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Stall => "stall",
            Mode::StallSilent => "stall-silent",
            Mode::Drip => "drip",
            Mode::SelfRefs => "self-refs",
            Mode::Dangling => "dangling",
            Mode::DanglingClass => "dangling-class",
            Mode::DanglingType => "dangling-type",
            Mode::Deep => "deep",
            Mode::HugeList => "huge-list",
            Mode::HugeClass => "huge-class",
            Mode::BadMagic => "bad-magic",
            Mode::UnknownId => "unknown-id",
            Mode::ProviderRequest => "provider-request",
            Mode::UnknownEvent => "unknown-event",
            Mode::Oversize => "oversize",
            Mode::Truncated => "truncated",
        }
    }

    /// The mode named `name`.
    pub fn parse(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether the reply is a whole frame whose body is bad Hessian2: the consumer fails that
    /// call and keeps the connection.
    pub fn is_bad_value(self) -> bool {
        matches!(
            self,
            Mode::SelfRefs
                | Mode::Dangling
                | Mode::DanglingClass
                | Mode::DanglingType
                | Mode::Deep
                | Mode::HugeList
                | Mode::HugeClass
        )
    }

    /// Whether the reply breaks the protocol: the consumer closes that connection.
    pub fn is_protocol_violation(self) -> bool {
        matches!(
            self,
            Mode::BadMagic
                | Mode::UnknownId
                | Mode::ProviderRequest
                | Mode::UnknownEvent
                | Mode::Oversize
                | Mode::Truncated
        )
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many requests get the hostile reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// The next `n`.
    Next(u64),
    /// Every one, until `hostile off`.
    Always,
}

/// A parsed `hostile …` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    On(Mode, Times),
    Off,
}

impl Switch {
    /// Parses what follows `hostile`: `off`, or `MODE [N|always]` (N defaults to 1).
    pub fn parse(args: &str) -> Result<Switch, String> {
        let mut words = args.split_whitespace();
        let Some(first) = words.next() else {
            return Err("hostile needs a mode or `off`".to_string());
        };
        if first == "off" {
            return match words.next() {
                None => Ok(Switch::Off),
                Some(extra) => Err(format!("`hostile off` takes nothing more, got {extra:?}")),
            };
        }
        let mode = Mode::parse(first).ok_or_else(|| {
            let names: Vec<_> = Mode::ALL.iter().map(|m| m.name()).collect();
            format!(
                "unknown hostile mode {first:?}; one of {}",
                names.join(", ")
            )
        })?;
        let times = match words.next() {
            None => Times::Next(1),
            Some("always") => Times::Always,
            Some(n) => Times::Next(
                n.parse()
                    .map_err(|_| format!("hostile {mode}: {n:?} is not a count or `always`"))?,
            ),
        };
        if let Some(extra) = words.next() {
            return Err(format!("hostile {mode}: unexpected {extra:?}"));
        }
        Ok(Switch::On(mode, times))
    }
}

/// What a connection's writer does with one hostile reply.
#[derive(Debug)]
pub enum Hostile {
    /// Write the bytes and go on.
    Whole(BytesMut),
    /// Write the bytes (a frame cut short) and never finish it; with `silent`, write nothing
    /// more on the connection either.
    Stall { bytes: BytesMut, silent: bool },
    /// Write the bytes one per `every`.
    Drip { bytes: BytesMut, every: Duration },
}

impl Hostile {
    /// The hostile reply of `mode` to request `id`.
    pub fn reply(mode: Mode, id: u64) -> Hostile {
        let whole = |body: &[u8]| Hostile::Whole(response(id, body));
        match mode {
            Mode::Stall | Mode::StallSilent => {
                let mut bytes = BytesMut::new();
                header(&mut bytes, HESSIAN2, OK, id, 1000);
                // The value flag, then a string announcing 992 characters, 6 of them here.
                bytes.extend_from_slice(&[VALUE, b'S', 0x03, 0xe0]);
                bytes.extend_from_slice(b"stall!");
                Hostile::Stall {
                    bytes,
                    silent: mode == Mode::StallSilent,
                }
            }
            Mode::Drip => {
                let mut body = vec![VALUE];
                string(&mut body, "dripped, one byte a second");
                Hostile::Drip {
                    bytes: response(id, &body),
                    every: Duration::from_secs(1),
                }
            }
            Mode::SelfRefs => whole(&self_refs(1_000_000)),
            // A list of one (it is object 0) holding a reference to object 7.
            Mode::Dangling => whole(&[VALUE, 0x79, b'Q', 0x97]),
            // An object of class definition 0 when none was defined.
            Mode::DanglingClass => whole(&[VALUE, 0x60, b'N']),
            // A fixed typed list of one whose type is type reference 0, never defined.
            Mode::DanglingType => whole(&[VALUE, 0x71, 0x90, b'N']),
            Mode::Deep => whole(&deep(100_000)),
            Mode::HugeList => {
                // 'X' is a fixed untyped list: its length is the next int.
                let mut body = vec![VALUE, b'X', b'I', 0x7f, 0xff, 0xff, 0xff];
                body.push(b'N');
                whole(&body)
            }
            Mode::HugeClass => {
                let mut body = vec![VALUE, b'C'];
                string(&mut body, "org.example.Huge");
                body.extend_from_slice(&[b'I', 0x7f, 0xff, 0xff, 0xff]);
                string(&mut body, "a");
                body.extend_from_slice(&[0x60, b'N']);
                whole(&body)
            }
            Mode::BadMagic => {
                let mut bytes = response(id, &[VALUE, b'N']);
                bytes[0] = 0xca;
                bytes[1] = 0xfe;
                Hostile::Whole(bytes)
            }
            Mode::UnknownId => {
                let mut body = vec![VALUE];
                string(&mut body, "a reply to nothing");
                Hostile::Whole(response(id.wrapping_add(NEVER_SENT), &body))
            }
            Mode::ProviderRequest => {
                let mut bytes = BytesMut::new();
                let body = invocation();
                header(
                    &mut bytes,
                    REQUEST | TWO_WAY | HESSIAN2,
                    0,
                    id.wrapping_add(NEVER_SENT),
                    body.len() as u32,
                );
                bytes.extend_from_slice(&body);
                Hostile::Whole(bytes)
            }
            Mode::UnknownEvent => {
                let mut body = Vec::new();
                string(&mut body, "hostile-event");
                let mut bytes = BytesMut::new();
                header(
                    &mut bytes,
                    REQUEST | EVENT | HESSIAN2,
                    0,
                    id.wrapping_add(NEVER_SENT),
                    body.len() as u32,
                );
                bytes.extend_from_slice(&body);
                Hostile::Whole(bytes)
            }
            Mode::Oversize => {
                let mut bytes = BytesMut::new();
                header(&mut bytes, HESSIAN2, OK, id, PAYLOAD + 1);
                bytes.extend_from_slice(&[VALUE, b'N']);
                Hostile::Whole(bytes)
            }
            // A string announcing 16 characters with 3 there, and the frame ends.
            Mode::Truncated => whole(&[VALUE, b'S', 0x00, 0x10, b'a', b'b', b'c']),
        }
    }

    /// The bytes this reply puts on the wire (all of them, for a stall or a drip).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Hostile::Whole(b)
            | Hostile::Stall { bytes: b, .. }
            | Hostile::Drip { bytes: b, .. } => b,
        }
    }

    /// Writes the reply to `wr`; returns whether the connection's writer may write anything
    /// after it (false after a silent stall).
    pub async fn write(self, wr: &mut OwnedWriteHalf) -> std::io::Result<bool> {
        match self {
            Hostile::Whole(bytes) => wr.write_all(&bytes).await.map(|()| true),
            Hostile::Stall { bytes, silent } => wr.write_all(&bytes).await.map(|()| !silent),
            Hostile::Drip { bytes, every } => {
                for b in bytes.iter() {
                    wr.write_all(&[*b]).await?;
                    tokio::time::sleep(every).await;
                }
                Ok(true)
            }
        }
    }
}

/// Writes a 16-byte frame header.
fn header(out: &mut BytesMut, flags: u8, status: u8, id: u64, body_len: u32) {
    out.put_u16(0xdabb);
    out.put_u8(flags);
    out.put_u8(status);
    out.put_u64(id);
    out.put_u32(body_len);
}

/// A whole OK response frame to `id` with `body`.
fn response(id: u64, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(16 + body.len());
    header(&mut out, HESSIAN2, OK, id, body.len() as u32);
    out.extend_from_slice(body);
    out
}

/// A Hessian2 string of ASCII text: one length byte up to 31, else `S` and a 16-bit length.
fn string(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.is_ascii() && s.len() < 0x8000);
    let len = s.len();
    if len < 32 {
        out.push(len as u8);
    } else {
        out.push(b'S');
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

/// The response flag and a variable-length untyped list (`W … Z`, object 0) of `n`
/// references to object 0: the list itself.
fn self_refs(n: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(3 + 2 * n);
    body.extend_from_slice(&[VALUE, b'W']);
    for _ in 0..n {
        body.extend_from_slice(&[b'Q', 0x90]);
    }
    body.push(b'Z');
    body
}

/// The response flag and `depth` fixed untyped lists of one (`0x79`), each inside the last,
/// around a null.
fn deep(depth: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(2 + depth);
    body.push(VALUE);
    body.resize(1 + depth, 0x79);
    body.push(b'N');
    body
}

/// The body of an invocation of `DemoService.sayHello("from the provider")`, as a consumer
/// would send it: Dubbo version, path, version, method, parameter types, the argument and the
/// attachments map.
fn invocation() -> Vec<u8> {
    let mut body = Vec::new();
    for s in [
        "2.0.2",
        "org.apache.dubbo.demo.DemoService",
        "1.0.0",
        "sayHello",
        "Ljava/lang/String;",
        "from the provider",
    ] {
        string(&mut body, s);
    }
    body.push(b'H');
    string(&mut body, "path");
    string(&mut body, "org.apache.dubbo.demo.DemoService");
    body.push(b'Z');
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use dubbo_wasm_host::hessian2::{Decoder, Value};
    use dubbo_wasm_host::protocol::dubbo::frame::{peek_header, split_frame, DEFAULT_PAYLOAD};
    use dubbo_wasm_host::protocol::dubbo::message::decode_request;

    fn frame_of(mode: Mode) -> BytesMut {
        BytesMut::from(Hostile::reply(mode, 7).bytes())
    }

    #[test]
    fn every_mode_has_a_name_that_parses_back() {
        for m in Mode::ALL {
            assert_eq!(Mode::parse(m.name()), Some(m));
        }
        assert_eq!(
            Switch::parse("deep"),
            Ok(Switch::On(Mode::Deep, Times::Next(1)))
        );
        assert_eq!(
            Switch::parse("stall 3"),
            Ok(Switch::On(Mode::Stall, Times::Next(3)))
        );
        assert_eq!(
            Switch::parse("bad-magic always"),
            Ok(Switch::On(Mode::BadMagic, Times::Always))
        );
        assert_eq!(Switch::parse("off"), Ok(Switch::Off));
        let err = Switch::parse("sideways").unwrap_err();
        assert!(
            err.contains("sideways") && err.contains("self-refs"),
            "{err}"
        );
        assert!(Switch::parse("deep twice").unwrap_err().contains("twice"));
        assert!(Switch::parse("").is_err());
    }

    #[test]
    fn a_stall_announces_1000_body_bytes_and_sends_10() {
        let b = frame_of(Mode::Stall);
        let h = peek_header(&b, DEFAULT_PAYLOAD)
            .expect("valid header")
            .expect("whole header");
        assert_eq!((h.id, h.body_len, b.len() - 16), (7, 1000, 10));
        let mut buf = b.clone();
        assert!(split_frame(&mut buf, DEFAULT_PAYLOAD)
            .expect("valid")
            .is_none());
        assert!(matches!(
            Hostile::reply(Mode::StallSilent, 7),
            Hostile::Stall { silent: true, .. }
        ));
    }

    #[test]
    fn the_drip_is_a_valid_reply() {
        let mut b = frame_of(Mode::Drip);
        let f = split_frame(&mut b, DEFAULT_PAYLOAD)
            .expect("valid")
            .expect("whole");
        let mut d = Decoder::new(&f.body);
        assert_eq!(d.read_int().ok(), Some(1));
        assert_eq!(
            d.read_value().ok(),
            Some(Value::String("dripped, one byte a second".into()))
        );
        assert!(d.is_at_end());
    }

    #[test]
    fn self_refs_is_two_megabytes_of_references_to_the_list() {
        let mut b = frame_of(Mode::SelfRefs);
        let f = split_frame(&mut b, DEFAULT_PAYLOAD)
            .expect("valid")
            .expect("whole");
        assert_eq!(f.body.len(), 2_000_003);
        assert_eq!(&f.body[..6], &[VALUE, b'W', b'Q', 0x90, b'Q', 0x90]);
        assert_eq!(f.body.last(), Some(&b'Z'));
    }

    #[test]
    fn bad_values_are_whole_frames_with_the_response_flag_first() {
        for m in Mode::ALL.into_iter().filter(|m| m.is_bad_value()) {
            let mut b = frame_of(m);
            let f = split_frame(&mut b, DEFAULT_PAYLOAD)
                .unwrap_or_else(|e| panic!("{m}: {e}"))
                .unwrap_or_else(|| panic!("{m}: not whole"));
            assert!(b.is_empty(), "{m}: bytes after the frame");
            assert_eq!((f.header.id, f.header.status), (7, OK), "{m}");
            assert_eq!(Decoder::new(&f.body).read_int().ok(), Some(1), "{m}");
        }
    }

    #[test]
    fn deep_nests_100_000_lists() {
        let mut b = frame_of(Mode::Deep);
        let f = split_frame(&mut b, DEFAULT_PAYLOAD)
            .expect("valid")
            .expect("whole");
        assert_eq!(f.body.len(), 100_002);
        assert!(f.body[1..100_001].iter().all(|&t| t == 0x79));
    }

    #[test]
    fn protocol_violations_are_what_they_say() {
        let bad = frame_of(Mode::BadMagic);
        assert!(peek_header(&bad, DEFAULT_PAYLOAD).is_err());

        let over = frame_of(Mode::Oversize);
        assert!(peek_header(&over, DEFAULT_PAYLOAD).is_err());
        assert!(peek_header(&over, DEFAULT_PAYLOAD + 1).is_ok());

        let mut unknown = frame_of(Mode::UnknownId);
        let f = split_frame(&mut unknown, DEFAULT_PAYLOAD)
            .expect("valid")
            .expect("whole");
        assert_eq!(f.header.id, 7 + NEVER_SENT);
        assert!(!f.header.is_request() && !f.header.is_event());

        let mut req = frame_of(Mode::ProviderRequest);
        let f = split_frame(&mut req, DEFAULT_PAYLOAD)
            .expect("valid")
            .expect("whole");
        assert!(f.header.is_request() && f.header.is_two_way() && !f.header.is_event());
        let r = decode_request(&f.body).expect("a request the host's codec reads");
        assert_eq!(
            (r.path.as_str(), r.method.as_str()),
            ("org.apache.dubbo.demo.DemoService", "sayHello")
        );

        let mut event = frame_of(Mode::UnknownEvent);
        let f = split_frame(&mut event, DEFAULT_PAYLOAD)
            .expect("valid")
            .expect("whole");
        assert!(f.header.is_request() && f.header.is_event());
        assert_eq!(
            Decoder::new(&f.body).read_value().ok(),
            Some(Value::String("hostile-event".into()))
        );

        let mut cut = frame_of(Mode::Truncated);
        let f = split_frame(&mut cut, DEFAULT_PAYLOAD)
            .expect("valid")
            .expect("whole");
        let mut d = Decoder::new(&f.body);
        assert_eq!(d.read_int().ok(), Some(1));
        assert!(d.read_value().is_err(), "the value must end early");
    }
}
