//! Transport details specific to this backend: ipc paths and abstract names, wildcard and IPv6
//! binds, host names, TCP keepalive options.

use std::time::Duration;

use omq_tokio::{Endpoint, Message, Options, Socket, SocketType};

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Socket>();
};

fn opts() -> Options {
    let mut o = Options::default();
    o.linger = Some(Duration::ZERO);
    o
}

async fn roundtrip(bind: &str, connect: impl FnOnce(&Endpoint) -> String) -> Endpoint {
    let pull = Socket::new(SocketType::Pull, opts()).unwrap();
    let ep = pull.bind(bind).await.unwrap();
    let push = Socket::new(SocketType::Push, opts()).unwrap();
    push.connect(&connect(&ep)).await.unwrap();
    push.send("over").await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(10), pull.recv())
        .await
        .expect("deadline")
        .unwrap();
    assert_eq!(m, Message::from("over"));
    ep
}

#[tokio::test]
async fn ipc_path_is_created_and_removed() {
    let path = std::env::temp_dir().join(format!("omq-transports-{}.sock", std::process::id()));
    let ep = format!("ipc://{}", path.display());
    let pull = Socket::new(SocketType::Pull, opts()).unwrap();
    assert_eq!(pull.bind(&ep).await.unwrap().to_string(), ep);
    assert!(path.exists());
    let push = Socket::new(SocketType::Push, opts()).unwrap();
    push.connect(&ep).await.unwrap();
    push.send("x").await.unwrap();
    assert_eq!(pull.recv().await.unwrap(), Message::from("x"));
    let mut mon = pull.monitor();
    pull.unbind(&ep).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(
            mon.next().await,
            Some(omq_tokio::MonitorEvent::Closed { .. })
        ) {}
    })
    .await
    .unwrap();
    assert!(!path.exists(), "the ipc file outlived unbind");
}

#[tokio::test]
async fn ipc_wildcard_reports_its_path() {
    let ep = roundtrip("ipc://*", Endpoint::to_string).await;
    let Endpoint::Ipc(omq_tokio::IpcAddr::Path(p)) = ep else {
        panic!("{ep:?}")
    };
    assert!(p.exists());
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn ipc_abstract_name() {
    let ep = format!("ipc://@omq-transports-{}", std::process::id());
    roundtrip(&ep, Endpoint::to_string).await;
}

#[tokio::test]
async fn tcp_wildcard_host_and_port() {
    let ep = roundtrip("tcp://*:0", |ep| {
        let Endpoint::Tcp { port, .. } = ep else {
            panic!()
        };
        let omq_tokio::Port::Fixed(port) = port else {
            panic!()
        };
        format!("tcp://127.0.0.1:{port}")
    })
    .await;
    assert!(ep.to_string().starts_with("tcp://0.0.0.0:"), "{ep}");
}

#[tokio::test]
async fn tcp_host_name() {
    roundtrip("tcp://127.0.0.1:0", |ep| {
        ep.to_string().replace("127.0.0.1", "localhost")
    })
    .await;
}

#[tokio::test]
async fn tcp_ipv6() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let ep = roundtrip("tcp://[::1]:0", Endpoint::to_string).await;
    assert!(ep.to_string().starts_with("tcp://[::1]:"), "{ep}");
}

#[tokio::test]
async fn tcp_keepalive_options_apply() {
    let mut o = opts();
    o.tcp_keepalive = omq_tokio::TcpKeepalive::On {
        idle: Some(Duration::from_secs(30)),
        interval: Some(Duration::from_secs(5)),
        count: Some(3),
    };
    let pull = Socket::new(SocketType::Pull, o.clone()).unwrap();
    let ep = pull.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let push = Socket::new(SocketType::Push, o).unwrap();
    push.connect(&ep).await.unwrap();
    push.send("k").await.unwrap();
    assert_eq!(pull.recv().await.unwrap(), Message::from("k"));
}
