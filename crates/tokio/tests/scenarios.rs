//! The shared scenario suite on omq-tokio, on current-thread and multi-thread runtimes.

use std::time::Duration;

use omq_scenarios::{Backend, Endpoint, Error, Options, SocketType};
use omq_tokio::Socket;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Tokio;

impl Backend for Tokio {
    type Socket = Socket;
    type Raw = TcpStream;
    type RawListener = TcpListener;

    fn socket(ty: SocketType, opts: Options) -> Result<Socket, Error> {
        Socket::new(ty, opts)
    }
    fn single_threaded() -> bool {
        tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::CurrentThread
    }
    async fn bind(s: &Socket, ep: &str) -> Result<Endpoint, Error> {
        s.bind(ep).await
    }
    async fn connect(s: &Socket, ep: &str) -> Result<(), Error> {
        s.connect(ep).await
    }
    async fn close(s: Socket) {
        s.close().await
    }
    async fn sleep(d: Duration) {
        tokio::time::sleep(d).await
    }
    async fn raw_listen() -> (TcpListener, String) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ep = format!("tcp://{}", l.local_addr().unwrap());
        (l, ep)
    }
    async fn raw_accept(l: &TcpListener) -> TcpStream {
        l.accept().await.unwrap().0
    }
    async fn raw_connect(ep: &str) -> TcpStream {
        TcpStream::connect(ep.trim_start_matches("tcp://"))
            .await
            .unwrap()
    }
    async fn raw_write(r: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
        r.write_all(data).await
    }
    async fn raw_read(r: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
        r.read(buf).await
    }
}

mod current_thread {
    use super::*;
    omq_scenarios::scenario_tests!(Tokio, #[tokio::test(flavor = "current_thread")]);
}

mod multi_thread {
    use super::*;
    omq_scenarios::scenario_tests!(Tokio, #[tokio::test(flavor = "multi_thread", worker_threads = 2)]);
}
