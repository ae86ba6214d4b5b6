//! Error types.
//!
//! Two families, kept apart as rustls keeps `PeerMisbehaved` apart from API misuse:
//! - [`Error`]: the connection is dead. Either the peer broke the protocol ([`ProtocolError`]),
//!   refused us with an ERROR command, or a deadline passed. These are fatal and sticky: once a
//!   [`Connection`](crate::Connection) has failed, every later `handle_*` call returns the same
//!   error again.
//! - [`UsageError`]: the local caller asked for something the connection cannot do right now
//!   (send before the handshake, send an empty message). The connection is unharmed.

use crate::socket_type::SocketType;

/// Why a connection failed. Fatal and sticky.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent bytes that break ZMTP.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The peer refused the handshake with an ERROR command.
    #[error("peer refused the handshake: {reason:?}")]
    Refused {
        /// The reason text the peer sent (libzmq sends ZAP status codes such as "400").
        reason: String,
    },
    /// Authentication refused the peer (the status code of the [`AuthReply`], 300, 400 or 500).
    /// For 400 and 500 an ERROR command carrying the code waits in `poll_transmit`.
    ///
    /// [`AuthReply`]: crate::AuthReply
    #[error("authentication refused the peer with status {status_code}")]
    AuthFailed {
        /// The reply's status code.
        status_code: u16,
    },
    /// The handshake did not finish within the handshake interval.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// No traffic arrived from the peer within the heartbeat timeout after we sent a PING.
    #[error("heartbeat timed out")]
    HeartbeatTimeout,
    /// The peer's PING asked us to consider it dead after its TTL with no traffic, and the TTL
    /// passed.
    #[error("peer heartbeat TTL expired")]
    TtlExpired,
}

/// A violation of ZMTP by the peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The greeting does not start with the ZMTP signature (`FF` ... `7F`).
    #[error("bad greeting signature")]
    BadSignature,
    /// The peer speaks a ZMTP version older than 3.0.
    #[error("unsupported ZMTP version {major}.x")]
    UnsupportedVersion {
        /// The peer's major version (0 when byte 9 says ZMTP 1.0).
        major: u8,
    },
    /// The peer's security mechanism differs from ours.
    #[error("mechanism mismatch: we use {ours}, peer uses {theirs:?}")]
    MechanismMismatch {
        /// Our mechanism's name.
        ours: &'static str,
        /// The peer's 20-byte mechanism field, trailing NULs removed.
        theirs: Vec<u8>,
    },
    /// A frame length has bit 63 set.
    #[error("frame length {0:#x} has bit 63 set")]
    LengthOverflow(u64),
    /// A frame is larger than the configured maximum frame size.
    #[error("frame of {size} bytes exceeds the limit of {limit}")]
    FrameTooLarge {
        /// Declared frame size.
        size: u64,
        /// Configured limit.
        limit: u64,
    },
    /// A message is larger than the configured maximum message size.
    #[error("message of at least {size} bytes exceeds the limit of {limit}")]
    MessageTooLarge {
        /// Size of the message so far, including the frame that broke the limit.
        size: u64,
        /// Configured limit.
        limit: u64,
    },
    /// A message has more parts than the configured maximum.
    #[error("message has more than {limit} parts")]
    TooManyParts {
        /// Configured limit.
        limit: usize,
    },
    /// A command frame has the MORE flag set.
    #[error("command frame with the MORE flag")]
    CommandWithMore,
    /// A command frame is empty or its name length runs past the frame.
    #[error("malformed command frame")]
    MalformedCommand,
    /// A known command has a body that does not follow its grammar.
    #[error("malformed {0} command")]
    MalformedCommandBody(&'static str),
    /// A handshake command is larger than the configured metadata limit allows.
    #[error("handshake command of {size} bytes exceeds the limit of {limit}")]
    MetadataTooLarge {
        /// Declared size.
        size: u64,
        /// Configured limit.
        limit: u64,
    },
    /// A metadata block does not follow the property grammar.
    #[error("malformed metadata: {0}")]
    MalformedMetadata(&'static str),
    /// The peer's `Identity` property is longer than 255 bytes.
    #[error("invalid identity property")]
    InvalidIdentity,
    /// The peer's socket type may not talk to ours.
    #[error("socket type {theirs:?} may not connect to {ours}")]
    IncompatibleSocketType {
        /// Our socket type.
        ours: SocketType,
        /// The peer's `Socket-Type` value.
        theirs: Vec<u8>,
    },
    /// A data frame arrived before the handshake finished.
    #[error("data frame before the handshake finished")]
    UnexpectedMessage,
    /// A command arrived that does not belong in this phase of the handshake.
    #[error("unexpected {0:?} command during the handshake")]
    UnexpectedCommand(Vec<u8>),
    /// A CURVE box did not open (wrong keys, or bytes altered in transit), or a vouch or cookie
    /// did not match.
    #[error("CURVE authentication of a box failed")]
    Cryptographic,
    /// A CURVE short nonce was not larger than the previous one from the peer (a replayed or
    /// reordered box).
    #[error("CURVE nonce replayed or out of order")]
    BadNonce,
}

/// A local request the connection cannot carry out. The connection is unharmed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The handshake has not finished yet, so nothing but handshake traffic may be sent.
    #[error("the handshake has not finished")]
    NotReady,
    /// The connection has failed (see [`Connection::error`](crate::Connection::error)).
    #[error("the connection has failed")]
    Failed,
    /// A message must have at least one frame.
    #[error("a message must have at least one frame")]
    EmptyMessage,
    /// A JOIN or LEAVE group must be at most 255 bytes.
    #[error("a group name must be at most 255 bytes")]
    GroupTooLong,
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
}
