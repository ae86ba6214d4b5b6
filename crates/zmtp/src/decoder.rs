//! The fused frame decoder: bytes from the read buffer go straight into the final [`Message`].
//!
//! Small frames (up to [`INLINE_CAPACITY`](crate::INLINE_CAPACITY)) are copied once, into the
//! message's inline storage. Larger frames become a [`Bytes`] handle: a zero-copy slice of the read
//! buffer when decoding from a [`BytesMut`] ([`Decoder::decode_buf`]), one copy when decoding from a
//! borrowed slice ([`Decoder::decode_slice`]).
//!
//! The decoder never keeps partial frames: it consumes only complete frames and leaves the rest in
//! the caller's buffer. [`Decoder::bytes_needed`] says how many bytes the next frame needs in total,
//! after its header has been checked against the limits, so a caller can grow its buffer without
//! ever trusting an unchecked length. Every limit is checked on the header, before the caller is
//! asked to hold the body and before anything is allocated.

use bytes::{Bytes, BytesMut};

use crate::error::ProtocolError;
use crate::frame::{FLAG_COMMAND, FLAG_LONG, FLAG_MORE, FrameHeader};
use crate::message::{Frame, INLINE_CAPACITY, Message};

/// Limits on what a peer may send. Checked before any allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest total size of a message (all frames), in bytes. `None`: unlimited (libzmq's
    /// MAXMSGSIZE default of -1). libzmq checks its MAXMSGSIZE per frame; this is per message, and
    /// [`max_frame_size`](Self::max_frame_size) is the per-frame limit.
    pub max_message_size: Option<u64>,
    /// Largest single frame (data or command), in bytes. `None`: unlimited.
    pub max_frame_size: Option<u64>,
    /// Most frames in one message.
    pub max_parts: usize,
    /// Largest handshake command (READY and mechanism commands, whose bodies are mostly metadata).
    pub max_handshake_size: u64,
}

impl Limits {
    /// The defaults: no message or frame size limit (as libzmq), at most 65 536 parts per message,
    /// handshake commands up to 64 KiB.
    pub const DEFAULT: Self = Self {
        max_message_size: None,
        max_frame_size: None,
        max_parts: 65_536,
        max_handshake_size: 64 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What the decoder produced.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decoded {
    /// A complete message.
    Message(Message),
    /// A command frame body (`name-len name data`), parse with
    /// [`Command::parse`](crate::Command::parse).
    Command(Frame),
}

/// Where [`Decoder::decode_into`] stopped.
pub(crate) enum Stop {
    /// The input holds no complete frame.
    Input,
    /// The sink gave this message back.
    Declined(Message),
    /// A command frame's body (any frame's, boxed).
    Command(Frame),
}

/// A contiguous input the decoder can take frames from.
pub(crate) trait Input {
    fn chunk(&self) -> &[u8];
    fn skip(&mut self, n: usize);
    /// Skips `skip` bytes, then takes the next `n` as `Bytes` (zero-copy where the input allows
    /// it).
    fn take(&mut self, skip: usize, n: usize) -> Bytes;
}

impl Input for &[u8] {
    #[inline]
    fn chunk(&self) -> &[u8] {
        self
    }

    #[inline]
    fn skip(&mut self, n: usize) {
        *self = &self[n..];
    }

    #[inline]
    fn take(&mut self, skip: usize, n: usize) -> Bytes {
        let (head, tail) = self[skip..].split_at(n);
        *self = tail;
        Bytes::copy_from_slice(head)
    }
}

impl Input for BytesMut {
    #[inline]
    fn chunk(&self) -> &[u8] {
        self
    }

    #[inline]
    fn skip(&mut self, n: usize) {
        bytes::Buf::advance(self, n);
    }

    /// One cut of the buffer for header and body, the header then dropped from the frozen
    /// `Bytes`: advancing a `BytesMut` costs several times what advancing a `Bytes` does.
    #[inline]
    fn take(&mut self, skip: usize, n: usize) -> Bytes {
        let mut frame = self.split_to(skip + n).freeze();
        bytes::Buf::advance(&mut frame, skip);
        frame
    }
}

/// Copies the small frame `data[body..body + len]` (`len <= INLINE_CAPACITY`, all present) into
/// inline storage: a fixed-size window copy when the input extends that far, which compiles to a
/// few vector moves instead of a zeroing and a variable-length `memcpy`.
#[inline]
fn small_frame(data: &[u8], body: usize, len: usize) -> Frame {
    match data.get(body..body + INLINE_CAPACITY) {
        Some(window) => Frame::inline_from_window(window.try_into().expect("window length"), len),
        None => Frame::copy_from_slice(&data[body..body + len]),
    }
}

/// Decodes frames after the greeting: data frames assembled into messages, and command frames.
///
/// ```
/// use omq_zmtp::{Decoded, Decoder, Limits, Message};
///
/// let mut dec = Decoder::new(Limits::default());
/// let mut input: &[u8] = b"\x01\x01a\x00\x01b\x00\x01c";
/// let mut got = Vec::new();
/// while let Some(Decoded::Message(m)) = dec.decode_slice(&mut input).unwrap() {
///     got.push(m);
/// }
/// assert_eq!(got, [Message::from_iter(["a", "b"]), Message::from("c")]);
/// assert!(input.is_empty());
/// ```
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    /// Frames of a message whose last frame has not arrived.
    parts: Vec<Frame>,
    /// Total payload size of `parts`.
    parts_size: u64,
    /// Bytes the next frame needs in total (header and body), once its header has been read.
    needed: usize,
    /// During the handshake only commands are allowed, with the handshake size limit.
    handshake: bool,
    /// Outside the handshake, no limit can refuse a frame of up to `INLINE_CAPACITY` bytes
    /// starting a message.
    small_frames_fit: bool,
    /// Every frame is returned on its own as [`Decoded::Command`], whatever its flags: the
    /// established state of a mechanism that boxes each frame (CURVE's MESSAGE). The limits are
    /// checked with [`BOX_OVERHEAD`] of slack; the mechanism checks them exactly once opened.
    boxed: bool,
}

/// The most a mechanism adds to a frame it boxes (CURVE: name, nonce, MAC, flags and a
/// SUBSCRIBE/CANCEL name).
pub(crate) const BOX_OVERHEAD: u64 = 64;

impl Decoder {
    /// A decoder for an established connection.
    pub fn new(limits: Limits) -> Self {
        let mut dec = Self {
            limits,
            parts: Vec::new(),
            parts_size: 0,
            needed: 1,
            handshake: false,
            small_frames_fit: false,
            boxed: false,
        };
        dec.set_handshake(false);
        dec
    }

