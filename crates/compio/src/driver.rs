//! One task per connection, owning every I/O operation of it.
//!
//! With completion-based I/O an operation owns its buffer until the kernel completes it, and
//! dropping the operation's future can lose what the kernel already wrote into the buffer. So
//! no read or write is ever issued from a user's future: this driver holds the in-flight read
//! and write as boxed futures that own the stream halves and buffers, polls them from its own
//! loop, and drops them only when the connection itself is abandoned.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use compio::BufResult;
use compio::io::{AsyncReadExt, AsyncWrite};
use omq_sockets::{Engine, EngineError, READ_SPIN, STREAMING_READ};
use omq_zmtp::WriteBuf;

/// Read at least this much per read operation.
const READ_CHUNK: usize = 64 * 1024;
/// Refill the write buffer while it holds less than this.
const REFILL_BELOW: usize = 64 * 1024;
/// Loop turns with progress before the task yields to the runtime.
const BUDGET: u32 = 64;

type Op<T> = Pin<Box<dyn Future<Output = T>>>;
/// An in-flight read: gives back the read half, the result and the buffer.
type ReadOp<S> = Op<(S, BufResult<usize, BytesMut>)>;
/// An in-flight write: gives back the write half, the result and the segments.
type WriteOp<S> = Op<(S, BufResult<(), Vec<Bytes>>)>;

/// A stream half that can be moved into an operation.
pub(crate) trait Half: AsyncReadExt + AsyncWrite + 'static {}
impl<T: AsyncReadExt + AsyncWrite + 'static> Half for T {}

struct Driver<'a, S: Half> {
    engine: &'a mut Engine,
    /// The read half and buffer, while no read is in flight.
    reader: Option<(S, BytesMut)>,
    read_op: Option<ReadOp<S>>,
    /// The write half, while no write is in flight.
    writer: Option<S>,
    write_op: Option<WriteOp<S>>,
    /// Encoded and waiting for the next write operation.
    wbuf: WriteBuf,
    sleep: Option<(Instant, Op<()>)>,
    /// Set once the engine says the socket is closed: flush, say goodbye, then end.
    closing: Option<EngineError>,
    /// Our FIN, in flight.
    shutdown_op: Option<Op<S>>,
    /// Our FIN is sent: until when we wait for the peer's.
    goodbye_until: Option<(Instant, Op<()>)>,
    /// After a failure: how long the farewell may take to write.
    flush_until: Option<Instant>,
    /// Until when the task yields rather than wait for a read (see [`READ_SPIN`]).
    spin_until: Option<Instant>,
}

/// How long a failed connection's farewell (an ERROR command) may take to write.
const FAREWELL: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the connection on the two halves of one stream until it ends; returns why.
pub(crate) async fn run<S: Half>(read_half: S, write_half: S, engine: &mut Engine) -> EngineError {
    let mut d = Driver {
        engine,
        reader: Some((read_half, BytesMut::with_capacity(READ_CHUNK))),
        read_op: None,
        writer: Some(write_half),
        write_op: None,
        wbuf: WriteBuf::new(),
        sleep: None,
        closing: None,
        shutdown_op: None,
        goodbye_until: None,
        flush_until: None,
        spin_until: None,
    };
    poll_fn(|cx| d.poll(cx)).await
}

