//! The part of the user-facing socket that is the same on every backend.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use omq_zmtp::{Message, SocketType};

use crate::core::{Core, MessageWithPeer};
use crate::error::{Error, TrySendError};
use crate::lifecycle::{Connector, EndpointCtl, Endpoints};
use crate::monitor::{Monitor, MonitorEvent};
use crate::spin::{Spin, SpinWindow};
use crate::{Endpoint, Options};

/// A socket's runtime-independent half: the messaging API, subscriptions, the monitor,
/// `unbind`/`disconnect`, and the preparation of `bind`/`connect` (the backend then starts the
/// listener or connect loop that a [`Bind`] or [`Connect`] asks for).
///
/// A backend's `Socket` holds one and dereferences to it, so the messaging API is the same code
/// on every backend.
#[derive(Debug)]
pub struct SocketBase {
    core: Arc<Core>,
    endpoints: Endpoints,
    /// Sends in a row that completed without waiting.
    streak: AtomicU32,
    /// After this many, `send` yields once to the runtime: for sockets that drop at the HWM
    /// instead of waiting, half the send HWM, at most [`MAX_SEND_STREAK`].
    streak_limit: u32,
    /// How long a receive polls before it sleeps (`recv_spin`).
    spin: SpinWindow,
}

/// The most sends in a row, without waiting, before `send` yields once to the runtime.
///
/// The send of a PUB, XPUB or ROUTER socket never waits: at the HWM it drops. On a
/// single-threaded runtime the connection tasks that write the messages out run only when the
/// sender yields, so a tight send loop would fill every pipe before the first byte left: the
/// receivers sit idle meanwhile, and the socket drops what is over its HWM although its peers
/// keep up. Yielding after half the HWM lets the connections drain in time; the cap keeps
/// write batches large when the HWM is huge (shorter streaks cost throughput: 256 gave
/// 4.5 M msg/s to 4 subscribers where 4096 gave 6.6 M). Sockets whose send waits at the HWM
/// yield there by themselves.
pub const MAX_SEND_STREAK: u32 = 4096;

/// The future of [`SocketBase::send`]: resolves once the message is queued for a peer (or
/// dropped, for the socket types that drop at the high-water mark).
///
/// A named type rather than an `async fn`'s, so that the message is stored once, in the
/// future, and handed from there to a peer's pipe: the send path of small messages is mostly
/// copies of them.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct SendFuture<'a> {
    base: &'a SocketBase,
    /// The message, until a peer's pipe takes it.
    msg: Option<Message>,
    /// This send has yielded once for the streak already.
    yielded: bool,
}

impl Future for SendFuture<'_> {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let base = this.base;
        if base.streak_limit == u32::MAX {
            return base.core.poll_send(cx, &mut this.msg);
        }
        // A count, not a lock: concurrent senders may lose an increment, which only moves the
        // next yield a little (a load and a store, no read-modify-write per send).
        let streak = base.streak.load(Ordering::Relaxed);
        if !this.yielded && streak >= base.streak_limit {
            // Let the connection tasks run; the message is not sent yet, so a future dropped
            // here loses nothing.
            this.yielded = true;
            base.streak.store(0, Ordering::Relaxed);
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let r = base.core.poll_send(cx, &mut this.msg);
        let next = if r.is_pending() { 0 } else { streak + 1 };
        base.streak.store(next, Ordering::Relaxed);
        r
    }
}

/// The future of [`SocketBase::recv`]: the next message. Cancel safe.
///
/// A named type rather than an `async fn`'s, so that its `poll` is one small function the
/// compiler inlines into the caller's: the message comes out of it by value, and every layer
/// left in between copies it (with the `async fn`, receiving an 8-byte message over tcp took
/// 36 more instructions).
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct RecvFuture<'a> {
    base: &'a SocketBase,
    spin: Spin,
}

impl Future for RecvFuture<'_> {
    type Output = Result<Message, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.base.poll_spinning(&mut this.spin, cx, Core::recv_poll)
    }
}

