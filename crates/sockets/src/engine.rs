//! The glue between one ZMTP connection and its socket: what a backend's driver task runs.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use omq_zmtp::{AuthReply, AuthRequest, Connection, Event, Message, SocketType, WriteBuf};

use crate::core::{Core, PeerCommand, PeerPipes};
use crate::error::Error;
use crate::monitor::MonitorEvent;
use crate::zap::{self, ZapExchange, ZapFailure, ZapRequest};

/// The longest wait for the peer's FIN after a close (see [`Engine::goodbye_until`]).
pub const GOODBYE: Duration = Duration::from_secs(5);

/// A read of at least this many bytes means the peer is streaming: for [`READ_SPIN`] after it,
/// a backend's read that finds nothing looks again (its task yields and comes back) rather than
/// let the thread sleep. Over loopback the sender's write that wakes a sleeping reader costs it
/// more than that look. Smaller reads (request-reply, a trickle of messages) never spin.
pub const STREAMING_READ: usize = 32 * 1024;

/// How long after a [`STREAMING_READ`] an empty read looks again instead of sleeping.
pub const READ_SPIN: Duration = Duration::from_micros(20);

/// Stop filling a write batch once this many bytes are queued in all, payloads written by
/// reference included: as much as the raw-socket ceiling's writes, so large messages go out in
/// as few system calls (and wake the reader as few times) as a plain stream's.
const BATCH_BYTES: usize = 1024 * 1024;

/// Stop filling a write batch once this many bytes were copied into the write buffer (headers
/// and small payloads): the buffer keeps its allocation between batches, and a smaller one
/// stays in cache while it is filled and written.
const BATCH_COPIED: usize = 256 * 1024;

