//! The shared scenario suite on omq-tokio, on current-thread and multi-thread runtimes.

use omq_scenarios::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Tokio;

impl Backend for Tokio {
    type Io = omq_tokio::Tokio;
    type Raw = TcpStream;
    type RawListener = TcpListener;

    fn single_threaded() -> bool {
        tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::CurrentThread
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
