//! [`Message`] and [`Frame`]: multipart messages with small frames stored inline.
//!
//! A [`Frame`] holds up to [`INLINE_CAPACITY`] bytes inside itself and anything larger as a
//! [`Bytes`]. Small payloads are copied rather than shared: at 8-64 bytes a copy costs less than the
//! atomic reference count a shared buffer needs. A single-frame [`Message`] is exactly one frame, so
//! the common small message is one 64-byte value (one cache line) with no allocation at all.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// The largest payload a [`Frame`] stores inline, without allocating.
///
/// Chosen so that a `Frame` (and a single-frame `Message`) is exactly 64 bytes, one cache line.
pub const INLINE_CAPACITY: usize = 63;

/// One frame of a message: an immutable byte string.
///
/// Payloads up to [`INLINE_CAPACITY`] bytes live inside the value; larger ones are a [`Bytes`]
/// (cloning shares them). Dereferences to `[u8]`.
pub struct Frame {
    repr: FrameRepr,
}

enum FrameRepr {
    Inline(Inline),
    Shared(Bytes, Origin),
}

/// How a shared frame came to be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Made from its bytes.
    Made,
    /// Cloned from another frame, with which it shares its payload's reference count.
    Cloned,
}

/// An inline payload and its length: the whole 64 bytes of its [`Frame`] or [`Message`].
///
/// The length is an enum of the 64 values it can take, and the byte values it cannot take tell
/// the other variants of `Frame` and `Message` apart, so neither has a tag byte of its own. A
/// clone of an inline frame is then one 64-byte copy (see `Message`'s `Clone`). With a separate
/// tag, the derived clone wrote the tag, the length and the payload with separate stores, and
/// the 16-byte loads of the moves that followed could not take their bytes from those stores
/// until they had reached the cache: a bare ring moving clones of one 8-byte message between two
/// threads ran at 16 M/s, and at 26 M/s with whole copies.
///
/// `repr(C)` keeps the length, and so every variant's tag, in the last byte. Left to itself the
/// compiler put it first, and where code had matched on the tag the move that followed copied
/// the tag on its own and the 63 bytes after it, from offset 1, in stores of 16, 4, 2, 1, 8, 1
/// and 16 bytes, which no 16-byte load could be forwarded from. With the tag last, the bytes
/// before it start aligned and are copied in whole 16-byte pieces.
#[derive(Clone, Copy)]
#[repr(C)]
struct Inline {
    buf: [u8; INLINE_CAPACITY],
    len: InlineLen,
}

/// The length of an inline payload, 0 to [`INLINE_CAPACITY`].
#[derive(Clone, Copy)]
#[repr(u8)]
#[rustfmt::skip]
enum InlineLen {
    L0, L1, L2, L3, L4, L5, L6, L7,
    L8, L9, L10, L11, L12, L13, L14, L15,
    L16, L17, L18, L19, L20, L21, L22, L23,
    L24, L25, L26, L27, L28, L29, L30, L31,
    L32, L33, L34, L35, L36, L37, L38, L39,
    L40, L41, L42, L43, L44, L45, L46, L47,
    L48, L49, L50, L51, L52, L53, L54, L55,
    L56, L57, L58, L59, L60, L61, L62, L63,
}

/// Every [`InlineLen`], at the index of its value.
#[rustfmt::skip]
const INLINE_LENS: [InlineLen; INLINE_CAPACITY + 1] = [
    InlineLen::L0, InlineLen::L1, InlineLen::L2, InlineLen::L3,
    InlineLen::L4, InlineLen::L5, InlineLen::L6, InlineLen::L7,
    InlineLen::L8, InlineLen::L9, InlineLen::L10, InlineLen::L11,
    InlineLen::L12, InlineLen::L13, InlineLen::L14, InlineLen::L15,
    InlineLen::L16, InlineLen::L17, InlineLen::L18, InlineLen::L19,
    InlineLen::L20, InlineLen::L21, InlineLen::L22, InlineLen::L23,
    InlineLen::L24, InlineLen::L25, InlineLen::L26, InlineLen::L27,
    InlineLen::L28, InlineLen::L29, InlineLen::L30, InlineLen::L31,
    InlineLen::L32, InlineLen::L33, InlineLen::L34, InlineLen::L35,
    InlineLen::L36, InlineLen::L37, InlineLen::L38, InlineLen::L39,
    InlineLen::L40, InlineLen::L41, InlineLen::L42, InlineLen::L43,
    InlineLen::L44, InlineLen::L45, InlineLen::L46, InlineLen::L47,
    InlineLen::L48, InlineLen::L49, InlineLen::L50, InlineLen::L51,
    InlineLen::L52, InlineLen::L53, InlineLen::L54, InlineLen::L55,
    InlineLen::L56, InlineLen::L57, InlineLen::L58, InlineLen::L59,
    InlineLen::L60, InlineLen::L61, InlineLen::L62, InlineLen::L63,
];

