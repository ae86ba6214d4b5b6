//! The batching encoder and its caller-owned output buffer, [`WriteBuf`].
//!
//! Many messages are encoded into one `WriteBuf` and written with one (vectored) write. Headers and
//! small payloads are copied next to each other into one contiguous `Vec<u8>`; payloads of at least
//! [`WriteBuf::zero_copy_threshold`] bytes that are already shared [`Bytes`] are not copied but
//! queued as their own segment, so a vectored write sends them straight from the message.
//!
//! `WriteBuf` implements [`bytes::Buf`]: `chunk`/`advance` for plain writes,
//! [`chunks_vectored`](bytes::Buf::chunks_vectored) to fill `IoSlice`s for `writev`. When all of
//! it has been consumed it resets itself, keeping its allocation for the next batch.

use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes};

use crate::command::Command;
use crate::frame::{self, FLAG_MORE};
use crate::message::{Frame, Message};

/// Consumed bytes worth moving out of the way when a `WriteBuf` never fully drains.
const COMPACT_AT: usize = 64 * 1024;

/// Default for [`WriteBuf::zero_copy_threshold`].
pub const DEFAULT_ZERO_COPY_THRESHOLD: usize = 8 * 1024;

/// Encoded bytes waiting to be written: a contiguous buffer plus zero-copy payload segments.
///
/// ```
/// use bytes::Buf;
/// use omq_zmtp::{Message, WriteBuf};
///
/// let mut out = WriteBuf::new();
/// out.encode_message(&Message::from("hello"));
/// out.encode_message(&Message::from_iter(["a", "b"]));
/// assert_eq!(out.chunk(), b"\x00\x05hello\x01\x01a\x00\x01b");
/// out.advance(out.remaining());
/// assert!(out.is_empty());
/// ```
#[derive(Debug)]
pub struct WriteBuf {
    /// Headers and copied payloads.
    data: Vec<u8>,
    /// Shared payloads, each inserted into the stream at an offset of `data`.
    shared: Vec<(usize, Bytes)>,
    /// Consumed prefix of `data`.
    read: usize,
    /// Index of the first shared payload not yet fully consumed.
    next_shared: usize,
    /// Consumed prefix of `shared[next_shared]`.
    shared_read: usize,
    /// Bytes not yet consumed.
    remaining: usize,
    threshold: usize,
}

