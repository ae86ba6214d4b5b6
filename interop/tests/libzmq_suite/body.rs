// The libzmq interop suite, included once per backend (see the including file).

const TRANSPORTS: [&str; 2] = ["tcp", "ipc"];

/// Waits on libzmq calls end with an error after this long.
const ZMQ_TIMEOUT_MS: i32 = 10_000;

fn zsock(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    s.set_heartbeat_ivl(100).unwrap();
    s.set_heartbeat_timeout(3000).unwrap();
    s.set_rcvtimeo(ZMQ_TIMEOUT_MS).unwrap();
    s.set_sndtimeo(ZMQ_TIMEOUT_MS).unwrap();
    s
}

fn oopts() -> Options {
    let mut o = Options::default();
    o.linger = Some(Duration::ZERO);
    o.heartbeat_interval = Some(Duration::from_millis(100));
    o.heartbeat_timeout = Some(Duration::from_secs(3));
    o
}

fn osock(kind: SocketType) -> Socket {
    Socket::new(kind, oopts()).unwrap()
}

fn ipc_path() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "ipc://{}/omq-interop-{}-{}.sock",
        std::env::temp_dir().display(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Joins the two sockets over `transport`, `omq_binds` choosing who binds, and waits for the
/// handshake. (libzmq 4.3's XSUB does not always re-send a subscription made before its peer's
/// handshake, so the tests start talking once the connection is up.)
async fn link(o: &Socket, z: &zmq::Socket, transport: &str, omq_binds: bool) {
    let mut mon = o.monitor();
    let ep = match transport {
        "tcp" if omq_binds => "tcp://127.0.0.1:0".to_owned(),
        "tcp" => "tcp://127.0.0.1:*".to_owned(),
        _ => ipc_path(),
    };
    if omq_binds {
        let ep = o.bind(&ep).await.unwrap().to_string();
        z.connect(&ep).unwrap();
    } else {
        z.bind(&ep).unwrap();
        let ep = z.get_last_endpoint().unwrap().unwrap();
        o.connect(&ep).await.unwrap();
    }
    timeout(Duration::from_secs(10), async {
        while !matches!(
            mon.next().await,
            Some(MonitorEvent::HandshakeSucceeded { .. })
        ) {}
    })
    .await
    .expect("handshake with libzmq");
}

async fn recv(o: &Socket) -> Message {
    timeout(Duration::from_secs(10), o.recv())
        .await
        .expect("omq recv timed out")
        .expect("omq recv")
}

/// The `i`-th test message: single and multipart, sizes from 0 to 70 KB.
fn nth(i: u32) -> Vec<Vec<u8>> {
    let tag = i.to_be_bytes().to_vec();
    match i % 7 {
        0 => vec![tag, vec![]],
        1 => vec![tag, b"".to_vec(), b"body".to_vec()],
        2 if i % 500 == 2 => vec![tag, vec![i as u8; 70_000]],
        _ => vec![tag, vec![i as u8; (i as usize * 13) % 300]],
    }
}

fn to_msg(frames: &[Vec<u8>]) -> Message {
    frames.iter().map(|f| &f[..]).collect()
}

fn frames(m: &Message) -> Vec<Vec<u8>> {
    m.iter().map(|f| f.to_vec()).collect()
}


const N: u32 = 10_000;

suite_test! {
async fn push_pull_both_ways() {
    let ctx = zmq::Context::new();
    for transport in TRANSPORTS {
        for omq_binds in [true, false] {
            // omq PUSH -> libzmq PULL
            let push = osock(SocketType::Push);
            let pull = zsock(&ctx, zmq::PULL);
            link(&push, &pull, transport, omq_binds).await;
            let check = blocking(move || {
                for i in 0..N {
                    assert_eq!(pull.recv_multipart(0).unwrap(), nth(i), "message {i}");
                }
                pull
            });
            for i in 0..N {
                push.send(to_msg(&nth(i))).await.unwrap();
            }
            drop(check.await);

            // libzmq PUSH -> omq PULL
            let push = zsock(&ctx, zmq::PUSH);
            let pull = osock(SocketType::Pull);
            link(&pull, &push, transport, omq_binds).await;
            let sender = blocking(move || {
                for i in 0..N {
                    push.send_multipart(nth(i), 0).unwrap();
                }
                push
            });
            for i in 0..N {
                let m = timeout(Duration::from_secs(10), pull.recv()).await;
                let m = m.unwrap_or_else(|_| panic!("timed out at {i}")).unwrap();
                assert_eq!(frames(&m), nth(i), "{transport} message {i}");
            }
            drop(sender.await);
        }
    }
}
}

suite_test! {
async fn req_rep_both_ways() {
    let ctx = zmq::Context::new();
    for transport in TRANSPORTS {
        for omq_binds in [true, false] {
            // omq REQ -> libzmq REP
            let req = osock(SocketType::Req);
            let rep = zsock(&ctx, zmq::REP);
            link(&req, &rep, transport, omq_binds).await;
            let server = blocking(move || {
                for _ in 0..100 {
                    let mut m = rep.recv_multipart(0).unwrap();
                    m.push(b"ok".to_vec());
                    rep.send_multipart(m, 0).unwrap();
                }
                rep
            });
            for i in 0..100u32 {
                req.send(to_msg(&nth(i))).await.unwrap();
                let mut want = nth(i);
                want.push(b"ok".to_vec());
                assert_eq!(frames(&recv(&req).await), want);
            }
            drop(server.await);

            // libzmq REQ -> omq REP
            let req = zsock(&ctx, zmq::REQ);
            let rep = osock(SocketType::Rep);
            link(&rep, &req, transport, omq_binds).await;
            let client = blocking(move || {
                for i in 0..100u32 {
                    req.send_multipart(nth(i), 0).unwrap();
                    let mut want = nth(i);
                    want.push(b"ok".to_vec());
                    assert_eq!(req.recv_multipart(0).unwrap(), want);
                }
                req
            });
            for _ in 0..100 {
                let mut m = recv(&rep).await;
                m.push("ok");
                rep.send(m).await.unwrap();
            }
            drop(client.await);
        }
    }
}
}

suite_test! {
async fn dealer_router_identities_both_ways() {
    let ctx = zmq::Context::new();
    for transport in TRANSPORTS {
        for omq_binds in [true, false] {
            // omq DEALER (routing id set) -> libzmq ROUTER
            let mut o = oopts();
            o.routing_id = Some("omq-dealer".into());
            let dealer = Socket::new(SocketType::Dealer, o).unwrap();
            let router = zsock(&ctx, zmq::ROUTER);
            link(&dealer, &router, transport, omq_binds).await;
            dealer.send("hello").await.unwrap();
            let router = blocking(move || {
                let m = router.recv_multipart(0).unwrap();
                assert_eq!(m, vec![b"omq-dealer".to_vec(), b"hello".to_vec()]);
                router
                    .send_multipart([&b"omq-dealer"[..], b"world"], 0)
                    .unwrap();
                router
            })
            .await;
            assert_eq!(frames(&recv(&dealer).await), vec![b"world".to_vec()]);
            drop(router);

            // libzmq DEALER (identity set) -> omq ROUTER
            let dealer = zsock(&ctx, zmq::DEALER);
            dealer.set_identity(b"zmq-dealer").unwrap();
            let router = osock(SocketType::Router);
            link(&router, &dealer, transport, omq_binds).await;
            let dealer = blocking(move || {
                dealer.send("hello", 0).unwrap();
                dealer
            })
            .await;
            let m = recv(&router).await;
            assert_eq!(frames(&m), vec![b"zmq-dealer".to_vec(), b"hello".to_vec()]);
            router
                .send(to_msg(&[b"zmq-dealer".to_vec(), b"world".to_vec()]))
                .await
                .unwrap();
            blocking(move || {
                assert_eq!(dealer.recv_multipart(0).unwrap(), vec![b"world".to_vec()])
            })
            .await;
        }
    }
}
}

/// Publishes `make()` until the subscriber gets a message; returns it.
async fn omq_publish_until(
    publ: &Socket,
    sub: zmq::Socket,
    make: fn() -> Message,
) -> (zmq::Socket, Vec<Vec<u8>>) {
    sub.set_rcvtimeo(10).unwrap();
    let mut sub = Some(sub);
    for _ in 0..1000 {
        publ.send(make()).await.unwrap();
        let s = sub.take().unwrap();
        let (s, got) = blocking(move || {
            let r = s.recv_multipart(0).ok();
            (s, r)
        })
        .await;
        if let Some(m) = got {
            s.set_rcvtimeo(ZMQ_TIMEOUT_MS).unwrap();
            return (s, m);
        }
        sub = Some(s);
    }
    panic!("no message reached the libzmq subscriber");
}

suite_test! {
async fn pub_sub_both_ways() {
    let ctx = zmq::Context::new();
    for transport in TRANSPORTS {
        for omq_binds in [true, false] {
            // omq PUB -> libzmq SUB, with an unsubscribe.
            let publ = osock(SocketType::Pub);
            let sub = zsock(&ctx, zmq::SUB);
            sub.set_subscribe(b"a").unwrap();
            link(&publ, &sub, transport, omq_binds).await;
            let (sub, first) = omq_publish_until(&publ, sub, || Message::from("a-sync")).await;
            assert_eq!(first, vec![b"a-sync".to_vec()]);
            publ.send("b-skip").await.unwrap();
            publ.send(to_msg(&[b"a-1".to_vec(), b"x".to_vec()]))
                .await
                .unwrap();
            let sub = blocking(move || {
                loop {
                    let m = sub.recv_multipart(0).unwrap();
                    if m[0] != b"a-sync" {
                        assert_eq!(m, vec![b"a-1".to_vec(), b"x".to_vec()]);
                        break;
                    }
                }
                sub.set_unsubscribe(b"a").unwrap();
                sub.set_subscribe(b"c").unwrap();
                sub
            })
            .await;
            let (sub, m) = omq_publish_until(&publ, sub, || Message::from("c-sync")).await;
            assert_eq!(m, vec![b"c-sync".to_vec()]);
            // The cancel reached us before the new subscription did: "a" is not sent any more.
            publ.send("a-late").await.unwrap();
            publ.send("c-end").await.unwrap();
            blocking(move || {
                loop {
                    let m = sub.recv_multipart(0).unwrap();
                    assert_ne!(
                        m,
                        vec![b"a-late".to_vec()],
                        "cancelled topic still delivered"
                    );
                    if m == vec![b"c-end".to_vec()] {
                        break;
                    }
                }
            })
            .await;

            // libzmq PUB -> omq SUB
            let publ = zsock(&ctx, zmq::PUB);
            let sub = osock(SocketType::Sub);
            sub.subscribe("t").unwrap();
            link(&sub, &publ, transport, omq_binds).await;
            let got = loop {
                publ.send("t-sync", 0).unwrap();
                publ.send("u-skip", 0).unwrap();
                if let Ok(Ok(m)) = timeout(Duration::from_millis(10), sub.recv()).await
                {
                    break m;
                }
            };
            assert_eq!(frames(&got), vec![b"t-sync".to_vec()]);
            publ.send("t-end", 0).unwrap();
            loop {
                let m = recv(&sub).await;
                assert_ne!(
                    frames(&m),
                    vec![b"u-skip".to_vec()],
                    "unsubscribed topic delivered"
                );
                if frames(&m) == vec![b"t-end".to_vec()] {
                    break;
                }
            }
        }
    }
}
}

suite_test! {
async fn xpub_xsub_both_ways() {
    let ctx = zmq::Context::new();
    for transport in TRANSPORTS {
        for omq_binds in [true, false] {
            // libzmq XSUB subscribes at omq XPUB.
            let xpub = osock(SocketType::XPub);
            let xsub = zsock(&ctx, zmq::XSUB);
            link(&xpub, &xsub, transport, omq_binds).await;
            let xsub = blocking(move || {
                xsub.send(&b"\x01news"[..], 0).unwrap();
                xsub
            })
            .await;
            assert_eq!(frames(&recv(&xpub).await), vec![b"\x01news".to_vec()]);
            xpub.send("news-1").await.unwrap();
            let xsub = blocking(move || {
                assert_eq!(xsub.recv_bytes(0).unwrap(), b"news-1");
                xsub.send(&b"\x00news"[..], 0).unwrap();
                xsub
            })
            .await;
            assert_eq!(frames(&recv(&xpub).await), vec![b"\x00news".to_vec()]);
            drop(xsub);

            // omq XSUB subscribes at libzmq XPUB.
            let xpub = zsock(&ctx, zmq::XPUB);
            let xsub = osock(SocketType::XSub);
            link(&xsub, &xpub, transport, omq_binds).await;
            xsub.send(&b"\x01sport"[..]).await.unwrap();
            let xpub = blocking(move || {
                assert_eq!(xpub.recv_bytes(0).unwrap(), b"\x01sport");
                xpub.send("sport-1", 0).unwrap();
                xpub
            })
            .await;
            assert_eq!(frames(&recv(&xsub).await), vec![b"sport-1".to_vec()]);
            drop(xpub);
        }
    }
}
}

suite_test! {
async fn pair_both_ways() {
    let ctx = zmq::Context::new();
    for transport in TRANSPORTS {
        for omq_binds in [true, false] {
            let o = osock(SocketType::Pair);
            let z = zsock(&ctx, zmq::PAIR);
            link(&o, &z, transport, omq_binds).await;
            let z = blocking(move || {
                for i in 0..1000u32 {
                    z.send_multipart(nth(i), 0).unwrap();
                }
                for i in 0..1000u32 {
                    assert_eq!(z.recv_multipart(0).unwrap(), nth(i));
                }
                z
            });
            for i in 0..1000u32 {
                assert_eq!(frames(&recv(&o).await), nth(i));
                o.send(to_msg(&nth(i))).await.unwrap();
            }
            drop(z.await);
        }
    }
}
}
