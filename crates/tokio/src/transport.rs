//! The I/O the endpoint loops of omq-sockets need, on tokio: listeners, streams, the driver,
//! a timer.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use omq_sockets::io::{Io, Task};
use omq_sockets::net::{self, Sockets};
use omq_sockets::{Engine, EngineError};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::driver;

/// The tokio backend: omq-sockets' [`Io`] on tokio's runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tokio;

/// A bound listener.
pub type Listener = net::Listener<Tokio>;

/// A connected stream.
pub type Stream = net::Stream<Tokio>;

impl Sockets for Tokio {
    type TcpListener = TcpListener;
    type TcpStream = TcpStream;
    type UnixListener = UnixListener;
    type UnixStream = UnixStream;

    fn tcp_listener(l: std::net::TcpListener) -> io::Result<TcpListener> {
        TcpListener::from_std(l)
    }
    fn unix_listener(l: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        UnixListener::from_std(l)
    }
    fn unix_stream(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        UnixStream::from_std(s)
    }
    async fn accept_tcp(l: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        l.accept().await
    }
    async fn accept_unix(l: &UnixListener) -> io::Result<UnixStream> {
        Ok(l.accept().await?.0)
    }
    async fn connect_tcp(host: &str, port: u16) -> io::Result<TcpStream> {
        TcpStream::connect((host, port)).await
    }
    async fn connect_unix(path: &Path) -> io::Result<UnixStream> {
        UnixStream::connect(path).await
    }
}

impl Io for Tokio {
    type Handle = JoinHandle<()>;

    async fn run(&self, stream: Stream, engine: &mut Engine) -> EngineError {
        match stream {
            Stream::Tcp(s) => driver::run(s, engine).await,
            Stream::Ipc(s) => driver::run(s, engine).await,
        }
    }

    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(deadline.into()).await;
    }

    fn spawn(&self, task: Task<Self>) -> JoinHandle<()> {
        tokio::spawn(task.run())
    }

    async fn join(handle: &mut JoinHandle<()>) {
        let _ = handle.await;
    }

    fn is_finished(handle: &JoinHandle<()>) -> bool {
        handle.is_finished()
    }

    fn detach(handle: JoinHandle<()>) {
        // A tokio task runs on when its handle is dropped.
        drop(handle);
    }

    fn runtime_available() -> bool {
        tokio::runtime::Handle::try_current().is_ok()
    }
}