impl Default for WriteBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl WriteBuf {
    /// An empty buffer with the default zero-copy threshold.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty buffer whose contiguous part can hold `capacity` bytes without reallocating.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            data: Vec::with_capacity(capacity),
            shared: Vec::new(),
            read: 0,
            next_shared: 0,
            shared_read: 0,
            remaining: 0,
            threshold: DEFAULT_ZERO_COPY_THRESHOLD,
        }
    }

    /// Payloads of at least this many bytes that are held as shared `Bytes` are queued without
    /// copying.
    pub fn zero_copy_threshold(&self) -> usize {
        self.threshold
    }

    /// Sets [`zero_copy_threshold`](Self::zero_copy_threshold).
    pub fn set_zero_copy_threshold(&mut self, threshold: usize) {
        self.threshold = threshold;
    }

    /// Bytes waiting to be written.
    #[inline]
    pub fn len(&self) -> usize {
        self.remaining
    }

    /// Bytes waiting in the contiguous part: headers and copied payloads, without the shared
    /// payloads queued by reference. A caller that bounds its batches by memory touched bounds
    /// this; [`len`](Self::len) also counts payloads that are written straight from the message.
    #[inline]
    pub fn copied_len(&self) -> usize {
        self.data.len() - self.read
    }

    /// Whether nothing is waiting to be written.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// Drops everything not yet written.
    pub fn clear(&mut self) {
        self.data.clear();
        self.shared.clear();
        self.read = 0;
        self.next_shared = 0;
        self.shared_read = 0;
        self.remaining = 0;
    }

    /// Appends a message's frames (NULL mechanism framing).
    #[inline]
    pub fn encode_message(&mut self, msg: &Message) {
        let frames = msg.frames();
        if let [frame] = frames {
            self.encode_frame(0, frame);
            return;
        }
        let last = frames.len().saturating_sub(1);
        for (i, frame) in frames.iter().enumerate() {
            self.encode_frame(if i < last { FLAG_MORE } else { 0 }, frame);
        }
    }

    /// Appends one data frame with the given flags (`FLAG_MORE` or 0).
    #[inline]
    pub fn encode_frame(&mut self, flags: u8, frame: &Frame) {
        let len = frame.len();
        let start = self.data.len();
        match frame.as_bytes() {
            Some(bytes) if len >= self.threshold => {
                frame::encode_header(&mut self.data, flags, len);
                self.shared.push((self.data.len(), bytes.clone()));
                self.remaining += self.data.len() - start + len;
            }
            _ => {
                self.data.reserve(frame::LONG_HEADER_LEN + len);
                frame::encode_header(&mut self.data, flags, len);
                self.data.extend_from_slice(frame);
                self.remaining += self.data.len() - start;
            }
        }
    }

    /// Appends a command frame.
    pub fn encode_command(&mut self, cmd: &Command) {
        self.put_raw(|out| cmd.encode(out));
    }

    /// Appends bytes produced by `f` to the contiguous part.
    pub(crate) fn put_raw(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let start = self.data.len();
        f(&mut self.data);
        self.remaining += self.data.len() - start;
    }

    /// Moves everything waiting into `out` (for callers that want one contiguous buffer).
    pub fn drain_into(&mut self, out: &mut impl BufMut) {
        while self.has_remaining() {
            let chunk = self.chunk();
            let n = chunk.len();
            out.put_slice(chunk);
            self.advance(n);
        }
    }

    /// Moves everything waiting into `out` as owned segments, in order, and leaves the buffer
    /// empty: for completion-based I/O (io_uring), where the write operation must own its
    /// buffers. The contiguous part is handed over without copying (its allocation goes with
    /// it), shared payloads stay zero-copy.
    pub fn take_chunks(&mut self, out: &mut Vec<Bytes>) {
        if self.remaining == 0 {
            return;
        }
        let data = Bytes::from(std::mem::take(&mut self.data));
        let mut read = self.read;
        for (i, (at, b)) in self.shared.drain(..).enumerate() {
            if i < self.next_shared {
                continue;
            }
            if read < at {
                out.push(data.slice(read..at));
                read = at;
            }
            let skip = if i == self.next_shared {
                self.shared_read
            } else {
                0
            };
            if skip < b.len() {
                out.push(b.slice(skip..));
            }
        }
        if read < data.len() {
            out.push(data.slice(read..));
        }
        self.clear();
    }

    /// Drops what has been consumed, for a buffer that is refilled before it drains (a driver
    /// that encodes the next batch while the last write is still partly pending).
    fn compact(&mut self) {
        let read = self.read;
        self.data.drain(..read);
        self.shared.drain(..self.next_shared);
        for (at, _) in &mut self.shared {
            *at -= read;
        }
        self.read = 0;
        self.next_shared = 0;
    }

    /// End of the contiguous region that comes before the next shared payload.
    #[inline]
    fn data_end(&self) -> usize {
        self.shared
            .get(self.next_shared)
            .map_or(self.data.len(), |&(at, _)| at)
    }
}

impl Buf for WriteBuf {
    #[inline]
    fn remaining(&self) -> usize {
        self.remaining
    }

