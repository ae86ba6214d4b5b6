//! Listeners and connect loops for tcp and ipc; each connection gets a driver task.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use omq_sockets::{
    Connector, Core, Endpoint, EndpointCtl, EndpointState, Engine, EngineError, Host, IpcAddr,
    MonitorEvent, Port, Step, TcpKeepalive,
};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

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

/// Runs a connected endpoint: connects, runs each connection, waits and reconnects as the
/// [`Connector`] decides.
pub(crate) async fn connect_loop(mut c: Connector, ctl: Arc<EndpointCtl>) {
    let keepalive = c.options().tcp_keepalive;
    let mut step = c.next(Instant::now());
    loop {
        step = match step {
            Step::Wait(d) => {
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = ctl.aborted() => break,
                }
                c.waited(d, Instant::now())
            }
            Step::Connect { give_up_at } => {
                let state = ctl.state();
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
                        c.ended(engine, &reason)
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
