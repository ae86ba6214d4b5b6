//! Transport set-up shared by the backends: binding std listeners for `tcp://` and `ipc://`
//! endpoints (a backend converts them with its `from_std`), where to connect, and socket
//! options. Binding is synchronous, as in libzmq; connecting is the backend's (it is async).

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Endpoint, Host, IpcAddr, Options, Port, TcpKeepalive};

/// A bound, non-blocking std listener.
#[derive(Debug)]
#[non_exhaustive]
pub enum StdListener {
    /// tcp.
    Tcp(TcpListener),
    /// ipc, with the socket file to remove when the listener closes (`None`: abstract name).
    #[cfg(unix)]
    Ipc(std::os::unix::net::UnixListener, Option<IpcFile>),
}

/// The socket file of an ipc listener: removed when the listener closes, unless another socket
/// has bound the same path since. The file is identified by device, inode and creation time: a
/// file created right after another was removed often gets its inode number (ext4), so the
/// inode alone would let a closing listener remove its successor's file.
#[derive(Debug)]
pub struct IpcFile {
    path: PathBuf,
    id: Option<FileId>,
}

/// Device, inode and (where the file system records it) creation time.
type FileId = (u64, u64, Option<std::time::SystemTime>);

impl IpcFile {
    fn new(path: PathBuf) -> Self {
        let id = file_id(&path);
        Self { path, id }
    }

    /// Removes the file if it is still ours.
    pub fn remove(&self) {
        if self.id.is_some() && file_id(&self.path) == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.created().ok()))
}

/// Binds `ep` and returns the listener (non-blocking) and the endpoint as bound: the port the
/// system chose for `tcp://host:0`, the path chosen for `ipc://*`.
///
/// A stale ipc socket file is removed first, as libzmq does.
pub fn bind(ep: &Endpoint, options: &Options) -> io::Result<(StdListener, Endpoint)> {
    match ep {
        Endpoint::Tcp { host, port } => {
            let port = match port {
                Port::Fixed(p) => *p,
                _ => 0,
            };
            let addr: SocketAddr = match host {
                Host::Any if options.ipv6 => (std::net::Ipv6Addr::UNSPECIFIED, port).into(),
                Host::Any => (std::net::Ipv4Addr::UNSPECIFIED, port).into(),
                Host::Ip(ip) => (*ip, port).into(),
                Host::Name(name) => (name.as_str(), port)
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host not found"))?,
            };
            let l = TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            let local = l.local_addr()?;
            let bound = Endpoint::Tcp {
                host: Host::Ip(local.ip()),
                port: Port::Fixed(local.port()),
            };
            Ok((StdListener::Tcp(l), bound))
        }
        #[cfg(unix)]
        Endpoint::Ipc(addr) => {
            use std::os::unix::net::UnixListener;
            let (l, path, bound) = match addr {
                IpcAddr::Path(p) => {
                    let _ = std::fs::remove_file(p);
                    (UnixListener::bind(p)?, Some(p.clone()), addr.clone())
                }
                IpcAddr::Any => {
                    let p = fresh_ipc_path();
                    let _ = std::fs::remove_file(&p);
                    (UnixListener::bind(&p)?, Some(p.clone()), IpcAddr::Path(p))
                }
                IpcAddr::Abstract(name) => (bind_abstract(name)?, None, addr.clone()),
            };
            let path = path.map(IpcFile::new);
            l.set_nonblocking(true)?;
            Ok((StdListener::Ipc(l, path), Endpoint::Ipc(bound)))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a tcp or ipc endpoint",
        )),
    }
}

/// Removes a listener's ipc socket file (when it closes), as libzmq does, unless another
/// socket has bound the path since.
pub fn remove_ipc_file(file: Option<&IpcFile>) {
    if let Some(f) = file {
        f.remove();
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
fn bind_abstract(name: &str) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    std::os::unix::net::UnixListener::bind_addr(&addr)
}

#[cfg(all(unix, not(target_os = "linux")))]
fn bind_abstract(_: &str) -> io::Result<std::os::unix::net::UnixListener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract ipc names are Linux-only",
    ))
}

/// Connects to an abstract ipc name (a local connect that does not wait for the peer to
/// accept); the stream is non-blocking.
#[cfg(target_os = "linux")]
pub fn connect_abstract(name: &str) -> io::Result<std::os::unix::net::UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let s = std::os::unix::net::UnixStream::connect_addr(&addr)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Connects to an abstract ipc name: Linux only.
#[cfg(all(unix, not(target_os = "linux")))]
pub fn connect_abstract(_: &str) -> io::Result<std::os::unix::net::UnixStream> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract ipc names are Linux-only",
    ))
}

/// Where a connect goes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A tcp host (an address or a name to resolve) and port.
    Tcp(String, u16),
    /// An ipc socket file.
    IpcPath(PathBuf),
    /// A Linux abstract ipc name (see [`connect_abstract`]).
    IpcAbstract(String),
}