/// What a backend does for [`SocketBase::prepare_bind`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Bind {
    /// Done (inproc).
    Done(Endpoint),
    /// Run an accept loop on this listener until `ctl` says otherwise.
    #[cfg(unix)]
    Listen {
        /// The bound, non-blocking listener.
        listener: crate::net::StdListener,
        /// The endpoint as bound (the resolved port or path).
        bound: Endpoint,
        /// The listener's control signal.
        ctl: Arc<EndpointCtl>,
    },
}

/// What a backend does for [`SocketBase::prepare_connect`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Connect {
    /// Done (inproc).
    Done,
    /// Run a connect loop with this policy until `ctl` says otherwise.
    Run(Box<Connector>, Arc<EndpointCtl>),
}

impl SocketBase {
    /// A new socket of type `socket_type`. Invalid options are an error here.
    pub fn new(socket_type: SocketType, options: Options) -> Result<Self, Error> {
        Ok(Self {
            streak_limit: match (socket_type, options.send_hwm / 2) {
                // Sockets whose send waits at the HWM interleave with their connections by
                // themselves, in batches as large as the HWM allows.
                (SocketType::Pub | SocketType::XPub | SocketType::Router, 0) => MAX_SEND_STREAK,
                (SocketType::Pub | SocketType::XPub | SocketType::Router, half) => {
                    u32::try_from(half).map_or(MAX_SEND_STREAK, |h| h.min(MAX_SEND_STREAK))
                }
                _ => u32::MAX,
            },
            spin: SpinWindow::new(options.recv_spin, socket_type),
            core: Core::new(socket_type, options)?,
            endpoints: Endpoints::new(),
            streak: AtomicU32::new(0),
        })
    }

    /// The socket's core, for the backend's tasks.
    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// The socket type.
    pub fn socket_type(&self) -> SocketType {
        self.core.socket_type()
    }

    /// The options the socket was created with.
    pub fn options(&self) -> &Options {
        self.core.options()
    }

    /// Parses and binds `endpoint`: inproc at once; tcp and ipc to a std listener that the
    /// backend serves. Reports listening or bind failed on the monitor.
    pub fn prepare_bind(&self, endpoint: &str) -> Result<Bind, Error> {
        let ep: Endpoint = endpoint.parse()?;
        if self.core.is_closed() {
            return Err(Error::Closed);
        }
        if let Endpoint::Inproc(name) = &ep {
            self.endpoints.bind_inproc(&self.core, &ep, name)?;
            return Ok(Bind::Done(ep));
        }
        #[cfg(unix)]
        {
            let (listener, bound) = match crate::net::bind(&ep, self.core.options()) {
                Ok(r) => r,
                Err(e) => {
                    self.core.emit(MonitorEvent::BindFailed {
                        endpoint: endpoint.to_owned(),
                        reason: e.to_string(),
                    });
                    return Err(e.into());
                }
            };
            self.core.emit(MonitorEvent::Listening {
                endpoint: bound.to_string(),
            });
            let ctl = self.endpoints.add_listener(&bound);
            Ok(Bind::Listen {
                listener,
                bound,
                ctl,
            })
        }
        #[cfg(not(unix))]
        Err(Error::NotSupported)
    }

    /// Parses `endpoint` and prepares its connection: inproc at once; tcp and ipc as a
    /// [`Connector`] for the backend's connect loop (messages queue for it from now on, unless
    /// `immediate` is set).
    pub fn prepare_connect(&self, endpoint: &str) -> Result<Connect, Error> {
        let ep: Endpoint = endpoint.parse()?;
        ep.check_connect()?;
        if let Endpoint::Inproc(name) = &ep {
            self.endpoints.connect_inproc(&self.core, &ep, name)?;
            return Ok(Connect::Done);
        }
        let ctl = EndpointCtl::new();
        let (connector, peer) = Connector::new(self.core.clone(), ep.clone(), ctl.clone())?;
        self.endpoints.add_connect(&ep, ctl.clone(), peer);
        Ok(Connect::Run(Box::new(connector), ctl))
    }

