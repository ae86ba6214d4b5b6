//! ZMTP commands: a frame with the COMMAND flag whose body is `name-len(u8) name data`.
//!
//! | command | data |
//! |---|---|
//! | READY | metadata |
//! | ERROR | `reason-len(u8) reason` |
//! | SUBSCRIBE, CANCEL | topic (the rest of the frame) |
//! | PING | `ttl(u16 BE, tenths of a second) context(<= 16 bytes)` |
//! | PONG | context |
//! | JOIN, LEAVE | group (<= 255 bytes) |
//!
//! Mechanism handshake commands (HELLO, WELCOME, INITIATE) are parsed by their mechanism; here they
//! are [`Command::Unknown`].

use bytes::Bytes;

use crate::error::ProtocolError;
use crate::frame::{self, FLAG_COMMAND};

/// Longest PING context echoed back; longer contexts are truncated, as libzmq does.
pub const MAX_PING_CONTEXT: usize = 16;
/// Longest JOIN/LEAVE group.
pub const MAX_GROUP_LEN: usize = 255;

/// A parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// READY with its raw metadata (parse with [`Metadata::parse`](crate::Metadata::parse)).
    Ready(Bytes),
    /// ERROR with its reason.
    Error {
        /// Reason text, at most 255 bytes.
        reason: Bytes,
    },
    /// SUBSCRIBE to a topic prefix (ZMTP 3.1).
    Subscribe(Bytes),
    /// CANCEL a subscription (ZMTP 3.1).
    Cancel(Bytes),
    /// PING.
    Ping {
        /// The sender's TTL in tenths of a second (0: none).
        ttl: u16,
        /// Context to echo in the PONG (at most 16 bytes).
        context: Bytes,
    },
    /// PONG echoing a PING's context.
    Pong {
        /// The echoed context.
        context: Bytes,
    },
    /// JOIN a group (DISH to RADIO).
    Join(Bytes),
    /// LEAVE a group (DISH to RADIO).
    Leave(Bytes),
    /// Any other command.
    Unknown {
        /// Command name.
        name: Bytes,
        /// Command data after the name.
        data: Bytes,
    },
}

impl Command {
    /// Parses a command frame body (`name-len name data`).
    pub fn parse(body: &[u8]) -> Result<Self, ProtocolError> {
        let (&name_len, rest) = body.split_first().ok_or(ProtocolError::MalformedCommand)?;
        let name_len = usize::from(name_len);
        if rest.len() < name_len {
            return Err(ProtocolError::MalformedCommand);
        }
        let (name, data) = rest.split_at(name_len);
        let copy = Bytes::copy_from_slice;
        Ok(match name {
            b"READY" => Self::Ready(copy(data)),
            b"ERROR" => {
                let (&len, reason) = data
                    .split_first()
                    .ok_or(ProtocolError::MalformedCommandBody("ERROR"))?;
                if reason.len() != usize::from(len) {
                    return Err(ProtocolError::MalformedCommandBody("ERROR"));
                }
                Self::Error {
                    reason: copy(reason),
                }
            }
            b"SUBSCRIBE" => Self::Subscribe(copy(data)),
            b"CANCEL" => Self::Cancel(copy(data)),
            b"PING" => {
                if data.len() < 2 {
                    return Err(ProtocolError::MalformedCommandBody("PING"));
                }
                let ttl = u16::from_be_bytes([data[0], data[1]]);
                let ctx = &data[2..];
                Self::Ping {
                    ttl,
                    context: copy(&ctx[..ctx.len().min(MAX_PING_CONTEXT)]),
                }
            }
            b"PONG" => Self::Pong {
                context: copy(&data[..data.len().min(MAX_PING_CONTEXT)]),
            },
            b"JOIN" | b"LEAVE" => {
                if data.len() > MAX_GROUP_LEN {
                    return Err(ProtocolError::MalformedCommandBody(if name == b"JOIN" {
                        "JOIN"
                    } else {
                        "LEAVE"
                    }));
                }
                if name == b"JOIN" {
                    Self::Join(copy(data))
                } else {
                    Self::Leave(copy(data))
                }
            }
            _ => Self::Unknown {
                name: copy(name),
                data: copy(data),
            },
        })
    }

    /// The command name.
    pub fn name(&self) -> &[u8] {
        match self {
            Self::Ready(_) => b"READY",
            Self::Error { .. } => b"ERROR",
            Self::Subscribe(_) => b"SUBSCRIBE",
            Self::Cancel(_) => b"CANCEL",
            Self::Ping { .. } => b"PING",
            Self::Pong { .. } => b"PONG",
            Self::Join(_) => b"JOIN",
            Self::Leave(_) => b"LEAVE",
            Self::Unknown { name, .. } => name,
        }
    }