    #[inline]
    fn chunk(&self) -> &[u8] {
        let end = self.data_end();
        if self.read < end {
            &self.data[self.read..end]
        } else if let Some((_, b)) = self.shared.get(self.next_shared) {
            &b[self.shared_read..]
        } else {
            &[]
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance past the end of a WriteBuf");
        self.remaining -= cnt;
        while cnt > 0 {
            let end = self.data_end();
            if self.read < end {
                let n = cnt.min(end - self.read);
                self.read += n;
                cnt -= n;
            } else {
                let len = self.shared[self.next_shared].1.len();
                let n = cnt.min(len - self.shared_read);
                self.shared_read += n;
                cnt -= n;
                if self.shared_read == len {
                    self.next_shared += 1;
                    self.shared_read = 0;
                }
            }
        }
        if self.remaining == 0 {
            self.clear();
        } else if self.read >= COMPACT_AT && self.read >= self.data.len() / 2 {
            self.compact();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        let mut read = self.read;
        let mut shared_read = self.shared_read;
        let mut next = self.next_shared;
        while n < dst.len() {
            let end = self.shared.get(next).map_or(self.data.len(), |&(at, _)| at);
            if read < end {
                dst[n] = IoSlice::new(&self.data[read..end]);
                n += 1;
                read = end;
            } else if let Some((_, b)) = self.shared.get(next) {
                dst[n] = IoSlice::new(&b[shared_read..]);
                n += 1;
                shared_read = 0;
                next += 1;
            } else {
                break;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(n: usize) -> Message {
        Message::from(Bytes::from(vec![0xAB; n]))
    }

    #[test]
    fn large_shared_payloads_are_separate_segments() {
        let mut out = WriteBuf::new();
        out.set_zero_copy_threshold(100);
        let payload = big(300);
        out.encode_message(&Message::from("x"));
        out.encode_message(&payload);
        out.encode_message(&Message::from("y"));
        assert_eq!(out.len(), 3 + 9 + 300 + 3);
        assert_eq!(
            out.copied_len(),
            3 + 9 + 3,
            "the shared payload is not copied"
        );
        let mut iov = [IoSlice::new(&[]); 8];
        let n = out.chunks_vectored(&mut iov);
        assert_eq!(n, 3);
        assert_eq!(
            &iov[0][..],
            b"\x00\x01x\x02\x00\x00\x00\x00\x00\x00\x01\x2c"
        );
        assert_eq!(
            iov[1].as_ptr(),
            payload.first().unwrap().as_bytes().unwrap().as_ptr()
        );
        assert_eq!(&iov[2][..], b"\x00\x01y");
    }

    #[test]
    fn partial_writes_resume_exactly() {
        let mut out = WriteBuf::new();
        out.set_zero_copy_threshold(64);
        let mut expected = Vec::new();
        for i in 0..20 {
            let m = if i % 3 == 0 {
                big(70 + i)
            } else {
                Message::from(vec![i as u8; i])
            };
            out.encode_message(&m);
            let mut plain = WriteBuf::new();
            plain.set_zero_copy_threshold(usize::MAX);
            plain.encode_message(&m);
            expected.extend_from_slice(plain.chunk());
        }
        assert_eq!(out.len(), expected.len());
        // Consume in odd-sized steps, checking each chunk against the flat encoding.
        let mut pos = 0;
        let mut step = 1;
        while out.has_remaining() {
            let c = out.chunk();
            assert!(!c.is_empty());
            assert_eq!(c, &expected[pos..pos + c.len()]);
            let n = step.min(c.len());
            out.advance(n);
            pos += n;
            step = step % 7 + 1;
        }
        assert_eq!(pos, expected.len());
        assert!(out.is_empty());
        assert!(out.shared.is_empty() && out.data.is_empty());
    }

    #[test]
    fn a_buffer_that_never_drains_stays_bounded() {
        let mut out = WriteBuf::new();
        out.set_zero_copy_threshold(1000);
        let mut expected = Vec::new();
        let mut got = Vec::new();
        for i in 0..2000usize {
            let m = if i % 10 == 0 {
                big(2000)
            } else {
                Message::from(vec![i as u8; 100])
            };
            let mut flat = WriteBuf::new();
            flat.set_zero_copy_threshold(usize::MAX);
            flat.encode_message(&m);
            flat.drain_into(&mut expected);
            out.encode_message(&m);
            // Write all but a few bytes each time, as a busy socket would.
            let n = out.remaining().saturating_sub(7);
            let mut taken = 0;
            while taken < n {
                let c = out.chunk();
                let k = c.len().min(n - taken);
                got.extend_from_slice(&c[..k]);
                out.advance(k);
                taken += k;
            }
            assert!(out.data.len() < 3 * COMPACT_AT, "{}", out.data.len());
            assert!(out.shared.len() < 100);
        }
        out.drain_into(&mut got);
        assert_eq!(got, expected);
    }

    #[test]
    fn drain_into_flattens() {
        let mut out = WriteBuf::new();
        out.set_zero_copy_threshold(0);
        out.encode_message(&big(100));
        let mut flat = Vec::new();
        out.drain_into(&mut flat);
        assert_eq!(flat.len(), 2 + 100);
        assert!(out.is_empty());
    }

    #[test]
    fn take_chunks_hands_over_everything_in_order() {
        let big = Bytes::from(vec![7u8; 10_000]);
        let mut out = WriteBuf::new();
        out.encode_message(&Message::from("head"));
        out.encode_message(&Message::from(big.clone()));
        out.encode_message(&Message::from("tail"));
        let mut expected = Vec::new();
        let mut copy = WriteBuf::new();
        copy.encode_message(&Message::from("head"));
        copy.encode_message(&Message::from(big.clone()));
        copy.encode_message(&Message::from("tail"));
        copy.drain_into(&mut expected);
        // Partly consumed first, as after a short write.
        let mut got = out.chunk()[..3].to_vec();
        out.advance(3);
        let mut chunks = Vec::new();
        out.take_chunks(&mut chunks);
        assert!(out.is_empty());
        assert!(
            chunks.iter().any(|c| c.as_ptr() == big.as_ptr()),
            "the large payload is not copied"
        );
        for c in &chunks {
            got.extend_from_slice(c);
        }
        assert_eq!(got, expected);
        // Reusable afterwards.
        out.encode_message(&Message::from("again"));
        assert_eq!(out.chunk(), b"\x00\x05again");
    }
}
