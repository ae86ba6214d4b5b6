//! omq-compio against omq-tokio (each on its own runtime and thread), and omq-compio against a
//! real libzmq: every pattern, both directions, either side binding, tcp and ipc.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use omq_tokio::{Message, MonitorEvent, Options, SocketType};

const N: u32 = 2000;

fn opts() -> Options {
    let mut o = Options::default();
    o.linger = Some(Duration::from_secs(5));
    // PUB drops at the high-water mark; these tests count every message.
    o.send_hwm = 10_000;
    o.recv_hwm = 10_000;
    o.heartbeat_interval = Some(Duration::from_millis(100));
    o.heartbeat_timeout = Some(Duration::from_secs(3));
    o
}

fn endpoint(transport: &str) -> String {
    static K: AtomicU64 = AtomicU64::new(0);
    match transport {
        "tcp" => "tcp://127.0.0.1:0".into(),
        _ => format!(
            "ipc://{}/omq-backends-{}-{}.sock",
            std::env::temp_dir().display(),
            std::process::id(),
            K.fetch_add(1, Ordering::Relaxed)
        ),
    }
}

fn nth(i: u32) -> Message {
    match i % 3 {
        0 => Message::from(i.to_be_bytes().to_vec()),
        1 => [&i.to_be_bytes()[..], b"", b"tail"].into_iter().collect(),
        _ => [
            &i.to_be_bytes()[..],
            &vec![i as u8; (i as usize * 31) % 9000][..],
        ]
        .into_iter()
        .collect(),
    }
}

/// Which side runs which role.
#[derive(Clone, Copy, Debug)]
enum Role {
    /// Sends `N` numbered messages (PUSH, PUB after sync, PAIR, DEALER).
    Source,
    /// Receives and checks `N` numbered messages.
    Sink,
    /// Answers each request with itself plus a frame (REP, ROUTER).
    Echo,
    /// Sends `N` requests and checks the answers (REQ, DEALER).
    Ask,
}

/// What one side does, written once as a macro body over both backends' identical APIs.
macro_rules! play {
    ($s:expr, $role:expr, $ty:expr, $ready_tx:expr, $ready_rx:expr) => {{
        let s = &$s;
        match $role {
            Role::Source => {
                if $ty == SocketType::Pub {
                    // "sync" messages until the subscriber says one arrived (a PUB cannot
                    // know when a subscription is in).
                    loop {
                        s.send("sync").await.unwrap();
                        sleep(Duration::from_millis(2)).await;
                        if $ready_rx.try_recv().is_ok() {
                            break;
                        }
                    }
                }
                for i in 0..N {
                    s.send(nth(i)).await.unwrap();
                }
            }
            Role::Sink => {
                let mut i = 0;
                while i < N {
                    let m = s.recv().await.unwrap();
                    if m == Message::from("sync") {
                        let _ = $ready_tx.send(());
                        continue;
                    }
                    assert_eq!(m, nth(i), "message {i}");
                    i += 1;
                }
            }
            Role::Echo => {
                for _ in 0..N {
                    let mut m = s.recv().await.unwrap();
                    m.push("echo");
                    s.send(m).await.unwrap();
                }
            }
            Role::Ask => {
                for i in 0..N {
                    let mut q = nth(i);
                    s.send(q.clone()).await.unwrap();
                    q.push("echo");
                    assert_eq!(s.recv().await.unwrap(), q);
                }
            }
        }
    }};
}

/// One case: the compio side is `(type, role)`, the tokio side likewise; `compio_binds` picks
/// who binds.
fn case(transport: &str, compio_binds: bool, c: (SocketType, Role), t: (SocketType, Role)) {
    case_with(transport, compio_binds, c, t, (opts(), opts()));
}

