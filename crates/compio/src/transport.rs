//! The I/O the endpoint loops of omq-sockets need, on compio: listeners, streams, the driver,
//! a timer.

use std::io;
use std::net::IpAddr;
use std::time::Instant;

use compio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use compio::runtime::JoinHandle;
use omq_sockets::io::{Io, Task};
use omq_sockets::net::{self, StdListener, Target};
use omq_sockets::{Engine, EngineError, TcpKeepalive};

use crate::driver;

/// The compio backend: omq-sockets' [`Io`] on compio's runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct Compio;

/// A bound listener.
#[derive(Debug)]
pub enum Listener {
    /// tcp.
    Tcp(TcpListener),
    /// ipc.
    Ipc(UnixListener),
}

/// A connected stream.
#[derive(Debug)]
pub enum Stream {
    /// tcp.
    Tcp(TcpStream),
    /// ipc.
    Ipc(UnixStream),
}

impl Io for Compio {
    type Stream = Stream;
    type Listener = Listener;
    type Handle = JoinHandle<()>;

    fn listener(&self, l: StdListener) -> io::Result<Listener> {
        Ok(match l {
            StdListener::Tcp(l) => Listener::Tcp(TcpListener::from_std(l)?),
            StdListener::Ipc(l, _) => Listener::Ipc(UnixListener::from_std(l)?),
            _ => return Err(io::Error::from(io::ErrorKind::Unsupported)),
        })
    }

    async fn accept(
        &self,
        l: &Listener,
        keepalive: TcpKeepalive,
    ) -> io::Result<(Stream, Option<IpAddr>)> {
        match l {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                net::tune_tcp(&s, keepalive)?;
                Ok((Stream::Tcp(s), Some(peer.ip())))
            }
            Listener::Ipc(l) => Ok((Stream::Ipc(l.accept().await?.0), None)),
        }
    }

    async fn connect(&self, target: Target, keepalive: TcpKeepalive) -> io::Result<Stream> {
        match target {
            Target::Tcp(host, port) => {
                let s = TcpStream::connect((host.as_str(), port)).await?;
                net::tune_tcp(&s, keepalive)?;
                Ok(Stream::Tcp(s))
            }
            Target::IpcPath(p) => Ok(Stream::Ipc(UnixStream::connect(p).await?)),
            Target::IpcAbstract(n) => Ok(Stream::Ipc(UnixStream::from_std(
                net::connect_abstract(&n)?,
            )?)),
            _ => Err(io::Error::from(io::ErrorKind::Unsupported)),
        }
    }

    async fn run(&self, stream: Stream, engine: &mut Engine) -> EngineError {
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

    async fn sleep_until(&self, deadline: Instant) {
        compio::time::sleep_until(deadline).await;
    }

    fn spawn(&self, task: Task<Self>) -> JoinHandle<()> {
        compio::runtime::spawn(task.run())
    }

    async fn join(handle: &mut JoinHandle<()>) {
        let _ = handle.await;
    }

    fn is_finished(handle: &JoinHandle<()>) -> bool {
        handle.is_finished()
    }

    fn detach(handle: JoinHandle<()>) {
        // Dropping a compio task handle would cancel the task.
        handle.detach();
    }

    fn runtime_available() -> bool {
        compio::runtime::Runtime::try_current().is_some()
    }
}