    /// Appends the complete command frame (header included) to `out`. A name longer than 255
    /// bytes (only possible with [`Command::Unknown`]) is cut to 255.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let name = self.name();
        let name = &name[..name.len().min(255)];
        let data_len = match self {
            Self::Ready(d)
            | Self::Subscribe(d)
            | Self::Cancel(d)
            | Self::Join(d)
            | Self::Leave(d)
            | Self::Unknown { data: d, .. } => d.len(),
            Self::Error { reason } => 1 + reason.len().min(255),
            Self::Ping { context, .. } => 2 + context.len().min(MAX_PING_CONTEXT),
            Self::Pong { context } => context.len().min(MAX_PING_CONTEXT),
        };
        encode_command_header(out, name, data_len);
        match self {
            Self::Ready(d)
            | Self::Subscribe(d)
            | Self::Cancel(d)
            | Self::Join(d)
            | Self::Leave(d)
            | Self::Unknown { data: d, .. } => out.extend_from_slice(d),
            Self::Error { reason } => {
                let reason = &reason[..reason.len().min(255)];
                out.push(reason.len() as u8);
                out.extend_from_slice(reason);
            }
            Self::Ping { ttl, context } => {
                out.extend_from_slice(&ttl.to_be_bytes());
                out.extend_from_slice(&context[..context.len().min(MAX_PING_CONTEXT)]);
            }
            Self::Pong { context } => {
                out.extend_from_slice(&context[..context.len().min(MAX_PING_CONTEXT)]);
            }
        }
    }
}

/// Appends a command frame header and the name; the caller appends `data_len` bytes of data.
pub(crate) fn encode_command_header(out: &mut Vec<u8>, name: &[u8], data_len: usize) {
    debug_assert!(name.len() <= 255);
    frame::encode_header(out, FLAG_COMMAND, 1 + name.len() + data_len);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(cmd: Command) {
        let mut wire = Vec::new();
        cmd.encode(&mut wire);
        let (header, body) = frame::split_header(&wire).unwrap();
        assert!(header.is_command());
        assert_eq!(Command::parse(body).unwrap(), cmd);
    }

    #[test]
    fn round_trips() {
        round_trip(Command::Ready(Bytes::from_static(b"\x01a\x00\x00\x00\x00")));
        round_trip(Command::Error {
            reason: Bytes::from_static(b"400"),
        });
        round_trip(Command::Subscribe(Bytes::from_static(b"topic")));
        round_trip(Command::Cancel(Bytes::new()));
        round_trip(Command::Ping {
            ttl: 300,
            context: Bytes::from_static(b"ctx"),
        });
        round_trip(Command::Pong {
            context: Bytes::from_static(b"ctx"),
        });
        round_trip(Command::Join(Bytes::from_static(b"group")));
        round_trip(Command::Leave(Bytes::from_static(b"group")));
        round_trip(Command::Unknown {
            name: Bytes::from_static(b"HELLO"),
            data: Bytes::from_static(b"xyz"),
        });
    }

    #[test]
    fn ping_pong_match_netmq_vector() {
        // netmq ZMTPTests V3Test: 04 09 04 PING 00 00 HI -> 04 07 04 PONG HI
        let ping = b"\x04\x09\x04PING\x00\x00HI";
        let (_, body) = frame::split_header(ping).unwrap();
        let cmd = Command::parse(body).unwrap();
        let Command::Ping { ttl: 0, context } = cmd else {
            panic!("{cmd:?}")
        };
        let mut pong = Vec::new();
        Command::Pong { context }.encode(&mut pong);
        assert_eq!(pong, b"\x04\x07\x04PONGHI");
    }

    #[test]
    fn subscribe_matches_libzmq_mock_vector() {
        // libzmq tests/test_mock_pub_sub.cpp: a 3.1 SUB sends `\x09SUBSCRIBE` + topic.
        let mut wire = Vec::new();
        Command::Subscribe(Bytes::from_static(b"A")).encode(&mut wire);
        assert_eq!(wire, b"\x04\x0b\x09SUBSCRIBEA");
    }

    #[test]
    fn long_ping_context_is_truncated() {
        let mut body = b"\x04PING\x00\x01".to_vec();
        body.extend_from_slice(&[9; 40]);
        let Command::Ping { ttl: 1, context } = Command::parse(&body).unwrap() else {
            panic!()
        };
        assert_eq!(context.len(), MAX_PING_CONTEXT);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Command::parse(b""), Err(ProtocolError::MalformedCommand));
        assert_eq!(
            Command::parse(b"\x05REA"),
            Err(ProtocolError::MalformedCommand)
        );
        assert!(Command::parse(b"\x05ERROR\x05ab").is_err());
        assert!(Command::parse(b"\x05ERROR").is_err());
        assert!(Command::parse(b"\x04PING\x00").is_err());
        let mut join = b"\x04JOIN".to_vec();
        join.extend_from_slice(&[b'g'; 256]);
        assert!(Command::parse(&join).is_err());
    }
}
