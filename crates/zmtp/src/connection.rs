//! [`Connection`]: one ZMTP connection as a state machine, with no I/O and no clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::command::{Command, MAX_GROUP_LEN};
use crate::decoder::{Decoded, Decoder, Input, Limits, Stop};
use crate::encoder::WriteBuf;
use crate::error::{Error, ProtocolError, UsageError};
use crate::greeting::{GREETING_LEN, Greeting, STAGE1_LEN, Version};
use crate::mechanism::{
    self, AuthReply, AuthRequest, CurveCipher, Done, Handshake, LocalInfo, Mechanism, PeerAuth,
    Step,
};
use crate::message::{Frame, Message};
use crate::metadata::{self, Metadata};
use crate::socket_type::SocketType;

/// A sink that takes a message or hands it back (see [`Connection::handle_read_buf_with`]).
type SinkFn = fn(Message) -> Result<(), Message>;
/// The sink of the calls that queue every message as an event.
const NO_SINK: Option<&mut SinkFn> = None;

/// Configuration of one connection.
///
/// ```
/// use std::time::Duration;
/// use omq_zmtp::{Config, SocketType};
///
/// let mut config = Config::new(SocketType::Dealer);
/// config.identity = "worker-1".into();
/// config.heartbeat_interval = Some(Duration::from_secs(1));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Our socket type, sent as `Socket-Type` and checked against the peer's.
    pub socket_type: SocketType,
    /// Our routing id, sent as `Identity` by REQ, DEALER and ROUTER (0-255 bytes).
    pub identity: Bytes,
    /// Extra READY properties (application ones are named `X-...`). May not contain
    /// `Socket-Type` or `Identity`.
    pub metadata: Metadata,
    /// The security mechanism.
    pub mechanism: Mechanism,
    /// Whether we take the server role of the mechanism. Sent in the greeting; for NULL it changes
    /// nothing.
    pub as_server: bool,
    /// Whether the application authenticates peers: the server side of PLAIN and CURVE (and
    /// either side of NULL) then queues [`Event::Authenticate`] and waits for
    /// [`Connection::authenticate`] before accepting. Off: every peer that completes the
    /// mechanism is accepted (ZeroMQ sockets apply libzmq's ZAP rules above this).
    pub authenticate: bool,
    /// The version we announce. [`Version::V3_1`] unless testing against 3.0 behaviour.
    pub version: Version,
    /// Limits on what the peer may send.
    pub limits: Limits,
    /// Time allowed for the greeting and the mechanism handshake (libzmq's HANDSHAKE_IVL, default
    /// 30 s). `None`: no limit.
    pub handshake_timeout: Option<Duration>,
    /// Send a PING this often once established (libzmq's HEARTBEAT_IVL). `None`: no heartbeats.
    pub heartbeat_interval: Option<Duration>,
    /// The TTL announced in our PINGs: the peer may drop us after this long without traffic
    /// (libzmq's HEARTBEAT_TTL, carried in tenths of a second, at most 6553.5 s).
    pub heartbeat_ttl: Option<Duration>,
    /// After a PING, how long to wait for any traffic before failing with
    /// [`Error::HeartbeatTimeout`] (libzmq's HEARTBEAT_TIMEOUT). `None`: the heartbeat interval.
    pub heartbeat_timeout: Option<Duration>,
}

impl Config {
    /// Defaults for a socket of type `socket_type`: NULL mechanism, ZMTP 3.1, default limits,
    /// 30 s handshake timeout, no heartbeats.
    pub fn new(socket_type: SocketType) -> Self {
        Self {
            socket_type,
            identity: Bytes::new(),
            metadata: Metadata::new(),
            mechanism: Mechanism::Null,
            as_server: false,
            authenticate: false,
            version: Version::V3_1,
            limits: Limits::DEFAULT,
            handshake_timeout: Some(Duration::from_secs(30)),
            heartbeat_interval: None,
            heartbeat_ttl: None,
            heartbeat_timeout: None,
        }
    }

    fn validate(&self) -> Result<(), UsageError> {
        if self.identity.len() > 255 {
            return Err(UsageError::InvalidConfig("identity longer than 255 bytes"));
        }
        if self.metadata.get(metadata::SOCKET_TYPE).is_some()
            || self.metadata.get(metadata::IDENTITY).is_some()
        {
            return Err(UsageError::InvalidConfig(
                "metadata may not set Socket-Type or Identity",
            ));
        }
        let zero = |d: Option<Duration>| d.is_some_and(|d| d.is_zero());
        if zero(self.handshake_timeout)
            || zero(self.heartbeat_interval)
            || zero(self.heartbeat_ttl)
            || zero(self.heartbeat_timeout)
        {
            return Err(UsageError::InvalidConfig(
                "durations must be non-zero (use None to disable)",
            ));
        }
        match &self.mechanism {
            Mechanism::Plain { username, password }
                if username.len() > 255 || password.len() > 255 =>
            {
                return Err(UsageError::InvalidConfig(
                    "PLAIN user name and password are at most 255 bytes",
                ));
            }
            Mechanism::Curve(curve) if !self.as_server && curve.server_key.is_none() => {
                return Err(UsageError::InvalidConfig(
                    "a CURVE client needs the server's public key",
                ));
            }
            _ => {}
        }
        if self.limits.max_parts == 0 {
            return Err(UsageError::InvalidConfig("max_parts must be at least 1"));
        }
        Ok(())
    }
}