impl Inline {
    #[inline]
    fn len(&self) -> usize {
        self.len as usize
    }
}

impl Clone for Frame {
    /// An inline frame is copied whole, as one 64-byte value; a shared one shares its buffer.
    #[inline]
    fn clone(&self) -> Self {
        let repr = match &self.repr {
            FrameRepr::Inline(i) => FrameRepr::Inline(*i),
            FrameRepr::Shared(b, _) => FrameRepr::Shared(b.clone(), Origin::Cloned),
        };
        Self { repr }
    }
}

impl Frame {
    /// An empty frame.
    #[inline]
    pub const fn new() -> Self {
        Self {
            repr: FrameRepr::Inline(Inline {
                buf: [0; INLINE_CAPACITY],
                len: InlineLen::L0,
            }),
        }
    }

    /// A frame holding a copy of `data` (inline when it fits, else one allocation).
    #[inline]
    pub fn copy_from_slice(data: &[u8]) -> Self {
        if data.len() <= INLINE_CAPACITY {
            Self::inline(data)
        } else {
            Self {
                repr: FrameRepr::Shared(Bytes::copy_from_slice(data), Origin::Made),
            }
        }
    }

    /// A frame sharing `bytes` (small payloads are copied inline instead).
    #[inline]
    pub fn from_bytes(bytes: Bytes) -> Self {
        if bytes.len() <= INLINE_CAPACITY {
            Self::inline(&bytes)
        } else {
            Self {
                repr: FrameRepr::Shared(bytes, Origin::Made),
            }
        }
    }

    #[inline]
    fn inline(data: &[u8]) -> Self {
        debug_assert!(data.len() <= INLINE_CAPACITY);
        let mut buf = [0; INLINE_CAPACITY];
        buf[..data.len()].copy_from_slice(data);
        Self::inline_from_window(&buf, data.len())
    }

    /// An inline frame holding `window[..len]`, where `window` is exactly [`INLINE_CAPACITY`]
    /// bytes. Copying a fixed-size window compiles to a few vector moves instead of a zeroing
    /// plus a variable-length `memcpy`; the bytes past `len` are never exposed.
    #[inline]
    pub(crate) fn inline_from_window(window: &[u8; INLINE_CAPACITY], len: usize) -> Self {
        debug_assert!(len <= INLINE_CAPACITY);
        Self {
            repr: FrameRepr::Inline(Inline {
                buf: *window,
                len: INLINE_LENS[len],
            }),
        }
    }

    /// The payload.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match &self.repr {
            FrameRepr::Inline(i) => &i.buf[..i.len()],
            FrameRepr::Shared(b, _) => b,
        }
    }

    /// The payload length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.repr {
            FrameRepr::Inline(i) => i.len(),
            FrameRepr::Shared(b, _) => b.len(),
        }
    }

    /// Whether the payload is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the payload is stored inline (no allocation).
    #[inline]
    pub fn is_inline(&self) -> bool {
        matches!(self.repr, FrameRepr::Inline(_))
    }

    /// Whether this frame was cloned from another that shares its payload (a large frame made
    /// by [`Clone`]): the two, and every other clone, hold one reference count, which each
    /// clone's drop writes. A receiver on another thread than the clones' owner may prefer a
    /// copy.
    ///
    /// ```
    /// use omq_zmtp::Frame;
    ///
    /// let large = Frame::from(vec![7u8; 200]);
    /// assert!(!large.is_clone());
    /// assert!(large.clone().is_clone());
    /// // An inline frame's clone is a copy.
    /// assert!(!Frame::from("small").clone().is_clone());
    /// ```
    #[inline]
    pub fn is_clone(&self) -> bool {
        matches!(self.repr, FrameRepr::Shared(_, Origin::Cloned))
    }

    /// The payload as shared [`Bytes`], if it is stored that way (large frames).
    #[inline]
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match &self.repr {
            FrameRepr::Inline(_) => None,
            FrameRepr::Shared(b, _) => Some(b),
        }
    }

    /// Converts into [`Bytes`]: free for large frames, one allocation for inline ones.
    pub fn into_bytes(self) -> Bytes {
        match self.repr {
            FrameRepr::Inline(i) => Bytes::copy_from_slice(&i.buf[..i.len()]),
            FrameRepr::Shared(b, _) => b,
        }
    }
}

