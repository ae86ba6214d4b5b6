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
use std::rc::Rc;

use compio::runtime::JoinHandle;
pub use omq_sockets::{
    Endpoint, EndpointError, Error, Host, IpcAddr, Monitor, MonitorEvent, OptionError, Options,
    Port, ReconnectStop, SocketBase, TcpKeepalive, TrySendError,
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
/// The messaging API (`send`, `recv`, `try_send`, `try_recv`, `subscribe`, `unsubscribe`,
/// `monitor`, `unbind`, `disconnect`) comes from [`SocketBase`], which this type dereferences
/// to; it is the same code on every backend.
///
/// Dropping it closes it without waiting: connections still send what is queued within the
/// linger period in the background, while the runtime runs. [`close`](Self::close) waits for
/// that.
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
    /// system chose, `ipc://*` the path. Must run inside a compio runtime.
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
    /// messages queue for the endpoint from now on. Must run inside a compio runtime.
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
        // If this future is dropped before the tasks end, they are detached, not cancelled.
        let mut pending = Detach(self.tasks.take());
        for h in &mut pending.0 {
            let _ = h.await;
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.base.shut();
        // Dropping a compio task handle cancels the task; these must linger instead.
        drop(Detach(self.tasks.take()));
    }
}

/// Detaches task handles when dropped (dropping a compio task handle cancels the task).
struct Detach(Vec<JoinHandle<()>>);

impl Drop for Detach {
    fn drop(&mut self) {
        for h in self.0.drain(..) {
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
