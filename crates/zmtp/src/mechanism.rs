//! Security mechanisms. NULL is the only one so far; PLAIN and CURVE slot in as further variants
//! of [`Mechanism`] and of the internal handshake state, without changing [`Connection`]'s API.
//!
//! [`Connection`]: crate::Connection

use bytes::Bytes;

use crate::command::Command;
use crate::error::{Error, ProtocolError};
use crate::metadata::{self, Metadata};
use crate::socket_type::SocketType;

/// The security mechanism a connection uses. Both peers must use the same one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// No security (RFC 37): each side sends READY with its metadata.
    #[default]
    Null,
}

impl Mechanism {
    /// The name in the greeting's mechanism field.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Null => "NULL",
        }
    }
}

/// Per-connection handshake state of a mechanism.
#[derive(Debug)]
pub(crate) enum Handshake {
    Null,
}

/// Our side of the handshake: what goes into our READY (or INITIATE) metadata.
pub(crate) struct LocalInfo<'a> {
    pub(crate) socket_type: SocketType,
    pub(crate) identity: &'a [u8],
    pub(crate) metadata: &'a Metadata,
}

impl Handshake {
    pub(crate) fn new(mechanism: &Mechanism) -> Self {
        match mechanism {
            Mechanism::Null => Self::Null,
        }
    }

    /// Called once the greeting exchange is complete: queues our first handshake command.
    pub(crate) fn start(&mut self, local: &LocalInfo<'_>, out: &mut Vec<u8>) {
        match self {
            Self::Null => encode_ready(local, out),
        }
    }

    /// Handles one handshake command from the peer, queueing any reply in `out`. Returns the
    /// peer's metadata once the handshake is complete, `None` while it goes on.
    pub(crate) fn handle_command(
        &mut self,
        body: &[u8],
        _out: &mut Vec<u8>,
    ) -> Result<Option<Metadata>, Error> {
        match self {
            Self::Null => match Command::parse(body)? {
                Command::Ready(data) => Ok(Some(Metadata::parse(&data)?)),
                Command::Error { reason } => Err(Error::Refused {
                    reason: String::from_utf8_lossy(&reason).into_owned(),
                }),
                other => Err(ProtocolError::UnexpectedCommand(other.name().to_vec()).into()),
            },
        }
    }
}

/// Appends a READY command carrying `local`'s metadata: `Socket-Type`, then `Identity` for the
/// socket types that send one (as libzmq orders them), then the application's properties.
pub(crate) fn encode_ready(local: &LocalInfo<'_>, out: &mut Vec<u8>) {
    let socket_type = local.socket_type.as_str().as_bytes();
    let mut len = 1 + metadata::SOCKET_TYPE.len() + 4 + socket_type.len();
    if local.socket_type.sends_identity() {
        len += 1 + metadata::IDENTITY.len() + 4 + local.identity.len();
    }
    len += local.metadata.encoded_len();
    crate::command::encode_command_header(out, b"READY", len);
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
