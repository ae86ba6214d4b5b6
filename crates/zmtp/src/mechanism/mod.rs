//! Security mechanisms: NULL (RFC 37), PLAIN (RFC 24) and CURVE (RFC 25/26, as libzmq speaks it).
//!
//! A mechanism runs between the greeting and the established connection. Its server side can ask
//! the application to authenticate the peer ([`Event::Authenticate`]), the sans-IO form of a ZAP
//! request (RFC 27): the connection waits until [`Connection::authenticate`] brings the answer.
//!
//! [`Connection`]: crate::Connection
//! [`Connection::authenticate`]: crate::Connection::authenticate
//! [`Event::Authenticate`]: crate::Event::Authenticate

mod curve;
mod plain;

use bytes::Bytes;

use crate::command::Command;
use crate::error::{Error, ProtocolError};
use crate::keys::{CurveKeyPair, CurvePublicKey};
use crate::metadata::{self, Metadata};
use crate::socket_type::SocketType;

pub(crate) use curve::{CurveCipher, FLAG_COMMAND, FLAG_MORE};

/// The security mechanism a connection uses. Both peers must use the same one; the server role
/// is [`Config::as_server`](crate::Config::as_server).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// No security (RFC 37): each side sends READY with its metadata.
    #[default]
    Null,
    /// PLAIN (RFC 24): a user name and password in clear text. The client sends them; a server
    /// ignores these fields and checks what it receives (see [`Config::authenticate`]).
    ///
    /// [`Config::authenticate`]: crate::Config::authenticate
    Plain {
        /// The client's user name (at most 255 bytes).
        username: Bytes,
        /// The client's password (at most 255 bytes).
        password: Bytes,
    },
    /// CURVE (RFC 25/26): X25519 key agreement and XSalsa20-Poly1305 boxes for the handshake and
    /// for every frame after it.
    Curve(CurveConfig),
}

/// The keys of a CURVE connection.
///
/// ```
/// use std::time::Instant;
/// use bytes::Buf;
/// use omq_zmtp::{Config, Connection, CurveConfig, CurveKeyPair, Event, Mechanism, SocketType, WriteBuf};
///
/// let server_keys = CurveKeyPair::generate()?;
/// let mut server = Config::new(SocketType::Pull);
/// server.as_server = true;
/// server.mechanism = Mechanism::Curve(CurveConfig::server(server_keys.clone()));
/// let mut client = Config::new(SocketType::Push);
/// client.mechanism =
///     Mechanism::Curve(CurveConfig::client(CurveKeyPair::generate()?, server_keys.public));
///
/// let now = Instant::now();
/// let (mut push, mut pull) = (Connection::new(client, now)?, Connection::new(server, now)?);
/// let mut wire = WriteBuf::new();
/// while !(push.is_established() && pull.is_established()) {
///     push.poll_transmit(&mut wire);
///     let n = pull.handle_input(now, wire.chunk())?;
///     wire.advance(n);
///     pull.poll_transmit(&mut wire);
///     let n = push.handle_input(now, wire.chunk())?;
///     wire.advance(n);
/// }
/// push.send(&"sealed".into(), &mut wire)?;
/// let n = pull.handle_input(now, wire.chunk())?;
/// wire.advance(n);
/// assert_eq!(pull.poll_event(), Some(Event::Established));
/// assert_eq!(pull.poll_event(), Some(Event::Message("sealed".into())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CurveConfig {
    /// Our long-term key pair (a server's is the one its clients know; a client's is what the
    /// server authenticates).
    pub keys: CurveKeyPair,
    /// The server's long-term public key: required for a client, unused by a server.
    pub server_key: Option<CurvePublicKey>,
}

impl CurveConfig {
    /// A server with the long-term key pair `keys`.
    pub fn server(keys: CurveKeyPair) -> Self {
        Self {
            keys,
            server_key: None,
        }
    }

    /// A client with the key pair `keys`, talking to the server whose public key is `server_key`.
    pub fn client(keys: CurveKeyPair, server_key: CurvePublicKey) -> Self {
        Self {
            keys,
            server_key: Some(server_key),
        }
    }
}

