//! One task per connection: reads into the engine, writes what it produces, runs its timers.

use std::future::{Future, poll_fn};
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use omq_sockets::{Engine, EngineError, READ_SPIN, STREAMING_READ};
use omq_zmtp::WriteBuf;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Sleep;

/// Read at least this much per read call.
const READ_CHUNK: usize = 64 * 1024;
/// Refill the write buffer while it holds less than this.
const REFILL_BELOW: usize = 64 * 1024;
/// Loop turns with progress before the task yields to the runtime.
const BUDGET: u32 = 8;
/// iovecs per vectored write.
const MAX_IOVECS: usize = 64;

struct Driver<'a, S> {
    stream: S,
    engine: &'a mut Engine,
    rbuf: BytesMut,
    wbuf: WriteBuf,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    /// Set once the engine says the socket is closed: flush, say goodbye, then end.
    closing: Option<EngineError>,
    /// Our FIN is sent; until when we wait for the peer's.
    goodbye_until: Option<Instant>,
    /// The last poll ended because its budget ran out, or to read again while the peer
    /// streams (see [`READ_SPIN`]), not because it has to wait.
    out_of_budget: bool,
    /// Until when an empty read is tried again (see [`READ_SPIN`]).
    spin_until: Option<Instant>,
}

/// Runs the connection until it ends; returns why.
pub(crate) async fn run<S>(stream: S, engine: &mut Engine) -> EngineError
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut d = Driver {
        stream,
        engine,
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        wbuf: WriteBuf::new(),
        sleep: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
        armed: None,
        closing: None,
        goodbye_until: None,
        out_of_budget: false,
        spin_until: None,
    };
    loop {
        let ended = poll_fn(|cx| match d.poll(cx) {
            Poll::Pending if std::mem::take(&mut d.out_of_budget) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
            Poll::Ready(e) => Poll::Ready(Some(e)),
        })
        .await;
        match ended {
            Some(e) => return e,
            // A long drain yields through tokio's deferred wake-ups, which let the runtime's
            // `block_on` future run as well: a plain self-wake would put this task straight
            // back in the run queue, and a current-thread runtime polls up to 61 queued tasks
            // before the `block_on` future again. A receiver in `block_on` (as in `main`) then
            // fell behind its own connection until the pipe held HWM messages.
            None => tokio::task::yield_now().await,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<'_, S> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<EngineError> {
        let mut budget = BUDGET;
        loop {
            let mut progress = false;
            let now = Instant::now();

            // Input first: fresh bytes are proof of life for the heartbeat check below.
            if let Poll::Ready(Err(e)) = self.engine.poll_inbound(cx, now) {
                return Poll::Ready(e);
            }
            if self.engine.input_pending() && self.closing.is_none() {
                // The receive pipe has room again for what was read before it filled.
                if let Err(e) = self.engine.handle_read_buf(now, &mut self.rbuf) {
                    self.flush_best_effort(cx, now);
                    return Poll::Ready(e);
                }
                progress = true;
            } else if self.engine.wants_read() && self.closing.is_none() {
                self.engine.reserve_read(&mut self.rbuf, READ_CHUNK);
                match tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.rbuf)
                {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(EngineError::Io(
                            "connection closed by the peer".into(),
                        ));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.spin_until = (n >= STREAMING_READ).then(|| now + READ_SPIN);
                        if let Err(e) = self.engine.handle_read_buf(now, &mut self.rbuf) {
                            self.flush_best_effort(cx, now);
                            return Poll::Ready(e);
                        }
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(EngineError::Io(e.to_string())),
                    Poll::Pending => {}
                }
            }

            // Output: a batch from the pipes, one vectored write.
            if self.closing.is_none() && self.wbuf.len() < REFILL_BELOW {
                if let Poll::Ready(Err(e)) = self.engine.poll_transmit(cx, now, &mut self.wbuf) {
                    self.closing = Some(e);
                }
            }
            if !self.wbuf.is_empty() {
                let mut iov = [IoSlice::new(&[]); MAX_IOVECS];
                let n = self.wbuf.chunks_vectored(&mut iov);
                match Pin::new(&mut self.stream).poll_write_vectored(cx, &iov[..n]) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(EngineError::Io("connection closed".into()));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.wbuf.advance(n);
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(EngineError::Io(e.to_string())),
                    Poll::Pending => {}
                }
            }
            if self.wbuf.is_empty() && self.closing.is_some() {
                return self.poll_goodbye(cx);
            }

            // Timers. During the final flush after a close, only the linger period counts (the
            // peer's heartbeats are not read any more).
            let deadline = if self.closing.is_some() {
                self.engine.linger_deadline()
            } else {
                self.engine.poll_timeout()
            };
            match deadline {
                Some(t) if t <= now => {
                    if let Some(e) = self.closing.take() {
                        // Linger is over: what is not written is dropped, as in libzmq.
                        return Poll::Ready(e);
                    }
                    if let Err(e) = self.engine.handle_timeout(now) {
                        self.flush_best_effort(cx, now);
                        return Poll::Ready(e);
                    }
                    progress = true;
                }
                Some(t) => {
                    if self.armed != Some(t) {
                        self.armed = Some(t);
                        self.sleep.as_mut().reset(tokio::time::Instant::from_std(t));
                    }
                    if self.sleep.as_mut().poll(cx).is_ready() {
                        self.armed = None;
                        progress = true;
                    }
                }
                None => {}
            }

            if !progress {
                // While the peer streams, look again after the runtime's other work rather than
                // sleep: the sender's write that wakes a sleeping reader costs more than this.
                if self.spin_until.is_some_and(|t| now < t) {
                    self.out_of_budget = true;
                }
                return Poll::Pending;
            }
            budget -= 1;
            if budget == 0 {
                // Long drains yield, so one busy connection cannot starve the runtime.
                self.out_of_budget = true;
                return Poll::Pending;
            }
        }
    }

    /// The orderly end after a close (see [`Engine::goodbye_until`]): our FIN after the last
    /// byte, then read and drop until the peer's FIN or the deadline.
    fn poll_goodbye(&mut self, cx: &mut Context<'_>) -> Poll<EngineError> {
        if self.goodbye_until.is_none() {
            let Some(reason) = &self.closing else {
                return Poll::Ready(EngineError::SocketClosed);
            };
            if self.engine.goodbye_until(reason, Instant::now()).is_none() {
                return Poll::Ready(self.closing.take().unwrap_or(EngineError::SocketClosed));
            }
            if Pin::new(&mut self.stream).poll_shutdown(cx).is_pending() {
                return Poll::Pending;
            }
            let Some(end) = self.engine.goodbye_until(reason, Instant::now()) else {
                return Poll::Ready(self.closing.take().unwrap_or(EngineError::SocketClosed));
            };
            self.goodbye_until = Some(end);
            self.sleep
                .as_mut()
                .reset(tokio::time::Instant::from_std(end));
        }
        loop {
            self.rbuf.clear();
            self.rbuf.reserve(READ_CHUNK);
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.rbuf) {
                Poll::Ready(Ok(0) | Err(_)) => break,
                Poll::Ready(Ok(_)) => {}
                Poll::Pending if self.sleep.as_mut().poll(cx).is_ready() => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(self.closing.take().unwrap_or(EngineError::SocketClosed))
    }

    /// After a fatal error, one attempt to send what is queued (an ERROR command).
    fn flush_best_effort(&mut self, cx: &mut Context<'_>, now: Instant) {
        let _ = self.engine.poll_transmit(cx, now, &mut self.wbuf);
        if !self.wbuf.is_empty() {
            let mut iov = [IoSlice::new(&[]); MAX_IOVECS];
            let n = self.wbuf.chunks_vectored(&mut iov);
            let _ = Pin::new(&mut self.stream).poll_write_vectored(cx, &iov[..n]);
        }
    }
}
