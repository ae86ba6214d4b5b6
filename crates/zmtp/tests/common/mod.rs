//! An in-memory connection pair with virtual time (in the style of quinn's `tests/util.rs`).
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use bytes::Buf;
use omq_zmtp::{Config, Connection, Error, Event, SocketType, WriteBuf};

/// One side of a pair: its connection, what it has written but the other has not consumed, and
/// the events it produced.
pub struct Side {
    pub conn: Connection,
    /// Bytes written by this side, not yet consumed by the other.
    pub outbox: Vec<u8>,
    pub events: Vec<Event>,
    pub error: Option<Error>,
    /// While false, nothing this side writes reaches the other (a dead or stalled peer).
    pub deliver: bool,
}

impl Side {
    fn new(config: Config, now: Instant) -> Self {
        Self {
            conn: Connection::new(config, now).expect("valid config"),
            outbox: Vec::new(),
            events: Vec::new(),
            error: None,
            deliver: true,
        }
    }

    /// Moves the connection's pending output into the outbox.
    pub fn flush(&mut self) {
        let mut buf = WriteBuf::new();
        self.conn.poll_transmit(&mut buf);
        buf.drain_into(&mut self.outbox);
    }

    /// Takes the events produced so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Takes the messages among the events produced so far.
    pub fn take_messages(&mut self) -> Vec<omq_zmtp::Message> {
        self.take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// Moves the connection's queued events into `events`.
    pub fn collect_events(&mut self) {
        while let Some(e) = self.conn.poll_event() {
            self.events.push(e);
        }
    }
}

pub struct Pair {
    pub client: Side,
    pub server: Side,
    pub now: Instant,
}

/// Delivers `from`'s outbox into `to`, keeping unconsumed bytes (an incomplete frame) in the outbox.
fn deliver(now: Instant, from: &mut Side, to: &mut Side) -> bool {
    if !from.deliver || from.outbox.is_empty() || to.error.is_some() {
        return false;
    }
    match to.conn.handle_input(now, &from.outbox) {
        Ok(n) => {
            from.outbox.drain(..n);
            to.collect_events();
            n > 0
        }
        Err(e) => {
            to.collect_events();
            to.error = Some(e);
            // Whatever it queued before dying (an ERROR command) still goes out.
            to.flush();
            true
        }
    }
}

impl Pair {
    pub fn new(client: Config, server: Config) -> Self {
        let now = Instant::now();
        Self {
            client: Side::new(client, now),
            server: Side::new(server, now),
            now,
        }
    }

    pub fn of(client: SocketType, server: SocketType) -> Self {
        let mut server = Config::new(server);
        server.as_server = true;
        Self::new(Config::new(client), server)
    }

    /// Shuttles bytes both ways until nothing moves. The server speaks first when `server_first`.
    pub fn drive_ordered(&mut self, server_first: bool) {
        loop {
            self.client.flush();
            self.server.flush();
            let (first, second) = if server_first {
                (&mut self.server, &mut self.client)
            } else {
                (&mut self.client, &mut self.server)
            };
            let a = deliver(self.now, first, second);
            let b = deliver(self.now, second, first);
            let moved = a || b;
            if !moved {
                break;
            }
        }
    }

    pub fn drive(&mut self) {
        self.drive_ordered(false);
    }

    /// Drives, then checks that both sides are established and clears the Established events.
    pub fn establish(&mut self) {
        self.drive();
        assert!(self.client.conn.is_established(), "{:?}", self.client.error);
        assert!(self.server.conn.is_established(), "{:?}", self.server.error);
        assert_eq!(self.client.take_events(), [Event::Established]);
        assert_eq!(self.server.take_events(), [Event::Established]);
    }

    /// Advances virtual time by `d` in steps, firing each side's timers when due and driving in
    /// between, as a backend's event loop would.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let next = [
                self.client.conn.poll_timeout(),
                self.server.conn.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .filter(|&t| t <= end)
            .min();
            let Some(t) = next else {
                break;
            };
            self.now = self.now.max(t);
            for side in [&mut self.client, &mut self.server] {
                if side.error.is_none() && side.conn.poll_timeout().is_some_and(|t| t <= self.now) {
                    if let Err(e) = side.conn.handle_timeout(self.now) {
                        side.error = Some(e);
                    }
                }
            }
            self.drive();
        }
        self.now = end;
    }

    /// Sends from the client and drives.
    pub fn client_send(&mut self, msg: impl Into<omq_zmtp::Message>) {
        let mut buf = WriteBuf::new();
        self.client.conn.send(&msg.into(), &mut buf).unwrap();
        buf.drain_into(&mut self.client.outbox);
        self.drive();
    }
}

/// Feeds `stream` to `conn` in the pieces `cuts` gives (offsets into `stream`), keeping unconsumed
/// bytes for the next piece as a backend would. Returns the events, the output, and the error.
pub fn feed_in_pieces(
    mut conn: Connection,
    now: Instant,
    stream: &[u8],
    cuts: &[usize],
) -> (Vec<Event>, Vec<u8>, Option<Error>) {
    let mut pending = Vec::new();
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut start = 0;
    let mut error = None;
    for &end in cuts.iter().chain(std::iter::once(&stream.len())) {
        pending.extend_from_slice(&stream[start..end]);
        start = end;
        match conn.handle_input(now, &pending) {
            Ok(n) => {
                pending.drain(..n);
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        while let Some(e) = conn.poll_event() {
            events.push(e);
        }
    }
    while let Some(e) = conn.poll_event() {
        events.push(e);
    }
    let mut buf = WriteBuf::new();
    conn.poll_transmit(&mut buf);
    while buf.has_remaining() {
        let c = buf.chunk();
        out.extend_from_slice(c);
        let n = c.len();
        buf.advance(n);
    }
    (events, out, error)
}

/// The same as [`feed_in_pieces`] but through `handle_read_buf` and a `BytesMut`.
pub fn feed_read_buf_in_pieces(
    mut conn: Connection,
    now: Instant,
    stream: &[u8],
    cuts: &[usize],
) -> (Vec<Event>, Option<Error>) {
    let mut buf = bytes::BytesMut::new();
    let mut events = Vec::new();
    let mut start = 0;
    let mut error = None;
    for &end in cuts.iter().chain(std::iter::once(&stream.len())) {
        buf.extend_from_slice(&stream[start..end]);
        start = end;
        if let Err(e) = conn.handle_read_buf(now, &mut buf) {
            error = Some(e);
            break;
        }
        while let Some(e) = conn.poll_event() {
            events.push(e);
        }
    }
    (events, error)
}

/// The greeting and READY a peer of type `socket_type` sends, as raw bytes (minor version
/// `minor`).
pub fn raw_handshake(socket_type: SocketType, minor: u8) -> Vec<u8> {
    let mut config = Config::new(socket_type);
    if minor == 0 {
        config.version = omq_zmtp::Version::V3_0;
    }
    let mut conn = Connection::new(config, Instant::now()).unwrap();
    let mut wire = Vec::new();
    let mut buf = WriteBuf::new();
    conn.poll_transmit(&mut buf);
    buf.drain_into(&mut wire);
    // Feed it a peer greeting so that it sends the rest of its own and its READY.
    let peer_greeting = omq_zmtp::Greeting::new(b"NULL", false).encode();
    conn.handle_input(Instant::now(), &peer_greeting).unwrap();
    conn.poll_transmit(&mut buf);
    buf.drain_into(&mut wire);
    wire
}