impl Mechanism {
    /// The name in the greeting's mechanism field.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Null => "NULL",
            Self::Plain { .. } => "PLAIN",
            Self::Curve(_) => "CURVE",
        }
    }
}

/// What the server side of a mechanism asks the application to check: the content of a ZAP
/// request (RFC 27) that the connection can know.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthRequest {
    /// `"NULL"`, `"PLAIN"` or `"CURVE"`.
    pub mechanism: &'static str,
    /// The credentials: none for NULL, user name and password for PLAIN, the client's 32-byte
    /// long-term public key for CURVE.
    pub credentials: Vec<Bytes>,
}

/// The application's answer to an [`AuthRequest`], as a ZAP reply (RFC 27) carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthReply {
    /// 200 accepts; 300 (temporary failure) closes silently; 400 and 500 refuse with an ERROR
    /// command carrying the code, as libzmq does.
    pub status_code: u16,
    /// The status text (kept for the application; not sent to the peer).
    pub status_text: Bytes,
    /// The user id the peer is known by (libzmq's `User-Id` message property).
    pub user_id: Bytes,
    /// Metadata the handler attached to the peer.
    pub metadata: Metadata,
}

impl AuthReply {
    /// A 200 reply with `user_id`.
    pub fn accept(user_id: impl Into<Bytes>) -> Self {
        Self {
            status_code: 200,
            status_text: Bytes::from_static(b"OK"),
            user_id: user_id.into(),
            metadata: Metadata::new(),
        }
    }

    /// A refusal with `status_code` (300, 400 or 500).
    pub fn deny(status_code: u16, status_text: impl Into<Bytes>) -> Self {
        Self {
            status_code,
            status_text: status_text.into(),
            user_id: Bytes::new(),
            metadata: Metadata::new(),
        }
    }
}

/// Who the peer authenticated as.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerAuth {
    /// The PLAIN user name the peer presented (server side).
    pub plain_username: Option<Bytes>,
    /// The peer's long-term CURVE public key (on a server: the client's; on a client: the
    /// server's).
    pub curve_public_key: Option<CurvePublicKey>,
    /// The user id from the authentication reply (libzmq's `User-Id` property).
    pub user_id: Option<Bytes>,
    /// Metadata from the authentication reply.
    pub metadata: Metadata,
}

/// A finished handshake.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) metadata: Metadata,
    pub(crate) cipher: Option<CurveCipher>,
    pub(crate) auth: PeerAuth,
}

/// What a handshake step led to.
#[derive(Debug)]
pub(crate) enum Step {
    /// Waiting for the peer.
    Continue,
    /// Waiting for the application's [`AuthReply`].
    Authenticate(AuthRequest),
    /// The handshake is complete.
    Done(Box<Done>),
}

/// Our side of the handshake: what goes into our READY (or INITIATE) metadata.
pub(crate) struct LocalInfo<'a> {
    pub(crate) socket_type: SocketType,
    pub(crate) identity: &'a [u8],
    pub(crate) metadata: &'a Metadata,
    pub(crate) as_server: bool,
    /// Whether the server side asks the application before accepting.
    pub(crate) authenticate: bool,
}

/// Per-connection handshake state of a mechanism.
#[derive(Debug)]
pub(crate) enum Handshake {
    Null(NullHandshake),
    Plain(plain::PlainHandshake),
    Curve(Box<curve::CurveHandshake>),
}

impl Handshake {
    /// A handshake for `mechanism`. CURVE takes its ephemeral keys and nonces from `seed`.
    pub(crate) fn new(mechanism: &Mechanism, as_server: bool, seed: [u8; 32]) -> Self {
        match mechanism {
            Mechanism::Null => Self::Null(NullHandshake::default()),
            Mechanism::Plain { username, password } => Self::Plain(plain::PlainHandshake::new(
                as_server,
                username.clone(),
                password.clone(),
            )),
            Mechanism::Curve(config) => Self::Curve(Box::new(curve::CurveHandshake::new(
                config, as_server, seed,
            ))),
        }
    }