impl Default for Frame {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for Frame {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Frame {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Frame {}

impl PartialEq<[u8]> for Frame {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[u8]> for Frame {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_slice() == *other
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.as_slice())
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, data: &[u8]) -> fmt::Result {
    // Like `Bytes`'s Debug form (b"..."), truncated for long payloads.
    const MAX: usize = 64;
    let shown = &data[..data.len().min(MAX)];
    write!(f, "b\"")?;
    for &b in shown {
        match b {
            b'\\' | b'"' => write!(f, "\\{}", b as char)?,
            0x20..=0x7e => write!(f, "{}", b as char)?,
            _ => write!(f, "\\x{b:02x}")?,
        }
    }
    write!(f, "\"")?;
    if data.len() > MAX {
        write!(f, "...({} bytes)", data.len())?;
    }
    Ok(())
}

impl From<&[u8]> for Frame {
    #[inline]
    fn from(data: &[u8]) -> Self {
        Self::copy_from_slice(data)
    }
}

impl<const N: usize> From<&[u8; N]> for Frame {
    #[inline]
    fn from(data: &[u8; N]) -> Self {
        Self::copy_from_slice(data)
    }
}

impl From<&str> for Frame {
    #[inline]
    fn from(data: &str) -> Self {
        Self::copy_from_slice(data.as_bytes())
    }
}

impl From<Vec<u8>> for Frame {
    #[inline]
    fn from(data: Vec<u8>) -> Self {
        if data.len() <= INLINE_CAPACITY {
            Self::inline(&data)
        } else {
            Self {
                repr: FrameRepr::Shared(Bytes::from(data), Origin::Made),
            }
        }
    }
}

impl From<String> for Frame {
    #[inline]
    fn from(data: String) -> Self {
        Self::from(data.into_bytes())
    }
}

impl From<Bytes> for Frame {
    #[inline]
    fn from(data: Bytes) -> Self {
        Self::from_bytes(data)
    }
}

/// A ZeroMQ message: one or more frames, delivered atomically.
///
/// A single-frame message is stored as one [`Frame`] (inline when small, so a small message is a
/// 64-byte value with no allocation); multipart messages keep their frames in a `Vec`. Build one
/// with `From` (`&[u8]`, `Vec<u8>`, `Bytes`, `&str`, `String`, [`Frame`], `Vec<Frame>`), with
/// [`push`](Self::push), or by collecting frames.
///
/// ```
/// use omq_zmtp::Message;
///
/// let mut msg = Message::from("header");
/// msg.push("body");
/// assert_eq!(msg.len(), 2);
/// let parts: Vec<&[u8]> = msg.iter().map(|f| &f[..]).collect();
/// assert_eq!(parts, [&b"header"[..], &b"body"[..]]);
/// ```
pub struct Message {
    repr: MessageRepr,
}

impl Clone for Message {
    /// A single inline frame is one 64-byte copy: matched here at once, not through the frame's
    /// own `clone`, which made the compiler copy the tag byte and the rest apart again.
    #[inline]
    fn clone(&self) -> Self {
        match &self.repr {
            MessageRepr::One(Frame {
                repr: FrameRepr::Inline(i),
            }) => Self::single(Frame {
                repr: FrameRepr::Inline(*i),
            }),
            MessageRepr::One(f) => Self::single(f.clone()),
            MessageRepr::Many(frames) => Self {
                repr: MessageRepr::Many(frames.clone()),
            },
        }
    }
}

enum MessageRepr {
    One(Frame),
    Many(Vec<Frame>),
}

impl Message {
    /// A message with no frames yet (add them with [`push`](Self::push)).
    #[inline]
    pub const fn new() -> Self {
        Self {
            repr: MessageRepr::Many(Vec::new()),
        }
    }