/// What the peer told us in the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerInfo {
    /// The ZMTP behaviour the peer's greeting selected.
    pub version: Version,
    /// The peer's socket type (`None` if it sent no `Socket-Type`, which libzmq tolerates).
    pub socket_type: Option<SocketType>,
    /// The peer's `Identity` property, if it sent one (possibly empty).
    pub identity: Option<Bytes>,
    /// All properties the peer sent, including the two above.
    pub metadata: Metadata,
    /// What the mechanism and the authentication established about the peer.
    pub auth: PeerAuth,
}

/// Something the connection has for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The handshake finished; [`Connection::peer`] now describes the peer, and messages may be
    /// sent.
    Established,
    /// A message arrived.
    Message(Message),
    /// The peer subscribed to a topic prefix (a SUBSCRIBE command). A ZMTP 3.0 peer subscribes with
    /// a `\x01topic` message instead, which arrives as [`Event::Message`].
    Subscribe(Bytes),
    /// The peer cancelled a subscription (a CANCEL command; 3.0 peers send `\x00topic`).
    Cancel(Bytes),
    /// The peer joined a group (JOIN, DISH to RADIO).
    Join(Bytes),
    /// The peer left a group (LEAVE).
    Leave(Bytes),
    /// The handshake waits for the application to check the peer's credentials: answer with
    /// [`Connection::authenticate`]. Only when [`Config::authenticate`] is on.
    Authenticate(AuthRequest),
}

#[derive(Debug)]
enum State {
    /// Exchanging greetings: `len` bytes of the peer's greeting received so far.
    Greeting { buf: [u8; GREETING_LEN], len: usize },
    /// Running the mechanism handshake.
    Handshake(Handshake),
    /// Handshake complete.
    Established,
}

