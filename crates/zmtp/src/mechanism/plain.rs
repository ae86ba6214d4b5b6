//! PLAIN (RFC 24): the client sends a user name and password in HELLO, the server answers WELCOME
//! (or ERROR), the client sends its metadata in INITIATE and the server answers READY.

use bytes::Bytes;

use super::{
    AuthRequest, LocalInfo, PeerAuth, Step, check_socket_type, done, encode_properties,
    properties_len,
};
use crate::command::encode_command_header;
use crate::error::{Error, ProtocolError};
use crate::metadata::Metadata;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Client: HELLO sent, waiting for WELCOME.
    ExpectWelcome,
    /// Client: INITIATE sent, waiting for READY.
    ExpectReady,
    /// Server: waiting for HELLO.
    ExpectHello,
    /// Server: waiting for the application's answer.
    Authenticating,
    /// Server: WELCOME sent, waiting for INITIATE.
    ExpectInitiate,
}

#[derive(Debug)]
pub(crate) struct PlainHandshake {
    state: State,
    username: Bytes,
    password: Bytes,
}

const HELLO: &[u8] = b"\x05HELLO";
const WELCOME: &[u8] = b"\x07WELCOME";
const INITIATE: &[u8] = b"\x08INITIATE";
const READY: &[u8] = b"\x05READY";

impl PlainHandshake {
    pub(crate) fn new(as_server: bool, username: Bytes, password: Bytes) -> Self {
        Self {
            state: if as_server {
                State::ExpectHello
            } else {
                State::ExpectWelcome
            },
            username,
            password,
        }
    }

    pub(crate) fn awaiting_auth(&self) -> bool {
        self.state == State::Authenticating
    }

    pub(crate) fn start(&mut self, out: &mut Vec<u8>) -> Step {
        if self.state == State::ExpectWelcome {
            let user = &self.username[..self.username.len().min(255)];
            let pass = &self.password[..self.password.len().min(255)];
            encode_command_header(out, b"HELLO", 2 + user.len() + pass.len());
            out.push(user.len() as u8);
            out.extend_from_slice(user);
            out.push(pass.len() as u8);
            out.extend_from_slice(pass);
        }
        Step::Continue
    }

    pub(crate) fn handle_command(
        &mut self,
        body: &[u8],
        local: &LocalInfo<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Step, Error> {
        match self.state {
            State::ExpectHello => {
                let data = body.strip_prefix(HELLO).ok_or_else(|| unexpected(body))?;
                let (username, rest) = take_short(data).ok_or(malformed("HELLO"))?;
                let (password, rest) = take_short(rest).ok_or(malformed("HELLO"))?;
                if !rest.is_empty() {
                    return Err(malformed("HELLO"));
                }
                self.username = Bytes::copy_from_slice(username);
                self.password = Bytes::copy_from_slice(password);
                if local.authenticate {
                    self.state = State::Authenticating;
                    Ok(Step::Authenticate(AuthRequest {
                        mechanism: "PLAIN",
                        credentials: vec![self.username.clone(), self.password.clone()],
                    }))
                } else {
                    Ok(self.accepted(out))
                }
            }
            State::ExpectInitiate => {
                let data = body
                    .strip_prefix(INITIATE)
                    .ok_or_else(|| unexpected(body))?;
                let metadata = Metadata::parse(data)?;
                check_socket_type(local, &metadata)?;
                encode_command_header(out, b"READY", properties_len(local));
                encode_properties(local, out);
                Ok(done(
                    metadata,
                    None,
                    PeerAuth {
                        plain_username: Some(std::mem::take(&mut self.username)),
                        ..PeerAuth::default()
                    },
                ))
            }
            State::ExpectWelcome => {
                if body != WELCOME {
                    return Err(if body.starts_with(WELCOME) {
                        malformed("WELCOME")
                    } else {
                        unexpected(body)
                    });
                }
                encode_command_header(out, b"INITIATE", properties_len(local));
                encode_properties(local, out);
                self.state = State::ExpectReady;
                Ok(Step::Continue)
            }
            State::ExpectReady => {
                let data = body.strip_prefix(READY).ok_or_else(|| unexpected(body))?;
                Ok(done(Metadata::parse(data)?, None, PeerAuth::default()))
            }
            State::Authenticating => Err(unexpected(body)),
        }
    }

    /// The server's WELCOME, once the client is accepted.
    pub(crate) fn accepted(&mut self, out: &mut Vec<u8>) -> Step {
        self.password = Bytes::new();
        encode_command_header(out, b"WELCOME", 0);
        self.state = State::ExpectInitiate;
        Step::Continue
    }
}

/// Splits a `len(u8) bytes` field off the front of `data`.
fn take_short(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&len, rest) = data.split_first()?;
    (rest.len() >= usize::from(len)).then(|| rest.split_at(usize::from(len)))
}

fn malformed(name: &'static str) -> Error {
    ProtocolError::MalformedCommandBody(name).into()
}

/// The error for a command that does not belong in this step of the handshake.
pub(super) fn unexpected(body: &[u8]) -> Error {
    let name = body
        .split_first()
        .map(|(&len, rest)| rest[..usize::from(len).min(rest.len())].to_vec())
        .unwrap_or_default();
    ProtocolError::UnexpectedCommand(name).into()
}
