//! The 16-byte `dubbo://` header and whole-frame splitting: a cheap check of whether a full
//! frame is buffered comes before any body parsing, and a bad magic or an oversized body is
//! refused from the header alone, before the body is read.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Length of the fixed frame header.
pub const HEADER_LEN: usize = 16;
/// First two bytes of every frame.
pub const MAGIC: u16 = 0xdabb;
/// Flag bit: the frame is a request.
pub const FLAG_REQUEST: u8 = 0x80;
/// Flag bit: the request expects a reply.
pub const FLAG_TWO_WAY: u8 = 0x40;
/// Flag bit: heartbeat or read-only event rather than an invocation.
pub const FLAG_EVENT: u8 = 0x20;
/// Low five flag bits: the serialization id.
pub const SERIALIZATION_MASK: u8 = 0x1f;
/// Serialization id of Hessian2, the only one this host speaks.
pub const HESSIAN2: u8 = 2;
/// Dubbo's default `payload` limit: 8 MiB.
pub const DEFAULT_PAYLOAD: usize = 8 * 1024 * 1024;

/// Response status codes (`org.apache.dubbo.remoting.exchange.Response`).
pub mod status {
    pub const OK: u8 = 20;
    pub const SERIALIZATION_ERROR: u8 = 25;
    pub const CLIENT_TIMEOUT: u8 = 30;
    pub const SERVER_TIMEOUT: u8 = 31;
    pub const CHANNEL_INACTIVE: u8 = 35;
    pub const BAD_REQUEST: u8 = 40;
    pub const BAD_RESPONSE: u8 = 50;
    pub const SERVICE_NOT_FOUND: u8 = 60;
    pub const SERVICE_ERROR: u8 = 70;
    pub const SERVER_ERROR: u8 = 80;
    pub const CLIENT_ERROR: u8 = 90;
    pub const SERVER_THREADPOOL_EXHAUSTED_ERROR: u8 = 100;
}

/// Why a byte stream is not a valid `dubbo://` frame; the connection that sent it is closed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("bad magic 0x{0:04x} (expected 0xdabb): the peer does not speak dubbo://")]
    BadMagic(u16),
    #[error("frame {id} announces a {len}-byte body, over the payload limit of {limit} bytes")]
    Oversize { id: u64, len: usize, limit: usize },
    #[error("frame {id} uses serialization id {serialization}; only hessian2 (2) is supported")]
    Serialization { id: u64, serialization: u8 },
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub flags: u8,
    pub status: u8,
    pub id: u64,
    pub body_len: usize,
}

impl Header {
    pub fn is_request(&self) -> bool {
        self.flags & FLAG_REQUEST != 0
    }
    pub fn is_two_way(&self) -> bool {
        self.flags & FLAG_TWO_WAY != 0
    }
    pub fn is_event(&self) -> bool {
        self.flags & FLAG_EVENT != 0
    }
    pub fn serialization(&self) -> u8 {
        self.flags & SERIALIZATION_MASK
    }

    /// Writes the header; `body_len` may be patched later with [`patch_body_len`].
    pub fn write(&self, out: &mut BytesMut) {
        out.put_u16(MAGIC);
        out.put_u8(self.flags);
        out.put_u8(self.status);
        out.put_u64(self.id);
        out.put_u32(self.body_len as u32);
    }
}

/// A whole frame: header plus its (still serialized) body.
#[derive(Debug, Clone)]
pub struct Frame {
    pub header: Header,
    pub body: Bytes,
}

/// Sets the body length of the frame that starts at `start` in `out`, once the body is written.
pub fn patch_body_len(out: &mut BytesMut, start: usize) {
    let len = (out.len() - start - HEADER_LEN) as u32;
    out[start + 12..start + 16].copy_from_slice(&len.to_be_bytes());
}

/// Parses the header at the front of `buf` if 16 bytes are there. Checks magic, payload limit
/// and serialization so that a bad frame is refused before its body is awaited.
pub fn peek_header(buf: &[u8], payload_limit: usize) -> Result<Option<Header>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let magic = u16::from_be_bytes([buf[0], buf[1]]);
    if magic != MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let mut h = h;
    h.advance(2);
    let flags = h.get_u8();
    let status = h.get_u8();
    let id = h.get_u64();
    let body_len = h.get_u32() as usize;
    if body_len > payload_limit {
        return Err(FrameError::Oversize {
            id,
            len: body_len,
            limit: payload_limit,
        });
    }
    // A heartbeat reply may carry serialization 0 from some peers; only check real bodies.
    let serialization = flags & SERIALIZATION_MASK;
    if serialization != HESSIAN2 && body_len > 0 && flags & FLAG_EVENT == 0 {
        return Err(FrameError::Serialization { id, serialization });
    }
    Ok(Some(Header {
        flags,
        status,
        id,
        body_len,
    }))
}

/// Splits one whole frame off the front of `buf`, or returns `None` until one is buffered.
pub fn split_frame(buf: &mut BytesMut, payload_limit: usize) -> Result<Option<Frame>, FrameError> {
    let Some(header) = peek_header(buf, payload_limit)? else {
        return Ok(None);
    };
    if buf.len() < HEADER_LEN + header.body_len {
        buf.reserve(HEADER_LEN + header.body_len - buf.len());
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let body = buf.split_to(header.body_len).freeze();
    Ok(Some(Frame { header, body }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(flags: u8, id: u64, len: u32) -> BytesMut {
        let mut b = BytesMut::new();
        Header {
            flags,
            status: 0,
            id,
            body_len: len as usize,
        }
        .write(&mut b);
        b
    }

    #[test]
    fn waits_for_a_whole_frame_before_splitting() {
        let mut b = header_bytes(0xc2, 7, 3);
        b.extend_from_slice(&[1, 2]);
        assert!(split_frame(&mut b, DEFAULT_PAYLOAD)
            .expect("valid")
            .is_none());
        b.extend_from_slice(&[3, 9]);
        let f = split_frame(&mut b, DEFAULT_PAYLOAD)
            .expect("valid")
            .expect("whole frame");
        assert_eq!(f.header.id, 7);
        assert!(f.header.is_request() && f.header.is_two_way() && !f.header.is_event());
        assert_eq!(&f.body[..], &[1, 2, 3]);
        assert_eq!(&b[..], &[9]);
    }

    #[test]
    fn bad_magic_is_refused_from_two_bytes() {
        let mut b = BytesMut::from(&b"GE"[..]);
        assert_eq!(
            split_frame(&mut b, DEFAULT_PAYLOAD).unwrap_err(),
            FrameError::BadMagic(0x4745)
        );
    }

    #[test]
    fn oversize_body_is_refused_from_the_header_alone() {
        let mut b = header_bytes(0x02, 1, 9 * 1024 * 1024);
        assert!(matches!(
            split_frame(&mut b, DEFAULT_PAYLOAD),
            Err(FrameError::Oversize { id: 1, .. })
        ));
    }

    #[test]
    fn non_hessian_serialization_is_refused() {
        let mut b = header_bytes(0xc6, 1, 1);
        b.extend_from_slice(&[0]);
        assert!(matches!(
            split_frame(&mut b, DEFAULT_PAYLOAD),
            Err(FrameError::Serialization {
                serialization: 6,
                ..
            })
        ));
    }
}
