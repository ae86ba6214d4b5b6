//! [`Connection`]: one ZMTP connection as a state machine, with no I/O and no clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::command::{Command, MAX_GROUP_LEN};
use crate::decoder::{Decoded, Decoder, Input, Limits};
use crate::encoder::WriteBuf;
use crate::error::{Error, ProtocolError, UsageError};
use crate::greeting::{GREETING_LEN, Greeting, STAGE1_LEN, Version};
use crate::mechanism::{self, Handshake, LocalInfo, Mechanism};
use crate::message::{Frame, Message};
use crate::metadata::{self, Metadata};
use crate::socket_type::SocketType;

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
///    frames zero-copy). Unconsumed bytes are an incomplete frame: keep them at the front of the
///    buffer and make room for [`bytes_needed`](Self::bytes_needed).
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
    /// Input left unconsumed by the previous call (an incomplete frame): presenting it again is
    /// not new traffic.
    unconsumed: usize,
    handshake_deadline: Option<Instant>,
    /// When to send the next PING.
    next_ping: Option<Instant>,
    /// Fail with `HeartbeatTimeout` unless traffic arrives before this.
    heartbeat_deadline: Option<Instant>,
    /// Fail with `TtlExpired` unless traffic arrives before this.
    ttl_deadline: Option<Instant>,
}

impl Connection {
    /// A new connection, started at `now`. Queues the first part of our greeting.
    pub fn new(config: Config, now: Instant) -> Result<Self, UsageError> {
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
        self.process(now, &mut input)?;
        Ok(data.len() - input.len())
    }

    /// Feeds the read buffer, consuming complete frames from its front. Large frames become
    /// zero-copy slices of `buf`'s storage.
    pub fn handle_read_buf(&mut self, now: Instant, buf: &mut BytesMut) -> Result<(), Error> {
        self.process(now, buf)
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
            Command::Pong { context }.encode(&mut self.out);
        }
        if !self.out.is_empty() {
            out.put_raw(|buf| buf.extend_from_slice(&self.out));
            self.out.clear();
        }
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        [
            self.handshake_deadline,
            self.next_ping,
            self.heartbeat_deadline,
            self.ttl_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Acts on every deadline that has passed by `now`. Calls before a deadline do nothing.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        let failure = if due(self.handshake_deadline) {
            Some(Error::HandshakeTimeout)
        } else if due(self.ttl_deadline) {
            Some(Error::TtlExpired)
        } else if due(self.heartbeat_deadline) {
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
            Command::Ping {
                ttl,
                context: Bytes::new(),
            }
            .encode(&mut self.out);
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
        match self.config.mechanism {
            Mechanism::Null => out.encode_message(msg),
        }
        Ok(())
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
        if v30 {
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
        out.put_raw(|buf| {
            crate::command::encode_command_header(buf, name, group.len());
            buf.extend_from_slice(group);
        });
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

    fn process<I: Input>(&mut self, now: Instant, input: &mut I) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let len = input.chunk().len();
        if len > self.unconsumed {
            // New bytes from the peer, complete frames or not, are proof of life.
            self.heartbeat_deadline = None;
            self.ttl_deadline = None;
        } else if len == 0 {
            return Ok(());
        }
        match self.process_frames(now, input) {
            Ok(()) => {
                self.unconsumed = input.chunk().len();
                Ok(())
            }
            Err(e) => {
                if matches!(self.state, State::Handshake(_)) {
                    if let Error::Protocol(p) = &e {
                        mechanism::encode_error(&p.to_string(), &mut self.out);
                    }
                }
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn process_frames<I: Input>(&mut self, now: Instant, input: &mut I) -> Result<(), Error> {
        if let State::Greeting { .. } = self.state {
            self.process_greeting(input)?;
        }
        loop {
            match self.decoder.decode(input)? {
                None => return Ok(()),
                Some(Decoded::Message(msg)) => self.events.push_back(Event::Message(msg)),
                Some(Decoded::Command(body)) => self.process_command(now, &body)?,
            }
        }
    }

    /// Consumes greeting bytes; on completion moves to the mechanism handshake.
    fn process_greeting<I: Input>(&mut self, input: &mut I) -> Result<(), Error> {
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
        let mut handshake = Handshake::new(&self.config.mechanism);
        handshake.start(
            &LocalInfo {
                socket_type: self.config.socket_type,
                identity: &self.config.identity,
                metadata: &self.config.metadata,
            },
            &mut self.out,
        );
        self.state = State::Handshake(handshake);
        Ok(())
    }

    fn process_command(&mut self, now: Instant, body: &Frame) -> Result<(), Error> {
        if let State::Handshake(handshake) = &mut self.state {
            if let Some(metadata) = handshake.handle_command(body, &mut self.out)? {
                self.complete_handshake(now, metadata)?;
            }
            return Ok(());
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

    fn complete_handshake(&mut self, now: Instant, metadata: Metadata) -> Result<(), Error> {
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
        });
        self.state = State::Established;
        self.decoder.set_handshake(false);
        self.handshake_deadline = None;
        self.next_ping = self
            .config
            .heartbeat_interval
            .and_then(|ivl| now.checked_add(ivl));
        self.events.push_back(Event::Established);
        Ok(())
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
