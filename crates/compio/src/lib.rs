//! ZeroMQ sockets on compio: io_uring on Linux, with a polling driver where the kernel refuses
//! io_uring.
//!
//! The same socket API as omq-tokio (PAIR, PUB, SUB, XPUB, XSUB, PUSH, PULL, REQ, REP, DEALER,
//! ROUTER over `tcp://`, `ipc://` and `inproc://`), on the same runtime-independent socket layer
//! ([`omq_sockets`]). This crate owns the file descriptors, the tasks and the timers: a listener
//! task per bound endpoint, a connect loop per connected endpoint, and one driver task per
//! connection that owns every read and write operation with its buffer.
//!
//! # Cancel safety
//! A completion-based read owns its buffer until the kernel completes it; dropping its future
//! can lose bytes. No I/O operation is ever issued from a user's future here: `send` and `recv`
//! only touch the socket's in-memory pipes, and the per-connection driver keeps its operations
//! until the connection ends. A dropped `recv()` or `send()` future loses nothing.
//!
//! # Threads
//! compio runs one runtime per thread, and these sockets are `!Send`: create and use a socket on
//! the thread whose runtime runs it. For several cores, start a runtime per thread, each with its
//! own sockets (inproc endpoints connect sockets across threads). From a plain `main`:
//!
//! ```
//! use omq_compio::{Options, Socket, SocketType};
//!
//! let runtime = compio::runtime::Runtime::new().unwrap();
//! runtime.block_on(async {
//!     let pull = Socket::new(SocketType::Pull, Options::default())?;
//!     let endpoint = pull.bind("tcp://127.0.0.1:0").await?;
//!     let push = Socket::new(SocketType::Push, Options::default())?;
//!     push.connect(&endpoint.to_string()).await?;
//!     push.send("hello").await?;
//!     assert_eq!(pull.recv().await?.frames()[0], b"hello"[..]);
//!     Ok::<(), omq_compio::Error>(())
//! })?;
//! # Ok::<(), omq_compio::Error>(())
//! ```
//!
//! [`driver_type`] tells whether io_uring or the polling driver is active.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

mod driver;
mod transport;

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;

use compio::runtime::JoinHandle;
use omq_sockets::{Connector, Core, EndpointCtl, Endpoints};
pub use omq_sockets::{
    Endpoint, EndpointError, Error, Host, IpcAddr, Monitor, MonitorEvent, OptionError, Options,
    Port, ReconnectStop, TcpKeepalive, TrySendError,
};
pub use omq_zmtp::{Frame, Message, SocketType};

/// Which I/O driver the current thread's compio runtime uses, if a runtime is running.
pub fn driver_type() -> Option<compio::driver::DriverType> {
    compio::runtime::Runtime::try_current().map(|r| r.driver_type())
}

/// The socket's tasks, awaited by [`Socket::close`].
#[derive(Clone, Default)]
pub(crate) struct Tasks(Rc<RefCell<Vec<JoinHandle<()>>>>);

impl std::fmt::Debug for Tasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks")
            .field("count", &self.0.borrow().len())
            .finish()
    }
}

impl Tasks {
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
        let h = compio::runtime::spawn(fut);
        let mut v = self.0.borrow_mut();
        // A finished task's handle can go; an unfinished one must stay (dropping cancels it).
        v.retain(|h| !h.is_finished());
        v.push(h);
    }

    fn take(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}

/// A ZeroMQ socket on compio. `!Send`: it lives on the thread of the runtime that runs it.
///
/// Dropping it closes it without waiting: connections still send what is queued within the
/// linger period in the background, while the runtime runs. [`close`](Self::close) waits for
/// that.
#[derive(Debug)]
pub struct Socket {
    core: Arc<Core>,
    endpoints: Endpoints,
    tasks: Tasks,
}

impl Socket {
    /// A new socket of type `socket_type`. Invalid options are an error here.
    pub fn new(socket_type: SocketType, options: Options) -> Result<Self, Error> {
        Ok(Self {
            core: Core::new(socket_type, options)?,
            endpoints: Endpoints::new(),
            tasks: Tasks::default(),
        })
    }

    /// The socket type.
    pub fn socket_type(&self) -> SocketType {
        self.core.socket_type()
    }

    /// The options the socket was created with.
    pub fn options(&self) -> &Options {
        self.core.options()
    }