/// [`case`] with the options of each side (compio's, tokio's).
fn case_with(
    transport: &str,
    compio_binds: bool,
    c: (SocketType, Role),
    t: (SocketType, Role),
    (c_opts, t_opts): (Options, Options),
) {
    let (ep_tx, ep_rx) = mpsc::channel::<String>();
    let (back_tx, back_rx) = mpsc::channel::<String>();
    // The subscriber tells the publisher that messages get through.
    let (c_ready_tx, t_ready_rx) = mpsc::channel::<()>();
    let (t_ready_tx, c_ready_rx) = mpsc::channel::<()>();
    let bind_at = endpoint(transport);
    let compio_side = std::thread::spawn(move || {
        omq_compio::runtime().unwrap().block_on(async move {
            let s = omq_compio::Socket::new(c.0, c_opts).unwrap();
            if c.0 == SocketType::Sub {
                s.subscribe("").unwrap();
            }
            if compio_binds {
                let ep = s.bind(&bind_at).await.unwrap().to_string();
                ep_tx.send(ep).unwrap();
            } else {
                s.connect(&back_rx.recv().unwrap()).await.unwrap();
            }
            async fn sleep(d: Duration) {
                compio::time::sleep(d).await
            }
            compio::time::timeout(Duration::from_secs(30), async {
                play!(s, c.1, c.0, c_ready_tx, c_ready_rx);
            })
            .await
            .expect("the compio side timed out");
            s.close().await;
        });
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let s = omq_tokio::Socket::new(t.0, t_opts).unwrap();
        let mut mon = s.monitor();
        if t.0 == SocketType::Sub {
            s.subscribe("").unwrap();
        }
        if compio_binds {
            s.connect(&ep_rx.recv().unwrap()).await.unwrap();
        } else {
            let ep = s
                .bind(&endpoint_for_tokio(transport))
                .await
                .unwrap()
                .to_string();
            back_tx.send(ep).unwrap();
        }
        async fn sleep(d: Duration) {
            tokio::time::sleep(d).await
        }
        tokio::time::timeout(Duration::from_secs(30), async {
            while !matches!(
                mon.next().await,
                Some(MonitorEvent::HandshakeSucceeded { .. })
            ) {}
            play!(s, t.1, t.0, t_ready_tx, t_ready_rx);
        })
        .await
        .expect("the tokio side timed out");
        s.close().await;
    });
    compio_side.join().expect("the compio side failed");
}

fn endpoint_for_tokio(transport: &str) -> String {
    endpoint(transport)
}

fn each(f: impl Fn(&str, bool)) {
    for transport in ["tcp", "ipc"] {
        for compio_binds in [true, false] {
            f(transport, compio_binds);
        }
    }
}

#[test]
fn push_pull_across_backends() {
    each(|tr, cb| {
        case(
            tr,
            cb,
            (SocketType::Push, Role::Source),
            (SocketType::Pull, Role::Sink),
        );
        case(
            tr,
            cb,
            (SocketType::Pull, Role::Sink),
            (SocketType::Push, Role::Source),
        );
    });
}

#[test]
fn req_rep_across_backends() {
    each(|tr, cb| {
        case(
            tr,
            cb,
            (SocketType::Req, Role::Ask),
            (SocketType::Rep, Role::Echo),
        );
        case(
            tr,
            cb,
            (SocketType::Rep, Role::Echo),
            (SocketType::Req, Role::Ask),
        );
    });
}

#[test]
fn dealer_router_across_backends() {
    each(|tr, cb| {
        case(
            tr,
            cb,
            (SocketType::Dealer, Role::Source),
            (SocketType::Router, Role::Echo),
        );
        case(
            tr,
            cb,
            (SocketType::Dealer, Role::Sink),
            (SocketType::Dealer, Role::Source),
        );
    });
}

#[test]
fn pub_sub_across_backends() {
    each(|tr, cb| {
        case(
            tr,
            cb,
            (SocketType::Pub, Role::Source),
            (SocketType::Sub, Role::Sink),
        );
        case(
            tr,
            cb,
            (SocketType::Sub, Role::Sink),
            (SocketType::Pub, Role::Source),
        );
    });
}

#[test]
fn pair_across_backends() {
    each(|tr, cb| {
        case(
            tr,
            cb,
            (SocketType::Pair, Role::Source),
            (SocketType::Pair, Role::Sink),
        );
        case(
            tr,
            cb,
            (SocketType::Pair, Role::Sink),
            (SocketType::Pair, Role::Source),
        );
    });
}

/// CURVE between the backends, each as server and as client, whichever side binds.
#[test]
fn curve_across_backends() {
    let server = omq_tokio::CurveKeyPair::generate().unwrap();
    let client = omq_tokio::CurveKeyPair::generate().unwrap();
    let mut as_server = opts();
    as_server.curve_server = true;
    as_server.curve_secret_key = Some(server.secret.clone());
    let mut as_client = opts();
    as_client.curve_secret_key = Some(client.secret.clone());
    as_client.curve_server_key = Some(server.public);
    each(|tr, cb| {
        case_with(
            tr,
            cb,
            (SocketType::Push, Role::Source),
            (SocketType::Pull, Role::Sink),
            (as_client.clone(), as_server.clone()),
        );
        case_with(
            tr,
            cb,
            (SocketType::Rep, Role::Echo),
            (SocketType::Req, Role::Ask),
            (as_server.clone(), as_client.clone()),
        );
    });
}
