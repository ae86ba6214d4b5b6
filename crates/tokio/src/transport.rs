//! Listeners and connect loops for tcp and ipc; each connection gets a driver task.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use omq_sockets::{
    Core, Endpoint, Engine, EngineError, Host, IpcAddr, MonitorEvent, PeerPipes, Port, TcpKeepalive,
};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::watch;

use crate::driver;

/// A bound listener.
pub(crate) enum Listener {
    Tcp(TcpListener),
    Ipc(UnixListener, Option<PathBuf>),
}

/// Binds `ep`, returning the listener and the resolved endpoint.
pub(crate) async fn bind(ep: &Endpoint, core: &Core) -> io::Result<(Listener, Endpoint)> {
    match ep {
        Endpoint::Tcp { host, port } => {
            let port = match port {
                Port::Fixed(p) => *p,
                _ => 0,
            };
            let addr: SocketAddr = match host {
                Host::Any if core.options().ipv6 => (std::net::Ipv6Addr::UNSPECIFIED, port).into(),
                Host::Any => (std::net::Ipv4Addr::UNSPECIFIED, port).into(),
                Host::Ip(ip) => (*ip, port).into(),
                Host::Name(name) => tokio::net::lookup_host((name.as_str(), port))
                    .await?
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host not found"))?,
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "unsupported host",
                    ));
                }
            };
            let l = TcpListener::bind(addr).await?;
            let local = l.local_addr()?;
            let resolved = Endpoint::Tcp {
                host: Host::Ip(local.ip()),
                port: Port::Fixed(local.port()),
            };
            Ok((Listener::Tcp(l), resolved))
        }
        Endpoint::Ipc(addr) => {
            let (l, path, resolved) = match addr {
                IpcAddr::Path(p) => {
                    // A file left behind by an earlier run would make bind fail; libzmq removes it.
                    let _ = std::fs::remove_file(p);
                    (UnixListener::bind(p)?, Some(p.clone()), addr.clone())
                }
                IpcAddr::Any => {
                    let p = fresh_ipc_path();
                    let _ = std::fs::remove_file(&p);
                    (UnixListener::bind(&p)?, Some(p.clone()), IpcAddr::Path(p))
                }
                IpcAddr::Abstract(name) => (bind_abstract(name)?, None, addr.clone()),
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "unsupported ipc address",
                    ));
                }
            };
            Ok((Listener::Ipc(l, path), Endpoint::Ipc(resolved)))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a network endpoint",
        )),
    }
}

fn fresh_ipc_path() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "omq-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

#[cfg(target_os = "linux")]
fn bind_abstract(name: &str) -> io::Result<UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let l = std::os::unix::net::UnixListener::bind_addr(&addr)?;
    l.set_nonblocking(true)?;
    UnixListener::from_std(l)
}

#[cfg(not(target_os = "linux"))]
fn bind_abstract(_: &str) -> io::Result<UnixListener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract ipc names are Linux-only",
    ))
}

#[cfg(target_os = "linux")]
async fn connect_abstract(name: &str) -> io::Result<UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    // A local connect does not wait for the peer to accept.
    let s = std::os::unix::net::UnixStream::connect_addr(&addr)?;
    s.set_nonblocking(true)?;
    UnixStream::from_std(s)
}

#[cfg(not(target_os = "linux"))]
async fn connect_abstract(_: &str) -> io::Result<UnixStream> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract ipc names are Linux-only",
    ))
}

/// Accepts connections until the socket closes or the endpoint is unbound.
pub(crate) async fn accept_loop(
    core: Arc<Core>,
    listener: Listener,
    endpoint: String,
    mut stop: watch::Receiver<u8>,
    tasks: crate::Tasks,
) {
    loop {
        let accepted = tokio::select! {
            r = accept(&listener, core.options().tcp_keepalive) => r,
            _ = until(&mut stop, |s| s != crate::RUN) => break,
        };
        match accepted {
            Ok(stream) => {
                core.emit(MonitorEvent::Accepted {
                    endpoint: endpoint.clone(),
                });
                let core = core.clone();
                let endpoint = endpoint.clone();
                let mut stop = stop.clone();
                tasks.spawn(async move {
                    let Ok(mut engine) = Engine::new(core, None, true, endpoint, Instant::now())
                    else {
                        return;
                    };
                    let reason = tokio::select! {
                        r = async {
                            match stream {
                                Stream::Tcp(s) => driver::run(s, &mut engine).await,
                                Stream::Ipc(s) => driver::run(s, &mut engine).await,
                            }
                        } => r,
                        // Unbind closes the connections the listener accepted, as in libzmq.
                        _ = until(&mut stop, |s| s == crate::ABORT) => EngineError::SocketClosed,
                    };
                    engine.finish(&reason);
                });
            }
            // Out of descriptors and the like: back off a little rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    if let Listener::Ipc(_, Some(path)) = &listener {
        let _ = std::fs::remove_file(path);
    }
    core.emit(MonitorEvent::Closed { endpoint });
}

enum Stream {
    Tcp(TcpStream),
    Ipc(UnixStream),
}

/// TCP_NODELAY, and keepalive as the socket's options say.
fn tune_tcp(s: &TcpStream, keepalive: TcpKeepalive) -> io::Result<()> {
    s.set_nodelay(true)?;
    let sock = socket2::SockRef::from(s);
    match keepalive {
        TcpKeepalive::Off => sock.set_keepalive(false)?,
        TcpKeepalive::On {
            idle,
            interval,
            count,
        } => {
            let mut k = socket2::TcpKeepalive::new();
            if let Some(d) = idle {
                k = k.with_time(d);
            }
            if let Some(d) = interval {
                k = k.with_interval(d);
            }
            if let Some(n) = count {
                k = k.with_retries(n);
            }
            sock.set_tcp_keepalive(&k)?;
        }
        _ => {}
    }
    Ok(())
}

async fn accept(l: &Listener, keepalive: TcpKeepalive) -> io::Result<Stream> {
    match l {
        Listener::Tcp(l) => {
            let (s, _) = l.accept().await?;
            tune_tcp(&s, keepalive)?;
            Ok(Stream::Tcp(s))
        }
        Listener::Ipc(l, _) => Ok(Stream::Ipc(l.accept().await?.0)),
    }
}

async fn connect(ep: &Endpoint, keepalive: TcpKeepalive) -> io::Result<Stream> {
    match ep {
        Endpoint::Tcp { host, port } => {
            let Port::Fixed(port) = *port else {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "no port"));
            };
            let s = match host {
                Host::Ip(ip) => TcpStream::connect((*ip, port)).await?,
                Host::Name(n) => TcpStream::connect((n.as_str(), port)).await?,
                _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "wildcard host")),
            };
            tune_tcp(&s, keepalive)?;
            Ok(Stream::Tcp(s))
        }
        Endpoint::Ipc(IpcAddr::Path(p)) => Ok(Stream::Ipc(UnixStream::connect(p).await?)),
        Endpoint::Ipc(IpcAddr::Abstract(n)) => Ok(Stream::Ipc(connect_abstract(n).await?)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a network endpoint",
        )),
    }
}

