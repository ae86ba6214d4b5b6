//! The endpoint loops (accept, serve a connection, connect and reconnect), written once against
//! the few I/O operations a backend provides ([`Io`]).

use std::future::{Future, poll_fn};
use std::io;
use std::ops::Deref;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::base::SocketBase;
use crate::core::Core;
use crate::engine::{Engine, EngineError};
use crate::error::Error;
use crate::lifecycle::{Connector, EndpointCtl, EndpointState, Step};
use crate::monitor::MonitorEvent;
use crate::net::{IpcFile, Listener, Sockets, StdListener, Stream};
use crate::{Endpoint, Options, net};
use omq_zmtp::SocketType;

/// What a backend provides: its socket types (through [`Sockets`], from which this module gets
/// its [`Listener`]s and [`Stream`]s), a connection driver and a timer.
pub trait Io: Sockets + Clone {
    /// Runs one connection until it ends; returns why.
    fn run(&self, stream: Stream<Self>, engine: &mut Engine) -> impl Future<Output = EngineError>;

    /// Resolves at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()>;

    /// A spawned task.
    type Handle: 'static;
    /// Starts `task` on the runtime (`task.run()`).
    fn spawn(&self, task: Task<Self>) -> Self::Handle;
    /// Waits until the task has ended.
    fn join(handle: &mut Self::Handle) -> impl Future<Output = ()>;
    /// Whether the task has ended.
    fn is_finished(handle: &Self::Handle) -> bool;
    /// Lets the task run on without its handle.
    fn detach(handle: Self::Handle);
    /// Whether a runtime to spawn on is running on this thread.
    fn runtime_available() -> bool;
}

/// A task of a socket's endpoints, for [`Io::spawn`].
pub struct Task<I: Io>(TaskKind<I>);

enum TaskKind<I: Io> {
    Accept {
        io: I,
        core: Arc<Core>,
        listener: Listener<I>,
        ipc_file: Option<IpcFile>,
        endpoint: String,
        ctl: Arc<EndpointCtl>,
        tasks: Tasks<I>,
    },
    Serve(Accepted<I>),
    Connect(I, Connector, Arc<EndpointCtl>),
}

impl<I: Io> std::fmt::Debug for Task<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            TaskKind::Accept { .. } => "Task::Accept",
            TaskKind::Serve(_) => "Task::Serve",
            TaskKind::Connect(..) => "Task::Connect",
        })
    }
}

impl<I: Io> Task<I> {
    /// Runs the task to its end.
    pub async fn run(self) {
        match self.0 {
            TaskKind::Accept {
                io,
                core,
                listener,
                ipc_file,
                endpoint,
                ctl,
                tasks,
            } => {
                let spawner = io.clone();
                accept_loop(io, core, listener, ipc_file, endpoint, ctl, move |conn| {
                    tasks.push(spawner.spawn(Task(TaskKind::Serve(conn))));
                })
                .await;
            }
            TaskKind::Serve(conn) => conn.serve().await,
            TaskKind::Connect(io, c, ctl) => connect_loop(io, c, ctl).await,
        }
    }
}

/// The handles of a socket's tasks, awaited by [`Socket::close`].
struct Tasks<I: Io>(Arc<Mutex<Vec<I::Handle>>>);

impl<I: Io> Clone for Tasks<I> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<I: Io> Tasks<I> {
    fn push(&self, h: I::Handle) {
        let mut v = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        v.retain(|h| !I::is_finished(h));
        v.push(h);
    }