    /// Called once the greeting exchange is complete: queues our first handshake command.
    pub(crate) fn start(
        &mut self,
        local: &LocalInfo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Step, Error> {
        match self {
            Self::Null(h) => Ok(h.start(local, out)),
            Self::Plain(h) => Ok(h.start(out)),
            Self::Curve(h) => h.start(out),
        }
    }

    /// Handles one handshake command from the peer, queueing any reply in `out`.
    pub(crate) fn handle_command(
        &mut self,
        body: &[u8],
        local: &LocalInfo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Step, Error> {
        // A server never gets an ERROR from its client in PLAIN and CURVE; in NULL either side
        // may refuse.
        if !local.as_server || matches!(self, Self::Null(_)) {
            if let Some(error) = peer_error(body) {
                return Err(error);
            }
        }
        match self {
            Self::Null(h) => h.handle_command(body),
            Self::Plain(h) => h.handle_command(body, local, out),
            Self::Curve(h) => h.handle_command(body, local, out),
        }
    }

    /// Whether an [`AuthReply`] is awaited.
    pub(crate) fn awaiting_auth(&self) -> bool {
        match self {
            Self::Null(h) => h.awaiting_auth,
            Self::Plain(h) => h.awaiting_auth(),
            Self::Curve(h) => h.awaiting_auth(),
        }
    }

    /// Continues after an accepting [`AuthReply`] (the caller handles refusals).
    pub(crate) fn accepted(
        &mut self,
        local: &LocalInfo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Step, Error> {
        match self {
            Self::Null(h) => Ok(h.accepted(local, out)),
            Self::Plain(h) => Ok(h.accepted(out)),
            Self::Curve(h) => h.accepted(local, out),
        }
    }
}

/// NULL: both sides send READY. With authentication on, our READY waits for the answer.
#[derive(Debug, Default)]
pub(crate) struct NullHandshake {
    awaiting_auth: bool,
    ready_sent: bool,
    /// The peer's READY, when it came before the answer.
    peer: Option<Metadata>,
}

impl NullHandshake {
    fn start(&mut self, local: &LocalInfo<'_>, out: &mut Vec<u8>) -> Step {
        if local.authenticate {
            self.awaiting_auth = true;
            Step::Authenticate(AuthRequest {
                mechanism: "NULL",
                credentials: Vec::new(),
            })
        } else {
            encode_ready(local, out);
            self.ready_sent = true;
            Step::Continue
        }
    }

    fn handle_command(&mut self, body: &[u8]) -> Result<Step, Error> {
        match Command::parse(body)? {
            Command::Ready(data) if self.peer.is_none() => {
                let metadata = Metadata::parse(&data)?;
                if self.ready_sent {
                    Ok(done(metadata, None, PeerAuth::default()))
                } else {
                    self.peer = Some(metadata);
                    Ok(Step::Continue)
                }
            }
            Command::Error { reason } => Err(refused(&reason)),
            other => Err(ProtocolError::UnexpectedCommand(other.name().to_vec()).into()),
        }
    }

    fn accepted(&mut self, local: &LocalInfo<'_>, out: &mut Vec<u8>) -> Step {
        self.awaiting_auth = false;
        encode_ready(local, out);
        self.ready_sent = true;
        match self.peer.take() {
            Some(metadata) => done(metadata, None, PeerAuth::default()),
            None => Step::Continue,
        }
    }
}

pub(crate) fn done(metadata: Metadata, cipher: Option<CurveCipher>, auth: PeerAuth) -> Step {
    Step::Done(Box::new(Done {
        metadata,
        cipher,
        auth,
    }))
}

/// Checks the peer's `Socket-Type` against ours before a server answers it (libzmq refuses an
/// incompatible peer before sending READY). A missing `Socket-Type` is tolerated, as libzmq does.
pub(crate) fn check_socket_type(local: &LocalInfo<'_>, metadata: &Metadata) -> Result<(), Error> {
    let Some(name) = metadata.get(metadata::SOCKET_TYPE) else {
        return Ok(());
    };
    match SocketType::from_name(name) {
        Some(t) if local.socket_type.is_compatible(t) => Ok(()),
        _ => Err(ProtocolError::IncompatibleSocketType {
            ours: local.socket_type,
            theirs: name.to_vec(),
        }
        .into()),
    }
}

/// The error an ERROR command from the peer stands for, if `body` is one.
///
/// libzmq 4.3 sends the ERROR of a ZAP refusal malformed: the name-length byte is missing and
/// the `E` reads `^` (`\x04\x09^RROR\x03400` on the wire). libzmq's own clients then fail with
/// a protocol error; we read it as the refusal it means.
pub(crate) fn peer_error(body: &[u8]) -> Option<Error> {
    let reason = body
        .strip_prefix(b"\x05ERROR")
        .or_else(|| body.strip_prefix(b"^RROR"))?;
    Some(match reason.split_first() {
        Some((&len, text)) if text.len() == usize::from(len) => refused(text),
        _ => ProtocolError::MalformedCommandBody("ERROR").into(),
    })
}

/// The error for an ERROR command from the peer.
pub(crate) fn refused(reason: &[u8]) -> Error {
    Error::Refused {
        reason: String::from_utf8_lossy(reason).into_owned(),
    }
}

/// The length of our metadata block: `Socket-Type`, `Identity` for the socket types that send
/// one, then the application's properties.
pub(crate) fn properties_len(local: &LocalInfo<'_>) -> usize {
    let socket_type = local.socket_type.as_str().as_bytes();
    let mut len = 1 + metadata::SOCKET_TYPE.len() + 4 + socket_type.len();
    if local.socket_type.sends_identity() {
        len += 1 + metadata::IDENTITY.len() + 4 + local.identity.len();
    }
    len + local.metadata.encoded_len()
}

/// Appends our metadata block (see [`properties_len`]), in libzmq's order.
pub(crate) fn encode_properties(local: &LocalInfo<'_>, out: &mut Vec<u8>) {
    let socket_type = local.socket_type.as_str().as_bytes();
    metadata::encode_property(out, metadata::SOCKET_TYPE.as_bytes(), socket_type);
    if local.socket_type.sends_identity() {
        metadata::encode_property(out, metadata::IDENTITY.as_bytes(), local.identity);
    }
    // libzmq keeps application metadata in a std::map and so sends it sorted by name; do the
    // same so that READY is byte-identical for the same properties.
    let mut app: Vec<(&[u8], &[u8])> = local.metadata.iter().collect();
    app.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (name, value) in app {
        metadata::encode_property(out, name, value);
    }
}

/// Appends a READY command carrying `local`'s metadata.
pub(crate) fn encode_ready(local: &LocalInfo<'_>, out: &mut Vec<u8>) {
    crate::command::encode_command_header(out, b"READY", properties_len(local));
    encode_properties(local, out);
}

/// Appends an ERROR command with `reason` (truncated to 255 bytes).
pub(crate) fn encode_error(reason: &str, out: &mut Vec<u8>) {
    Command::Error {
        reason: Bytes::copy_from_slice(&reason.as_bytes()[..reason.len().min(255)]),
    }
    .encode(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(socket_type: SocketType) -> Vec<u8> {
        let mut out = Vec::new();
        encode_ready(
            &LocalInfo {
                socket_type,
                identity: b"",
                metadata: &Metadata::new(),
                as_server: false,
                authenticate: false,
            },
            &mut out,
        );
        out
    }

    /// libzmq `tests/testutil.hpp` vectors; the DEALER one is also RFC 37's worked example.
    #[test]
    fn ready_matches_libzmq_vectors() {
        assert_eq!(
            ready(SocketType::Dealer),
            b"\x04\x29\x05READY\x0bSocket-Type\x00\x00\x00\x06DEALER\x08Identity\x00\x00\x00\x00"
        );
        assert_eq!(ready(SocketType::Dealer).len(), 43);
        assert_eq!(
            ready(SocketType::XPub),
            b"\x04\x1a\x05READY\x0bSocket-Type\x00\x00\x00\x04XPUB"
        );
        assert_eq!(
            ready(SocketType::Sub),
            b"\x04\x19\x05READY\x0bSocket-Type\x00\x00\x00\x03SUB"
        );
        // RFC 37's ROUTER example omits Identity, but libzmq sends it: 28 + 13 bytes.
        assert_eq!(ready(SocketType::Router).len(), 43);
        assert_eq!(ready(SocketType::Push).len(), 2 + 6 + 1 + 11 + 4 + 4);
    }
}
