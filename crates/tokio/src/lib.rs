//! ZeroMQ sockets on tokio.
//!
//! Every standard socket type (PAIR, PUB, SUB, XPUB, XSUB, PUSH, PULL, REQ, REP, DEALER,
//! ROUTER) over `tcp://`, `ipc://` and `inproc://`, speaking ZMTP 3.1 (and 3.0) to libzmq and
//! to each other. The socket semantics live in [`omq_sockets`]; this crate owns the file
//! descriptors, the tasks and the timers: one listener task per bound endpoint, one connect loop
//! per connected endpoint, and one driver task per connection that reads into the codec, writes
//! batches of queued messages with one vectored write, and runs the heartbeats.
//!
//! Sockets are `Send + Sync` and work on current-thread and multi-thread runtimes.
//!
//! ```
//! use omq_tokio::{Options, Socket, SocketType};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), omq_tokio::Error> {
//! let pull = Socket::new(SocketType::Pull, Options::default())?;
//! let endpoint = pull.bind("tcp://127.0.0.1:0").await?;
//!
//! let push = Socket::new(SocketType::Push, Options::default())?;
//! push.connect(&endpoint.to_string()).await?;
//! push.send("hello").await?;
//!
//! let msg = pull.recv().await?;
//! assert_eq!(msg.frames()[0], b"hello"[..]);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod driver;
mod transport;

use std::sync::{Arc, Mutex, PoisonError};

pub use omq_sockets::{
    Endpoint, EndpointError, Error, Host, IpcAddr, Monitor, MonitorEvent, OptionError, Options,
    Port, ReconnectStop, SocketBase, TcpKeepalive, TrySendError,
};
pub use omq_zmtp::{Frame, Message, SocketType};
use tokio::task::JoinHandle;

/// The socket's tasks, awaited by [`Socket::close`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Tasks(Arc<Mutex<Vec<JoinHandle<()>>>>);

impl Tasks {
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let h = tokio::spawn(fut);
        let mut v = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        v.retain(|h| !h.is_finished());
        v.push(h);
    }

    fn take(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A ZeroMQ socket.
///
/// The messaging API (`send`, `recv`, `try_send`, `try_recv`, `subscribe`, `unsubscribe`,
/// `monitor`, `unbind`, `disconnect`) comes from [`SocketBase`], which this type dereferences
/// to; it is the same code on every backend.
///
/// Dropping it closes it without waiting: connections still send what is queued within the
/// linger period in the background. [`close`](Self::close) waits for that.
#[derive(Debug)]
pub struct Socket {
    base: SocketBase,
    tasks: Tasks,
}

impl std::ops::Deref for Socket {
    type Target = SocketBase;

    fn deref(&self) -> &SocketBase {
        &self.base
    }
}

impl Socket {
    /// A new socket of type `socket_type`. Invalid options are an error here.
    pub fn new(socket_type: SocketType, options: Options) -> Result<Self, Error> {
        Ok(Self {
            base: SocketBase::new(socket_type, options)?,
            tasks: Tasks::default(),
        })
    }

    /// Binds to `endpoint` and returns it resolved: `tcp://127.0.0.1:0` reports the port the
    /// system chose, `ipc://*` the path. Must run inside a tokio runtime.
    pub async fn bind(&self, endpoint: &str) -> Result<Endpoint, Error> {
        if !endpoint.starts_with("inproc://") {
            no_runtime()?;
        }
        self.base.bind_with(endpoint, |listener, bound, ctl| {
            let listener = transport::listener(listener)?;
            self.tasks.spawn(transport::accept_loop(
                self.base.core().clone(),
                listener,
                bound.to_string(),
                ctl,
                self.tasks.clone(),
            ));
            Ok(())
        })
    }

    /// Connects to `endpoint`. Returns at once: the connection is made (and remade after
    /// failures, every reconnect interval) in the background, and unless `immediate` is set,
    /// messages queue for the endpoint from now on. Must run inside a tokio runtime.
    pub async fn connect(&self, endpoint: &str) -> Result<(), Error> {
        if !endpoint.starts_with("inproc://") {
            no_runtime()?;
        }
        self.base.connect_with(endpoint, |connector, ctl| {
            self.tasks.spawn(transport::connect_loop(connector, ctl));
        })
    }

    /// Closes the socket and waits until every connection has sent what was queued, within the
    /// linger period (`Options::linger`; `None`, the default, waits as long as it takes, as
    /// libzmq does).
    pub async fn close(self) {
        self.base.shut();
        for h in self.tasks.take() {
            let _ = h.await;
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.base.shut();
    }
}

fn no_runtime() -> Result<(), Error> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(|e| Error::Io(std::io::Error::other(e)))
}

/// The workspace README's examples (they use this crate and the codec), compiled and run as doc
/// tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
