//! Listeners and connect loops for tcp and ipc on compio; each connection gets a driver task.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use compio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use omq_sockets::net::{self, IpcFile, StdListener, Target};
use omq_sockets::{
    Connector, Core, Endpoint, EndpointCtl, EndpointState, Engine, EngineError, MonitorEvent, Step,
    TcpKeepalive,
};

use crate::driver;

/// The first of two futures to finish; the other one is dropped (cancelled).
pub(crate) enum Either<A, B> {
    Left(A),
    Right(B),
}

pub(crate) async fn race<A, B>(
    a: impl Future<Output = A>,
    b: impl Future<Output = B>,
) -> Either<A, B> {
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

/// A bound listener.
pub(crate) enum Listener {
    Tcp(TcpListener),
    Ipc(UnixListener, Option<IpcFile>),
}

/// The runtime's listener for a bound std listener.
pub(crate) fn listener(l: StdListener) -> io::Result<Listener> {
    Ok(match l {
        StdListener::Tcp(l) => Listener::Tcp(TcpListener::from_std(l)?),
        StdListener::Ipc(l, path) => Listener::Ipc(UnixListener::from_std(l)?, path),
        _ => return Err(io::Error::from(io::ErrorKind::Unsupported)),
    })
}

pub(crate) enum Stream {
    Tcp(TcpStream),
    Ipc(UnixStream),
}

async fn accept(l: &Listener, keepalive: TcpKeepalive) -> io::Result<Stream> {
    match l {
        Listener::Tcp(l) => {
            let (s, _) = l.accept().await?;
            net::tune_tcp(&s, keepalive)?;
            Ok(Stream::Tcp(s))
        }
        Listener::Ipc(l, _) => Ok(Stream::Ipc(l.accept().await?.0)),
    }
}

async fn connect(ep: &Endpoint, keepalive: TcpKeepalive) -> io::Result<Stream> {
    match net::target(ep)? {
        Target::Tcp(host, port) => {
            let s = TcpStream::connect((host.as_str(), port)).await?;
            net::tune_tcp(&s, keepalive)?;
            Ok(Stream::Tcp(s))
        }
        Target::IpcPath(p) => Ok(Stream::Ipc(UnixStream::connect(p).await?)),
        Target::IpcAbstract(n) => Ok(Stream::Ipc(UnixStream::from_std(net::connect_abstract(
            &n,
        )?)?)),
        _ => Err(io::Error::from(io::ErrorKind::Unsupported)),
    }
}

pub(crate) async fn run_stream(stream: Stream, engine: &mut Engine) -> EngineError {
    match stream {
        Stream::Tcp(s) => {
            let (r, w) = s.into_split();
            driver::run(r, w, engine).await
        }
        Stream::Ipc(s) => {
            let (r, w) = s.into_split();
            driver::run(r, w, engine).await
        }
    }
}

/// Accepts connections until the socket closes or the endpoint is unbound.
pub(crate) async fn accept_loop(
    core: Arc<Core>,
    listener: Listener,
    endpoint: String,
    ctl: Arc<EndpointCtl>,
    tasks: crate::Tasks,
) {
    let keepalive = core.options().tcp_keepalive;
    loop {
        let accepted = match race(
            accept(&listener, keepalive),
            ctl.until(|s| s != EndpointState::Running),
        )
        .await
        {
            Either::Left(r) => r,
            Either::Right(_) => break,
        };
        match accepted {
            Ok(stream) => {
                core.emit(MonitorEvent::Accepted {
                    endpoint: endpoint.clone(),
                });
                let core = core.clone();
                let endpoint = endpoint.clone();
                let ctl = ctl.clone();
                tasks.spawn(async move {
                    let Ok(mut engine) = Engine::new(core, None, true, endpoint, Instant::now())
                    else {
                        return;
                    };
                    // Unbind closes the connections the listener accepted, as in libzmq.
                    let reason = match race(run_stream(stream, &mut engine), ctl.aborted()).await {
                        Either::Left(r) => r,
                        Either::Right(()) => EngineError::SocketClosed,
                    };
                    engine.finish(&reason);
                });
            }
            // Out of descriptors and the like: back off a little rather than spin.
            Err(_) => sleep(Duration::from_millis(10)).await,
        }
    }
    if let Listener::Ipc(_, path) = &listener {
        net::remove_ipc_file(path.as_ref());
    }
    core.emit(MonitorEvent::Closed { endpoint });
}

/// Runs a connected endpoint: connects, runs each connection, waits and reconnects as the
/// [`Connector`] decides.
pub(crate) async fn connect_loop(mut c: Connector, ctl: Arc<EndpointCtl>) {
    let keepalive = c.options().tcp_keepalive;
    let mut step = c.next(Instant::now());
    loop {
        step = match step {
            Step::Wait(d) => {
                let state = c.seen_state();
                match race(sleep(d), ctl.until(|s| s != state)).await {
                    Either::Left(()) => c.waited(d, Instant::now()),
                    // Closed or disconnected meanwhile: decide again now, not after the wait.
                    Either::Right(_) => c.next(Instant::now()),
                }
            }
            Step::Connect { give_up_at } => {
                let state = c.seen_state();
                let give_up = async {
                    match give_up_at {
                        Some(t) => compio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                };
                // Closing or aborted meanwhile, or the linger period over: decide again.
                let interrupted = race(ctl.until(|s| s != state), give_up);
                let attempt = match race(connect(c.endpoint(), keepalive), interrupted).await {
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
                        let reason =
                            match race(run_stream(stream, &mut engine), ctl.aborted()).await {
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

/// `compio::time::sleep`, without its panic on durations that overflow `Instant` (those never
/// end).
async fn sleep(d: Duration) {
    match Instant::now().checked_add(d) {
        Some(t) => compio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
