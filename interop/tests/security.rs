//! PLAIN, CURVE and ZAP against a real libzmq with CURVE (pyzmq's bundled libzmq and libsodium,
//! driven by `py/peer.py`): omq as client and as server, tcp and ipc, heartbeats, PUB/SUB over
//! CURVE, and ZAP handlers on either side authorising and refusing.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use omq_tokio::{
    AuthHandler, AuthReply, CurveKeyPair, Message, Monitor, MonitorEvent, Options, Socket,
    SocketType, ZAP_ENDPOINT, ZapRequest,
};

const N: u32 = 200;
const WAIT: Duration = Duration::from_secs(15);

/// Tests whose omq server would consult a ZAP handler socket run one at a time: the handler's
/// inproc name is process-wide.
static ZAP_SOCKET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A pyzmq peer process. Closing its stdin (on drop) ends it.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    endpoint: String,
}

impl Peer {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/py/peer.py"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (with pyzmq: `pip install pyzmq`)");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut peer = Self {
            child,
            stdin,
            lines,
            endpoint: String::new(),
        };
        peer.endpoint = peer.expect("endpoint");
        peer
    }

    /// Waits for the next line starting with `word` and returns the rest of it.
    fn expect(&self, word: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(WAIT)
                .unwrap_or_else(|_| panic!("the libzmq peer did not say {word:?}"));
            if let Some(rest) = line.strip_prefix(word) {
                return rest.trim().to_owned();
            }
            assert!(!line.starts_with("bad"), "libzmq peer: {line}");
        }
    }

    /// Waits for the libzmq peer to say `word` in a blocking thread, so the runtime goes on.
    async fn expect_async(&self, word: &'static str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self.lines.try_recv() {
                Ok(line) => {
                    assert!(!line.starts_with("bad"), "libzmq peer: {line}");
                    if let Some(rest) = line.strip_prefix(word) {
                        return rest.trim().to_owned();
                    }
                }
                Err(mpsc::TryRecvError::Empty) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "the libzmq peer did not say {word:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(mpsc::TryRecvError::Disconnected) => panic!("the libzmq peer exited"),
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

fn endpoint(transport: &str) -> String {
    static K: AtomicU64 = AtomicU64::new(0);
    match transport {
        "tcp" => "tcp://127.0.0.1:*".into(),
        _ => format!(
            "ipc://{}/omq-security-{}-{}.sock",
            std::env::temp_dir().display(),
            std::process::id(),
            K.fetch_add(1, Ordering::Relaxed)
        ),
    }
}

fn options() -> Options {
    let mut o = Options::default();
    o.linger = Some(Duration::from_secs(2));
    o.heartbeat_interval = Some(Duration::from_millis(100));
    o.heartbeat_timeout = Some(Duration::from_secs(3));
    o
}

fn nth(i: u32) -> Message {
    Message::from_iter([Bytes::from_static(b"msg"), Bytes::from(i.to_string())])
}

/// Waits for a monitor event that `pred` picks.
async fn wait_for(mon: &mut Monitor, pred: impl Fn(&MonitorEvent) -> bool) -> MonitorEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = mon.next().await.expect("monitor open");
            if pred(&ev) {
                return ev;
            }
        }
    })
    .await
    .expect("monitor event in time")
}

fn failed_with(code: &'static str) -> impl Fn(&MonitorEvent) -> bool {
    move |ev| matches!(ev, MonitorEvent::HandshakeFailed { reason, .. } if reason.contains(code))
}

async fn send_all(s: &Socket) {
    for i in 0..N {
        tokio::time::timeout(WAIT, s.send(nth(i)))
            .await
            .expect("send in time")
            .unwrap();
    }
}

/// Receives the `N` messages with their sender's authentication, which must be `user_id`'s.
async fn recv_all_from(s: &Socket, user_id: &[u8]) -> omq_tokio::PeerAuth {
    let mut auth = None;
    for i in 0..N {
        let (m, peer) = tokio::time::timeout(WAIT, s.recv_with_peer())
            .await
            .expect("recv in time")
            .unwrap();
        assert_eq!(m, nth(i));
        let peer = peer.expect("a ZMTP peer");
        assert_eq!(peer.auth.user_id.as_deref(), Some(user_id));
        auth = Some(peer.auth.clone());
    }
    auth.unwrap()
}