    /// A message with one frame.
    #[inline]
    pub const fn single(frame: Frame) -> Self {
        Self {
            repr: MessageRepr::One(frame),
        }
    }

    /// Appends a frame.
    pub fn push(&mut self, frame: impl Into<Frame>) {
        let frame = frame.into();
        match &mut self.repr {
            MessageRepr::Many(frames) if frames.is_empty() => {
                self.repr = MessageRepr::One(frame);
            }
            MessageRepr::Many(frames) => frames.push(frame),
            MessageRepr::One(_) => {
                let MessageRepr::One(first) = std::mem::replace(&mut self.repr, Self::new().repr)
                else {
                    unreachable!()
                };
                self.repr = MessageRepr::Many(vec![first, frame]);
            }
        }
    }

    /// Inserts a frame in front of the others (a routing id or an envelope delimiter).
    pub fn push_front(&mut self, frame: impl Into<Frame>) {
        let frame = frame.into();
        match &mut self.repr {
            MessageRepr::Many(frames) if frames.is_empty() => {
                self.repr = MessageRepr::One(frame);
            }
            MessageRepr::Many(frames) => frames.insert(0, frame),
            MessageRepr::One(_) => {
                let MessageRepr::One(first) = std::mem::replace(&mut self.repr, Self::new().repr)
                else {
                    unreachable!()
                };
                self.repr = MessageRepr::Many(vec![frame, first]);
            }
        }
    }

    /// Removes and returns the first frame.
    pub fn pop_front(&mut self) -> Option<Frame> {
        match &mut self.repr {
            MessageRepr::Many(frames) if frames.is_empty() => None,
            MessageRepr::Many(frames) => Some(frames.remove(0)),
            MessageRepr::One(_) => {
                let MessageRepr::One(first) = std::mem::replace(&mut self.repr, Self::new().repr)
                else {
                    unreachable!()
                };
                Some(first)
            }
        }
    }

    /// The frames, in order.
    #[inline]
    pub fn frames(&self) -> &[Frame] {
        match &self.repr {
            MessageRepr::One(f) => std::slice::from_ref(f),
            MessageRepr::Many(frames) => frames,
        }
    }

    /// Iterates over the frames.
    #[inline]
    pub fn iter(&self) -> std::slice::Iter<'_, Frame> {
        self.frames().iter()
    }

    /// The number of frames.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.repr {
            MessageRepr::One(_) => 1,
            MessageRepr::Many(frames) => frames.len(),
        }
    }

    /// Whether the message has no frames.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the message has more than one frame.
    #[inline]
    pub fn is_multipart(&self) -> bool {
        self.len() > 1
    }

    /// The total payload size of all frames, in bytes.
    pub fn size(&self) -> usize {
        self.iter().map(Frame::len).sum()
    }

    /// The first frame, if any.
    #[inline]
    pub fn first(&self) -> Option<&Frame> {
        self.frames().first()
    }

    /// The last frame, if any.
    #[inline]
    pub fn last(&self) -> Option<&Frame> {
        self.frames().last()
    }

    /// Takes the frames out as a `Vec`.
    pub fn into_frames(self) -> Vec<Frame> {
        match self.repr {
            MessageRepr::One(f) => vec![f],
            MessageRepr::Many(frames) => frames,
        }
    }
}

/// Messages are equal when their frames are, however they are stored.
impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.frames() == other.frames()
    }
}

impl Eq for Message {}

impl Default for Message {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Message {
    type Item = &'a Frame;
    type IntoIter = std::slice::Iter<'a, Frame>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for Message {
    type Item = Frame;
    type IntoIter = std::vec::IntoIter<Frame>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_frames().into_iter()
    }
}

impl<F: Into<Frame>> FromIterator<F> for Message {
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> Self {
        let frames: Vec<Frame> = iter.into_iter().map(Into::into).collect();
        Self::from(frames)
    }
}