    /// Binds to `endpoint` and returns it resolved: `tcp://127.0.0.1:0` reports the port the
    /// system chose, `ipc://*` the path. Must run inside a compio runtime.
    pub async fn bind(&self, endpoint: &str) -> Result<Endpoint, Error> {
        let ep: Endpoint = endpoint.parse()?;
        if self.core.is_closed() {
            return Err(Error::Closed);
        }
        if let Endpoint::Inproc(name) = &ep {
            self.endpoints.bind_inproc(&self.core, &ep, name)?;
            return Ok(ep);
        }
        no_runtime()?;
        let (listener, resolved) = match transport::bind(&ep, &self.core) {
            Ok(r) => r,
            Err(e) => {
                self.core.emit(MonitorEvent::BindFailed {
                    endpoint: endpoint.to_owned(),
                    reason: e.to_string(),
                });
                return Err(e.into());
            }
        };
        let text = resolved.to_string();
        self.core.emit(MonitorEvent::Listening {
            endpoint: text.clone(),
        });
        let ctl = self.endpoints.add_listener(&resolved);
        self.tasks.spawn(transport::accept_loop(
            self.core.clone(),
            listener,
            text,
            ctl,
            self.tasks.clone(),
        ));
        Ok(resolved)
    }

    /// Connects to `endpoint`. Returns at once: the connection is made (and remade after
    /// failures, every reconnect interval) in the background, and unless `immediate` is set,
    /// messages queue for the endpoint from now on. Must run inside a compio runtime.
    pub async fn connect(&self, endpoint: &str) -> Result<(), Error> {
        let ep: Endpoint = endpoint.parse()?;
        ep.check_connect()?;
        if let Endpoint::Inproc(name) = &ep {
            return self.endpoints.connect_inproc(&self.core, &ep, name);
        }
        no_runtime()?;
        let ctl = EndpointCtl::new();
        let (connector, peer) = Connector::new(self.core.clone(), ep.clone(), ctl.clone())?;
        self.tasks
            .spawn(transport::connect_loop(connector, ctl.clone()));
        self.endpoints.add_connect(&ep, ctl, peer);
        Ok(())
    }

    /// Stops listening on a bound endpoint (as [`bind`](Self::bind) returned it) and closes the
    /// connections it accepted.
    pub async fn unbind(&self, endpoint: &str) -> Result<(), Error> {
        self.endpoints.forget(&self.core, endpoint, true)
    }

    /// Stops connecting to `endpoint` and drops its connection and queued messages.
    pub async fn disconnect(&self, endpoint: &str) -> Result<(), Error> {
        self.endpoints.forget(&self.core, endpoint, false)
    }

    /// Sends a message, waiting while every eligible peer is at its high-water mark (PUB and
    /// ROUTER without `router_mandatory` never wait: they drop). Cancel safe: if the future is
    /// dropped before it completes, the message was not sent.
    pub async fn send(&self, msg: impl Into<Message>) -> Result<(), Error> {
        let mut msg = Some(msg.into());
        poll_fn(|cx| self.core.poll_send(cx, &mut msg)).await
    }

    /// Sends a message if a peer has room now; otherwise hands it back in
    /// [`TrySendError::Full`].
    pub fn try_send(&self, msg: impl Into<Message>) -> Result<(), TrySendError> {
        self.core.try_send(msg.into())
    }

    /// Receives the next message, waiting for one. Cancel safe: a dropped future loses nothing.
    pub async fn recv(&self) -> Result<Message, Error> {
        poll_fn(|cx| self.core.poll_recv(cx)).await
    }

    /// Receives a message if one is queued.
    pub fn try_recv(&self) -> Result<Option<Message>, Error> {
        self.core.try_recv()
    }

    /// SUB, XSUB: subscribes to messages whose first frame starts with `topic` (empty: all).
    pub fn subscribe(&self, topic: impl AsRef<[u8]>) -> Result<(), Error> {
        self.core.subscribe(topic.as_ref())
    }

    /// SUB, XSUB: cancels one subscription to `topic`.
    pub fn unsubscribe(&self, topic: impl AsRef<[u8]>) -> Result<(), Error> {
        self.core.unsubscribe(topic.as_ref())
    }

    /// A stream of this socket's monitor events from now on.
    pub fn monitor(&self) -> Monitor {
        Monitor::new(&self.core)
    }

    fn shut(&self) {
        self.core.close();
        self.endpoints.close_all(&self.core);
    }

    /// Closes the socket and waits until every connection has sent what was queued, within the
    /// linger period (`Options::linger`; `None`, the default, waits as long as it takes, as
    /// libzmq does).
    pub async fn close(self) {
        self.shut();
        for h in self.tasks.take() {
            let _ = h.await;
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.shut();
        // Dropping a compio task handle cancels the task; these must linger instead.
        for h in self.tasks.take() {
            h.detach();
        }
    }
}

fn no_runtime() -> Result<(), Error> {
    match compio::runtime::Runtime::try_current() {
        Some(_) => Ok(()),
        None => Err(Error::Io(std::io::Error::other(
            "omq-compio sockets need a running compio runtime",
        ))),
    }
}