    fn take(&self) -> Detach<I> {
        Detach(std::mem::take(
            &mut self.0.lock().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// Task handles that are detached when dropped (some runtimes cancel a task whose handle is
/// dropped; a socket's tasks must linger instead).
struct Detach<I: Io>(Vec<I::Handle>);

impl<I: Io> Drop for Detach<I> {
    fn drop(&mut self) {
        for h in self.0.drain(..) {
            I::detach(h);
        }
    }
}

/// A ZeroMQ socket on the backend `I`. Each backend names it `Socket`.
///
/// The messaging API (`send`, `recv`, `try_send`, `try_recv`, `subscribe`, `unsubscribe`,
/// `monitor`, `unbind`, `disconnect`) comes from [`SocketBase`], which this type dereferences
/// to. Dropping the socket closes it without waiting: connections still send what is queued
/// within the linger period in the background. [`close`](Self::close) waits for that.
pub struct Socket<I: Io> {
    base: SocketBase,
    io: I,
    tasks: Tasks<I>,
}

impl<I: Io> std::fmt::Debug for Socket<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl<I: Io> Deref for Socket<I> {
    type Target = SocketBase;

    fn deref(&self) -> &SocketBase {
        &self.base
    }
}

impl<I: Io + Default> Socket<I> {
    /// A new socket of type `socket_type`. Invalid options are an error here.
    pub fn new(socket_type: SocketType, options: Options) -> Result<Self, Error> {
        Ok(Self {
            base: SocketBase::new(socket_type, options)?,
            io: I::default(),
            tasks: Tasks(Arc::new(Mutex::new(Vec::new()))),
        })
    }
}

impl<I: Io> Socket<I> {
    fn check_runtime(endpoint: &str) -> Result<(), Error> {
        if endpoint.starts_with("inproc://") || I::runtime_available() {
            Ok(())
        } else {
            Err(Error::Io(io::Error::other(
                "no async runtime of this backend is running on this thread",
            )))
        }
    }

    /// Binds to `endpoint` and returns it resolved: `tcp://127.0.0.1:0` reports the port the
    /// system chose, `ipc://*` the path. Must run inside the backend's runtime.
    pub async fn bind(&self, endpoint: &str) -> Result<Endpoint, Error> {
        Self::check_runtime(endpoint)?;
        self.base.bind_with(endpoint, |listener, bound, ctl| {
            let (ipc_file, listener) = match listener {
                StdListener::Ipc(l, file) => (file, StdListener::Ipc(l, None)),
                other => (None, other),
            };
            let listener = Listener::from_std(listener)?;
            self.tasks.push(self.io.spawn(Task(TaskKind::Accept {
                io: self.io.clone(),
                core: self.base.core().clone(),
                listener,
                ipc_file,
                endpoint: bound.to_string(),
                ctl,
                tasks: self.tasks.clone(),
            })));
            Ok(())
        })
    }

    /// Connects to `endpoint`. Returns at once: the connection is made (and remade after
    /// failures, every reconnect interval) in the background, and unless `immediate` is set,
    /// messages queue for the endpoint from now on. Must run inside the backend's runtime.
    pub async fn connect(&self, endpoint: &str) -> Result<(), Error> {
        Self::check_runtime(endpoint)?;
        self.base.connect_with(endpoint, |connector, ctl| {
            self.tasks.push(self.io.spawn(Task(TaskKind::Connect(
                self.io.clone(),
                connector,
                ctl,
            ))));
        })
    }

    /// Closes the socket and waits until every connection has sent what was queued, within the
    /// linger period (`Options::linger`; `None`, the default, waits as long as it takes, as
    /// libzmq does). If this future is dropped first, the tasks go on in the background.
    pub async fn close(self) {
        self.base.shut();
        let mut pending = self.tasks.take();
        for h in &mut pending.0 {
            I::join(h).await;
        }
    }
}

impl<I: Io> Drop for Socket<I> {
    fn drop(&mut self) {
        self.base.shut();
        drop(self.tasks.take());
    }
}

/// Which of two futures finished first.
#[derive(Debug)]
pub enum Either<A, B> {
    /// The first.
    Left(A),
    /// The second.
    Right(B),
}

/// Polls both futures and returns the first output; the other future is dropped (cancelled).
pub async fn race<A, B>(a: impl Future<Output = A>, b: impl Future<Output = B>) -> Either<A, B> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}

/// Polls both futures until both are done; their outputs in order.
pub async fn join<A, B>(a: impl Future<Output = A>, b: impl Future<Output = B>) -> (A, B) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        match (ra.take(), rb.take()) {
            (Some(a), Some(b)) => Poll::Ready((a, b)),
            (a, b) => {
                (ra, rb) = (a, b);
                Poll::Pending
            }
        }
    })
    .await
}

