//! A blocking driver that runs an [`omq_zmtp::Connection`] over a `std::net::TcpStream`, so the
//! codec can be tested against a real libzmq peer without any async runtime.
//!
//! The driver follows the connection's polling order: feed what was read, drain events, fire
//! timers after feeding input, write what the connection produced. Waiting is a blocking read
//! bounded by the next deadline (ours or the connection's), never a sleep.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use omq_zmtp::{Config, Connection, Event, Message, WriteBuf};

/// Why the driver stopped.
#[derive(Debug)]
pub enum DriverError {
    /// The socket failed.
    Io(io::Error),
    /// The connection failed (protocol error, refusal, timeout).
    Zmtp(omq_zmtp::Error),
    /// The peer closed the connection.
    Closed,
    /// Our own deadline passed with nothing to report.
    Deadline,
}

impl From<io::Error> for DriverError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<omq_zmtp::Error> for DriverError {
    fn from(e: omq_zmtp::Error) -> Self {
        Self::Zmtp(e)
    }
}

/// One ZMTP connection over a blocking TCP stream.
#[derive(Debug)]
pub struct Driver {
    /// The codec state machine.
    pub conn: Connection,
    stream: TcpStream,
    read_buf: BytesMut,
    write_buf: WriteBuf,
    events: VecDeque<Event>,
}

impl Driver {
    /// Connects to `addr` and starts a connection with `config`.
    pub fn connect(addr: impl ToSocketAddrs, config: Config) -> Result<Self, DriverError> {
        Self::new(TcpStream::connect(addr)?, config)
    }

    /// Accepts one connection on `listener`.
    pub fn accept(listener: &TcpListener, config: Config) -> Result<Self, DriverError> {
        Self::new(listener.accept()?.0, config)
    }

    fn new(stream: TcpStream, config: Config) -> Result<Self, DriverError> {
        stream.set_nodelay(true)?;
        let conn = Connection::new(config, Instant::now())
            .map_err(|e| DriverError::Io(io::Error::other(e)))?;
        let mut d = Self {
            conn,
            stream,
            read_buf: BytesMut::with_capacity(64 * 1024),
            write_buf: WriteBuf::new(),
            events: VecDeque::new(),
        };
        d.flush()?;
        Ok(d)
    }

    /// Writes everything the connection and the queued sends produced.
    pub fn flush(&mut self) -> Result<(), DriverError> {
        self.conn.poll_transmit(&mut self.write_buf);
        while self.write_buf.has_remaining() {
            let mut iov = [io::IoSlice::new(&[]); 64];
            let n = self.write_buf.chunks_vectored(&mut iov);
            let written = self.stream.write_vectored(&iov[..n])?;
            if written == 0 {
                return Err(DriverError::Closed);
            }
            self.write_buf.advance(written);
        }
        Ok(())
    }

    /// Queues and writes a message.
    pub fn send(&mut self, msg: &Message) -> Result<(), DriverError> {
        self.conn
            .send(msg, &mut self.write_buf)
            .map_err(|e| DriverError::Io(io::Error::other(e)))?;
        self.flush()
    }

    /// Sends a subscription (SUBSCRIBE or `\x01topic`, as the peer's version asks).
    pub fn subscribe(&mut self, topic: &[u8]) -> Result<(), DriverError> {
        self.conn
            .subscribe(topic, &mut self.write_buf)
            .map_err(|e| DriverError::Io(io::Error::other(e)))?;
        self.flush()
    }

    /// Runs I/O until the connection has an event, or `deadline` passes.
    pub fn next_event(&mut self, deadline: Instant) -> Result<Event, DriverError> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(e);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(DriverError::Deadline);
            }
            if self.conn.poll_timeout().is_some_and(|t| t <= now) {
                self.conn.handle_timeout(now)?;
                self.flush()?;
                continue;
            }
            let wake = self
                .conn
                .poll_timeout()
                .map_or(deadline, |t| t.min(deadline));
            self.read_until(wake)?;
        }
    }

    /// Runs I/O (answering PINGs, sending ours) until `deadline`, failing on any event other
    /// than what `keep` accepts.
    pub fn run_until(
        &mut self,
        deadline: Instant,
        mut keep: impl FnMut(&Event) -> bool,
    ) -> Result<(), DriverError> {
        loop {
            match self.next_event(deadline) {
                Ok(e) if keep(&e) => {}
                Ok(e) => return Err(DriverError::Io(io::Error::other(format!("{e:?}")))),
                Err(DriverError::Deadline) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// One blocking read, bounded by `until`; feeds what arrived.
    fn read_until(&mut self, until: Instant) -> Result<(), DriverError> {
        let timeout = until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        self.stream.set_read_timeout(Some(timeout))?;
        let want = self.conn.bytes_needed().max(64 * 1024);
        self.read_buf
            .reserve(want.saturating_sub(self.read_buf.len()));
        let start = self.read_buf.len();
        self.read_buf.resize(self.read_buf.capacity(), 0);
        let n = match self.stream.read(&mut self.read_buf[start..]) {
            Ok(0) => {
                self.read_buf.truncate(start);
                return Err(DriverError::Closed);
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                self.read_buf.truncate(start);
                return Ok(());
            }
            Err(e) => {
                self.read_buf.truncate(start);
                return Err(e.into());
            }
        };
        self.read_buf.truncate(start + n);
        let result = self
            .conn
            .handle_read_buf(Instant::now(), &mut self.read_buf);
        while let Some(e) = self.conn.poll_event() {
            self.events.push_back(e);
        }
        // Flush first: an ERROR command may be waiting when the connection failed.
        let flushed = self.flush();
        result?;
        flushed
    }

    /// Waits for the next message, skipping other events.
    pub fn recv(&mut self, deadline: Instant) -> Result<Message, DriverError> {
        loop {
            if let Event::Message(m) = self.next_event(deadline)? {
                return Ok(m);
            }
        }
    }
}