    /// `bind` for a backend: [`prepare_bind`](Self::prepare_bind), then `serve` starts the
    /// accept loop on the listener (converting it to the runtime's type). If `serve` fails, the
    /// endpoint is unbound again.
    #[cfg(unix)]
    pub fn bind_with(
        &self,
        endpoint: &str,
        serve: impl FnOnce(crate::net::StdListener, &Endpoint, Arc<EndpointCtl>) -> std::io::Result<()>,
    ) -> Result<Endpoint, Error> {
        match self.prepare_bind(endpoint)? {
            Bind::Done(ep) => Ok(ep),
            Bind::Listen {
                listener,
                bound,
                ctl,
            } => match serve(listener, &bound, ctl) {
                Ok(()) => Ok(bound),
                Err(e) => {
                    let _ = self.endpoints.forget(&self.core, &bound.to_string(), true);
                    Err(e.into())
                }
            },
        }
    }

    /// `connect` for a backend: [`prepare_connect`](Self::prepare_connect), then `run` starts
    /// the connect loop.
    pub fn connect_with(
        &self,
        endpoint: &str,
        run: impl FnOnce(Connector, Arc<EndpointCtl>),
    ) -> Result<(), Error> {
        if let Connect::Run(connector, ctl) = self.prepare_connect(endpoint)? {
            run(*connector, ctl);
        }
        Ok(())
    }

    /// Stops listening on a bound endpoint (as `bind` returned it) and closes the connections
    /// it accepted.
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
    pub fn send(&self, msg: impl Into<Message>) -> SendFuture<'_> {
        SendFuture {
            base: self,
            msg: Some(msg.into()),
            yielded: false,
        }
    }

    /// Sends a message if a peer has room now; otherwise hands it back in
    /// [`TrySendError::Full`].
    pub fn try_send(&self, msg: impl Into<Message>) -> Result<(), TrySendError> {
        self.core.try_send(msg.into())
    }

    /// Receives the next message, waiting for one. Cancel safe: a dropped future loses nothing.
    ///
    /// On the request-reply socket types, a receive that finds nothing polls again for a while
    /// instead of letting its thread sleep, while messages keep arriving within that window
    /// (see [`Options::recv_spin`]).
    pub fn recv(&self) -> RecvFuture<'_> {
        RecvFuture {
            base: self,
            spin: Spin::default(),
        }
    }

    /// Receives the next message with what its sender's handshake established: the peer's
    /// socket type, identity and metadata, and its authentication (PLAIN user name, CURVE public
    /// key, ZAP user id and metadata), which libzmq offers as message properties such as
    /// `User-Id`. `None` for inproc peers. Cancel safe, as [`recv`](Self::recv).
    ///
    /// An endpoint this socket connected to keeps its queue across reconnects: messages still
    /// queued from the previous connection when the next one completes its handshake are
    /// reported with the new connection's information. Accepted connections each have their
    /// own queue, so a server's view of its clients is exact.
    pub async fn recv_with_peer(&self) -> Result<MessageWithPeer, Error> {
        let mut spin = Spin::default();
        poll_fn(|cx| self.poll_spinning(&mut spin, cx, Core::recv_poll_with_peer)).await
    }

    /// One poll of a receive through `poll`: within the spin window a look that registers
    /// nothing (the task wakes itself if it finds nothing), else a registered poll (see
    /// `spin.rs`).
    #[inline]
    fn poll_spinning<T>(
        &self,
        spin: &mut Spin,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&Core, Option<&mut Context<'_>>) -> Poll<T>,
    ) -> Poll<T> {
        let spinning = spin.turn(&self.spin);
        let r = poll(&self.core, if spinning { None } else { Some(cx) });
        spin.polled(&self.spin, cx, r.is_pending(), spinning);
        r
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

    /// Closes the socket without waiting: every connection is told to send what is queued
    /// within the linger period, and every endpoint moves to closing. The backend's `close`
    /// then waits for its tasks.
    pub fn shut(&self) {
        self.core.close();
        self.endpoints.close_all(&self.core);
    }
}
