//! The shared scenario suite on omq-compio (io_uring where the kernel allows it).

use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::TcpStream;
use omq_scenarios::Backend;

struct Compio;

impl Backend for Compio {
    type Io = omq_compio::Compio;

    async fn raw_write(r: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
        r.write_all(data.to_vec()).await.0
    }
    async fn raw_read(r: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
        let compio::BufResult(res, got) = r.read(Vec::with_capacity(buf.len())).await;
        let n = res?;
        buf[..n].copy_from_slice(&got[..n]);
        Ok(n)
    }
}

// On the runtime `omq_compio::runtime()` builds: io_uring with cooperative task running.
omq_scenarios::scenario_tests!(
    Compio,
    #[compio::test(with_proactor(coop_taskrun = true, taskrun_flag = true))]
);

/// `omq_compio::runtime()` runs sockets on whichever driver the kernel allows.
#[test]
fn runtime_helper_runs_sockets() {
    let runtime = omq_compio::runtime().expect("runtime");
    runtime.block_on(async {
        let d = omq_compio::driver_type().expect("inside a runtime");
        if std::env::var("OMQ_EXPECT_DRIVER").as_deref() == Ok("polling") {
            assert!(d.is_polling(), "{d:?}");
        }
        let pull = omq_compio::Socket::new(omq_compio::SocketType::Pull, Default::default())
            .expect("socket");
        let ep = pull.bind("tcp://127.0.0.1:0").await.expect("bind");
        let push = omq_compio::Socket::new(omq_compio::SocketType::Push, Default::default())
            .expect("socket");
        push.connect(&ep.to_string()).await.expect("connect");
        push.send("over the helper's runtime").await.expect("send");
        let m = pull.recv().await.expect("recv");
        assert_eq!(m.frames()[0], b"over the helper's runtime"[..]);
    });
}

/// `OMQ_EXPECT_DRIVER=polling` (set by `cargo xtask ci` when it runs this suite with io_uring
/// refused) or `=io_uring` checks which driver the suite ran on.
#[compio::test]
async fn reports_its_driver() {
    let d = omq_compio::driver_type().expect("inside a runtime");
    eprintln!("compio driver: {d:?}");
    match std::env::var("OMQ_EXPECT_DRIVER").as_deref() {
        Ok("polling") => assert!(d.is_polling(), "{d:?}"),
        Ok("io_uring") => assert!(d.is_iouring(), "{d:?}"),
        _ => {}
    }
}