impl<S: Half> Driver<'_, S> {
    /// The connection failed: queue the codec's farewell (an ERROR command during the
    /// handshake), which the close path writes before it ends.
    fn fail(&mut self, cx: &mut Context<'_>, now: Instant, e: EngineError) {
        self.closing = Some(e);
        self.flush_until = Some(now + FAREWELL);
        let _ = self.engine.poll_transmit(cx, now, &mut self.wbuf);
    }

    /// Issues a read into the spare capacity of the read buffer.
    fn start_read(&mut self) {
        if let Some((mut half, mut buf)) = self.reader.take() {
            self.engine.reserve_read(&mut buf, READ_CHUNK);
            self.read_op = Some(Box::pin(async move {
                let r = half.append(buf).await;
                (half, r)
            }));
        }
    }

    /// The orderly end after a close (see [`Engine::goodbye_until`]): our FIN after the last
    /// byte, then read and drop until the peer's FIN or the deadline.
    fn poll_goodbye(&mut self, cx: &mut Context<'_>) -> Poll<EngineError> {
        let done =
            |d: &mut Self| Poll::Ready(d.closing.take().unwrap_or(EngineError::SocketClosed));
        if self.goodbye_until.is_none() {
            let Some(reason) = &self.closing else {
                return done(self);
            };
            if self.engine.goodbye_until(reason, Instant::now()).is_none() {
                return done(self);
            }
            if self.shutdown_op.is_none() {
                let Some(mut half) = self.writer.take() else {
                    return done(self);
                };
                self.shutdown_op = Some(Box::pin(async move {
                    let _ = half.shutdown().await;
                    half
                }));
            }
            let Some(op) = &mut self.shutdown_op else {
                return done(self);
            };
            let Poll::Ready(half) = op.as_mut().poll(cx) else {
                return Poll::Pending;
            };
            self.shutdown_op = None;
            self.writer = Some(half);
            let end = self
                .closing
                .as_ref()
                .and_then(|r| self.engine.goodbye_until(r, Instant::now()));
            let Some(end) = end else {
                return done(self);
            };
            self.goodbye_until = Some((end, Box::pin(compio::time::sleep_until(end))));
        }
        loop {
            if self.read_op.is_none() {
                if let Some((_, buf)) = &mut self.reader {
                    buf.clear();
                }
                self.start_read();
            }
            let Some(op) = &mut self.read_op else {
                return done(self);
            };
            match op.as_mut().poll(cx) {
                Poll::Ready((half, BufResult(Ok(n), buf))) if n > 0 => {
                    self.read_op = None;
                    self.reader = Some((half, buf));
                }
                Poll::Ready(_) => return done(self),
                Poll::Pending => break,
            }
        }
        let waiting = match &mut self.goodbye_until {
            Some((_, sleep)) => sleep.as_mut().poll(cx).is_pending(),
            None => false,
        };
        if waiting { Poll::Pending } else { done(self) }
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<EngineError> {
        let mut budget = BUDGET;
        loop {
            let mut progress = false;
            let now = Instant::now();
            if self.closing.is_some() && self.write_op.is_none() && self.wbuf.is_empty() {
                return self.poll_goodbye(cx);
            }

            // Input first: fresh bytes are proof of life for the heartbeat check below.
            if let Poll::Ready(Err(e)) = self.engine.poll_inbound(cx, now) {
                return Poll::Ready(e);
            }
            if self.engine.input_pending() && self.closing.is_none() {
                // The receive pipe has room again for what was read before it filled.
                if let Some((_, buf)) = &mut self.reader {
                    if let Err(e) = self.engine.handle_read_buf(now, buf) {
                        self.fail(cx, now, e);
                        continue;
                    }
                    progress = true;
                }
            }
            if self.read_op.is_none() && self.engine.wants_read() && self.closing.is_none() {
                self.start_read();
            }
            if let Some(op) = &mut self.read_op {
                if let Poll::Ready((half, BufResult(res, mut buf))) = op.as_mut().poll(cx) {
                    self.read_op = None;
                    match res {
                        Ok(0) => {
                            return Poll::Ready(EngineError::Io(
                                "connection closed by the peer".into(),
                            ));
                        }
                        Ok(n) => {
                            self.spin_until = (n >= STREAMING_READ).then(|| now + READ_SPIN);
                            let r = self.engine.handle_read_buf(now, &mut buf);
                            self.reader = Some((half, buf));
                            if let Err(e) = r {
                                self.fail(cx, now, e);
                                continue;
                            }
                            progress = true;
                        }
                        Err(e) => return Poll::Ready(EngineError::Io(e.to_string())),
                    }
                }
            }

            // Output: encode a batch while the previous write is in flight, then one vectored
            // write of owned segments.
            if self.closing.is_none() && self.wbuf.len() < REFILL_BELOW {
                if let Poll::Ready(Err(e)) = self.engine.poll_transmit(cx, now, &mut self.wbuf) {
                    self.closing = Some(e);
                }
            }
            if self.write_op.is_none() && !self.wbuf.is_empty() {
                if let Some(mut half) = self.writer.take() {
                    let mut chunks = Vec::new();
                    self.wbuf.take_chunks(&mut chunks);
                    self.write_op = Some(Box::pin(async move {
                        let r = write_all(&mut half, chunks).await;
                        (half, r)
                    }));
                }
            }
            if let Some(op) = &mut self.write_op {
                if let Poll::Ready((half, BufResult(res, _))) = op.as_mut().poll(cx) {
                    self.write_op = None;
                    self.writer = Some(half);
                    if let Err(e) = res {
                        return Poll::Ready(EngineError::Io(e.to_string()));
                    }
                    progress = true;
                }
            }
            if self.write_op.is_none() && self.wbuf.is_empty() && self.closing.is_some() {
                return self.poll_goodbye(cx);
            }

            // Timers. During the final flush after a close, only the linger period counts (the
            // peer's heartbeats are not read any more).
            let deadline = if self.closing.is_some() {
                match (self.engine.linger_deadline(), self.flush_until) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            } else {
                self.engine.poll_timeout()
            };
            match deadline {
                Some(t) if t <= now => {
                    self.sleep = None;
                    if let Some(e) = self.closing.take() {
                        // Linger is over: what is not written is dropped, as in libzmq.
                        return Poll::Ready(e);
                    }
                    if let Err(e) = self.engine.handle_timeout(now) {
                        self.fail(cx, now, e);
                        continue;
                    }
                    progress = true;
                }
                Some(t) => {
                    if self.sleep.as_ref().is_none_or(|(at, _)| *at != t) {
                        self.sleep = Some((t, Box::pin(compio::time::sleep_until(t))));
                    }
                    if let Some((_, s)) = &mut self.sleep {
                        if s.as_mut().poll(cx).is_ready() {
                            self.sleep = None;
                            progress = true;
                        }
                    }
                }
                None => self.sleep = None,
            }

            if !progress {
                // While the peer streams, come back after the runtime's other work rather than
                // sleep: the sender's write that wakes a sleeping reader costs more than this.
                if self.spin_until.is_some_and(|t| now < t) {
                    cx.waker().wake_by_ref();
                }
                return Poll::Pending;
            }
            budget -= 1;
            if budget == 0 {
                // Long drains yield, so one busy connection cannot starve the runtime.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

/// Writes every segment, resubmitting after short writes; returns the segments' ownership.
async fn write_all<S: AsyncWrite>(
    half: &mut S,
    mut chunks: Vec<Bytes>,
) -> BufResult<(), Vec<Bytes>> {
    while !chunks.is_empty() {
        let BufResult(res, back) = half.write_vectored(chunks).await;
        chunks = back;
        match res {
            Ok(0) => {
                return BufResult(
                    Err(std::io::Error::from(std::io::ErrorKind::WriteZero)),
                    chunks,
                );
            }
            Ok(mut n) => {
                // Drop what was written; keep the unwritten tail of a partly written segment.
                let mut done = 0;
                for c in &mut chunks {
                    if n >= c.len() {
                        n -= c.len();
                        done += 1;
                    } else {
                        *c = c.slice(n..);
                        break;
                    }
                }
                chunks.drain(..done);
            }
            Err(e) => return BufResult(Err(e), chunks),
        }
    }
    BufResult(Ok(()), chunks)
}