/// Whether a write batch is full (see [`BATCH_BYTES`] and [`BATCH_COPIED`]).
#[inline]
fn batch_full(out: &WriteBuf) -> bool {
    out.len() >= BATCH_BYTES || out.copied_len() >= BATCH_COPIED
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The peer broke the protocol, refused us, or missed a deadline.
    #[error(transparent)]
    Zmtp(#[from] omq_zmtp::Error),
    /// The socket refused the peer (a second PAIR peer, a ROUTER routing id in use).
    #[error("peer refused by the socket: {0}")]
    Refused(&'static str),
    /// The socket was closed and the linger period is over (or everything was sent).
    #[error("socket closed")]
    SocketClosed,
    /// The peer closed the connection, or an I/O error (reported by the backend).
    #[error("{0}")]
    Io(String),
}

/// One ZMTP connection of a socket, without I/O: the backend reads bytes into
/// [`handle_read_buf`](Self::handle_read_buf), writes what
/// [`poll_transmit`](Self::poll_transmit) produces, and runs
/// [`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout).
///
/// # Driver loop
/// 1. Read when [`wants_read`](Self::wants_read) (the socket's receive pipe has room and no
///    earlier input waits), then [`handle_read_buf`](Self::handle_read_buf). When it does not,
///    wait on [`poll_inbound`](Self::poll_inbound). When
///    [`input_pending`](Self::input_pending), feed the read buffer to `handle_read_buf` again
///    before reading more (decoding pauses where the pipe fills).
/// 2. Fill the write buffer with [`poll_transmit`](Self::poll_transmit) (a batch of queued
///    messages; it registers the task for more) and write it out; when it returns
///    `Ready(Err(SocketClosed))` and the buffer is written, close.
/// 3. Timers as the codec's: [`poll_timeout`](Self::poll_timeout), then
///    [`handle_timeout`](Self::handle_timeout) after feeding the input read so far.
/// 4. When the connection ends, [`finish`](Self::finish) reports it and hands back the pipes of
///    a connected endpoint for the next connection.
#[derive(Debug)]
pub struct Engine {
    core: Arc<Core>,
    conn: Connection,
    pipes: Option<PeerPipes>,
    /// The pipes outlive this connection (an endpoint we connected to).
    keep_pipes: bool,
    endpoint: String,
    /// A message that the full receive pipe has not taken yet.
    stalled: Option<Message>,
    /// Decoding paused (the receive pipe filled, or a message came behind a queued event): the
    /// read buffer holds input to feed again before reading more.
    input_pending: bool,
    /// The socket was closed: the deadline for sending what is queued (`None`: no limit).
    closing: Option<Option<Instant>>,
    /// The socket's end of the outbound pipe is gone and the pipe is drained.
    drained: bool,
    /// Whether the handshake completed.
    established: bool,
    /// This engine's registration for the socket's close (while it has no pipes).
    close_token: u64,
    /// An authentication request waiting for the ZAP handler's reply.
    zap: Option<ZapExchange>,
    /// The peer's IP address, for ZAP requests (accepted tcp connections).
    peer_ip: Option<std::net::IpAddr>,
    /// Read buffers of large frames, kept for reuse.
    spares: Spares,
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.core.forget_close(self.close_token);
    }
}

impl Engine {
    /// An engine for a new connection to `endpoint` at `now`. `pipes` are the pipes of an
    /// endpoint we connected to (created by [`Core::attach`] at connect time, reused across
    /// reconnects); `None` creates them when the handshake completes.
    pub fn new(
        core: Arc<Core>,
        pipes: Option<PeerPipes>,
        as_server: bool,
        endpoint: String,
        now: Instant,
    ) -> Result<Self, Error> {
        let mut config = core.options().zmtp_config(core.socket_type());
        if matches!(config.mechanism, omq_zmtp::Mechanism::Null) {
            // NULL has no roles; the accepting side is its "server" in the greeting.
            config.as_server = as_server;
        }
        let conn = Connection::new(config, now).map_err(|_| Error::NotSupported)?;
        Ok(Self {
            close_token: core.close_token(),
            keep_pipes: pipes.is_some(),
            core,
            conn,
            pipes,
            endpoint,
            stalled: None,
            input_pending: false,
            closing: None,
            drained: false,
            established: false,
            zap: None,
            peer_ip: None,
            spares: Spares::default(),
        })
    }

    /// Records the peer's IP address, which ZAP requests report (RFC 27's "address").
    pub fn set_peer_ip(&mut self, ip: Option<std::net::IpAddr>) {
        self.peer_ip = ip;
    }

    /// The socket this connection belongs to.
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// The endpoint, as reported in monitor events.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the handshake completed.
    pub fn is_established(&self) -> bool {
        self.established
    }

    /// How many bytes the next frame needs in the read buffer (reserve at least this much).
    pub fn bytes_needed(&self) -> usize {
        self.conn.bytes_needed()
    }

    /// Makes room in `buf` for the next read: at least `chunk` bytes free, and room toward the
    /// size the next frame declared, growing by doubling as its bytes arrive. A header that
    /// announces a huge frame (nothing limits it without `max_message_size`) therefore costs
    /// memory only as fast as the peer actually sends. A large frame whose rest already fits
    /// is read into the room it has rather than moved to a bigger buffer.
    ///
    /// Frames of 128 KiB and more are read into the buffers of earlier large frames once the
    /// socket's user has dropped every message in them: the engine keeps up to four such
    /// buffers (8 MiB together), so that a stream of large messages does not make the
    /// allocator return memory to the kernel and fault it back in per message. Once the
    /// connection has had frames of a size, the next one gets its room at once. Smaller
    /// frames reuse the read buffers they were read into the same way (up to four of them).
    pub fn reserve_read(&mut self, buf: &mut BytesMut, chunk: usize) {
        self.spares.reserve(buf, self.conn.bytes_needed(), chunk);
    }

    /// Whether the backend should read: false while the socket's receive pipe is full, and
    /// while input read earlier waits to be fed again (see
    /// [`input_pending`](Self::input_pending)).
    pub fn wants_read(&self) -> bool {
        // While lingering, reading goes on: the handshake, heartbeats and the peer's close.
        self.stalled.is_none() && !self.input_pending
    }

    /// Whether the read buffer holds input whose decoding paused (the socket's receive pipe
    /// filled, or a message came behind the handshake's or a subscription's event) and the pipe
    /// has room again: feed the same buffer to [`handle_read_buf`](Self::handle_read_buf)
    /// before reading more.
    pub fn input_pending(&self) -> bool {
        self.input_pending && self.stalled.is_none()
    }

    /// Feeds bytes read from the connection (see [`Connection::handle_read_buf`]) and hands
    /// the decoded messages to the socket.
    pub fn handle_read_buf(&mut self, now: Instant, buf: &mut BytesMut) -> Result<(), EngineError> {
        // Messages go straight into the receive pipe as they are decoded. Decoding pauses at a
        // message the pipe has no room for (or that waits behind one already stalled, or behind
        // an event such as the handshake's): the rest stays in `buf` until `input_pending` says
        // to feed it again, so what waits is bounded by the read buffer.
        // Two sinks, not one that looks at `stalled` per message: the message is then built
        // where `deliver` pushes it, rather than on the stack first for either branch to copy.
        let r = if self.stalled.is_some() {
            self.conn.handle_read_buf_with(now, buf, Err)
        } else {
            let (core, pipes) = (&self.core, &mut self.pipes);
            self.conn
                .handle_read_buf_with(now, buf, |m| deliver(core, pipes, m))
        };
        self.input_pending = matches!(r, Ok(true));
        // What was decoded before an error is delivered: those messages were valid. (Decoding
        // pauses where the pipe fills, so an error is reached only once all before it are in.)
        self.process_events(now)?;
        Ok(r.map(drop)?)
    }

    fn process_events(&mut self, now: Instant) -> Result<(), EngineError> {
        while self.stalled.is_none() {
            let Some(ev) = self.conn.poll_event() else {
                break;
            };
            match ev {
                Event::Established => self.on_established(now)?,
                Event::Message(m) => self.deliver(m),
                Event::Subscribe(t) => self.subscription(true, &t),
                Event::Cancel(t) => self.subscription(false, &t),
                Event::Authenticate(request) => self.authenticate(now, request)?,
                _ => {}
            }
        }
        if let Some(p) = &mut self.pipes {
            p.inbound.publish();
        }
        // While the receive pipe holds input back, the peer's silence proves nothing (its
        // bytes wait unread): the heartbeat timeout waits for reading to resume.
        self.conn.set_reading(self.wants_read(), now);
        Ok(())
    }

    /// Asks the socket's authenticator, else the ZAP handler, else applies libzmq's rules for a
    /// missing handler (see [`zap`]).
    fn authenticate(&mut self, now: Instant, request: AuthRequest) -> Result<(), EngineError> {
        let options = self.core.options();
        let request = ZapRequest {
            domain: options.zap_domain.clone(),
            address: match self.peer_ip {
                Some(ip) => Bytes::from(ip.to_string()),
                None => zap::peer_address(&self.endpoint),
            },
            identity: options.routing_id.clone().unwrap_or_default(),
            mechanism: request.mechanism,
            credentials: request.credentials,
        };
        if let Some(handler) = &options.authenticator {
            let reply = handler.authenticate(&request);
            self.conn.authenticate(now, &reply)?;
            return Ok(());
        }
        static REQUEST_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = REQUEST_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match ZapExchange::start(&request, id) {
            Ok(Some(exchange)) => {
                self.zap = Some(exchange);
                return Ok(());
            }
            Ok(None) => {}
            Err(_) => return Err(EngineError::Refused("the ZAP handler cannot be asked")),
        }
        if request.mechanism == "PLAIN" {
            return Err(EngineError::Refused(
                "PLAIN server without a ZAP handler to check passwords",
            ));
        }
        if options.zap_enforce_domain {
            return Err(EngineError::Refused(
                "no ZAP handler and zap_enforce_domain is set",
            ));
        }
        self.conn.authenticate(now, &AuthReply::accept(""))?;
        Ok(())
    }

    /// Acts on the ZAP handler's reply once it is in.
    fn poll_zap(&mut self, cx: &mut Context<'_>, now: Instant) -> Result<(), EngineError> {
        let Some(exchange) = &mut self.zap else {
            return Ok(());
        };
        let Poll::Ready(reply) = exchange.poll_reply(cx) else {
            return Ok(());
        };
        self.zap = None;
        match reply {
            Ok(reply) => self.conn.authenticate(now, &reply)?,
            Err(ZapFailure::Malformed) => return Err(EngineError::Refused("malformed ZAP reply")),
            Err(ZapFailure::Gone) => {
                return Err(EngineError::Refused("the ZAP handler cannot be asked"));
            }
        }
        self.process_events(now)
    }

    fn on_established(&mut self, now: Instant) -> Result<(), EngineError> {
        if self.pipes.is_none() {
            self.pipes = Some(self.core.attach().map_err(|_| EngineError::SocketClosed)?);
            // From now on the pipes' command channel carries the close.
            self.core.forget_close(self.close_token);
        }
        let id = self.pipes.as_ref().map(PeerPipes::id).unwrap_or_default();
        // Subscriptions queued while disconnected are superseded by the full re-send in
        // `established`; a close is kept.
        if let Some(p) = &mut self.pipes {
            while let Ok(cmd) = p.commands.try_recv() {
                if let PeerCommand::Close { linger } = cmd {
                    self.closing
                        .get_or_insert(linger.and_then(|l| now.checked_add(l)));
                }
            }
        }
        if self.core.is_closed() {
            // A closed socket's connect loop connected to deliver what is still queued.
            let linger = self.core.options().linger;
            self.closing
                .get_or_insert(linger.and_then(|l| now.checked_add(l)));
            self.established = true;
            return Ok(());
        }
        let identity = self.conn.peer().and_then(|p| p.identity.clone());
        if let Some(info) = self.conn.peer() {
            self.core.set_peer_info(id, Arc::new(info.clone()));
        }
        match self.core.established(id, identity) {
            Ok(()) => {}
            // Closed meanwhile: deliver what is queued within the linger period.
            Err(Error::Closed) => {
                let linger = self.core.options().linger;
                self.closing
                    .get_or_insert(linger.and_then(|l| now.checked_add(l)));
                self.established = true;
                return Ok(());
            }
            Err(_) => {
                return Err(EngineError::Refused(match self.core.socket_type() {
                    SocketType::Pair => "PAIR already has a peer",
                    _ => "routing id already in use",
                }));
            }
        }
        self.established = true;
        self.core.emit(MonitorEvent::HandshakeSucceeded {
            endpoint: self.endpoint.clone(),
        });
        if let Some(peer) = self.conn.peer() {
            if peer.auth != omq_zmtp::PeerAuth::default() {
                self.core.emit(MonitorEvent::PeerAuthenticated {
                    endpoint: self.endpoint.clone(),
                    auth: peer.auth.clone(),
                });
            }
        }
        Ok(())
    }

    fn subscription(&mut self, on: bool, topic: &[u8]) {
        if let Some(p) = &self.pipes {
            self.core.peer_subscription(p.id, on, topic);
        }
    }

    fn deliver(&mut self, msg: Message) {
        if let Err(m) = deliver(&self.core, &mut self.pipes, msg) {
            self.stalled = Some(m);
        }
    }

    /// Waits for room in the socket's receive pipe when a message is stalled, then delivers it
    /// and the events behind it. `Ready(Ok(()))` when nothing is stalled.
    pub fn poll_inbound(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
    ) -> Poll<Result<(), EngineError>> {
        while let Some(m) = self.stalled.take() {
            let Some(p) = &mut self.pipes else {
                return Poll::Ready(Ok(()));
            };
            match p.inbound.poll_space(cx) {
                Poll::Ready(Ok(())) => {
                    if let Err(yring::PushError::Full(m)) = p.inbound.push(m) {
                        self.stalled = Some(m);
                        continue;
                    }
                    if let Err(e) = self.process_events(now) {
                        return Poll::Ready(Err(e));
                    }
                }
                // The socket is closed: nobody will read. Input is dropped from now on, while
                // the close (and its linger) runs its course.
                Poll::Ready(Err(_)) => {
                    if let Err(e) = self.process_events(now) {
                        return Poll::Ready(Err(e));
                    }
                }
                Poll::Pending => {
                    self.stalled = Some(m);
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Appends to `out` what the connection has to send: handshake traffic, heartbeats, queued
    /// commands and a batch of queued messages. Registers the task to be woken when more is
    /// queued. `Ready(Err(SocketClosed))` once the socket is closed and everything queued has
    /// been appended: write `out` out, then close.
    pub fn poll_transmit(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
        out: &mut WriteBuf,
    ) -> Poll<Result<(), EngineError>> {
        if let Err(e) = self.poll_zap(cx, now) {
            // A refusal's ERROR command goes out before the connection ends.
            self.conn.poll_transmit(out);
            return Poll::Ready(Err(e));
        }
        self.conn.poll_transmit(out);
        if self.conn.error().is_some() {
            // Only the codec's own farewell (an ERROR command) goes out; queued messages stay
            // in the pipe for the next connection.
            return Poll::Ready(Ok(()));
        }
        let Some(p) = &mut self.pipes else {
            // An accepted connection still in its handshake has nothing queued: it ends with
            // the socket.
            if self.core.poll_closed(self.close_token, cx) {
                return Poll::Ready(Err(EngineError::SocketClosed));
            }
            return self.closing_status(now);
        };
        // Before the handshake, subscriptions are dropped here: `established` re-sends them all.
        while let Poll::Ready(Ok(cmd)) = p.commands.poll_recv(cx) {
            match cmd {
                PeerCommand::Subscribe(t) => {
                    let _ = self.conn.subscribe(&t, out);
                }
                PeerCommand::Cancel(t) => {
                    let _ = self.conn.cancel(&t, out);
                }
                PeerCommand::Close { linger } => {
                    self.closing
                        .get_or_insert(linger.and_then(|l| now.checked_add(l)));
                }
            }
        }
        if !self.conn.is_established() || self.closing.flatten().is_some_and(|d| d <= now) {
            return self.closing_status(now);
        }
        while !batch_full(out) {
            match p.outbound.pop() {
                Some(m) => {
                    let _ = self.conn.send(&m, out);
                }
                None => match p.outbound.poll_fetch(cx) {
                    Poll::Ready(0) => {
                        self.drained = true;
                        break;
                    }
                    Poll::Ready(_) => {}
                    Poll::Pending => break,
                },
            }
        }
        if batch_full(out) {
            // More may be queued: come back after this batch is written.
            cx.waker().wake_by_ref();
        }
        self.closing_status(now)
    }

    fn closing_status(&mut self, now: Instant) -> Poll<Result<(), EngineError>> {
        // Closed before the handshake finished, with nothing left to send: nothing to wait for.
        if self.closing.is_some() && !self.established {
            if let Some(p) = &mut self.pipes {
                if p.outbound.fetch() == 0 && p.outbound.is_abandoned() {
                    self.drained = true;
                }
            }
        }
        match self.closing {
            Some(deadline) if self.drained || deadline.is_some_and(|d| d <= now) => {
                Poll::Ready(Err(EngineError::SocketClosed))
            }
            _ if self.drained && self.established => Poll::Ready(Err(EngineError::SocketClosed)),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Once the socket is closed: when the linger period ends (`None`: no limit, or not
    /// closing).
    pub fn linger_deadline(&self) -> Option<Instant> {
        self.closing.flatten()
    }

    /// The orderly end of a connection: once everything is written after `reason`, until when
    /// a driver shuts down its write side and reads (dropping the input) until the peer's FIN.
    /// Closing a socket with unread input makes the kernel send RST, and a peer that gets RST
    /// can lose what we sent and it has not read yet.
    ///
    /// `None`: end now. That is the case for a failed connection, for one that never finished
    /// its handshake (the peer has nothing of ours to read), and when linger is 0 or over. The
    /// wait lasts at most the rest of the linger period, and at most [`GOODBYE`].
    pub fn goodbye_until(&self, reason: &EngineError, now: Instant) -> Option<Instant> {
        if !self.established || !matches!(reason, EngineError::SocketClosed) {
            return None;
        }
        let cap = now + GOODBYE;
        let end = self.linger_deadline().map_or(cap, |t| t.min(cap));
        (end > now).then_some(end)
    }

    /// The next deadline: the codec's (handshake, heartbeats) or the linger period's.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let linger = self.closing.flatten();
        match (self.conn.poll_timeout(), linger) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the deadlines that have passed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), EngineError> {
        if self.closing.flatten().is_some_and(|d| d <= now) {
            return Err(EngineError::SocketClosed);
        }
        self.conn.handle_timeout(now)?;
        Ok(())
    }

    /// The linger deadline of a socket closed before this connection was established, for a
    /// backend that waits for a connection: `Some(None)` waits forever.
    pub fn linger(core: &Core) -> Option<Duration> {
        core.options().linger
    }

    /// The connection ended with `reason`: reports it on the monitor, and returns the pipes if
    /// they outlive the connection (an endpoint we connected to whose socket is still open).
    pub fn finish(mut self, reason: &EngineError) -> Option<PeerPipes> {
        // Routing is updated before the event is reported, so that a monitor observer sees the
        // socket already without this connection.
        let kept = self.pipes.take().and_then(|pipes| {
            // A refused peer keeps the endpoint's pipes too: the next connection may be
            // accepted (PAIR and ROUTER never route into an unestablished pipe).
            let keep = self.keep_pipes && !self.drained && !self.core.is_closed();
            if keep {
                self.core.disconnected(pipes.id);
                // A stalled message is lost with the connection, as the rest of its input.
                Some(pipes)
            } else {
                self.core.detach(pipes.id);
                None
            }
        });
        let endpoint = self.endpoint.clone();
        let socket_closed = matches!(reason, EngineError::SocketClosed);
        let reason = reason.to_string();
        if self.established {
            self.core
                .emit(MonitorEvent::Disconnected { endpoint, reason });
        } else if !socket_closed {
            self.core
                .emit(MonitorEvent::HandshakeFailed { endpoint, reason });
        }
        kept
    }
}

/// Frames at least this large are read into buffers that are kept for reuse.
const SPARE_MIN: usize = 128 * 1024;
/// At most this many spare buffers per connection...
const MAX_SPARES: usize = 4;
/// ...holding at most this many bytes together.
const MAX_SPARE_BYTES: usize = 8 * 1024 * 1024;

/// At most this many read buffers of small frames are kept per connection (each a read's
/// room and [`SMALL_SLACK`]: 72 KiB with the drivers' 64 KiB reads).
const MAX_SMALL_SPARES: usize = 4;
/// Read buffers of small frames all have this much room beyond a read's, for the start of the
/// next frame carried over from the last buffer; a longer start grows the buffer instead.
const SMALL_SLACK: usize = 8 * 1024;

/// The read buffers of large frames, kept for the frames after them.
///
/// The codec hands a frame to the socket as a view of the read buffer it was read into, so
/// while the user holds a large message, the next one needs another buffer. Allocated anew
/// each time, such a buffer goes back to the allocator when the user drops the message;
/// glibc returns it to the kernel (it trims its heap beyond 2 MiB) and the next one is
/// faulted in page by page. At 1 MiB per message over tcp that was half the transfer's time.
/// The engine keeps the buffers it moves away from (a few, bounded in bytes) and reads the
/// next large frame into one whose messages are all gone.
///
/// Small frames that are not copied inline share their read buffer the same way, some
/// hundreds to a buffer: while any of them waits in the receive pipe, the next read needs
/// another buffer. Those are kept too, a few per connection, and reused once their messages
/// are gone; allocated anew, every 64 KiB buffer went back to glibc, which returned the top of
/// its heap to the kernel (beyond 128 KiB) and faulted it back in on the next allocation.
#[derive(Debug, Default)]
struct Spares {
    /// Empty views of earlier read buffers, each with its buffer's size, largest first.
    bufs: Vec<(BytesMut, usize)>,
    /// Empty views of earlier read buffers of small frames, oldest first.
    small: Vec<BytesMut>,
    /// The size of the current read buffer (0 for the first, small, one).
    current: usize,
    /// Buffers allocated so far.
    #[cfg(test)]
    allocated: usize,
}

impl Spares {
    /// Makes room in `buf` for reading toward a frame that needs `need` bytes from the start
    /// of `buf`: at least `chunk` bytes free, and room toward `need`, growing by doubling as
    /// the bytes arrive. A header that announces a huge frame therefore costs memory only as
    /// fast as the peer actually sends, unless a spare buffer is large enough already.
    fn reserve(&mut self, buf: &mut BytesMut, need: usize, chunk: usize) {
        let len = buf.len();
        if len >= chunk && need > len && buf.capacity() >= need {
            // The rest of a large frame fits: a short read costs less than copying `len` bytes
            // into a larger buffer.
            return;
        }
        let mut target = need.min(len.saturating_mul(2)).max(len + chunk);
        if buf.capacity() >= target {
            return;
        }
        if need < SPARE_MIN && self.current < SPARE_MIN {
            if len <= SMALL_SLACK {
                // At most the start of a frame to carry over: a buffer of the one small size.
                self.reserve_small(buf, chunk + SMALL_SLACK);
                return;
            }
            // The rest of a mid-sized frame: the growth policy is `BytesMut`'s.
            let before = buf.as_ptr();
            buf.reserve(target - len);
            if buf.as_ptr() != before {
                self.current = buf.capacity();
            }
            return;
        }
        if need >= SPARE_MIN {
            // A large frame: into a kept buffer whose messages are all gone, if there is one.
            let free = self
                .bufs
                .iter_mut()
                .position(|(spare, size)| *size >= need && spare.try_reclaim(need));
            if let Some(i) = free {
                let (mut spare, size) = self.bufs.remove(i);
                spare.extend_from_slice(buf);
                self.replace(buf, spare, size, need);
                return;
            }
            if self.current >= need || self.bufs.first().is_some_and(|&(_, s)| s >= need) {
                // This connection has had frames this large (it holds a buffer of the size,
                // just not a free one): room for the whole frame at once, not by doubling.
                target = need;
            }
        }
        // Otherwise a new buffer, and the large one left behind is kept.
        // The buffer itself, if nothing else holds it any more (no copy, no allocation).
        if buf.try_reclaim(target - len) {
            return;
        }
        let mut fresh = self.allocate(target);
        fresh.extend_from_slice(buf);
        self.replace(buf, fresh, target, need);
    }

    /// A read buffer of `size` bytes (the one size of small buffers) with what `buf` holds at
    /// its start: `buf` itself if nothing else holds it any more, else the oldest kept buffer
    /// whose messages are all gone, else a new one. A buffer of that size moved away from is
    /// kept, up to [`MAX_SMALL_SPARES`]; one size for all means any of them fits.
    fn reserve_small(&mut self, buf: &mut BytesMut, size: usize) {
        if buf.try_reclaim(size - buf.len()) {
            return;
        }
        let next = match self.small.iter_mut().position(|s| s.try_reclaim(size)) {
            Some(i) => self.small.remove(i),
            None => self.allocate(size),
        };
        let mut old = std::mem::replace(buf, next);
        buf.extend_from_slice(&old);
        if std::mem::replace(&mut self.current, size) == size && self.small.len() < MAX_SMALL_SPARES
        {
            old.clear();
            self.small.push(old);
        }
    }

    /// A new, empty buffer of `capacity` bytes (counted in tests).
    fn allocate(&mut self, capacity: usize) -> BytesMut {
        #[cfg(test)]
        {
            self.allocated += 1;
        }
        BytesMut::with_capacity(capacity)
    }

    /// Makes `next` (of `size` bytes) the read buffer for a frame of `need` bytes, and keeps
    /// the one it replaces if that could hold such a frame (a buffer outgrown by the frame
    /// being read is of no further use) and there is room.
    fn replace(&mut self, buf: &mut BytesMut, next: BytesMut, size: usize, need: usize) {
        let mut old = std::mem::replace(buf, next);
        let old_size = std::mem::replace(&mut self.current, size);
        if old_size < need.max(SPARE_MIN) || old_size > MAX_SPARE_BYTES {
            return;
        }
        old.clear();
        let at = self.bufs.partition_point(|&(_, s)| s >= old_size);
        self.bufs.insert(at, (old, old_size));
        // Over the limits, the smallest go first.
        let mut total: usize = self.bufs.iter().map(|&(_, s)| s).sum();
        while self.bufs.len() > MAX_SPARES || total > MAX_SPARE_BYTES {
            let Some((_, s)) = self.bufs.pop() else { break };
            total -= s;
        }
    }
}

/// Hands a message from the peer to the socket: into the receive pipe, or as a subscription
/// when a ZMTP 3.0 subscriber subscribes with messages. `Err` gives the message back when the
/// pipe is full. The pipe is published once per read, at the end of `process_events`.
#[inline]
fn deliver(core: &Core, pipes: &mut Option<PeerPipes>, msg: Message) -> Result<(), Message> {
    let Some(p) = pipes else { return Ok(()) };
    match core.socket_type() {
        // A ZMTP 3.0 subscriber subscribes with messages.
        SocketType::Pub | SocketType::XPub => {
            if !msg.is_multipart() {
                if let Some(f) = msg.first() {
                    if let Some((&kind @ (0 | 1), topic)) = f.as_slice().split_first() {
                        core.peer_subscription(p.id, kind == 1, topic);
                        return Ok(());
                    }
                }
            }
            if core.socket_type() == SocketType::Pub {
                return Ok(());
            }
        }
        // These never receive; a peer that sends anyway is ignored.
        SocketType::Push => return Ok(()),
        _ => {}
    }
    match p.inbound.push(msg) {
        Err(yring::PushError::Full(m)) => Err(m),
        // The socket is gone: nobody will read it.
        Ok(()) | Err(yring::PushError::Disconnected(_)) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: usize = 64 * 1024;

    #[test]
    fn a_huge_declared_frame_is_not_reserved_up_front() {
        let mut spares = Spares::default();
        let mut b = BytesMut::new();
        spares.reserve(&mut b, usize::MAX, CHUNK);
        assert!(b.capacity() < 4 * CHUNK, "{}", b.capacity());
        // As the bytes arrive, the buffer doubles.
        b.resize(CHUNK, 0);
        spares.reserve(&mut b, usize::MAX, CHUNK);
        assert!(b.capacity() >= 2 * CHUNK && b.capacity() < 8 * CHUNK);
        // A frame of known size gets its room at once once half of it is in.
        let mut b = BytesMut::new();
        b.resize(300_000, 0);
        spares.reserve(&mut b, 500_000, CHUNK);
        assert!(b.capacity() >= 500_000);
    }

    #[test]
    fn a_large_frame_that_fits_is_not_moved() {
        let mut spares = Spares::default();
        let mut b = BytesMut::with_capacity(1 << 20);
        b.resize((1 << 20) - 10, 0);
        let before = b.as_ptr();
        spares.reserve(&mut b, 1 << 20, CHUNK);
        assert_eq!(b.as_ptr(), before, "reallocated for the last 10 bytes");
        // Small frames still get a whole chunk to read into.
        let mut b = BytesMut::with_capacity(CHUNK);
        b.resize(CHUNK - 10, 0);
        spares.reserve(&mut b, CHUNK - 5, CHUNK);
        assert!(b.capacity() - b.len() >= CHUNK);
    }

    /// Asserts that no two of `frames` share memory.
    fn assert_disjoint(frames: &[Bytes]) {
        for (i, f) in frames.iter().enumerate() {
            for g in &frames[i + 1..] {
                let (a, b) = (f.as_ptr() as usize, g.as_ptr() as usize);
                assert!(
                    a + f.len() <= b || b + g.len() <= a,
                    "two live frames overlap"
                );
            }
        }
    }

    /// Reads one frame of `size` bytes the way a driver does: header and a first chunk, then
    /// the rest, each read after `reserve`. Returns the frame, split off the buffer.
    fn read_frame(spares: &mut Spares, b: &mut BytesMut, size: usize) -> Bytes {
        while b.len() < size {
            spares.reserve(b, size, CHUNK);
            let n = (size - b.len()).min(b.capacity() - b.len());
            b.resize(b.len() + n, 7);
        }
        b.split_to(size).freeze()
    }

    #[test]
    fn large_frames_reuse_the_buffers_of_dropped_ones() {
        let mut spares = Spares::default();
        let mut b = BytesMut::with_capacity(CHUNK);
        let size = 1 << 20;
        // The user holds two messages at a time.
        let mut held = std::collections::VecDeque::new();
        let mut addresses = std::collections::HashSet::new();
        for _ in 0..50 {
            let frame = read_frame(&mut spares, &mut b, size);
            assert_eq!(frame.len(), size);
            addresses.insert(frame.as_ptr() as usize);
            held.push_back(frame);
            if held.len() > 2 {
                held.pop_front();
            }
        }
        // Three buffers in turn, not one per frame (the first frame's growth adds a few).
        assert!(
            addresses.len() <= 4,
            "{} buffers for 50 frames",
            addresses.len()
        );
        assert!(
            spares.allocated <= 7,
            "{} allocations for 50 frames",
            spares.allocated
        );
        let kept: usize = spares.bufs.iter().map(|&(_, s)| s).sum();
        assert!(spares.bufs.len() <= MAX_SPARES && kept <= MAX_SPARE_BYTES);
    }

    #[test]
    fn small_frames_reuse_the_buffers_of_dropped_ones() {
        let mut spares = Spares::default();
        let mut b = BytesMut::with_capacity(CHUNK);
        let size = 1000;
        // The user holds the last 100 messages (a receive pipe's worth), and a partial frame
        // is left in the buffer whenever it fills.
        let mut held = std::collections::VecDeque::new();
        for _ in 0..10_000 {
            if b.capacity() - b.len() < size {
                b.resize(b.len() + 10, 7);
                spares.reserve(&mut b, size, CHUNK);
                assert!(b.capacity() - b.len() >= CHUNK);
                b.truncate(b.len() - 10);
            }
            b.resize(b.len() + size, 7);
            held.push_back(b.split_to(size).freeze());
            if held.len() > 100 {
                held.pop_front();
            }
        }
        // 10 MB through a few buffers, not one per 64 KiB.
        assert!(
            spares.allocated <= MAX_SMALL_SPARES,
            "{} allocations",
            spares.allocated
        );
        assert!(spares.small.len() <= MAX_SMALL_SPARES);
        // Held frames never share memory with a frame read after them.
        assert_disjoint(held.make_contiguous());
    }

    #[test]
    fn a_held_buffer_is_never_reused() {
        let mut spares = Spares::default();
        let mut b = BytesMut::with_capacity(CHUNK);
        let size = 300_000;
        // The user keeps every message: each frame must get memory of its own.
        let frames: Vec<Bytes> = (0..10)
            .map(|_| read_frame(&mut spares, &mut b, size))
            .collect();
        assert_disjoint(&frames);
        // Spares beyond the limits are let go.
        assert!(spares.bufs.len() <= MAX_SPARES);
    }
}
