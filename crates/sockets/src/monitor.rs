//! Socket monitor events.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Something that happened to one of a socket's endpoints or connections.
///
/// The endpoint is the text form (`tcp://127.0.0.1:5555`): the resolved address of a listener,
/// the address of a connect, or the peer address of an accepted connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitorEvent {
    /// A listener is bound.
    Listening {
        /// The resolved endpoint.
        endpoint: String,
    },
    /// Binding failed.
    BindFailed {
        /// The endpoint asked for.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// A listener accepted a connection.
    Accepted {
        /// The listener's endpoint.
        endpoint: String,
    },
    /// An outgoing connection was established (before the ZMTP handshake).
    Connected {
        /// The endpoint connected to.
        endpoint: String,
    },
    /// An outgoing connection attempt failed; another one is scheduled.
    ConnectDelayed {
        /// The endpoint.
        endpoint: String,
        /// Why the attempt failed.
        reason: String,
    },
    /// A new connection attempt starts after `interval`.
    ConnectRetried {
        /// The endpoint.
        endpoint: String,
        /// The wait before this attempt.
        interval: Duration,
    },
    /// The ZMTP handshake finished; messages flow.
    HandshakeSucceeded {
        /// The endpoint.
        endpoint: String,
    },
    /// The peer authenticated (after [`HandshakeSucceeded`](Self::HandshakeSucceeded), for
    /// PLAIN and CURVE connections and NULL ones checked by ZAP): who it is.
    PeerAuthenticated {
        /// The endpoint.
        endpoint: String,
        /// The PLAIN user name, the CURVE public key, and the ZAP reply's user id and metadata.
        auth: omq_zmtp::PeerAuth,
    },
    /// The ZMTP handshake failed; the connection is closed.
    HandshakeFailed {
        /// The endpoint.
        endpoint: String,
        /// Why (a protocol error, a refusal, a timeout, an incompatible socket type, ...).
        reason: String,
    },
    /// An established connection ended.
    Disconnected {
        /// The endpoint.
        endpoint: String,
        /// Why (closed by the peer, a protocol error, a heartbeat timeout, ...).
        reason: String,
    },
    /// A listener was closed (unbind or socket close).
    Closed {
        /// The endpoint.
        endpoint: String,
    },
    /// Reconnecting to this endpoint stopped (see [`ReconnectStop`](crate::ReconnectStop)).
    ReconnectStopped {
        /// The endpoint.
        endpoint: String,
    },
}

/// The monitor events of one socket (from `Socket::monitor`): a
/// [`Stream`](futures_core::Stream), and `next` for use without stream combinators.
#[derive(Debug)]
pub struct Monitor {
    rx: blume::Receiver<MonitorEvent>,
}

impl Monitor {
    /// A monitor of `core`'s events from now on.
    pub fn new(core: &crate::Core) -> Self {
        Self { rx: core.monitor() }
    }

    /// The next event; `None` once the socket is gone and every event was taken.
    pub async fn next(&mut self) -> Option<MonitorEvent> {
        self.rx.recv().await.ok()
    }

    /// The next event if one is queued.
    pub fn try_next(&mut self) -> Option<MonitorEvent> {
        self.rx.try_recv().ok()
    }
}

impl futures_core::Stream for Monitor {
    type Item = MonitorEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<MonitorEvent>> {
        self.get_mut().rx.poll_recv(cx).map(Result::ok)
    }
}
