//! The shared scenario suite on omq-tokio, on current-thread and multi-thread runtimes.

use omq_scenarios::Backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Tokio;

impl Backend for Tokio {
    type Io = omq_tokio::Tokio;

    fn single_threaded() -> bool {
        tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::CurrentThread
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