/// One ZMTP connection: greeting, mechanism handshake, framing and heartbeats, driven by the caller.
///
/// The connection never performs I/O and never reads a clock. The caller feeds it the bytes it
/// reads, writes out the bytes it produces, and tells it the time.
///
/// # Polling order
/// 1. Feed every read, even one that completes no frame, with [`handle_input`](Self::handle_input) (borrowed bytes, large frames
///    copied once) or [`handle_read_buf`](Self::handle_read_buf) (a `BytesMut` read buffer, large
///    frames zero-copy). Unconsumed bytes are an incomplete frame (or, with
///    [`handle_read_buf_with`](Self::handle_read_buf_with), input whose decoding paused): keep
///    them at the front of the buffer and make room for [`bytes_needed`](Self::bytes_needed).
/// 2. Drain [`poll_event`](Self::poll_event).
/// 3. When the deadline from [`poll_timeout`](Self::poll_timeout) has passed, call
///    [`handle_timeout`](Self::handle_timeout), *after* feeding the input read so far (fresh input
///    is proof of life and must not lose the race against a heartbeat timeout).
/// 4. Queue outgoing traffic with [`send`](Self::send) (and `subscribe`, `cancel`, ...), and
///    collect the connection's own traffic (greeting, handshake, PING/PONG) with
///    [`poll_transmit`](Self::poll_transmit). Write the [`WriteBuf`] out.
/// 5. Re-arm the timer from [`poll_timeout`](Self::poll_timeout).
///
/// When a `handle_*` call returns an [`Error`], the connection is dead: call `poll_transmit` once
/// more (an ERROR command may be waiting), write it if you can, and close. Later calls return the
/// same error.
///
/// ```
/// use std::time::Instant;
/// use omq_zmtp::{Config, Connection, Event, Message, SocketType, WriteBuf};
///
/// let now = Instant::now();
/// let mut push = Connection::new(Config::new(SocketType::Push), now).unwrap();
/// let mut pull = Connection::new(Config::new(SocketType::Pull), now).unwrap();
/// let (mut a, mut b) = (WriteBuf::new(), WriteBuf::new());
/// // Shuttle bytes until both sides are established (a real program reads and writes sockets).
/// for _ in 0..4 {
///     push.poll_transmit(&mut a);
///     pull.poll_transmit(&mut b);
///     let mut ab = Vec::new();
///     a.drain_into(&mut ab);
///     let mut ba = Vec::new();
///     b.drain_into(&mut ba);
///     pull.handle_input(now, &ab).unwrap();
///     push.handle_input(now, &ba).unwrap();
/// }
/// assert!(push.is_established() && pull.is_established());
/// push.send(&Message::from("hello"), &mut a).unwrap();
/// let mut wire = Vec::new();
/// a.drain_into(&mut wire);
/// pull.handle_input(now, &wire).unwrap();
/// assert_eq!(pull.poll_event(), Some(Event::Established));
/// assert_eq!(pull.poll_event(), Some(Event::Message(Message::from("hello"))));
/// ```
#[derive(Debug)]
pub struct Connection {
    config: Config,
    state: State,
    decoder: Decoder,
    /// Our own traffic (greeting, handshake commands, PING/PONG, ERROR) waiting for
    /// `poll_transmit`.
    out: Vec<u8>,
    events: VecDeque<Event>,
    peer: Option<PeerInfo>,
    error: Option<Error>,
    /// Whether the second part of our greeting has been queued.
    greeting_done: bool,
    /// The context of the last PING, to be answered by the next `poll_transmit`.
    pending_pong: Option<Bytes>,
    /// The peer's version, known once its greeting is in.
    peer_version: Option<Version>,
    /// Input left unconsumed by the previous call (an incomplete frame, or input whose decoding
    /// paused): presenting it again is not new traffic.
    unconsumed: usize,
    handshake_deadline: Option<Instant>,
    /// When to send the next PING.
    next_ping: Option<Instant>,
    /// Fail with `HeartbeatTimeout` unless traffic arrives before this.
    heartbeat_deadline: Option<Instant>,
    /// Fail with `TtlExpired` unless traffic arrives before this.
    ttl_deadline: Option<Instant>,
    /// Since when the caller has not been reading (see [`Connection::set_reading`]).
    paused_since: Option<Instant>,
    /// Entropy for the mechanism's ephemeral keys and nonces (CURVE).
    seed: [u8; 32],
    /// Established CURVE: boxes every frame in both directions.
    cipher: Option<Box<CurveCipher>>,
    /// Frames of a boxed multipart message still missing its last frame, and their total size.
    boxed_parts: Vec<Frame>,
    boxed_size: u64,
    /// The user id and metadata of the accepting [`AuthReply`], for [`PeerInfo::auth`].
    accepted: Option<(Bytes, Metadata)>,
}

impl Connection {
    /// A new connection, started at `now`. Queues the first part of our greeting.
    ///
    /// CURVE needs 32 bytes of entropy per connection for its short-term keys and nonces; `new`
    /// takes them from the operating system. [`with_seed`](Self::with_seed) takes them from you.
    pub fn new(config: Config, now: Instant) -> Result<Self, UsageError> {
        let mut seed = [0u8; 32];
        if matches!(config.mechanism, Mechanism::Curve(_)) {
            getrandom::getrandom(&mut seed)
                .map_err(|_| UsageError::InvalidConfig("no randomness available for CURVE"))?;
        }
        Self::with_seed(config, now, seed)
    }

    /// A new connection whose mechanism draws its randomness from `seed` (expanded with
    /// ChaCha20). The seed must be secret and fresh for every connection.
    pub fn with_seed(config: Config, now: Instant, seed: [u8; 32]) -> Result<Self, UsageError> {
        config.validate()?;
        let mut out = Vec::with_capacity(GREETING_LEN + 64);
        out.extend_from_slice(&our_greeting(&config)[..STAGE1_LEN]);
        Ok(Self {
            decoder: Decoder::for_handshake(config.limits),
            handshake_deadline: config.handshake_timeout.and_then(|t| now.checked_add(t)),
            config,
            state: State::Greeting {
                buf: [0; GREETING_LEN],
                len: 0,
            },
            out,
            events: VecDeque::new(),
            peer: None,
            error: None,
            greeting_done: false,
            pending_pong: None,
            peer_version: None,
            unconsumed: 0,
            next_ping: None,
            heartbeat_deadline: None,
            ttl_deadline: None,
            paused_since: None,
            seed,
            cipher: None,
            boxed_parts: Vec::new(),
            boxed_size: 0,
            accepted: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the handshake is complete.
    #[inline]
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established) && self.error.is_none()
    }

    /// The error that ended the connection, if any.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// What the peer told us in the handshake (`Some` once [`Event::Established`] is queued).
    pub fn peer(&self) -> Option<&PeerInfo> {
        self.peer.as_ref()
    }

    /// The number of bytes the input must hold, from its start, before the next call can make
    /// progress (see [`Decoder::bytes_needed`]).
    pub fn bytes_needed(&self) -> usize {
        match self.state {
            State::Greeting { .. } => 1,
            _ => self.decoder.bytes_needed(),
        }
    }

    /// Feeds bytes read from the peer. Returns how many were consumed; the rest is an incomplete
    /// frame to present again, with more bytes after it.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<usize, Error> {
        let mut input = data;
        self.process(now, &mut input, NO_SINK)?;
        Ok(data.len() - input.len())
    }

