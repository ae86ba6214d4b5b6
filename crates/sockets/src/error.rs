//! Socket errors.

use omq_zmtp::Message;

use crate::{EndpointError, OptionError};

/// Why a socket operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket type does not support this operation (`send` on SUB, `recv` on PUB, ...).
    #[error("operation not supported by this socket type")]
    NotSupported,
    /// The operation is not valid in the socket's current state (REQ sending twice, REP replying
    /// before receiving), libzmq's `EFSM`.
    #[error("operation not valid in the socket's current state")]
    State,
    /// ROUTER with `router_mandatory`: no peer has this routing id.
    #[error("no peer with this routing id")]
    HostUnreachable,
    /// A message must have at least one frame (ROUTER: a routing id and at least one more).
    #[error("message has no frames")]
    EmptyMessage,
    /// The socket is closed.
    #[error("socket is closed")]
    Closed,
    /// `unbind`/`disconnect` of an endpoint that is not bound or connected.
    #[error("endpoint not bound or connected")]
    UnknownEndpoint,
    /// The endpoint is invalid.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// An option is invalid.
    #[error(transparent)]
    Option(#[from] OptionError),
    /// An inproc name is already bound.
    #[error("inproc endpoint {0:?} is already bound")]
    AddressInUse(String),
    /// An I/O error from bind or from a transport set-up.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Why [`try_send`](crate::Core::try_send) did not send; the message is handed back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrySendError {
    /// Every eligible peer's queue is at its high-water mark (or there is no peer yet).
    #[error("the send queue is full")]
    Full(Message),
    /// The send failed for good.
    #[error(transparent)]
    Failed(Error),
}

impl TrySendError {
    /// The message, if it was handed back.
    pub fn into_message(self) -> Option<Message> {
        match self {
            Self::Full(m) => Some(m),
            Self::Failed(_) => None,
        }
    }
}
