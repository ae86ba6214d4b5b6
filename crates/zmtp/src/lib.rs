//! A sans-IO codec for ZMTP 3.1, the wire protocol of ZeroMQ (RFC 37; talks to ZMTP 3.0 peers too).
//!
//! This crate knows the bytes and nothing else: no sockets, no async runtime, no clock. You feed it
//! what you read, it tells you what to write and what happened, and you pass the time in. That makes
//! it usable under any I/O (blocking sockets, tokio, io_uring, a test harness with virtual time) and
//! makes every behaviour deterministic and testable.
//!
//! - [`Connection`]: one connection as a state machine: the staged greeting, the mechanism
//!   handshake ([`Mechanism`]: NULL, PLAIN or CURVE, with READY metadata and the socket-type
//!   compatibility check; the server side can wait for the application to authenticate the
//!   peer, see [`Event::Authenticate`]), framing (boxed under CURVE), commands and heartbeats
//!   (PING/PONG, TTL, timeouts). See its docs for the polling order.
//! - [`CurveKeyPair`], [`CurvePublicKey`], [`CurveSecretKey`] and [`z85`]: keys as 32 bytes or 40
//!   Z85 characters.
//! - [`Message`] and [`Frame`]: multipart messages; small frames live inline (a small message is
//!   one 64-byte value, no allocation), large ones are [`bytes::Bytes`].
//! - [`Decoder`]: the fused frame decoder, from the read buffer straight into messages (zero-copy
//!   for large frames read into a `BytesMut`), with every [`Limits`] check made before allocating.
//! - [`WriteBuf`]: the batching encoder's caller-owned output; many messages, one vectored write.
//! - The wire elements on their own: [`Greeting`], [`FrameHeader`], [`Command`], [`Metadata`],
//!   [`SocketType`].
//!
//! # Example
//!
//! A PUSH and a PULL connection talking through in-memory buffers:
//!
//! ```
//! use std::time::Instant;
//! use bytes::Buf;
//! use omq_zmtp::{Config, Connection, Event, Message, SocketType, WriteBuf};
//!
//! let now = Instant::now();
//! let mut push = Connection::new(Config::new(SocketType::Push), now)?;
//! let mut pull = Connection::new(Config::new(SocketType::Pull), now)?;
//!
//! // Move whatever one side produced to the other until both are established.
//! let mut wire = WriteBuf::new();
//! while !(push.is_established() && pull.is_established()) {
//!     push.poll_transmit(&mut wire);
//!     let n = pull.handle_input(now, wire.chunk())?;
//!     wire.advance(n);
//!     pull.poll_transmit(&mut wire);
//!     let n = push.handle_input(now, wire.chunk())?;
//!     wire.advance(n);
//! }
//!
//! // Batch two messages into one buffer: one write would carry both.
//! push.send(&Message::from("hello"), &mut wire)?;
//! push.send(&Message::from_iter(["multi", "part"]), &mut wire)?;
//! let n = pull.handle_input(now, wire.chunk())?;
//! wire.advance(n);
//!
//! assert_eq!(pull.poll_event(), Some(Event::Established));
//! assert_eq!(pull.poll_event(), Some(Event::Message("hello".into())));
//! assert_eq!(pull.poll_event(), Some(Event::Message(Message::from_iter(["multi", "part"]))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod command;
mod connection;
mod decoder;
mod encoder;
mod error;
pub mod frame;
pub mod greeting;
mod keys;
mod mechanism;
mod message;
pub mod metadata;
mod socket_type;
pub mod z85;

pub use command::Command;
pub use connection::{Config, Connection, Event, PeerInfo};
pub use decoder::{Decoded, Decoder, Limits};
pub use encoder::{DEFAULT_ZERO_COPY_THRESHOLD, WriteBuf};
pub use error::{Error, ProtocolError, UsageError};
pub use frame::FrameHeader;
pub use greeting::{Greeting, Version};
pub use keys::{CurveKeyPair, CurvePublicKey, CurveSecretKey, KEY_LEN, KeyError, Z85_KEY_LEN};
pub use mechanism::{AuthReply, AuthRequest, CurveConfig, Mechanism, PeerAuth};
pub use message::{Frame, INLINE_CAPACITY, Message};
pub use metadata::Metadata;
pub use socket_type::SocketType;