    /// Feeds the read buffer, consuming complete frames from its front. Large frames become
    /// zero-copy slices of `buf`'s storage.
    pub fn handle_read_buf(&mut self, now: Instant, buf: &mut BytesMut) -> Result<(), Error> {
        self.process(now, buf, NO_SINK).map(drop)
    }

    /// As [`handle_read_buf`](Self::handle_read_buf), but hands each message to `sink` as it is
    /// decoded instead of queueing an [`Event::Message`]: the receive path of a socket that
    /// moves messages on at once. Returns whether decoding paused before the end of the input.
    ///
    /// Messages go to `sink` only while no event is queued, so [`poll_event`](Self::poll_event)
    /// and `sink` together see the peer's traffic in order. Decoding pauses at a message that
    /// cannot go to `sink`: one that `sink` declines by returning it in `Err` (its queue is
    /// full, say), or one decoded behind a queued event (the handshake's, a subscription). That
    /// message is queued as the last event and the rest of the input stays in `buf`. Drain the
    /// events, and once the sink has room feed `buf` again before reading more: what waits is
    /// then bounded by the read buffer (back-pressure, as a socket that stops reading).
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use bytes::BytesMut;
    /// # use omq_zmtp::{Config, Connection, Event, Message, SocketType, WriteBuf};
    /// # let now = Instant::now();
    /// # let mut push = Connection::new(Config::new(SocketType::Push), now).unwrap();
    /// # let mut pull = Connection::new(Config::new(SocketType::Pull), now).unwrap();
    /// # let (mut a, mut b) = (WriteBuf::new(), WriteBuf::new());
    /// # for _ in 0..3 {
    /// #     push.poll_transmit(&mut a);
    /// #     pull.poll_transmit(&mut b);
    /// #     let (mut x, mut y) = (Vec::new(), Vec::new());
    /// #     a.drain_into(&mut x);
    /// #     b.drain_into(&mut y);
    /// #     pull.handle_input(now, &x).unwrap();
    /// #     push.handle_input(now, &y).unwrap();
    /// # }
    /// # assert_eq!(pull.poll_event(), Some(Event::Established));
    /// push.send(&Message::from("one"), &mut a).unwrap();
    /// push.send(&Message::from("two"), &mut a).unwrap();
    /// push.send(&Message::from("three"), &mut a).unwrap();
    /// let mut wire = Vec::new();
    /// a.drain_into(&mut wire);
    /// let mut buf = BytesMut::from(&wire[..]);
    ///
    /// // Room for one message: the second is declined and decoding pauses.
    /// let mut taken = Vec::new();
    /// let paused = pull
    ///     .handle_read_buf_with(now, &mut buf, |m| {
    ///         if taken.is_empty() { taken.push(m); Ok(()) } else { Err(m) }
    ///     })
    ///     .unwrap();
    /// assert!(paused);
    /// assert_eq!(taken, [Message::from("one")]);
    /// assert_eq!(pull.poll_event(), Some(Event::Message(Message::from("two"))));
    /// assert_eq!(pull.poll_event(), None);
    ///
    /// // "three" waits in `buf` until it is fed again.
    /// let paused = pull
    ///     .handle_read_buf_with(now, &mut buf, |m| {
    ///         taken.push(m);
    ///         Ok(())
    ///     })
    ///     .unwrap();
    /// assert!(!paused);
    /// assert_eq!(taken, [Message::from("one"), Message::from("three")]);
    /// assert!(buf.is_empty());
    /// ```
    #[inline]
    pub fn handle_read_buf_with<F>(
        &mut self,
        now: Instant,
        buf: &mut BytesMut,
        mut sink: F,
    ) -> Result<bool, Error>
    where
        F: FnMut(Message) -> Result<(), Message>,
    {
        self.process(now, buf, Some(&mut sink))
    }

    /// The next event, in the order the peer's traffic arrived.
    #[inline]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Appends the connection's own pending traffic to `out`.
    #[inline]
    pub fn poll_transmit(&mut self, out: &mut WriteBuf) {
        if let Some(context) = self.pending_pong.take() {
            self.queue_command(&Command::Pong { context });
        }
        if !self.out.is_empty() {
            out.put_raw(|buf| buf.extend_from_slice(&self.out));
            self.out.clear();
        }
    }

