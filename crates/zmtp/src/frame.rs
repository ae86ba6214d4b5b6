//! The frame header: `flags(u8) size(u8 | u64 BE)`.
//!
//! Flags: MORE `0x01`, LONG `0x02` (8-byte size follows), COMMAND `0x04`.
//!
//! **Reserved bits policy.** Bits 3-7 are reserved and must be zero on the wire. We always send them
//! as zero, and on receipt we ignore them, as libzmq does: rejecting them would gain nothing (no
//! implementation sets them) and would make a future extension fatal. A command frame with MORE set
//! is a protocol error ([`ProtocolError::CommandWithMore`]): nothing defines what would follow it.
//! A LONG encoding of a size below 256 is accepted (libzmq accepts it too); we never send one.

use crate::error::ProtocolError;

/// More frames of the same message follow.
pub const FLAG_MORE: u8 = 0x01;
/// The size is 8 bytes long.
pub const FLAG_LONG: u8 = 0x02;
/// The frame is a command.
pub const FLAG_COMMAND: u8 = 0x04;

/// Length of a short header.
pub const SHORT_HEADER_LEN: usize = 2;
/// Length of a long header.
pub const LONG_HEADER_LEN: usize = 9;

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The flags byte as received (reserved bits included).
    pub flags: u8,
    /// Body length in bytes (below 2^63).
    pub len: u64,
    /// Length of the header itself: 2 or 9.
    pub header_len: usize,
}

impl FrameHeader {
    /// Parses a header from the front of `buf`: `Ok(None)` when `buf` does not yet hold all of it.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Option<Self>, ProtocolError> {
        let Some(&flags) = buf.first() else {
            return Ok(None);
        };
        if flags & FLAG_LONG == 0 {
            return Ok(buf.get(1).map(|&len| Self {
                flags,
                len: u64::from(len),
                header_len: SHORT_HEADER_LEN,
            }));
        }
        let Some(size) = buf.get(1..LONG_HEADER_LEN) else {
            return Ok(None);
        };
        let len = u64::from_be_bytes(size.try_into().expect("8 bytes"));
        if len > i64::MAX as u64 {
            return Err(ProtocolError::LengthOverflow(len));
        }
        Ok(Some(Self {
            flags,
            len,
            header_len: LONG_HEADER_LEN,
        }))
    }

    /// Whether MORE is set.
    #[inline]
    pub fn more(&self) -> bool {
        self.flags & FLAG_MORE != 0
    }

    /// Whether COMMAND is set.
    #[inline]
    pub fn is_command(&self) -> bool {
        self.flags & FLAG_COMMAND != 0
    }
}

/// Appends a frame header for a body of `len` bytes, choosing the short form when it fits.
/// `flags` must not contain [`FLAG_LONG`]; it is added as needed.
#[inline]
pub fn encode_header(out: &mut Vec<u8>, flags: u8, len: usize) {
    debug_assert_eq!(flags & FLAG_LONG, 0);
    if len <= usize::from(u8::MAX) {
        out.extend_from_slice(&[flags, len as u8]);
    } else {
        let mut h = [0u8; LONG_HEADER_LEN];
        h[0] = flags | FLAG_LONG;
        h[1..].copy_from_slice(&(len as u64).to_be_bytes());
        out.extend_from_slice(&h);
    }
}

/// Splits one complete frame off the front of `buf` into its header and body (test helper for
/// callers that hold whole frames).
pub fn split_header(buf: &[u8]) -> Option<(FrameHeader, &[u8])> {
    let h = FrameHeader::parse(buf).ok()??;
    let end = h.header_len.checked_add(usize::try_from(h.len).ok()?)?;
    Some((h, buf.get(h.header_len..end)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_headers() {
        let mut out = Vec::new();
        encode_header(&mut out, FLAG_MORE, 255);
        assert_eq!(out, [0x01, 0xFF]);
        out.clear();
        encode_header(&mut out, 0, 256);
        assert_eq!(out, [0x02, 0, 0, 0, 0, 0, 0, 1, 0]);
        let h = FrameHeader::parse(&out).unwrap().unwrap();
        assert_eq!((h.len, h.header_len, h.more()), (256, 9, false));
    }

    #[test]
    fn partial_headers_need_more() {
        assert_eq!(FrameHeader::parse(&[]), Ok(None));
        assert_eq!(FrameHeader::parse(&[0]), Ok(None));
        assert_eq!(FrameHeader::parse(&[2, 0, 0, 0]), Ok(None));
    }

    #[test]
    fn non_minimal_long_form_is_accepted() {
        let h = FrameHeader::parse(&[0x03, 0, 0, 0, 0, 0, 0, 0, 5])
            .unwrap()
            .unwrap();
        assert_eq!((h.len, h.more()), (5, true));
    }

    #[test]
    fn bit_63_is_rejected() {
        let mut buf = [0xFFu8; 9];
        buf[0] = FLAG_LONG;
        assert_eq!(
            FrameHeader::parse(&buf),
            Err(ProtocolError::LengthOverflow(u64::MAX))
        );
        buf[1] = 0x80;
        buf[2..].fill(0);
        assert!(FrameHeader::parse(&buf).is_err());
        buf[1] = 0x7F;
        assert!(FrameHeader::parse(&buf).is_ok());
    }

    #[test]
    fn reserved_bits_are_kept_but_ignored() {
        let h = FrameHeader::parse(&[0xF8 | FLAG_COMMAND, 0])
            .unwrap()
            .unwrap();
        assert!(h.is_command());
        assert!(!h.more());
    }
}