/// Connects, runs the connection, and reconnects with backoff until the endpoint is
/// disconnected, a reconnect-stop condition holds, or the socket is closed and nothing is left
/// to deliver within the linger period. The pipes created at connect time (unless `immediate`)
/// live across the connections.
pub(crate) async fn connect_loop(
    core: Arc<Core>,
    ep: Endpoint,
    mut pipes: Option<PeerPipes>,
    mut stop: watch::Receiver<u8>,
) {
    let endpoint = ep.to_string();
    let opts = core.options().clone();
    let mut interval = opts.reconnect_interval;
    // Once the socket is closed: until when queued messages may still be delivered.
    let mut linger_end: Option<Option<tokio::time::Instant>> = None;
    let stop_reconnecting = |core: &Core| {
        core.emit(MonitorEvent::ReconnectStopped {
            endpoint: endpoint.clone(),
        });
    };
    loop {
        let state = *stop.borrow_and_update();
        if state == crate::ABORT {
            break;
        }
        if state == crate::CLOSE || core.is_closed() {
            let queued = pipes.as_mut().is_some_and(PeerPipes::has_queued);
            let end = *linger_end.get_or_insert_with(|| {
                opts.linger
                    .and_then(|l| tokio::time::Instant::now().checked_add(l))
            });
            if !queued || end.is_some_and(|e| e <= tokio::time::Instant::now()) {
                break;
            }
        }
        let linger_over = async {
            match linger_end {
                Some(Some(end)) => tokio::time::sleep_until(end).await,
                _ => std::future::pending().await,
            }
        };
        let attempt = tokio::select! {
            r = connect(&ep, opts.tcp_keepalive) => r,
            // Closed: re-check what is queued; disconnected: stop.
            s = until(&mut stop, |s| s != state) => if s == crate::ABORT { break } else { continue },
            _ = linger_over => break,
        };
        match attempt {
            Ok(stream) => {
                core.emit(MonitorEvent::Connected {
                    endpoint: endpoint.clone(),
                });
                let Ok(mut engine) = Engine::new(
                    core.clone(),
                    pipes.take(),
                    false,
                    endpoint.clone(),
                    Instant::now(),
                ) else {
                    break;
                };
                let reason = tokio::select! {
                    r = async {
                        match stream {
                            Stream::Tcp(s) => driver::run(s, &mut engine).await,
                            Stream::Ipc(s) => driver::run(s, &mut engine).await,
                        }
                    } => r,
                    // Disconnect (not close: a closed socket's driver lingers).
                    _ = until(&mut stop, |s| s == crate::ABORT) => EngineError::SocketClosed,
                };
                let was_established = engine.is_established();
                pipes = engine.finish(&reason);
                // A refused peer (a second PAIR peer, a routing id in use) is retried, as libzmq
                // does: the situation may have changed by the next attempt.
                if matches!(reason, EngineError::SocketClosed) || core.is_closed() {
                    break;
                }
                if was_established {
                    interval = opts.reconnect_interval;
                }
                if (opts.reconnect_stop.after_disconnect && was_established)
                    || (opts.reconnect_stop.handshake_failed && !was_established)
                {
                    stop_reconnecting(&core);
                    break;
                }
            }
            Err(e) => {
                core.emit(MonitorEvent::ConnectDelayed {
                    endpoint: endpoint.clone(),
                    reason: e.to_string(),
                });
                if opts.reconnect_stop.conn_refused && e.kind() == io::ErrorKind::ConnectionRefused
                {
                    stop_reconnecting(&core);
                    break;
                }
            }
        }
        let Some(wait) = interval else {
            break;
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = until(&mut stop, |s| s == crate::ABORT) => break,
        }
        core.emit(MonitorEvent::ConnectRetried {
            endpoint: endpoint.clone(),
            interval: wait,
        });
        if let Some(max) = opts.reconnect_interval_max {
            interval = Some(wait.saturating_mul(2).min(max));
        }
    }
    if let Some(p) = pipes {
        core.detach(p.id());
    }
}

/// Resolves once the endpoint's state satisfies `f`; never, if the socket's handle is gone
/// without saying (its drop sets the state first).
async fn until(stop: &mut watch::Receiver<u8>, f: impl Fn(u8) -> bool) -> u8 {
    loop {
        let s = *stop.borrow_and_update();
        if f(s) {
            return s;
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
