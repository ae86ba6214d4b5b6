//! Listeners and connect loops for tcp and ipc; each connection gets a driver task.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use omq_sockets::net::{self, IpcFile, StdListener, Target};
use omq_sockets::{
    Connector, Core, Endpoint, EndpointCtl, EndpointState, Engine, EngineError, MonitorEvent, Step,
    TcpKeepalive,
};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use crate::driver;

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

/// Accepts connections until the socket closes or the endpoint is unbound.
pub(crate) async fn accept_loop(
    core: Arc<Core>,
    listener: Listener,
    endpoint: String,
    ctl: Arc<EndpointCtl>,
    tasks: crate::Tasks,
) {
    loop {
        let accepted = tokio::select! {
            r = accept(&listener, core.options().tcp_keepalive) => r,
            _ = ctl.until(|s| s != EndpointState::Running) => break,
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
                    let reason = tokio::select! {
                        r = run_stream(stream, &mut engine) => r,
                        // Unbind closes the connections the listener accepted, as in libzmq.
                        _ = ctl.aborted() => EngineError::SocketClosed,
                    };
                    engine.finish(&reason);
                });
            }
            // Out of descriptors and the like: back off a little rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    if let Listener::Ipc(_, path) = &listener {
        net::remove_ipc_file(path.as_ref());
    }
    core.emit(MonitorEvent::Closed { endpoint });
}

enum Stream {
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

/// Runs a connected endpoint: connects, runs each connection, waits and reconnects as the
/// [`Connector`] decides.
pub(crate) async fn connect_loop(mut c: Connector, ctl: Arc<EndpointCtl>) {
    let keepalive = c.options().tcp_keepalive;
    let mut step = c.next(Instant::now());
    loop {
        step = match step {
            Step::Wait(d) => {
                let state = c.seen_state();
                tokio::select! {
                    _ = tokio::time::sleep(d) => c.waited(d, Instant::now()),
                    // Closed or disconnected meanwhile: decide again now, not after the wait.
                    _ = ctl.until(|s| s != state) => c.next(Instant::now()),
                }
            }
            Step::Connect { give_up_at } => {
                let state = c.seen_state();
                let give_up = async {
                    match give_up_at {
                        Some(t) => tokio::time::sleep_until(t.into()).await,
                        None => std::future::pending().await,
                    }
                };
                let attempt = tokio::select! {
                    r = connect(c.endpoint(), keepalive) => r,
                    // Closing or aborted meanwhile: decide again.
                    _ = ctl.until(|s| s != state) => {
                        step = c.next(Instant::now());
                        continue;
                    }
                    _ = give_up => break,
                };
                match attempt {
                    Ok(stream) => {
                        let Ok(mut engine) = c.connected(Instant::now()) else {
                            break;
                        };
                        let reason = tokio::select! {
                            r = run_stream(stream, &mut engine) => r,
                            // Disconnect (not close: a closed socket's driver lingers).
                            _ = ctl.aborted() => EngineError::SocketClosed,
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

async fn run_stream(stream: Stream, engine: &mut Engine) -> EngineError {
    match stream {
        Stream::Tcp(s) => driver::run(s, engine).await,
        Stream::Ipc(s) => driver::run(s, engine).await,
    }
}