    /// Tells the connection whether its input is being read. A caller that stops reading
    /// for its own reasons (the consumer of its messages is full, say) says so with `false`,
    /// and `true` once it reads again.
    ///
    /// While input is not read, silence from the peer proves nothing: the heartbeat timeout
    /// and the peer's TTL do not run, and when reading resumes their deadlines move on by the
    /// time spent paused. PINGs are still sent. Calls that do not change the state do nothing.
    pub fn set_reading(&mut self, reading: bool, now: Instant) {
        match (reading, self.paused_since) {
            (false, None) => self.paused_since = Some(now),
            (true, Some(since)) => {
                self.paused_since = None;
                let paused = now.saturating_duration_since(since);
                for d in [&mut self.heartbeat_deadline, &mut self.ttl_deadline] {
                    *d = d.map(|t| t.checked_add(paused).unwrap_or(t));
                }
            }
            _ => {}
        }
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        let (heartbeat, ttl) = self.liveness_deadlines();
        [self.handshake_deadline, self.next_ping, heartbeat, ttl]
            .into_iter()
            .flatten()
            .min()
    }

    /// The heartbeat and TTL deadlines that run now: none while input is not read.
    fn liveness_deadlines(&self) -> (Option<Instant>, Option<Instant>) {
        if self.paused_since.is_some() {
            (None, None)
        } else {
            (self.heartbeat_deadline, self.ttl_deadline)
        }
    }