impl From<Frame> for Message {
    #[inline]
    fn from(frame: Frame) -> Self {
        Self::single(frame)
    }
}

impl From<Vec<Frame>> for Message {
    fn from(mut frames: Vec<Frame>) -> Self {
        if frames.len() == 1 {
            Self::single(frames.pop().expect("one frame"))
        } else {
            Self {
                repr: MessageRepr::Many(frames),
            }
        }
    }
}

macro_rules! message_from_frame_source {
    ($($t:ty),*) => {$(
        impl From<$t> for Message {
            #[inline]
            fn from(data: $t) -> Self {
                Self::single(Frame::from(data))
            }
        }
    )*};
}

message_from_frame_source!(&[u8], &str, Vec<u8>, String, Bytes);

impl<const N: usize> From<&[u8; N]> for Message {
    #[inline]
    fn from(data: &[u8; N]) -> Self {
        Self::single(Frame::from(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_message_is_one_cache_line() {
        assert_eq!(size_of::<Frame>(), 64);
        assert_eq!(size_of::<Message>(), 64);
    }

    #[test]
    fn every_inline_length_round_trips() {
        for (n, len) in INLINE_LENS.iter().enumerate() {
            assert_eq!(*len as usize, n);
            let data: Vec<u8> = (0..n as u8).collect();
            let f = Frame::from(&data[..]);
            assert!(f.is_inline());
            assert_eq!(f.as_slice(), &data[..]);
        }
    }

    #[test]
    fn clones_copy_inline_frames_and_share_large_ones() {
        let small = Message::from(&[1u8, 2, 3][..]);
        let copy = small.clone();
        assert_eq!(copy, small);
        assert!(copy.frames()[0].is_inline());

        let large = Message::from(vec![9u8; INLINE_CAPACITY + 1]);
        let shared = large.clone();
        assert_eq!(shared, large);
        let ptr = |m: &Message| m.frames()[0].as_bytes().map(|b| b.as_ptr());
        assert_eq!(ptr(&shared), ptr(&large));
        assert!(ptr(&large).is_some());

        let mut parts = Message::new();
        parts.push(&[7u8; INLINE_CAPACITY][..]);
        parts.push(vec![8u8; 100]);
        assert_eq!(parts.clone(), parts);
        assert_eq!(
            Frame::from(&[5u8; 4][..]).clone(),
            Frame::from(&[5u8; 4][..])
        );
    }

    #[test]
    fn conversions_pick_inline_or_shared() {
        let small = Frame::from(&[7u8; INLINE_CAPACITY][..]);
        assert!(small.is_inline());
        let large = Frame::from(vec![7u8; INLINE_CAPACITY + 1]);
        assert!(!large.is_inline());
        assert_eq!(large.len(), INLINE_CAPACITY + 1);
        let b = Bytes::from(vec![1u8; 1000]);
        let shared = Frame::from(b.clone());
        assert_eq!(shared.as_bytes().map(|s| s.as_ptr()), Some(b.as_ptr()));
        assert_eq!(Frame::from("hi"), Frame::from(b"hi".to_vec()));
        assert_eq!(
            Frame::from(String::from("x")).into_bytes(),
            Bytes::from("x")
        );
    }

    #[test]
    fn multipart_building() {
        let mut m = Message::new();
        assert!(m.is_empty());
        m.push("b");
        assert_eq!(m.len(), 1);
        m.push("c");
        m.push_front("a");
        assert_eq!(m.size(), 3);
        let parts: Vec<_> = m.iter().map(|f| f.to_vec()).collect();
        assert_eq!(parts, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(m.pop_front().unwrap(), Frame::from("a"));
        let collected: Message = ["b", "c"].into_iter().collect();
        assert_eq!(collected, m);
        // Equality does not depend on the storage: one frame left of a multipart message.
        m.pop_front();
        assert_eq!(m, Message::from("c"));
        let mut one = Message::from("x");
        assert_eq!(one.pop_front().unwrap(), Frame::from("x"));
        assert!(one.is_empty());
        one.push_front("y");
        assert_eq!(one.frames(), &[Frame::from("y")]);
    }
}