    /// A decoder in handshake mode: data frames are errors, commands are capped at
    /// [`Limits::max_handshake_size`].
    pub(crate) fn for_handshake(limits: Limits) -> Self {
        let mut dec = Self::new(limits);
        dec.set_handshake(true);
        dec
    }

    pub(crate) fn set_handshake(&mut self, handshake: bool) {
        self.handshake = handshake;
        let fits = |limit: Option<u64>| limit.is_none_or(|l| l >= INLINE_CAPACITY as u64);
        self.small_frames_fit = !handshake
            && !self.boxed
            && fits(self.limits.max_message_size)
            && fits(self.limits.max_frame_size);
    }

    /// Switches to boxed mode (see the `boxed` field) once a boxing mechanism is established.
    pub(crate) fn set_boxed(&mut self) {
        self.boxed = true;
        self.set_handshake(false);
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The number of bytes the input must hold, from its start, for the next frame to decode.
    ///
    /// Valid after a decode call returned `Ok(None)`: at least the header length before the header
    /// has arrived, the whole frame (header and body) after. Already checked against the limits.
    /// With no size limits configured it can be large: grow the buffer as bytes arrive rather than
    /// reserving it all at once.
    #[inline]
    pub fn bytes_needed(&self) -> usize {
        self.needed
    }

    /// Whether a multipart message is partly received.
    pub fn in_message(&self) -> bool {
        !self.parts.is_empty()
    }

    /// Decodes the next message or command from `input`, advancing it past what was consumed.
    /// Large frames are copied out of `input`.
    #[inline]
    pub fn decode_slice(&mut self, input: &mut &[u8]) -> Result<Option<Decoded>, ProtocolError> {
        self.decode(input)
    }

    /// Decodes the next message or command from the front of `buf`. Large frames are zero-copy
    /// slices of `buf`'s storage.
    #[inline]
    pub fn decode_buf(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, ProtocolError> {
        self.decode(buf)
    }

    /// The next message or command: [`decode_into`](Self::decode_into) with a sink that gives
    /// the first message back.
    #[inline]
    pub(crate) fn decode<I: Input>(
        &mut self,
        input: &mut I,
    ) -> Result<Option<Decoded>, ProtocolError> {
        Ok(match self.decode_into(input, &mut Err)? {
            Stop::Input => None,
            Stop::Declined(msg) => Some(Decoded::Message(msg)),
            Stop::Command(body) => Some(Decoded::Command(body)),
        })
    }

    /// Decodes data messages from `input` straight into `sink`, until the input runs out, a
    /// command frame comes (or any frame, boxed), or `sink` gives a message back.
    ///
    /// Each message is built where it is handed to `sink` and never travels inside a
    /// [`Decoded`] or an `Option`: looking into such an enum makes the compiler copy the message
    /// in pieces at odd offsets, and the whole-value loads of the next move then wait for those
    /// stores to reach the cache.
    #[inline]
    pub(crate) fn decode_into<I, F>(
        &mut self,
        input: &mut I,
        sink: &mut F,
    ) -> Result<Stop, ProtocolError>
    where
        I: Input,
        F: FnMut(Message) -> Result<(), Message>,
    {
        loop {
            // Fast path: a complete single-frame message of at most INLINE_CAPACITY bytes,
            // when no limit can refuse a frame that small.
            if self.small_frames_fit && self.parts.is_empty() {
                let data = input.chunk();
                if let Some(&[flags, len]) = data.first_chunk::<2>() {
                    let len = usize::from(len);
                    if flags & (FLAG_MORE | FLAG_LONG | FLAG_COMMAND) == 0 && len <= INLINE_CAPACITY
                    {
                        if data.len() < 2 + len {
                            self.needed = 2 + len;
                            return Ok(Stop::Input);
                        }
                        let frame = small_frame(data, 2, len);
                        input.skip(2 + len);
                        if let Err(m) = sink(Message::single(frame)) {
                            return Ok(Stop::Declined(m));
                        }
                        continue;
                    }
                }
            }
            let Some(header) = self.next_header(input)? else {
                return Ok(Stop::Input);
            };
            let frame = self.take_frame(input, &header);
            if header.is_command() || self.boxed {
                return Ok(Stop::Command(frame));
            }
            if header.more() {
                self.parts_size += frame.len() as u64;
                self.parts.push(frame);
                continue;
            }
            let msg = if self.parts.is_empty() {
                Message::single(frame)
            } else {
                let mut parts = std::mem::take(&mut self.parts);
                parts.push(frame);
                self.parts_size = 0;
                Message::from(parts)
            };
            if let Err(m) = sink(msg) {
                return Ok(Stop::Declined(m));
            }
        }
    }

    /// The next frame's header, checked against every limit, once the whole frame is in
    /// `input`; `Ok(None)` (and [`bytes_needed`](Self::bytes_needed) set) until then.
    #[inline]
    fn next_header<I: Input>(&mut self, input: &I) -> Result<Option<FrameHeader>, ProtocolError> {
        let data = input.chunk();
        let Some(header) = FrameHeader::parse(data)? else {
            self.needed = if data.first().is_some_and(|f| f & FLAG_LONG != 0) {
                crate::frame::LONG_HEADER_LEN
            } else {
                crate::frame::SHORT_HEADER_LEN
            };
            return Ok(None);
        };
        self.check(&header)?;
        // `check` bounded the length by the limits; without limits it is below 2^63, which may
        // still not fit in memory, so saturate rather than overflow.
        let len = usize::try_from(header.len).unwrap_or(usize::MAX);
        let total = header.header_len.saturating_add(len);
        if data.len() < total {
            self.needed = total;
            return Ok(None);
        }
        Ok(Some(header))
    }

    /// Takes the frame that `header` (from [`next_header`](Self::next_header): checked, and
    /// all in `input`) announced off `input`.
    #[inline]
    fn take_frame<I: Input>(&mut self, input: &mut I, header: &FrameHeader) -> Frame {
        // The whole frame is in memory, so its length fits.
        let len = header.len as usize;
        self.needed = 1;
        if len <= INLINE_CAPACITY {
            let frame = small_frame(input.chunk(), header.header_len, len);
            input.skip(header.header_len + len);
            frame
        } else {
            Frame::from_bytes(input.take(header.header_len, len))
        }
    }

    #[inline]
    fn check(&self, h: &FrameHeader) -> Result<(), ProtocolError> {
        if self.boxed {
            let slack = |limit: Option<u64>| limit.map(|l| l.saturating_add(BOX_OVERHEAD));
            if let Some(limit) = slack(self.limits.max_message_size) {
                if h.len > limit {
                    return Err(ProtocolError::MessageTooLarge { size: h.len, limit });
                }
            }
            if let Some(limit) = slack(self.limits.max_frame_size) {
                if h.len > limit {
                    return Err(ProtocolError::FrameTooLarge { size: h.len, limit });
                }
            }
            return Ok(());
        }
        if h.is_command() {
            if h.more() {
                return Err(ProtocolError::CommandWithMore);
            }
            if self.handshake {
                if h.len > self.limits.max_handshake_size {
                    return Err(ProtocolError::MetadataTooLarge {
                        size: h.len,
                        limit: self.limits.max_handshake_size,
                    });
                }
            } else if let Some(limit) = self.limits.max_message_size {
                // A command is a message of its own as far as the size limit goes (libzmq
                // checks its MAXMSGSIZE on every frame, commands included).
                if h.len > limit {
                    return Err(ProtocolError::MessageTooLarge { size: h.len, limit });
                }
            }
        } else {
            if self.handshake {
                return Err(ProtocolError::UnexpectedMessage);
            }
            if let Some(limit) = self.limits.max_message_size {
                let size = self.parts_size.saturating_add(h.len);
                if size > limit {
                    return Err(ProtocolError::MessageTooLarge { size, limit });
                }
            }
            if h.more() && self.parts.len() + 1 >= self.limits.max_parts {
                return Err(ProtocolError::TooManyParts {
                    limit: self.limits.max_parts,
                });
            }
        }
        if let Some(limit) = self.limits.max_frame_size {
            if h.len > limit {
                return Err(ProtocolError::FrameTooLarge { size: h.len, limit });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::WriteBuf;

    fn decode_all(dec: &mut Decoder, mut input: &[u8]) -> Vec<Decoded> {
        let mut out = Vec::new();
        while let Some(d) = dec.decode_slice(&mut input).unwrap() {
            out.push(d);
        }
        out
    }

    #[test]
    fn large_frames_from_bytes_mut_are_zero_copy() {
        let mut wire = WriteBuf::new();
        wire.encode_message(&Message::from(vec![5u8; 100_000]));
        let mut buf = BytesMut::new();
        wire.drain_into(&mut buf);
        let base = buf.as_ptr() as usize;
        let mut dec = Decoder::new(Limits::default());
        let Some(Decoded::Message(m)) = dec.decode_buf(&mut buf).unwrap() else {
            panic!()
        };
        let payload = m.first().unwrap().as_bytes().unwrap();
        assert_eq!(
            payload.as_ptr() as usize,
            base + crate::frame::LONG_HEADER_LEN
        );
        assert_eq!(payload.len(), 100_000);
        assert!(buf.is_empty());
    }

    #[test]
    fn commands_may_interleave_with_parts() {
        // libzmq can put a PING between the frames of a multipart message.
        let wire = b"\x01\x01a\x04\x07\x04PING\x00\x00\x00\x01b";
        let mut dec = Decoder::new(Limits::default());
        let got = decode_all(&mut dec, wire);
        assert!(matches!(&got[0], Decoded::Command(c) if c.starts_with(b"\x04PING")));
        assert_eq!(got[1], Decoded::Message(Message::from_iter(["a", "b"])));
    }

    #[test]
    fn bytes_needed_reports_checked_frame_length() {
        let mut dec = Decoder::new(Limits::default());
        let mut input: &[u8] = &[0x02, 0, 0];
        assert!(dec.decode_slice(&mut input).unwrap().is_none());
        assert_eq!(dec.bytes_needed(), 9);
        let mut input: &[u8] = &[0x00, 200, 1, 2];
        assert!(dec.decode_slice(&mut input).unwrap().is_none());
        assert_eq!(dec.bytes_needed(), 202);
        assert_eq!(input.len(), 4, "nothing consumed");
    }

    #[test]
    fn limits_are_checked_on_the_header() {
        let limits = Limits {
            max_message_size: Some(10),
            max_frame_size: Some(8),
            max_parts: 3,
            max_handshake_size: 16,
        };
        let mut dec = Decoder::new(limits);
        // A 9-byte frame: only its header is present, and it is already refused.
        let mut input: &[u8] = &[0x00, 9];
        assert_eq!(
            dec.decode_slice(&mut input),
            Err(ProtocolError::FrameTooLarge { size: 9, limit: 8 })
        );
        let mut dec = Decoder::new(limits);
        let mut input: &[u8] = b"\x01\x06abcdef\x00\x05";
        assert_eq!(
            dec.decode_slice(&mut input),
            Err(ProtocolError::MessageTooLarge {
                size: 11,
                limit: 10
            })
        );
        let mut dec = Decoder::new(limits);
        let mut input: &[u8] = b"\x01\x00\x01\x00\x01\x00";
        assert_eq!(
            dec.decode_slice(&mut input),
            Err(ProtocolError::TooManyParts { limit: 3 })
        );
        let mut dec = Decoder::new(limits);
        let mut input: &[u8] = b"\x01\x00\x01\x00\x00\x00";
        assert_eq!(decode_all(&mut dec, input).len(), 1);
        assert!(dec.decode_slice(&mut input).is_ok());
        let mut dec = Decoder::for_handshake(limits);
        let mut input: &[u8] = &[0x04, 17];
        assert!(matches!(
            dec.decode_slice(&mut input),
            Err(ProtocolError::MetadataTooLarge { .. })
        ));
        let mut input: &[u8] = &[0x00, 1, 0];
        assert_eq!(
            dec.decode_slice(&mut input),
            Err(ProtocolError::UnexpectedMessage)
        );
    }

    #[test]
    fn command_with_more_is_rejected() {
        let mut dec = Decoder::new(Limits::default());
        let mut input: &[u8] = b"\x05\x05\x04PING";
        assert_eq!(
            dec.decode_slice(&mut input),
            Err(ProtocolError::CommandWithMore)
        );
    }
}