    /// Acts on every deadline that has passed by `now`. Calls before a deadline do nothing.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        let (heartbeat, ttl) = self.liveness_deadlines();
        let failure = if due(self.handshake_deadline) {
            Some(Error::HandshakeTimeout)
        } else if due(ttl) {
            Some(Error::TtlExpired)
        } else if due(heartbeat) {
            Some(Error::HeartbeatTimeout)
        } else {
            None
        };
        if let Some(e) = failure {
            self.error = Some(e.clone());
            return Err(e);
        }
        if due(self.next_ping) {
            let ivl = self.config.heartbeat_interval.unwrap_or_default();
            // Tenths of a second, rounded up so that a short TTL does not become "none".
            let ttl = self.config.heartbeat_ttl.map_or(0, |t| {
                u16::try_from(t.as_millis().div_ceil(100)).unwrap_or(u16::MAX)
            });
            self.queue_command(&Command::Ping {
                ttl,
                context: Bytes::new(),
            });
            self.next_ping = now.checked_add(ivl);
            if self.heartbeat_deadline.is_none() {
                let timeout = self.config.heartbeat_timeout.unwrap_or(ivl);
                self.heartbeat_deadline = now.checked_add(timeout);
            }
        }
        Ok(())
    }

    /// Encodes a message into `out`.
    ///
    /// Any traffic of the connection's own that is still queued (our READY, when the handshake
    /// finished in the same input call) is appended first, so it always precedes the message.
    #[inline]
    pub fn send(&mut self, msg: &Message, out: &mut WriteBuf) -> Result<(), UsageError> {
        self.check_ready()?;
        self.poll_transmit(out);
        if msg.is_empty() {
            return Err(UsageError::EmptyMessage);
        }
        match &mut self.cipher {
            None => out.encode_message(msg),
            Some(cipher) => {
                let frames = msg.frames();
                let last = frames.len() - 1;
                out.put_raw(|buf| {
                    for (i, frame) in frames.iter().enumerate() {
                        let flags = if i < last { mechanism::FLAG_MORE } else { 0 };
                        cipher.encrypt(flags, &[], frame, buf);
                    }
                });
            }
        }
        Ok(())
    }

    /// Answers an [`Event::Authenticate`]. A 200 reply lets the handshake go on; any other ends
    /// the connection with [`Error::AuthFailed`] (after queueing an ERROR carrying the code,
    /// except for 300, which closes silently as libzmq does). Does nothing when no answer is
    /// awaited.
    pub fn authenticate(&mut self, now: Instant, reply: &AuthReply) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let State::Handshake(handshake) = &mut self.state else {
            return Ok(());
        };
        if !handshake.awaiting_auth() {
            return Ok(());
        }
        if reply.status_code != 200 {
            let status_code = match reply.status_code {
                300 | 400 | 500 => reply.status_code,
                _ => 500,
            };
            if status_code != 300 {
                mechanism::encode_error(&status_code.to_string(), &mut self.out);
            }
            let e = Error::AuthFailed { status_code };
            self.error = Some(e.clone());
            return Err(e);
        }
        let local = local_info(&self.config);
        self.accepted = Some((reply.user_id.clone(), reply.metadata.clone()));
        let step = handshake.accepted(&local, &mut self.out);
        let result = step.and_then(|step| self.handle_step(now, step));
        if let Err(e) = &result {
            self.error = Some(e.clone());
        }
        result
    }

    /// Queues one of our own commands after the handshake (boxed under CURVE).
    fn queue_command(&mut self, cmd: &Command) {
        match &mut self.cipher {
            None => cmd.encode(&mut self.out),
            Some(cipher) => {
                let mut frame = Vec::new();
                cmd.encode(&mut frame);
                let body = crate::frame::split_header(&frame).map_or(&[][..], |(_, body)| body);
                cipher.encrypt(mechanism::FLAG_COMMAND, &[], body, &mut self.out);
            }
        }
    }

    /// Subscribes to `topic`: a SUBSCRIBE command to a 3.1 peer, a `\x01topic` message to a 3.0
    /// peer.
    pub fn subscribe(&mut self, topic: &[u8], out: &mut WriteBuf) -> Result<(), UsageError> {
        self.subscription(true, topic, out)
    }

    /// Cancels a subscription: a CANCEL command to a 3.1 peer, a `\x00topic` message to a 3.0 peer.
    pub fn cancel(&mut self, topic: &[u8], out: &mut WriteBuf) -> Result<(), UsageError> {
        self.subscription(false, topic, out)
    }

    fn subscription(
        &mut self,
        subscribe: bool,
        topic: &[u8],
        out: &mut WriteBuf,
    ) -> Result<(), UsageError> {
        self.check_ready()?;
        self.poll_transmit(out);
        // Either side announcing 3.0 means 3.0 framing of subscriptions.
        let v30 = self.config.version == Version::V3_0
            || self
                .peer
                .as_ref()
                .is_some_and(|p| p.version == Version::V3_0);
        if let Some(cipher) = &mut self.cipher {
            let (flags, head): (u8, &[u8]) = match (v30, subscribe) {
                (true, true) => (0, b"\x01"),
                (true, false) => (0, b"\x00"),
                (false, true) => (mechanism::FLAG_COMMAND, b"\x09SUBSCRIBE"),
                (false, false) => (mechanism::FLAG_COMMAND, b"\x06CANCEL"),
            };
            out.put_raw(|buf| cipher.encrypt(flags, head, topic, buf));
        } else if v30 {
            let mut body = Vec::with_capacity(1 + topic.len());
            body.push(u8::from(subscribe));
            body.extend_from_slice(topic);
            out.encode_frame(0, &Frame::from(body));
        } else {
            let name: &[u8] = if subscribe { b"SUBSCRIBE" } else { b"CANCEL" };
            out.put_raw(|buf| {
                crate::command::encode_command_header(buf, name, topic.len());
                buf.extend_from_slice(topic);
            });
        }
        Ok(())
    }

    /// Sends JOIN for `group` (at most 255 bytes).
    pub fn join(&mut self, group: &[u8], out: &mut WriteBuf) -> Result<(), UsageError> {
        self.group_command(b"JOIN", group, out)
    }

    /// Sends LEAVE for `group` (at most 255 bytes).
    pub fn leave(&mut self, group: &[u8], out: &mut WriteBuf) -> Result<(), UsageError> {
        self.group_command(b"LEAVE", group, out)
    }

    fn group_command(
        &mut self,
        name: &[u8],
        group: &[u8],
        out: &mut WriteBuf,
    ) -> Result<(), UsageError> {
        self.check_ready()?;
        if group.len() > MAX_GROUP_LEN {
            return Err(UsageError::GroupTooLong);
        }
        self.poll_transmit(out);
        match &mut self.cipher {
            Some(cipher) => out.put_raw(|buf| {
                let mut head = vec![name.len() as u8];
                head.extend_from_slice(name);
                cipher.encrypt(mechanism::FLAG_COMMAND, &head, group, buf);
            }),
            None => out.put_raw(|buf| {
                crate::command::encode_command_header(buf, name, group.len());
                buf.extend_from_slice(group);
            }),
        }
        Ok(())
    }

    #[inline]
    fn check_ready(&self) -> Result<(), UsageError> {
        if self.error.is_some() {
            Err(UsageError::Failed)
        } else if !matches!(self.state, State::Established) {
            Err(UsageError::NotReady)
        } else {
            Ok(())
        }
    }

    fn process<I, F>(
        &mut self,
        now: Instant,
        input: &mut I,
        sink: Option<&mut F>,
    ) -> Result<bool, Error>
    where
        I: Input,
        F: FnMut(Message) -> Result<(), Message>,
    {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let len = input.chunk().len();
        if len > self.unconsumed {
            // New bytes from the peer, complete frames or not, are proof of life.
            self.heartbeat_deadline = None;
            self.ttl_deadline = None;
        } else if len == 0 {
            return Ok(false);
        }
        match self.process_frames(now, input, sink) {
            Ok(paused) => {
                self.unconsumed = input.chunk().len();
                Ok(paused)
            }
            Err(e) => {
                // NULL explains a refusal with ERROR; PLAIN and CURVE close silently on a
                // broken handshake (libzmq sends their ERROR only for an authentication refusal).
                if matches!(self.state, State::Handshake(_))
                    && matches!(self.config.mechanism, Mechanism::Null)
                {
                    if let Error::Protocol(p) = &e {
                        mechanism::encode_error(&p.to_string(), &mut self.out);
                    }
                }
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Decodes until the input runs out (`Ok(false)`) or a message cannot go to the sink
    /// (`Ok(true)`, see [`handle_read_buf_with`](Self::handle_read_buf_with)).
    fn process_frames<I, F>(
        &mut self,
        now: Instant,
        input: &mut I,
        mut sink: Option<&mut F>,
    ) -> Result<bool, Error>
    where
        I: Input,
        F: FnMut(Message) -> Result<(), Message>,
    {
        if let State::Greeting { .. } = self.state {
            self.process_greeting(now, input)?;
        }
        loop {
            let body = if let Some(sink) = &mut sink {
                // Data messages go from the decoder straight to the sink, unless events queued
                // before them must come first.
                let events = &self.events;
                let mut deliver = |m| if events.is_empty() { sink(m) } else { Err(m) };
                match self.decoder.decode_into(input, &mut deliver)? {
                    Stop::Input => return Ok(false),
                    Stop::Declined(msg) => {
                        self.events.push_back(Event::Message(msg));
                        return Ok(true);
                    }
                    Stop::Command(body) => body,
                }
            } else {
                match self.decoder.decode(input)? {
                    None => return Ok(false),
                    Some(Decoded::Message(msg)) => {
                        self.events.push_back(Event::Message(msg));
                        continue;
                    }
                    Some(Decoded::Command(body)) => body,
                }
            };
            let msg = if self.cipher.is_some() {
                match self.process_boxed(now, &body)? {
                    Some(msg) => msg,
                    None => continue,
                }
            } else {
                self.process_command(now, &body)?;
                continue;
            };
            let Some(sink) = &mut sink else {
                self.events.push_back(Event::Message(msg));
                continue;
            };
            // Straight to the sink unless events queued before it must come first.
            let declined = if self.events.is_empty() {
                sink(msg).err()
            } else {
                Some(msg)
            };
            if let Some(msg) = declined {
                self.events.push_back(Event::Message(msg));
                return Ok(true);
            }
        }
    }

    /// Consumes greeting bytes; on completion moves to the mechanism handshake.
    fn process_greeting<I: Input>(&mut self, now: Instant, input: &mut I) -> Result<(), Error> {
        let State::Greeting { buf, len } = &mut self.state else {
            return Ok(());
        };
        let data = input.chunk();
        let n = data.len().min(GREETING_LEN - *len);
        buf[*len..*len + n].copy_from_slice(&data[..n]);
        *len += n;
        input.skip(n);
        Greeting::check_prefix(&buf[..*len])?;
        if *len >= STAGE1_LEN && !self.greeting_done {
            self.greeting_done = true;
            self.out
                .extend_from_slice(&our_greeting(&self.config)[STAGE1_LEN..]);
        }
        if *len < GREETING_LEN {
            return Ok(());
        }
        let peer = Greeting::parse(buf)?;
        let ours = Greeting::new(self.config.mechanism.name().as_bytes(), false);
        if peer.mechanism != ours.mechanism {
            return Err(ProtocolError::MechanismMismatch {
                ours: self.config.mechanism.name(),
                theirs: peer.mechanism_name().to_vec(),
            }
            .into());
        }
        self.peer_version = Some(peer.version());
        let mut handshake =
            Handshake::new(&self.config.mechanism, self.config.as_server, self.seed);
        self.seed = [0; 32];
        let step = handshake.start(&local_info(&self.config), &mut self.out)?;
        self.state = State::Handshake(handshake);
        self.handle_step(now, step)
    }

    fn handle_step(&mut self, now: Instant, step: Step) -> Result<(), Error> {
        match step {
            Step::Continue => Ok(()),
            Step::Authenticate(request) => {
                self.events.push_back(Event::Authenticate(request));
                Ok(())
            }
            Step::Done(done) => self.complete_handshake(now, *done),
        }
    }

    /// Opens one boxed frame (established CURVE): a command is processed, a frame joins the
    /// message it belongs to, and a complete message is returned.
    fn process_boxed(&mut self, now: Instant, body: &Frame) -> Result<Option<Message>, Error> {
        let cipher = self.cipher.as_mut().expect("boxed mode");
        let (flags, frame) = cipher.decrypt(body)?;
        if flags & mechanism::FLAG_COMMAND != 0 {
            self.process_command(now, &frame)?;
            return Ok(None);
        }
        let limits = self.decoder.limits();
        let size = self.boxed_size + frame.len() as u64;
        if let Some(limit) = limits.max_message_size {
            if size > limit {
                return Err(ProtocolError::MessageTooLarge { size, limit }.into());
            }
        }
        if let Some(limit) = limits.max_frame_size {
            if frame.len() as u64 > limit {
                let size = frame.len() as u64;
                return Err(ProtocolError::FrameTooLarge { size, limit }.into());
            }
        }
        if flags & mechanism::FLAG_MORE != 0 {
            if self.boxed_parts.len() + 1 >= limits.max_parts {
                let limit = limits.max_parts;
                return Err(ProtocolError::TooManyParts { limit }.into());
            }
            self.boxed_parts.push(frame);
            self.boxed_size = size;
            return Ok(None);
        }
        let msg = if self.boxed_parts.is_empty() {
            Message::single(frame)
        } else {
            let mut parts = std::mem::take(&mut self.boxed_parts);
            parts.push(frame);
            self.boxed_size = 0;
            Message::from(parts)
        };
        Ok(Some(msg))
    }

    fn process_command(&mut self, now: Instant, body: &Frame) -> Result<(), Error> {
        if let State::Handshake(handshake) = &mut self.state {
            let local = local_info(&self.config);
            let step = handshake.handle_command(body, &local, &mut self.out)?;
            return self.handle_step(now, step);
        }
        match Command::parse(body)? {
            Command::Ping { ttl, context } => {
                // One PONG slot, as libzmq has: a flood of PINGs cannot grow our output.
                self.pending_pong = Some(context);
                if ttl > 0 {
                    self.ttl_deadline = Some(now + Duration::from_millis(u64::from(ttl) * 100));
                }
            }
            Command::Subscribe(topic) => self.events.push_back(Event::Subscribe(topic)),
            Command::Cancel(topic) => self.events.push_back(Event::Cancel(topic)),
            Command::Join(group) => self.events.push_back(Event::Join(group)),
            Command::Leave(group) => self.events.push_back(Event::Leave(group)),
            // PONG only proves liveness, which any input already did. Everything else after the
            // handshake (READY, ERROR, unknown names) is ignored, as libzmq does.
            _ => {}
        }
        Ok(())
    }

    fn complete_handshake(&mut self, now: Instant, done: Done) -> Result<(), Error> {
        let Done {
            metadata,
            cipher,
            mut auth,
        } = done;
        if let Some((user_id, metadata)) = self.accepted.take() {
            auth.user_id = Some(user_id);
            auth.metadata = metadata;
        }
        let ours = self.config.socket_type;
        let socket_type = match metadata.get(metadata::SOCKET_TYPE) {
            None => None,
            Some(name) => match SocketType::from_name(name) {
                Some(t) if ours.is_compatible(t) => Some(t),
                _ => {
                    return Err(ProtocolError::IncompatibleSocketType {
                        ours,
                        theirs: name.to_vec(),
                    }
                    .into());
                }
            },
        };
        let identity = metadata.get(metadata::IDENTITY).cloned();
        if identity.as_ref().is_some_and(|id| id.len() > 255) {
            return Err(ProtocolError::InvalidIdentity.into());
        }
        self.peer = Some(PeerInfo {
            version: self.peer_version.expect("greeting parsed"),
            socket_type,
            identity,
            metadata,
            auth,
        });
        self.state = State::Established;
        self.decoder.set_handshake(false);
        if let Some(cipher) = cipher {
            self.cipher = Some(Box::new(cipher));
            self.decoder.set_boxed();
        }
        self.handshake_deadline = None;
        self.next_ping = self
            .config
            .heartbeat_interval
            .and_then(|ivl| now.checked_add(ivl));
        self.events.push_back(Event::Established);
        Ok(())
    }
}

/// What our side of the handshake sends, from `config`.
fn local_info(config: &Config) -> LocalInfo<'_> {
    LocalInfo {
        socket_type: config.socket_type,
        identity: &config.identity,
        metadata: &config.metadata,
        as_server: config.as_server,
        authenticate: config.authenticate,
    }
}

/// The 64 greeting bytes we send for `config`.
fn our_greeting(config: &Config) -> [u8; GREETING_LEN] {
    Greeting {
        minor: match config.version {
            Version::V3_0 => 0,
            Version::V3_1 => 1,
        },
        ..Greeting::new(config.mechanism.name().as_bytes(), config.as_server)
    }
    .encode()
}