/// Sleeps for `d`; a duration past what `Instant` can hold never ends.
pub async fn sleep<I: Io>(io: &I, d: Duration) {
    match Instant::now().checked_add(d) {
        Some(t) => io.sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// One accepted connection, to be spawned by the backend as a task: [`Accepted::serve`].
pub struct Accepted<I: Io> {
    io: I,
    core: Arc<Core>,
    stream: Stream<I>,
    endpoint: String,
    peer_ip: Option<std::net::IpAddr>,
    ctl: Arc<EndpointCtl>,
}

impl<I: Io> std::fmt::Debug for Accepted<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl<I: Io> Accepted<I> {
    /// Runs the connection until it ends, or until its listener is unbound (which closes the
    /// connections it accepted, as in libzmq).
    pub async fn serve(self) {
        let Ok(mut engine) = Engine::new(self.core, None, true, self.endpoint, Instant::now())
        else {
            return;
        };
        engine.set_peer_ip(self.peer_ip);
        let reason = match race(self.io.run(self.stream, &mut engine), self.ctl.aborted()).await {
            Either::Left(r) => r,
            Either::Right(()) => EngineError::SocketClosed,
        };
        engine.finish(&reason);
    }
}

/// Accepts connections until the socket closes or the endpoint is unbound, handing each to
/// `spawn` (which starts [`Accepted::serve`] as a task); then removes the ipc socket file, if
/// any, and reports the listener closed.
pub async fn accept_loop<I: Io>(
    io: I,
    core: Arc<Core>,
    listener: Listener<I>,
    ipc_file: Option<IpcFile>,
    endpoint: String,
    ctl: Arc<EndpointCtl>,
    mut spawn: impl FnMut(Accepted<I>),
) {
    let keepalive = core.options().tcp_keepalive;
    loop {
        let accepted = match race(
            listener.accept(keepalive),
            ctl.until(|s| s != EndpointState::Running),
        )
        .await
        {
            Either::Left(r) => r,
            Either::Right(_) => break,
        };
        match accepted {
            Ok((stream, peer_ip)) => {
                core.emit(MonitorEvent::Accepted {
                    endpoint: endpoint.clone(),
                });
                spawn(Accepted {
                    io: io.clone(),
                    core: core.clone(),
                    stream,
                    endpoint: endpoint.clone(),
                    peer_ip,
                    ctl: ctl.clone(),
                });
            }
            // Out of descriptors and the like: back off a little rather than spin.
            Err(_) => sleep(&io, Duration::from_millis(10)).await,
        }
    }
    drop(listener);
    net::remove_ipc_file(ipc_file.as_ref());
    core.emit(MonitorEvent::Closed { endpoint });
}

/// Runs a connected endpoint: connects, runs each connection, waits and reconnects as the
/// [`Connector`] decides; every wait is raced with the endpoint's control signal.
pub async fn connect_loop<I: Io>(io: I, mut c: Connector, ctl: Arc<EndpointCtl>) {
    let keepalive = c.options().tcp_keepalive;
    let mut step = c.next(Instant::now());
    loop {
        step = match step {
            Step::Wait(d) => {
                let state = c.seen_state();
                match race(sleep(&io, d), ctl.until(|s| s != state)).await {
                    Either::Left(()) => c.waited(d, Instant::now()),
                    // Closed or disconnected meanwhile: decide again now, not after the wait.
                    Either::Right(_) => c.next(Instant::now()),
                }
            }
            Step::Connect { give_up_at } => {
                let state = c.seen_state();
                let give_up = async {
                    match give_up_at {
                        Some(t) => io.sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                };
                // Closing or aborted meanwhile, or the linger period over: decide again.
                let interrupted = race(ctl.until(|s| s != state), give_up);
                let connect = async {
                    match net::target(c.endpoint()) {
                        Ok(t) => Stream::connect(t, keepalive).await,
                        Err(e) => Err(e),
                    }
                };
                let attempt = match race(connect, interrupted).await {
                    Either::Left(r) => r,
                    Either::Right(Either::Left(_)) => {
                        step = c.next(Instant::now());
                        continue;
                    }
                    Either::Right(Either::Right(())) => break,
                };
                match attempt {
                    Ok(stream) => {
                        let Ok(mut engine) = c.connected(Instant::now()) else {
                            break;
                        };
                        // Disconnect (not close: a closed socket's driver lingers).
                        let reason = match race(io.run(stream, &mut engine), ctl.aborted()).await {
                            Either::Left(r) => r,
                            Either::Right(()) => EngineError::SocketClosed,
                        };
                        c.ended(engine, &reason, Instant::now())
                    }
                    Err(e) => c.connect_failed(&e),
                }
            }
            _ => break,
        };
    }
    c.finish();
}