/// An omq REP at the ZAP endpoint answering with `decide(request frames)` (the status code) and
/// the user id "admin-id", as a libzmq handler would. Stop it with [`ZapHandler::stop`].
struct ZapHandler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ZapHandler {
    async fn start(decide: fn(&[&[u8]]) -> &'static [u8]) -> Self {
        let handler = Socket::new(SocketType::Rep, Options::default()).unwrap();
        handler.bind(ZAP_ENDPOINT).await.unwrap();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            loop {
                let req = tokio::select! {
                    req = handler.recv() => req.unwrap(),
                    _ = &mut stopped => break,
                };
                let f: Vec<&[u8]> = req.iter().map(|f| f.as_slice()).collect();
                // RFC 27: version, request id, domain, address, identity, mechanism, credentials.
                assert_eq!(f[0], b"1.0");
                let reply = Message::from_iter([f[0], f[1], decide(&f), b"", b"admin-id", b""]);
                handler.send(reply).await.unwrap();
            }
            // Closing unbinds the ZAP endpoint before the next test looks for a handler.
            handler.close().await;
        });
        Self { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_client_to_libzmq_server_with_a_libzmq_zap_handler() {
    for transport in ["tcp", "ipc"] {
        let ep = endpoint(transport);
        let peer = Peer::spawn(&[
            "--type",
            "PULL",
            "--bind",
            &ep,
            "--mech",
            "plain-server",
            "--zap",
            "admin:secret",
            "--count",
            &N.to_string(),
            "--heartbeat",
        ]);
        let mut o = options();
        o.plain_username = Some("admin".into());
        o.plain_password = Some("secret".into());
        let push = Socket::new(SocketType::Push, o).unwrap();
        push.connect(&peer.endpoint).await.unwrap();
        send_all(&push).await;
        assert_eq!(peer.expect_async("zap").await, "200");
        assert_eq!(peer.expect_async("ok").await, N.to_string());
        push.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libzmq_zap_handler_refuses_a_wrong_password() {
    let peer = Peer::spawn(&[
        "--type",
        "PULL",
        "--bind",
        "tcp://127.0.0.1:*",
        "--mech",
        "plain-server",
        "--zap",
        "admin:secret",
    ]);
    let mut o = options();
    o.plain_username = Some("admin".into());
    o.plain_password = Some("guess".into());
    o.reconnect_interval = None;
    let push = Socket::new(SocketType::Push, o).unwrap();
    let mut mon = push.monitor();
    push.connect(&peer.endpoint).await.unwrap();
    assert_eq!(peer.expect_async("zap").await, "400");
    wait_for(&mut mon, failed_with("400")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libzmq_plain_client_to_an_omq_zap_handler_socket() {
    let _zap = ZAP_SOCKET.lock().await;
    let handler = ZapHandler::start(|f| {
        if f[5] == b"PLAIN" && f[6] == b"admin" && f[7] == b"secret" {
            b"200"
        } else {
            b"400"
        }
    })
    .await;
    for transport in ["tcp", "ipc"] {
        let mut o = options();
        o.plain_server = true;
        let pull = Socket::new(SocketType::Pull, o).unwrap();
        let mut mon = pull.monitor();
        let ep = pull.bind(&endpoint(transport)).await.unwrap().to_string();
        let _peer = Peer::spawn(&[
            "--type",
            "PUSH",
            "--connect",
            &ep,
            "--mech",
            "plain-client",
            "--user",
            "admin",
            "--password",
            "secret",
            "--count",
            &N.to_string(),
            "--heartbeat",
        ]);
        let auth = recv_all_from(&pull, b"admin-id").await;
        assert_eq!(auth.plain_username.as_deref(), Some(&b"admin"[..]));
        let ev = wait_for(&mut mon, |e| {
            matches!(e, MonitorEvent::PeerAuthenticated { .. })
        })
        .await;
        let MonitorEvent::PeerAuthenticated { auth, .. } = ev else {
            unreachable!()
        };
        assert_eq!(auth.user_id.as_deref(), Some(&b"admin-id"[..]));
        assert_eq!(auth.plain_username.as_deref(), Some(&b"admin"[..]));

        let _intruder = Peer::spawn(&[
            "--type",
            "PUSH",
            "--connect",
            &ep,
            "--mech",
            "plain-client",
            "--user",
            "admin",
            "--password",
            "guess",
        ]);
        wait_for(&mut mon, failed_with("400")).await;
        pull.close().await;
    }
    handler.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_server_without_a_handler_refuses_like_libzmq() {
    let _zap = ZAP_SOCKET.lock().await;
    let mut o = options();
    o.plain_server = true;
    let pull = Socket::new(SocketType::Pull, o).unwrap();
    let mut mon = pull.monitor();
    let ep = pull.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let _peer = Peer::spawn(&[
        "--type",
        "PUSH",
        "--connect",
        &ep,
        "--mech",
        "plain-client",
        "--user",
        "a",
        "--password",
        "b",
    ]);
    wait_for(&mut mon, failed_with("ZAP handler")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_client_to_libzmq_server() {
    let server = CurveKeyPair::generate().unwrap();
    for transport in ["tcp", "ipc"] {
        let peer = Peer::spawn(&[
            "--type",
            "PULL",
            "--bind",
            &endpoint(transport),
            "--mech",
            "curve-server",
            &format!("--secret={}", server.secret.to_z85()),
            "--count",
            &N.to_string(),
            "--heartbeat",
        ]);
        let mut o = options();
        o.curve_secret_key = Some(CurveKeyPair::generate().unwrap().secret);
        o.curve_server_key = Some(server.public);
        let push = Socket::new(SocketType::Push, o).unwrap();
        push.connect(&peer.endpoint).await.unwrap();
        send_all(&push).await;
        // Large frames too: 100 KB boxes.
        assert_eq!(peer.expect_async("ok").await, N.to_string());
        push.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libzmq_curve_client_to_omq_server_with_an_authenticator() {
    let server = CurveKeyPair::generate().unwrap();
    let client = CurveKeyPair::generate().unwrap();
    let allowed = client.public;
    for transport in ["tcp", "ipc"] {
        let mut o = options();
        o.curve_server = true;
        o.curve_secret_key = Some(server.secret.clone());
        o.authenticator = Some(AuthHandler::new(move |r: &ZapRequest| {
            if r.mechanism == "CURVE" && r.credentials[0][..] == allowed.as_bytes()[..] {
                AuthReply::accept("known-client")
            } else {
                AuthReply::deny(400, "unknown key")
            }
        }));
        let pull = Socket::new(SocketType::Pull, o).unwrap();
        let mut mon = pull.monitor();
        let ep = pull.bind(&endpoint(transport)).await.unwrap().to_string();
        let _peer = Peer::spawn(&[
            "--type",
            "PUSH",
            "--connect",
            &ep,
            "--mech",
            "curve-client",
            &format!("--secret={}", client.secret.to_z85()),
            &format!("--server-key={}", server.public.to_z85()),
            "--count",
            &N.to_string(),
            "--heartbeat",
        ]);
        let auth = recv_all_from(&pull, b"known-client").await;
        assert_eq!(auth.curve_public_key, Some(client.public));
        let ev = wait_for(&mut mon, |e| {
            matches!(e, MonitorEvent::PeerAuthenticated { .. })
        })
        .await;
        let MonitorEvent::PeerAuthenticated { auth, .. } = ev else {
            unreachable!()
        };
        assert_eq!(auth.curve_public_key, Some(client.public));
        assert_eq!(auth.user_id.as_deref(), Some(&b"known-client"[..]));

        let stranger = CurveKeyPair::generate().unwrap();
        let _intruder = Peer::spawn(&[
            "--type",
            "PUSH",
            "--connect",
            &ep,
            "--mech",
            "curve-client",
            &format!("--secret={}", stranger.secret.to_z85()),
            &format!("--server-key={}", server.public.to_z85()),
        ]);
        wait_for(&mut mon, failed_with("400")).await;
        pull.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_pub_to_libzmq_sub_filters_by_subscription() {
    let _zap = ZAP_SOCKET.lock().await;
    let server = CurveKeyPair::generate().unwrap();
    let client = CurveKeyPair::generate().unwrap();
    let mut o = options();
    o.curve_server = true;
    o.curve_secret_key = Some(server.secret.clone());
    let publisher = Socket::new(SocketType::Pub, o).unwrap();
    let ep = publisher
        .bind("tcp://127.0.0.1:0")
        .await
        .unwrap()
        .to_string();
    let peer = Peer::spawn(&[
        "--type",
        "SUB",
        "--connect",
        &ep,
        "--mech",
        "curve-client",
        &format!("--secret={}", client.secret.to_z85()),
        &format!("--server-key={}", server.public.to_z85()),
        "--subscribe",
        "msg",
        "--count",
        "50",
        "--heartbeat",
    ]);
    let mut i = 0;
    let done = loop {
        publisher
            .send(Message::from_iter([&b"x"[..], b"excluded"]))
            .await
            .unwrap();
        publisher.send(nth(i)).await.unwrap();
        i += 1;
        if let Ok(line) = peer.lines.try_recv() {
            assert!(!line.starts_with("bad"), "{line}");
            if line.starts_with("ok") {
                break line;
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(i < 20_000, "the subscriber never got 50 messages");
    };
    assert_eq!(done, "ok 50");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_req_to_libzmq_rep() {
    let server = CurveKeyPair::generate().unwrap();
    for transport in ["tcp", "ipc"] {
        let peer = Peer::spawn(&[
            "--type",
            "REP",
            "--bind",
            &endpoint(transport),
            "--mech",
            "curve-server",
            &format!("--secret={}", server.secret.to_z85()),
            "--count",
            "100",
            "--heartbeat",
        ]);
        let mut o = options();
        o.curve_secret_key = Some(CurveKeyPair::generate().unwrap().secret);
        o.curve_server_key = Some(server.public);
        let req = Socket::new(SocketType::Req, o).unwrap();
        req.connect(&peer.endpoint).await.unwrap();
        for i in 0..100 {
            req.send(nth(i)).await.unwrap();
            let reply = tokio::time::timeout(WAIT, req.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(reply, nth(i));
        }
        assert_eq!(peer.expect_async("ok").await, "100");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curve_refusals_against_libzmq() {
    let server = CurveKeyPair::generate().unwrap();
    // A libzmq ZAP handler that only knows another client refuses ours with 400.
    let other = CurveKeyPair::generate().unwrap();
    let peer = Peer::spawn(&[
        "--type",
        "PULL",
        "--bind",
        "tcp://127.0.0.1:*",
        "--mech",
        "curve-server",
        &format!("--secret={}", server.secret.to_z85()),
        &format!("--zap={}", other.public.to_z85()),
    ]);
    let mut o = options();
    o.curve_secret_key = Some(CurveKeyPair::generate().unwrap().secret);
    o.curve_server_key = Some(server.public);
    o.reconnect_interval = None;
    let push = Socket::new(SocketType::Push, o.clone()).unwrap();
    let mut mon = push.monitor();
    push.connect(&peer.endpoint).await.unwrap();
    wait_for(&mut mon, failed_with("400")).await;
    assert_eq!(peer.expect_async("zap").await, "400");

    // The wrong server key: libzmq cannot open our HELLO and drops the connection.
    let peer = Peer::spawn(&[
        "--type",
        "PULL",
        "--bind",
        "tcp://127.0.0.1:*",
        "--mech",
        "curve-server",
        &format!("--secret={}", server.secret.to_z85()),
    ]);
    o.curve_server_key = Some(other.public);
    let push = Socket::new(SocketType::Push, o).unwrap();
    let mut mon = push.monitor();
    push.connect(&peer.endpoint).await.unwrap();
    wait_for(&mut mon, |e| {
        matches!(e, MonitorEvent::HandshakeFailed { .. })
    })
    .await;
}

/// NULL asks the ZAP handler once `zap_domain` is set (and sends the domain); without a handler,
/// `zap_enforce_domain` refuses what CURVE would otherwise accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zap_domain_and_enforcement_between_omq_sockets() {
    let _zap = ZAP_SOCKET.lock().await;
    // Only the "trusted" domain gets in.
    let handler = ZapHandler::start(|f| {
        // RFC 27 address: the peer's IP.
        if f[2] == b"trusted" && f[3] == b"127.0.0.1" && f[5] == b"NULL" {
            b"200"
        } else {
            b"400"
        }
    })
    .await;
    for (domain, admitted) in [("trusted", true), ("other", false)] {
        let mut o = options();
        o.zap_domain = Bytes::from_static(domain.as_bytes());
        let pull = Socket::new(SocketType::Pull, o).unwrap();
        let mut mon = pull.monitor();
        let ep = pull.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
        let push = Socket::new(SocketType::Push, options()).unwrap();
        push.connect(&ep).await.unwrap();
        if admitted {
            push.send(nth(0)).await.unwrap();
            let m = tokio::time::timeout(WAIT, pull.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(m, nth(0));
        } else {
            wait_for(&mut mon, failed_with("400")).await;
        }
    }
    handler.stop().await;

    let server = CurveKeyPair::generate().unwrap();
    let mut o = options();
    o.curve_server = true;
    o.curve_secret_key = Some(server.secret.clone());
    o.zap_enforce_domain = true;
    let pull = Socket::new(SocketType::Pull, o).unwrap();
    let mut mon = pull.monitor();
    let ep = pull.bind("tcp://127.0.0.1:0").await.unwrap().to_string();
    let mut c = options();
    c.curve_secret_key = Some(CurveKeyPair::generate().unwrap().secret);
    c.curve_server_key = Some(server.public);
    let push = Socket::new(SocketType::Push, c).unwrap();
    push.connect(&ep).await.unwrap();
    wait_for(&mut mon, failed_with("zap_enforce_domain")).await;
}