/// Where to connect for `ep` (which passed `check_connect`).
pub fn target(ep: &Endpoint) -> io::Result<Target> {
    let invalid = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
    match ep {
        Endpoint::Tcp {
            host,
            port: Port::Fixed(port),
        } => match host {
            Host::Ip(ip) => Ok(Target::Tcp(ip.to_string(), *port)),
            Host::Name(n) => Ok(Target::Tcp(n.clone(), *port)),
            _ => Err(invalid("wildcard host")),
        },
        Endpoint::Ipc(IpcAddr::Path(p)) => Ok(Target::IpcPath(p.clone())),
        Endpoint::Ipc(IpcAddr::Abstract(n)) => Ok(Target::IpcAbstract(n.clone())),
        _ => Err(invalid("not a connectable tcp or ipc endpoint")),
    }
}

/// TCP_NODELAY, and keepalive as the options say (socket2: tokio and compio expose neither
/// the keepalive idle time, interval nor count).
pub fn tune_tcp(socket: &impl AsFd, keepalive: TcpKeepalive) -> io::Result<()> {
    let sock = socket2::SockRef::from(socket);
    sock.set_tcp_nodelay(true)?;
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

/// Declares a backend: its unit type, the `Listener` and `Stream` aliases over it, and its
/// [`Sockets`] implementation (see [`impl_sockets`](crate::impl_sockets)). The backend then
/// implements [`Io`](crate::io::Io) itself. omq-tokio writes:
///
/// ```ignore
/// omq_sockets::backend! {
///     /// The tokio backend: omq-sockets' [`Io`] on tokio's runtime.
///     pub struct Tokio on tokio::net;
/// }
/// ```
#[macro_export]
macro_rules! backend {
    ($(#[$meta:meta])* $vis:vis struct $name:ident on $($net:ident)::+;) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default)]
        $vis struct $name;

        /// A bound listener.
        $vis type Listener = $crate::net::Listener<$name>;

        /// A connected stream.
        $vis type Stream = $crate::net::Stream<$name>;

        $crate::impl_sockets!($name, $($net)::+);
    };
}

/// Implements [`Sockets`] for `$backend` with the runtime module `$net`, for runtimes whose
/// `net` module has tokio's shape: `TcpListener`, `TcpStream`, `UnixListener` and `UnixStream`,
/// each with `from_std`, and `accept` / `connect` as async methods (tokio and compio both do).
/// omq-tokio writes `omq_sockets::impl_sockets!(Tokio, tokio::net);`, omq-compio the same with
/// `compio::net`: the two implementations are the same text over different types.
#[macro_export]
macro_rules! impl_sockets {
    ($backend:ty, $($net:ident)::+) => {
        impl $crate::net::Sockets for $backend {
            type TcpListener = $($net)::+::TcpListener;
            type TcpStream = $($net)::+::TcpStream;
            type UnixListener = $($net)::+::UnixListener;
            type UnixStream = $($net)::+::UnixStream;

            fn tcp_listener(
                l: ::std::net::TcpListener,
            ) -> ::std::io::Result<Self::TcpListener> {
                $($net)::+::TcpListener::from_std(l)
            }
            fn unix_listener(
                l: ::std::os::unix::net::UnixListener,
            ) -> ::std::io::Result<Self::UnixListener> {
                $($net)::+::UnixListener::from_std(l)
            }
            fn unix_stream(
                s: ::std::os::unix::net::UnixStream,
            ) -> ::std::io::Result<Self::UnixStream> {
                $($net)::+::UnixStream::from_std(s)
            }
            async fn accept_tcp(
                l: &Self::TcpListener,
            ) -> ::std::io::Result<(Self::TcpStream, ::std::net::SocketAddr)> {
                l.accept().await
            }
            async fn accept_unix(l: &Self::UnixListener) -> ::std::io::Result<Self::UnixStream> {
                Ok(l.accept().await?.0)
            }
            async fn connect_tcp(host: &str, port: u16) -> ::std::io::Result<Self::TcpStream> {
                $($net)::+::TcpStream::connect((host, port)).await
            }
            async fn connect_unix(
                path: &::std::path::Path,
            ) -> ::std::io::Result<Self::UnixStream> {
                $($net)::+::UnixStream::connect(path).await
            }
        }
    };
}

/// One runtime's tcp and Unix-domain socket types, and the calls on them that listening,
/// accepting and connecting need. A backend implements these few conversions and gets
/// [`Listener`] and [`Stream`], with the matching over endpoints, TCP tuning and abstract ipc
/// names, written once here.
#[allow(async_fn_in_trait)]
pub trait Sockets: 'static {
    /// The runtime's tcp listener.
    type TcpListener: std::fmt::Debug + 'static;
    /// The runtime's tcp stream.
    type TcpStream: std::fmt::Debug + AsFd + 'static;
    /// The runtime's Unix-domain listener.
    type UnixListener: std::fmt::Debug + 'static;
    /// The runtime's Unix-domain stream.
    type UnixStream: std::fmt::Debug + 'static;

    /// The runtime's form of a bound, non-blocking std tcp listener.
    fn tcp_listener(l: TcpListener) -> io::Result<Self::TcpListener>;
    /// The runtime's form of a bound, non-blocking std Unix-domain listener.
    fn unix_listener(l: std::os::unix::net::UnixListener) -> io::Result<Self::UnixListener>;
    /// The runtime's form of a connected, non-blocking std Unix-domain stream.
    fn unix_stream(s: std::os::unix::net::UnixStream) -> io::Result<Self::UnixStream>;
    /// Accepts a tcp connection, with the peer's address.
    async fn accept_tcp(l: &Self::TcpListener) -> io::Result<(Self::TcpStream, SocketAddr)>;
    /// Accepts a Unix-domain connection.
    async fn accept_unix(l: &Self::UnixListener) -> io::Result<Self::UnixStream>;
    /// Connects over tcp to `host` (an address or a name to resolve) and `port`.
    async fn connect_tcp(host: &str, port: u16) -> io::Result<Self::TcpStream>;
    /// Connects to an ipc socket file.
    async fn connect_unix(path: &Path) -> io::Result<Self::UnixStream>;
}

/// A bound listener, in the runtime's form.
#[derive(Debug)]
pub enum Listener<S: Sockets> {
    /// tcp.
    Tcp(S::TcpListener),
    /// ipc.
    Ipc(S::UnixListener),
}

/// A connected stream, in the runtime's form.
#[derive(Debug)]
pub enum Stream<S: Sockets> {
    /// tcp.
    Tcp(S::TcpStream),
    /// ipc.
    Ipc(S::UnixStream),
}

impl<S: Sockets> Listener<S> {
    /// The runtime's listener for a bound std listener.
    pub fn from_std(l: StdListener) -> io::Result<Self> {
        match l {
            StdListener::Tcp(l) => Ok(Self::Tcp(S::tcp_listener(l)?)),
            StdListener::Ipc(l, _) => Ok(Self::Ipc(S::unix_listener(l)?)),
        }
    }

    /// Accepts one connection (TCP options applied), with the peer's IP address for tcp
    /// (`None` for ipc).
    pub async fn accept(
        &self,
        keepalive: TcpKeepalive,
    ) -> io::Result<(Stream<S>, Option<std::net::IpAddr>)> {
        match self {
            Self::Tcp(l) => {
                let (s, peer) = S::accept_tcp(l).await?;
                tune_tcp(&s, keepalive)?;
                Ok((Stream::Tcp(s), Some(peer.ip())))
            }
            Self::Ipc(l) => Ok((Stream::Ipc(S::accept_unix(l).await?), None)),
        }
    }
}

impl<S: Sockets> Stream<S> {
    /// Connects to `target` (TCP options applied).
    pub async fn connect(target: Target, keepalive: TcpKeepalive) -> io::Result<Self> {
        match target {
            Target::Tcp(host, port) => {
                let s = S::connect_tcp(&host, port).await?;
                tune_tcp(&s, keepalive)?;
                Ok(Self::Tcp(s))
            }
            Target::IpcPath(p) => Ok(Self::Ipc(S::connect_unix(&p).await?)),
            Target::IpcAbstract(n) => Ok(Self::Ipc(S::unix_stream(connect_abstract(&n)?)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener closing after another socket re-bound its path leaves the new file alone,
    /// also when the file system hands the new file the old one's inode number (which ext4
    /// does for a file created right after one was removed).
    #[test]
    fn a_closing_listener_keeps_a_rebound_file() {
        let path = std::env::temp_dir().join(format!("omq-net-rebind-{}.sock", std::process::id()));
        let mut reused = 0;
        for _ in 0..50 {
            let _ = std::fs::remove_file(&path);
            let first = std::os::unix::net::UnixListener::bind(&path).unwrap();
            let first_file = IpcFile::new(path.clone());
            if first_file
                .id
                .is_some_and(|(_, _, created)| created.is_none())
            {
                // No creation times here: the inode is all there is to go by.
                let _ = std::fs::remove_file(&path);
                return;
            }
            // The first listener closes; the second bind removes its file as stale, as libzmq
            // does, before the first gets to remove it.
            drop(first);
            std::fs::remove_file(&path).unwrap();
            let second = std::os::unix::net::UnixListener::bind(&path).unwrap();
            if file_id(&path).map(|(dev, ino, _)| (dev, ino))
                == first_file.id.map(|(dev, ino, _)| (dev, ino))
            {
                reused += 1;
            }
            first_file.remove();
            assert!(path.exists(), "the second listener's file was removed");
            drop(second);
        }
        let _ = std::fs::remove_file(&path);
        eprintln!("inode numbers reused in {reused} of 50 rebinds");
    }
}
