//! The scenarios. Each is `async fn name<B: Backend>(t: Transport)`.

use std::time::{Duration, Instant};

use omq_zmtp::{Config, Connection, Frame};

use crate::*;

/// A bound socket and a socket connected to it, both created here.
async fn bound_pair<B: Backend>(
    t: Transport,
    bind: (SocketType, Options),
    connect: (SocketType, Options),
) -> (Sock<B>, Sock<B>, String) {
    let a = B::socket(bind.0, bind.1).expect("socket");
    let ep = B::bind(&a, &t.endpoint()).await.expect("bind").to_string();
    let b = B::socket(connect.0, connect.1).expect("socket");
    B::connect(&b, &ep).await.expect("connect");
    (a, b, ep)
}

/// An endpoint nobody is bound to yet, usable for a connect before the bind and a re-bind.
///
/// tcp ports come from below Linux's ephemeral range (32768 and up), so that no socket bound to
/// port 0 by a concurrent test can take one between the probe and its use.
pub fn fixed_endpoint(t: Transport) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    match t {
        Transport::Tcp => {
            // Start at a place that depends on the process, so concurrent test binaries differ.
            let start = u64::from(std::process::id()) * 37;
            loop {
                let port = 20_000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
                if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
                    return format!("tcp://127.0.0.1:{port}");
                }
            }
        }
        _ => t.endpoint(),
    }
}

/// Waits until `m` reported `n` completed handshakes (inproc attaches at once, with no events).
async fn await_handshakes<B: Backend>(t: Transport, m: &mut Monitor, n: usize) {
    if t == Transport::Inproc {
        return;
    }
    for _ in 0..n {
        expect_event::<B>(m, "a handshake", |e| {
            matches!(e, MonitorEvent::HandshakeSucceeded { .. })
        })
        .await;
    }
}

fn numbered(i: u32) -> Message {
    match i % 4 {
        0 => msg([format!("m{i}").as_bytes()]),
        1 => msg([format!("m{i}").as_bytes(), b"", b"tail"]),
        2 => msg([
            format!("m{i}").as_bytes(),
            &vec![i as u8; (i as usize * 37) % 9000],
        ]),
        _ => msg([format!("m{i}").as_bytes(), &[]]),
    }
}

/// PUSH to PULL: every frame shape, 1000 messages and a 1 MB one, content and order checked.
pub async fn push_pull<B: Backend>(t: Transport) {
    let (pull, push, _) =
        bound_pair::<B>(t, (SocketType::Pull, opts()), (SocketType::Push, opts())).await;
    let big = msg([&vec![7u8; 1 << 20]]);
    let sender = async {
        for i in 0..1000 {
            B::send(&push, numbered(i)).await.expect("send");
        }
        B::send(&push, big.clone()).await.expect("send");
    };
    let receiver = async {
        for i in 0..1000 {
            assert_eq!(recv::<B>(&pull).await, numbered(i), "message {i}");
        }
        assert_eq!(recv::<B>(&pull).await, big);
    };
    within::<B, _>("1001 messages", join(sender, receiver)).await;
    B::close(push).await;
    B::close(pull).await;
}

/// PUSH round-robins over peers with room: two PULLs get exactly half each.
pub async fn push_round_robin<B: Backend>(t: Transport) {
    let push = B::socket(SocketType::Push, opts()).unwrap();
    let mut mon = B::monitor(&push);
    let ep = B::bind(&push, &t.endpoint()).await.unwrap().to_string();
    let p1 = B::socket(SocketType::Pull, opts()).unwrap();
    let p2 = B::socket(SocketType::Pull, opts()).unwrap();
    B::connect(&p1, &ep).await.unwrap();
    B::connect(&p2, &ep).await.unwrap();
    await_handshakes::<B>(t, &mut mon, 2).await;
    for i in 0..100u32 {
        B::send(&push, msg([&i.to_be_bytes()])).await.unwrap();
    }
    for p in [&p1, &p2] {
        let mut last = None;
        for _ in 0..50 {
            let m = recv::<B>(p).await;
            let n = u32::from_be_bytes(m.frames()[0].as_slice().try_into().unwrap());
            assert!(last.is_none_or(|l| n > l), "per-peer order");
            last = Some(n);
        }
        assert!(
            B::try_recv(p).unwrap().is_none(),
            "more than half went to one peer"
        );
    }
    B::close(push).await;
}

/// PULL fair-queues two PUSH peers; each one's order is kept.
pub async fn pull_fair_queue<B: Backend>(t: Transport) {
    let (pull, a, ep) =
        bound_pair::<B>(t, (SocketType::Pull, opts()), (SocketType::Push, opts())).await;
    let b = B::socket(SocketType::Push, opts()).unwrap();
    B::connect(&b, &ep).await.unwrap();
    for i in 0..200u32 {
        B::send(&a, msg([b"a", &i.to_be_bytes()])).await.unwrap();
        B::send(&b, msg([b"b", &i.to_be_bytes()])).await.unwrap();
    }
    let mut next = [0u32; 2];
    for _ in 0..400 {
        let m = recv::<B>(&pull).await;
        let who = usize::from(m.frames()[0] == b"b"[..]);
        let n = u32::from_be_bytes(m.frames()[1].as_slice().try_into().unwrap());
        assert_eq!(n, next[who], "order of peer {who}");
        next[who] += 1;
    }
    assert_eq!(next, [200, 200]);
}

/// REQ/REP: 100 round trips, multipart bodies, envelopes invisible to the user.
pub async fn req_rep<B: Backend>(t: Transport) {
    let (rep, req, _) =
        bound_pair::<B>(t, (SocketType::Rep, opts()), (SocketType::Req, opts())).await;
    for i in 0..100u32 {
        let q = msg([b"q", &i.to_be_bytes()]);
        B::send(&req, q.clone()).await.unwrap();
        let got = recv::<B>(&rep).await;
        assert_eq!(got, q);
        B::send(&rep, msg([b"r", &i.to_be_bytes()])).await.unwrap();
        assert_eq!(recv::<B>(&req).await, msg([b"r", &i.to_be_bytes()]));
    }
}

/// Receives that spin before they sleep (`recv_spin`) and receives that never spin deliver
/// every message, in order: REQ/REP with the spin off on one side and long on the other, and
/// a PULL forced to spin (off by default for streams) that waits for each message.
pub async fn recv_spin_settings_deliver<B: Backend>(t: Transport) {
    let off = opts_with(|o| o.recv_spin = Some(Duration::ZERO));
    let long = opts_with(|o| o.recv_spin = Some(Duration::from_millis(1)));
    let (rep, req, _) =
        bound_pair::<B>(t, (SocketType::Rep, long.clone()), (SocketType::Req, off)).await;
    for i in 0..200u32 {
        let q = numbered(i);
        B::send(&req, q.clone()).await.unwrap();
        assert_eq!(recv::<B>(&rep).await, q);
        B::send(&rep, numbered(i + 1)).await.unwrap();
        assert_eq!(recv::<B>(&req).await, numbered(i + 1));
    }
    let (pull, push, _) =
        bound_pair::<B>(t, (SocketType::Pull, long), (SocketType::Push, opts())).await;
    for i in 0..200u32 {
        B::send(&push, numbered(i)).await.unwrap();
        assert_eq!(recv::<B>(&pull).await, numbered(i));
    }
}

/// REQ must alternate send and recv; REP must receive before it replies (libzmq's EFSM).
pub async fn req_state_machine<B: Backend>(t: Transport) {
    let (rep, req, _) =
        bound_pair::<B>(t, (SocketType::Rep, opts()), (SocketType::Req, opts())).await;
    assert!(matches!(B::try_recv(&req), Err(Error::State)));
    assert!(matches!(
        B::send(&rep, msg([b"x"])).await,
        Err(Error::State)
    ));
    B::send(&req, msg([b"one"])).await.unwrap();
    assert!(matches!(
        B::send(&req, msg([b"two"])).await,
        Err(Error::State)
    ));
    assert_eq!(recv::<B>(&rep).await, msg([b"one"]));
    assert!(matches!(B::try_recv(&rep), Err(Error::State)));
    B::send(&rep, msg([b"reply"])).await.unwrap();
    assert_eq!(recv::<B>(&req).await, msg([b"reply"]));
    assert!(matches!(B::try_recv(&req), Err(Error::State)));
    // Sockets that cannot send or receive say so.
    let sub = B::socket(SocketType::Sub, opts()).unwrap();
    assert!(matches!(
        B::try_send(&sub, msg([b"x"])),
        Err(TrySendError::Failed(Error::NotSupported))
    ));
    let push = B::socket(SocketType::Push, opts()).unwrap();
    assert!(matches!(B::try_recv(&push), Err(Error::NotSupported)));
}

/// ROUTER sees the DEALER's chosen routing id, or a generated one, and routes replies by it.
pub async fn dealer_router_identities<B: Backend>(t: Transport) {
    let named = opts_with(|o| o.routing_id = Some(b("dealer-1")));
    let (router, d1, ep) =
        bound_pair::<B>(t, (SocketType::Router, opts()), (SocketType::Dealer, named)).await;
    let d2 = B::socket(SocketType::Dealer, opts()).unwrap();
    B::connect(&d2, &ep).await.unwrap();

    B::send(&d1, msg([b"hello"])).await.unwrap();
    let m = recv::<B>(&router).await;
    assert_eq!(frames(&m), vec![b"dealer-1".to_vec(), b"hello".to_vec()]);

    B::send(&d2, msg([b"anon"])).await.unwrap();
    let m = recv::<B>(&router).await;
    let id = m.frames()[0].as_slice().to_vec();
    assert_eq!(id.len(), 5, "generated ids are 5 bytes");
    assert_eq!(id[0], 0, "generated ids start with a zero byte");
    assert_eq!(m.frames()[1], b"anon"[..]);

    B::send(&router, msg([b"dealer-1", b"to one"]))
        .await
        .unwrap();
    B::send(&router, msg([&id, b"to two"])).await.unwrap();
    assert_eq!(recv::<B>(&d1).await, msg([b"to one"]));
    assert_eq!(recv::<B>(&d2).await, msg([b"to two"]));
}

/// ROUTER_MANDATORY: an unknown routing id is an error; without it, the message is dropped.
pub async fn router_mandatory<B: Backend>(t: Transport) {
    let mandatory = opts_with(|o| o.router_mandatory = true);
    let r = B::socket(SocketType::Router, mandatory).unwrap();
    B::bind(&r, &t.endpoint()).await.unwrap();
    assert!(matches!(
        B::send(&r, msg([b"nobody", b"x"])).await,
        Err(Error::HostUnreachable)
    ));
    let lax = B::socket(SocketType::Router, opts()).unwrap();
    B::bind(&lax, &t.endpoint()).await.unwrap();
    B::send(&lax, msg([b"nobody", b"x"])).await.unwrap();

    // A known peer at its high-water mark: refused, not dropped.
    let small = |o: &mut Options| {
        o.send_hwm = 2;
        o.recv_hwm = 2;
    };
    let r = B::socket(
        SocketType::Router,
        opts_with(|o| {
            small(o);
            o.router_mandatory = true;
        }),
    )
    .unwrap();
    let ep = B::bind(&r, &t.endpoint()).await.unwrap().to_string();
    let d = B::socket(
        SocketType::Dealer,
        opts_with(|o| {
            small(o);
            o.routing_id = Some(b("d"));
        }),
    )
    .unwrap();
    B::connect(&d, &ep).await.unwrap();
    B::send(&d, msg([b"hi"])).await.unwrap();
    assert_eq!(recv::<B>(&r).await, msg([b"d", b"hi"]));
    let body = vec![0u8; 64 * 1024];
    let mut sent = 0u32;
    loop {
        match B::try_send(&r, msg([b"d", &sent.to_be_bytes(), &body])) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full(_)) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(sent < 100_000, "ROUTER_MANDATORY never refused a full peer");
        if sent % 16 == 0 {
            B::sleep(Duration::from_millis(1)).await;
        }
    }
    for i in 0..sent {
        assert_eq!(
            recv::<B>(&d).await.frames()[0],
            i.to_be_bytes()[..],
            "nothing dropped"
        );
    }
}

/// SUB gets what matches its subscriptions only; unsubscribe stops a topic.
pub async fn pub_sub_filtering<B: Backend>(t: Transport) {
    let (publ, sub, _) =
        bound_pair::<B>(t, (SocketType::Pub, opts()), (SocketType::Sub, opts())).await;
    B::subscribe(&sub, b"a").unwrap();
    let first = send_until_received::<B>(&publ, &sub, || msg([b"a-sync"])).await;
    assert_eq!(first, msg([b"a-sync"]));
    B::send(&publ, msg([b"b-1"])).await.unwrap();
    B::send(&publ, msg([b"a-2", b"more"])).await.unwrap();
    loop {
        let m = recv::<B>(&sub).await;
        if m != msg([b"a-sync"]) {
            // b-1 was filtered out; duplicates of the sync message may come first.
            assert_eq!(m, msg([b"a-2", b"more"]));
            break;
        }
    }

    B::unsubscribe(&sub, b"a").unwrap();
    B::subscribe(&sub, b"b").unwrap();
    let m = send_until_received::<B>(&publ, &sub, || msg([b"b-sync"])).await;
    assert_eq!(m, msg([b"b-sync"]));
    B::send(&publ, msg([b"a-3"])).await.unwrap();
    B::send(&publ, msg([b"b-4"])).await.unwrap();
    loop {
        let m = recv::<B>(&sub).await;
        assert_ne!(
            m.frames()[0].as_slice().first(),
            Some(&b'a'),
            "cancelled topic delivered"
        );
        if m == msg([b"b-4"]) {
            break;
        }
    }
}

/// XPUB sees subscriptions as messages; XSUB sends them as messages.
pub async fn xpub_xsub_subscriptions<B: Backend>(t: Transport) {
    let (xpub, xsub, _) =
        bound_pair::<B>(t, (SocketType::XPub, opts()), (SocketType::XSub, opts())).await;
    B::send(&xsub, msg([b"\x01topic"])).await.unwrap();
    assert_eq!(recv::<B>(&xpub).await, msg([b"\x01topic"]));
    let m = send_until_received::<B>(&xpub, &xsub, || msg([b"topic-data"])).await;
    assert_eq!(m, msg([b"topic-data"]));
    B::send(&xsub, msg([b"\x00topic"])).await.unwrap();
    assert_eq!(recv::<B>(&xpub).await, msg([b"\x00topic"]));
}

/// PAIR: both directions.
pub async fn pair_exchange<B: Backend>(t: Transport) {
    let (a, c, _) =
        bound_pair::<B>(t, (SocketType::Pair, opts()), (SocketType::Pair, opts())).await;
    for i in 0..100u32 {
        B::send(&c, msg([&i.to_be_bytes()])).await.unwrap();
        B::send(&a, msg([&(i + 1000).to_be_bytes()])).await.unwrap();
    }
    for i in 0..100u32 {
        assert_eq!(recv::<B>(&a).await, msg([&i.to_be_bytes()]));
        assert_eq!(recv::<B>(&c).await, msg([&(i + 1000).to_be_bytes()]));
    }
}

/// At the high-water mark, `try_send` hands the message back and `send` waits; once the
/// receiver reads, everything arrives in order.
pub async fn hwm_blocks_and_try_send_hands_back<B: Backend>(t: Transport) {
    let small = || {
        opts_with(|o| {
            o.send_hwm = 5;
            o.recv_hwm = 5;
        })
    };
    let (pull, push, _) =
        bound_pair::<B>(t, (SocketType::Pull, small()), (SocketType::Push, small())).await;
    let payload = vec![1u8; 64 * 1024];
    let mut sent = 0u32;
    let handed_back = loop {
        let m = msg([&sent.to_be_bytes(), &payload]);
        match B::try_send(&push, m) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full(m)) => break m,
            Err(e) => panic!("try_send: {e}"),
        }
        assert!(sent < 100_000, "the high-water mark never stopped try_send");
        if sent % 16 == 0 {
            // Let the connection move what it can into the kernel.
            B::sleep(Duration::from_millis(1)).await;
        }
    };
    assert_eq!(handed_back.frames()[0], sent.to_be_bytes()[..]);
    if t == Transport::Inproc {
        assert_eq!(sent, 10, "inproc pipes hold send_hwm + recv_hwm");
    }
    if t == Transport::Inproc {
        // With no kernel buffer in between, `send` must still be waiting a while later.
        let waited = race(
            B::send(&push, handed_back.clone()),
            B::sleep(Duration::from_millis(20)),
        );
        assert!(
            matches!(waited.await, Either::Right(())),
            "send did not wait at the high-water mark"
        );
    }
    // `send` waits while full, and completes once the receiver reads.
    let blocked = B::send(&push, handed_back.clone());
    let receiver = async {
        for i in 0..=sent {
            let m = recv::<B>(&pull).await;
            assert_eq!(m.frames()[0], i.to_be_bytes()[..], "order at {i}");
        }
    };
    let (r, ()) = within::<B, _>("draining", join(blocked, receiver)).await;
    r.unwrap();
}

/// A receive pipe far smaller than one read of small messages: the connection stops decoding
/// where the pipe fills and resumes from its buffer as the receiver reads, including after the
/// last bytes have arrived. Every message arrives, whole and in order.
pub async fn small_receive_pipe_resumes_buffered_input<B: Backend>(t: Transport) {
    let (pull, push, _) = bound_pair::<B>(
        t,
        (SocketType::Pull, opts_with(|o| o.recv_hwm = 3)),
        (SocketType::Push, opts()),
    )
    .await;
    const N: u32 = 5000;
    let send_all = async {
        for i in 0..N {
            let id = i.to_be_bytes();
            if i % 7 == 0 {
                B::send(&push, msg([&id[..], b"more", &id[..]]))
                    .await
                    .unwrap();
            } else {
                B::send(&push, msg([&id[..]])).await.unwrap();
            }
        }
    };
    let recv_all = async {
        for i in 0..N {
            let id = i.to_be_bytes();
            let m = recv::<B>(&pull).await;
            if i % 7 == 0 {
                assert_eq!(m, msg([&id[..], b"more", &id[..]]), "message {i}");
            } else {
                assert_eq!(m, msg([&id[..]]), "message {i}");
            }
        }
    };
    within::<B, _>("5000 messages", join(send_all, recv_all)).await;
}

/// PUB never waits: a subscriber that does not read misses messages, and what it gets is in
/// order.
pub async fn pub_drops_at_hwm<B: Backend>(t: Transport) {
    let small = opts_with(|o| {
        o.send_hwm = 10;
        o.recv_hwm = 10;
    });
    let (publ, sub, _) = bound_pair::<B>(
        t,
        (SocketType::Pub, small.clone()),
        (SocketType::Sub, small),
    )
    .await;
    B::subscribe(&sub, b"").unwrap();
    send_until_received::<B>(&publ, &sub, || msg([b"sync"])).await;
    let body = vec![0u8; 1024];
    for i in 0..10_000u32 {
        B::try_send(&publ, msg([&i.to_be_bytes(), &body])).expect("PUB must never refuse");
    }
    let mut got = 0u32;
    let mut last = None;
    within::<B, _>("the end marker", async {
        loop {
            let _ = B::try_send(&publ, msg([b"end"]));
            match race(B::recv(&sub), B::sleep(Duration::from_millis(5))).await {
                Either::Left(m) => {
                    let m = m.unwrap();
                    if m.frames()[0] == b"end"[..] {
                        break;
                    }
                    if m.frames()[0] == b"sync"[..] {
                        continue;
                    }
                    let n = u32::from_be_bytes(m.frames()[0].as_slice().try_into().unwrap());
                    assert!(last.is_none_or(|l| n > l), "order");
                    last = Some(n);
                    got += 1;
                }
                Either::Right(()) => {}
            }
        }
    })
    .await;
    assert!(
        got < 10_000,
        "nothing was dropped at the high-water mark ({got})"
    );
}

/// A PUB at the default HWM sending in a tight loop to a subscriber that keeps up delivers
/// everything on a single-threaded runtime: `send` yields to the runtime before the pipe can
/// fill, so the connection (or the inproc subscriber) drains it in time, as libzmq's I/O
/// thread does. Without the yield about one HWM's worth arrived (5 %). Where the connections
/// run on other threads a sender faster than its network drops, as libzmq's does; there the
/// test checks order and the end only.
pub async fn pub_tight_loop_keeps_up<B: Backend>(t: Transport) {
    let (publ, sub, _) =
        bound_pair::<B>(t, (SocketType::Pub, opts()), (SocketType::Sub, opts())).await;
    B::subscribe(&sub, b"").unwrap();
    send_until_received::<B>(&publ, &sub, || msg([b"sync"])).await;
    const N: u32 = 20_000;
    let done = std::cell::Cell::new(false);
    let sender = async {
        for i in 0..N {
            B::send(&publ, msg([&i.to_be_bytes()])).await.expect("send");
        }
        // The end marker, until it arrives (a PUB may drop any one message).
        while !done.get() {
            B::send(&publ, msg([b"end"])).await.expect("send");
            B::sleep(Duration::from_millis(5)).await;
        }
    };
    let mut got = 0u32;
    let receiver = async {
        let mut last = None;
        loop {
            let m = recv::<B>(&sub).await;
            match &m.frames()[0][..] {
                b"sync" => continue,
                b"end" => break,
                n => {
                    let n = u32::from_be_bytes(n.try_into().unwrap());
                    assert!(last.is_none_or(|l| n > l), "order");
                    last = Some(n);
                    got += 1;
                }
            }
        }
        done.set(true);
    };
    within::<B, _>("the end marker", join(sender, receiver)).await;
    if B::single_threaded() {
        assert_eq!(got, N, "messages were dropped");
    }
}

/// Messages sent before the peer binds are delivered, in order, once it does.
pub async fn connect_before_bind<B: Backend>(t: Transport) {
    let ep = fixed_endpoint(t);
    let push = B::socket(SocketType::Push, opts()).unwrap();
    B::connect(&push, &ep).await.unwrap();
    for i in 0..10u32 {
        B::send(&push, msg([&i.to_be_bytes()])).await.unwrap();
    }
    let pull = B::socket(SocketType::Pull, opts()).unwrap();
    B::bind(&pull, &ep).await.unwrap();
    for i in 0..10u32 {
        assert_eq!(recv::<B>(&pull).await, msg([&i.to_be_bytes()]));
    }
}

/// `close` with the default linger sends everything queued first.
pub async fn linger_delivers_queued<B: Backend>(t: Transport) {
    let (pull, push, _) = bound_pair::<B>(
        t,
        (SocketType::Pull, opts()),
        (SocketType::Push, Options::default()),
    )
    .await;
    for i in 0..1000u32 {
        B::send(&push, msg([&i.to_be_bytes(), &[0u8; 100]]))
            .await
            .unwrap();
    }
    within::<B, _>("close", B::close(push)).await;
    for i in 0..1000u32 {
        assert_eq!(recv::<B>(&pull).await.frames()[0], i.to_be_bytes()[..]);
    }
}

/// `recv` futures dropped at random points under load lose nothing.
pub async fn cancelled_recv_loses_nothing<B: Backend>(t: Transport) {
    let (pull, push, _) =
        bound_pair::<B>(t, (SocketType::Pull, opts()), (SocketType::Push, opts())).await;
    const N: u32 = 5000;
    let sender = async {
        for i in 0..N {
            B::send(&push, msg([&i.to_be_bytes()])).await.unwrap();
        }
    };
    let receiver = async {
        let mut next = 0u32;
        let mut cancelled = 0u32;
        while next < N {
            match race(B::recv(&pull), B::sleep(Duration::from_micros(50))).await {
                Either::Left(m) => {
                    let m = m.unwrap();
                    assert_eq!(m.frames()[0], next.to_be_bytes()[..]);
                    next += 1;
                }
                Either::Right(()) => cancelled += 1,
            }
        }
        cancelled
    };
    let ((), _cancelled) = within::<B, _>("every message", join(sender, receiver)).await;
}

/// Multipart messages stay whole while two senders interleave.
pub async fn multipart_atomic_under_load<B: Backend>(t: Transport) {
    let (pull, a, ep) =
        bound_pair::<B>(t, (SocketType::Pull, opts()), (SocketType::Push, opts())).await;
    let b2 = B::socket(SocketType::Push, opts()).unwrap();
    B::connect(&b2, &ep).await.unwrap();
    let send = |s: &'static [u8], sock| async move {
        for i in 0..2000u32 {
            B::send(sock, msg([s, &i.to_be_bytes(), s])).await.unwrap();
        }
    };
    let recv_all = async {
        for _ in 0..4000 {
            let m = recv::<B>(&pull).await;
            assert_eq!(m.len(), 3);
            assert_eq!(m.frames()[0], m.frames()[2]);
        }
    };
    within::<B, _>(
        "4000 messages",
        join(join(send(b"A", &a), send(b"B", &b2)), recv_all),
    )
    .await;
}

/// The monitor reports listening, accepted, connected, handshakes and disconnects.
pub async fn monitor_reports_handshake<B: Backend>(t: Transport) {
    if t == Transport::Inproc {
        return;
    }
    let pull = B::socket(SocketType::Pull, opts()).unwrap();
    let mut m1 = B::monitor(&pull);
    let ep = B::bind(&pull, &t.endpoint()).await.unwrap().to_string();
    let ev = expect_event::<B>(&mut m1, "listening", |e| {
        matches!(e, MonitorEvent::Listening { .. })
    })
    .await;
    assert_eq!(
        ev,
        MonitorEvent::Listening {
            endpoint: ep.clone()
        }
    );
    let push = B::socket(SocketType::Push, opts()).unwrap();
    let mut m2 = B::monitor(&push);
    B::connect(&push, &ep).await.unwrap();
    expect_event::<B>(&mut m2, "connected", |e| {
        matches!(e, MonitorEvent::Connected { .. })
    })
    .await;
    expect_event::<B>(&mut m2, "handshake", |e| {
        matches!(e, MonitorEvent::HandshakeSucceeded { .. })
    })
    .await;
    expect_event::<B>(&mut m1, "accepted", |e| {
        matches!(e, MonitorEvent::Accepted { .. })
    })
    .await;
    expect_event::<B>(&mut m1, "handshake", |e| {
        matches!(e, MonitorEvent::HandshakeSucceeded { .. })
    })
    .await;
    B::close(push).await;
    expect_event::<B>(&mut m1, "disconnected", |e| {
        matches!(e, MonitorEvent::Disconnected { .. })
    })
    .await;
}

/// Kill the bound peer, start a new one on the same endpoint: messages flow again.
pub async fn reconnect_restores_flow<B: Backend>(t: Transport) {
    if t == Transport::Inproc {
        // inproc has no reconnect (as in libzmq): a connect ends with its peer.
        return;
    }
    let ep = fixed_endpoint(t);
    let pull = B::socket(SocketType::Pull, opts()).unwrap();
    B::bind(&pull, &ep).await.unwrap();
    let push = B::socket(SocketType::Push, opts()).unwrap();
    let mut mon = B::monitor(&push);
    B::connect(&push, &ep).await.unwrap();
    B::send(&push, msg([b"before"])).await.unwrap();
    assert_eq!(recv::<B>(&pull).await, msg([b"before"]));
    B::close(pull).await;
    expect_event::<B>(&mut mon, "disconnect", |e| {
        matches!(e, MonitorEvent::Disconnected { .. })
    })
    .await;
    let pull = B::socket(SocketType::Pull, opts()).unwrap();
    B::bind(&pull, &ep).await.unwrap();
    B::send(&push, msg([b"after"])).await.unwrap();
    assert_eq!(recv::<B>(&pull).await, msg([b"after"]));
}

/// A SUB re-sends its subscriptions to a restarted PUB.
pub async fn sub_resubscribes_after_reconnect<B: Backend>(t: Transport) {
    if t == Transport::Inproc {
        return;
    }
    let ep = fixed_endpoint(t);
    let publ = B::socket(SocketType::Pub, opts()).unwrap();
    B::bind(&publ, &ep).await.unwrap();
    let sub = B::socket(SocketType::Sub, opts()).unwrap();
    let mut mon = B::monitor(&sub);
    B::connect(&sub, &ep).await.unwrap();
    B::subscribe(&sub, b"x").unwrap();
    send_until_received::<B>(&publ, &sub, || msg([b"x1"])).await;
    B::close(publ).await;
    expect_event::<B>(&mut mon, "disconnect", |e| {
        matches!(e, MonitorEvent::Disconnected { .. })
    })
    .await;
    let publ = B::socket(SocketType::Pub, opts()).unwrap();
    B::bind(&publ, &ep).await.unwrap();
    let m = send_until_received::<B>(&publ, &sub, || msg([b"x2"])).await;
    assert_eq!(m, msg([b"x2"]));
}

/// A peer sending garbage is dropped with a monitor event; a good peer keeps working.
pub async fn garbage_peer_does_not_disturb<B: Backend>(t: Transport) {
    let pull = B::socket(SocketType::Pull, opts()).unwrap();
    let mut mon = B::monitor(&pull);
    let ep = B::bind(&pull, &t.endpoint()).await.unwrap().to_string();
    let mut raw = B::raw_connect(&ep).await;
    B::raw_write(&mut raw, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    expect_event::<B>(&mut mon, "handshake failure", |e| {
        matches!(e, MonitorEvent::HandshakeFailed { .. })
    })
    .await;
    // We close the garbage connection.
    within::<B, _>("the garbage peer's connection to close", async {
        let mut buf = [0u8; 256];
        loop {
            match B::raw_read(&mut raw, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    let push = B::socket(SocketType::Push, opts()).unwrap();
    B::connect(&push, &ep).await.unwrap();
    B::send(&push, msg([b"good"])).await.unwrap();
    assert_eq!(recv::<B>(&pull).await, msg([b"good"]));
}

/// Heartbeats: a peer that completes the handshake and then goes silent is dropped.
pub async fn heartbeat_drops_silent_peer<B: Backend>(_t: Transport) {
    let (listener, ep) = B::raw_listen().await;
    let o = opts_with(|o| {
        o.heartbeat_interval = Some(Duration::from_millis(50));
        o.heartbeat_timeout = Some(Duration::from_millis(200));
    });
    let dealer = B::socket(SocketType::Dealer, o).unwrap();
    let mut mon = B::monitor(&dealer);
    B::connect(&dealer, &ep).await.unwrap();
    let mut raw = B::raw_accept(&listener).await;
    // Complete the handshake as a ROUTER, then say nothing more.
    raw_handshake::<B>(&mut raw, SocketType::Router).await;
    expect_event::<B>(&mut mon, "handshake", |e| {
        matches!(e, MonitorEvent::HandshakeSucceeded { .. })
    })
    .await;
    let ev = expect_event::<B>(&mut mon, "heartbeat disconnect", |e| {
        matches!(e, MonitorEvent::Disconnected { .. })
    })
    .await;
    let MonitorEvent::Disconnected { reason, .. } = ev else {
        unreachable!()
    };
    assert!(reason.contains("heartbeat"), "{reason}");
    drop(raw);
}

/// Inproc: a receiver gets small clones of a shared payload as copies of its own, and the
/// originals stay in the pipe for the sending socket to drop as it sends on: once the receiver
/// has them all, two pipes' worth of sends at most leave the payload with its one owner again.
/// Larger payloads are handed over shared.
pub async fn inproc_clones_are_copied_and_dropped_by_the_sender<B: Backend>(t: Transport) {
    if t != Transport::Inproc {
        return;
    }
    // A pipe of 200 messages (the sender's and the receiver's high-water marks together).
    let o = opts_with(|o| {
        o.send_hwm = 100;
        o.recv_hwm = 100;
    });
    let (pull, push, _) =
        bound_pair::<B>(t, (SocketType::Pull, o.clone()), (SocketType::Push, o)).await;
    let small = Message::from(vec![1u8; 200]);
    let large = Message::from(vec![2u8; 4096]);
    let unique = |m: &Message| {
        m.first()
            .and_then(Frame::as_bytes)
            .is_some_and(Bytes::is_unique)
    };
    for _ in 0..100 {
        B::send(&push, small.clone()).await.unwrap();
    }
    B::send(&push, large.clone()).await.unwrap();
    for _ in 0..100 {
        let m = recv::<B>(&pull).await;
        assert_eq!(m, small);
        assert!(
            !m.first().unwrap().is_clone(),
            "a copy of the receiver's own"
        );
    }
    let m = recv::<B>(&pull).await;
    assert_eq!(m, large);
    assert!(m.first().unwrap().is_clone(), "large payloads are shared");
    drop(m);
    assert!(unique(&large), "a message handed over is not kept");
    assert!(!unique(&small), "the originals wait for the sender");
    for i in 0u32..400 {
        B::send(&push, msg([&i.to_be_bytes()])).await.unwrap();
        assert_eq!(recv::<B>(&pull).await, msg([&i.to_be_bytes()]));
    }
    assert!(unique(&small), "the sender dropped the originals");
}

/// Heartbeats: a receiver that falls behind is not dropped by its own heartbeat timeout. While
/// its receive pipe is full it does not read, so the peer's PONGs wait unread; that silence is
/// no evidence, and every message arrives once the receiver reads again.
pub async fn full_receive_pipe_is_no_heartbeat_timeout<B: Backend>(t: Transport) {
    // Only the receiver sends PINGs: a peer's own heartbeat timeout would (rightly) drop a
    // receiver that does not answer them for long enough, as libzmq's does.
    let o = opts_with(|o| {
        o.heartbeat_interval = Some(Duration::from_millis(10));
        o.recv_hwm = 4;
    });
    let (pull, push, _) =
        bound_pair::<B>(t, (SocketType::Pull, o), (SocketType::Push, opts())).await;
    let mut mon = B::monitor(&pull);
    const N: u32 = 100;
    for i in 0..N {
        B::send(&push, msg([&i.to_be_bytes()])).await.unwrap();
    }
    assert_eq!(recv::<B>(&pull).await, msg([&0u32.to_be_bytes()]));
    // The pipe fills again at once. Twenty heartbeat intervals pass with nothing read: each
    // PING's timeout (one interval) would have dropped the connection.
    B::sleep(Duration::from_millis(200)).await;
    for i in 1..N {
        assert_eq!(
            recv::<B>(&pull).await,
            msg([&i.to_be_bytes()]),
            "message {i}"
        );
    }
    while let Some(e) = mon.try_next() {
        assert!(
            !matches!(e, MonitorEvent::Disconnected { .. }),
            "the connection dropped: {e:?}"
        );
    }
}

/// A peer of an incompatible socket type is refused; compatible peers keep working.
pub async fn wrong_socket_type_refused<B: Backend>(t: Transport) {
    let pull = B::socket(SocketType::Pull, opts()).unwrap();
    let mut mon = B::monitor(&pull);
    let ep = B::bind(&pull, &t.endpoint()).await.unwrap().to_string();
    let wrong = B::socket(SocketType::Pull, opts()).unwrap();
    B::connect(&wrong, &ep).await.unwrap();
    let ev = expect_event::<B>(&mut mon, "refusal", |e| {
        matches!(e, MonitorEvent::HandshakeFailed { .. })
    })
    .await;
    let MonitorEvent::HandshakeFailed { reason, .. } = ev else {
        unreachable!()
    };
    assert!(reason.contains("socket type"), "{reason}");
    let push = B::socket(SocketType::Push, opts()).unwrap();
    B::connect(&push, &ep).await.unwrap();
    B::send(&push, msg([b"ok"])).await.unwrap();
    assert_eq!(recv::<B>(&pull).await, msg([b"ok"]));
}

/// `disconnect` stops round-robin to that endpoint; `unbind` closes the listener and the
/// connections it accepted.
pub async fn unbind_and_disconnect<B: Backend>(t: Transport) {
    let p1 = B::socket(SocketType::Pull, opts()).unwrap();
    let p2 = B::socket(SocketType::Pull, opts()).unwrap();
    let e1 = B::bind(&p1, &t.endpoint()).await.unwrap().to_string();
    let e2 = B::bind(&p2, &t.endpoint()).await.unwrap().to_string();
    let push = B::socket(SocketType::Push, opts()).unwrap();
    let mut mon = B::monitor(&push);
    B::connect(&push, &e1).await.unwrap();
    B::connect(&push, &e2).await.unwrap();
    await_handshakes::<B>(t, &mut mon, 2).await;
    B::disconnect(&push, &e1).await.unwrap();
    assert!(matches!(
        B::disconnect(&push, &e1).await,
        Err(Error::UnknownEndpoint)
    ));
    for i in 0..10u32 {
        B::send(&push, msg([&i.to_be_bytes()])).await.unwrap();
    }
    for i in 0..10u32 {
        assert_eq!(recv::<B>(&p2).await, msg([&i.to_be_bytes()]));
    }
    assert!(
        B::try_recv(&p1).unwrap().is_none(),
        "a disconnected endpoint still got messages"
    );

    if t != Transport::Inproc {
        let mut pm = B::monitor(&p2);
        B::unbind(&p2, &e2).await.unwrap();
        expect_event::<B>(&mut pm, "listener closed", |e| {
            matches!(e, MonitorEvent::Closed { .. })
        })
        .await;
        expect_event::<B>(
            &mut mon,
            "the unbound endpoint's disconnect",
            |e| matches!(e, MonitorEvent::Disconnected { endpoint, .. } if *endpoint == e2),
        )
        .await;
    } else {
        B::unbind(&p2, &e2).await.unwrap();
    }
    assert!(matches!(
        B::unbind(&p2, &e2).await,
        Err(Error::UnknownEndpoint)
    ));
}

/// XPUB passes a subscription up once, or every time with `xpub_verbose`.
pub async fn xpub_verbose<B: Backend>(t: Transport) {
    for verbose in [false, true] {
        let xpub = B::socket(SocketType::XPub, opts_with(|o| o.xpub_verbose = verbose)).unwrap();
        let ep = B::bind(&xpub, &t.endpoint()).await.unwrap().to_string();
        let s1 = B::socket(SocketType::Sub, opts()).unwrap();
        let s2 = B::socket(SocketType::Sub, opts()).unwrap();
        for s in [&s1, &s2] {
            B::connect(s, &ep).await.unwrap();
            B::subscribe(s, b"t").unwrap();
        }
        assert_eq!(recv::<B>(&xpub).await, msg([b"\x01t"]));
        // Both subscriptions are in once both subscribers get messages.
        send_until_received::<B>(&xpub, &s1, || msg([b"t-sync"])).await;
        send_until_received::<B>(&xpub, &s2, || msg([b"t-sync"])).await;
        let second = B::try_recv(&xpub).unwrap();
        if verbose {
            assert_eq!(second, Some(msg([b"\x01t"])));
        } else {
            assert_eq!(second, None, "a duplicate subscription was passed up");
        }
    }
}

/// XPUB_NODROP: at the high-water mark, XPUB refuses instead of dropping.
pub async fn xpub_nodrop<B: Backend>(t: Transport) {
    let small = |nodrop: bool| {
        opts_with(|o| {
            o.send_hwm = 2;
            o.recv_hwm = 2;
            o.xpub_nodrop = nodrop;
        })
    };
    let xpub = B::socket(SocketType::XPub, small(true)).unwrap();
    let ep = B::bind(&xpub, &t.endpoint()).await.unwrap().to_string();
    let sub = B::socket(SocketType::Sub, small(false)).unwrap();
    B::connect(&sub, &ep).await.unwrap();
    B::subscribe(&sub, b"").unwrap();
    assert_eq!(recv::<B>(&xpub).await, msg([b"\x01"]));
    send_until_received::<B>(&xpub, &sub, || msg([b"sync"])).await;
    while B::try_recv(&sub).unwrap().is_some() {}
    let body = vec![0u8; 64 * 1024];
    let mut sent = 0u32;
    let refused = loop {
        match B::try_send(&xpub, msg([&sent.to_be_bytes(), &body])) {
            Ok(()) => sent += 1,
            Err(TrySendError::Full(m)) => break m,
            Err(e) => panic!("{e}"),
        }
        assert!(sent < 100_000, "XPUB_NODROP never refused");
        if sent % 16 == 0 {
            B::sleep(Duration::from_millis(1)).await;
        }
    };
    // A blocking send waits for the subscriber and completes once it reads.
    let blocked = B::send(&xpub, refused);
    let receiver = async {
        let mut i = 0u32;
        while i <= sent {
            let m = recv::<B>(&sub).await;
            if m.frames()[0] == b"sync"[..] {
                continue; // a duplicate of the synchronising message
            }
            assert_eq!(m.frames()[0], i.to_be_bytes()[..], "nothing dropped");
            i += 1;
        }
    };
    let (r, ()) = within::<B, _>("the drain", join(blocked, receiver)).await;
    r.unwrap();
}

/// `conflate`: the receiver gets the latest message, not a backlog.
pub async fn conflate_keeps_latest<B: Backend>(t: Transport) {
    let (pull, push, _) = bound_pair::<B>(
        t,
        (SocketType::Pull, opts_with(|o| o.conflate = true)),
        (SocketType::Push, opts()),
    )
    .await;
    for i in 0..100u32 {
        B::send(&push, msg([&i.to_be_bytes()])).await.unwrap();
    }
    let mut receives = 0;
    loop {
        let m = recv::<B>(&pull).await;
        receives += 1;
        if m.frames()[0] == 99u32.to_be_bytes()[..] {
            break;
        }
    }
    assert!(receives < 100, "conflate delivered every message");
    if t == Transport::Inproc {
        assert_eq!(receives, 1);
    }
}

/// Bad options and endpoints are typed errors, never panics.
pub async fn bad_arguments_are_errors<B: Backend>(t: Transport) {
    assert!(matches!(
        B::socket(SocketType::Dealer, opts_with(|o| o.router_mandatory = true)),
        Err(Error::Option(_))
    ));
    assert!(matches!(
        B::socket(
            SocketType::Dealer,
            opts_with(|o| o.routing_id = Some(Bytes::new()))
        ),
        Err(Error::Option(_))
    ));
    let s = B::socket(SocketType::Pull, opts()).unwrap();
    for bad in [
        "",
        "tcp://",
        "foo://x",
        "tcp://127.0.0.1:99999",
        "tcp://:5555",
        "inproc://",
    ] {
        assert!(
            matches!(B::bind(&s, bad).await, Err(Error::Endpoint(_))),
            "{bad}"
        );
    }
    assert!(matches!(
        B::connect(&s, "tcp://*:5555").await,
        Err(Error::Endpoint(_))
    ));
    let ep = B::bind(&s, &t.endpoint()).await.unwrap().to_string();
    let other = B::socket(SocketType::Pull, opts()).unwrap();
    match t {
        Transport::Inproc => assert!(matches!(
            B::bind(&other, &ep).await,
            Err(Error::AddressInUse(_))
        )),
        Transport::Tcp => assert!(matches!(B::bind(&other, &ep).await, Err(Error::Io(_)))),
        // ipc: a second bind takes the path over, as in libzmq.
        Transport::Ipc => {}
    }
}

/// A peer that connects and never completes the handshake is dropped after the handshake
/// interval.
pub async fn handshake_stall_times_out<B: Backend>(t: Transport) {
    let pull = B::socket(
        SocketType::Pull,
        opts_with(|o| o.handshake_interval = Some(Duration::from_millis(200))),
    )
    .unwrap();
    let mut mon = B::monitor(&pull);
    let ep = B::bind(&pull, &t.endpoint()).await.unwrap().to_string();
    let mut raw = B::raw_connect(&ep).await;
    let ev = expect_event::<B>(&mut mon, "handshake timeout", |e| {
        matches!(e, MonitorEvent::HandshakeFailed { .. })
    })
    .await;
    let MonitorEvent::HandshakeFailed { reason, .. } = ev else {
        unreachable!()
    };
    assert!(reason.contains("timed out"), "{reason}");
    within::<B, _>("the stalled connection to close", async {
        let mut buf = [0u8; 256];
        while let Ok(n) = B::raw_read(&mut raw, &mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// A message over `max_message_size` drops its sender with a monitor event; another peer keeps
/// working.
pub async fn oversized_message_drops_peer<B: Backend>(t: Transport) {
    let pull = B::socket(
        SocketType::Pull,
        opts_with(|o| o.max_message_size = Some(1000)),
    )
    .unwrap();
    let mut mon = B::monitor(&pull);
    let ep = B::bind(&pull, &t.endpoint()).await.unwrap().to_string();
    let good = B::socket(SocketType::Push, opts()).unwrap();
    B::connect(&good, &ep).await.unwrap();
    B::send(&good, msg([b"first"])).await.unwrap();
    assert_eq!(recv::<B>(&pull).await, msg([b"first"]));
    let bad = B::socket(SocketType::Push, opts()).unwrap();
    B::connect(&bad, &ep).await.unwrap();
    B::send(&bad, msg([&[0u8; 2000]])).await.unwrap();
    let ev = expect_event::<B>(&mut mon, "the oversized peer dropped", |e| {
        matches!(e, MonitorEvent::Disconnected { .. })
    })
    .await;
    let MonitorEvent::Disconnected { reason, .. } = ev else {
        unreachable!()
    };
    assert!(reason.contains("exceeds the limit"), "{reason}");
    B::send(&good, msg([b"second"])).await.unwrap();
    assert_eq!(recv::<B>(&pull).await, msg([b"second"]));
}

/// When a peer goes away, round-robin skips it at once: nothing is lost into a dead pipe.
pub async fn departed_peer_leaves_round_robin<B: Backend>(t: Transport) {
    let push = B::socket(SocketType::Push, opts()).unwrap();
    let mut mon = B::monitor(&push);
    let ep = B::bind(&push, &t.endpoint()).await.unwrap().to_string();
    let stays = B::socket(SocketType::Pull, opts()).unwrap();
    let leaves = B::socket(SocketType::Pull, opts()).unwrap();
    B::connect(&stays, &ep).await.unwrap();
    B::connect(&leaves, &ep).await.unwrap();
    await_handshakes::<B>(t, &mut mon, 2).await;
    B::close(leaves).await;
    if t != Transport::Inproc {
        expect_event::<B>(&mut mon, "the departure", |e| {
            matches!(e, MonitorEvent::Disconnected { .. })
        })
        .await;
    }
    for i in 0..20u32 {
        B::send(&push, msg([&i.to_be_bytes()])).await.unwrap();
    }
    for i in 0..20u32 {
        assert_eq!(recv::<B>(&stays).await, msg([&i.to_be_bytes()]));
    }
}

/// A frame header declaring a huge length costs nothing up front; the socket keeps serving.
pub async fn huge_frame_header_is_harmless<B: Backend>(t: Transport) {
    let pull = B::socket(SocketType::Pull, opts()).unwrap();
    let ep = B::bind(&pull, &t.endpoint()).await.unwrap().to_string();
    let mut raw = B::raw_connect(&ep).await;
    raw_handshake::<B>(&mut raw, SocketType::Push).await;
    // A long data frame of 2^40 bytes, and a few of them.
    let mut header = vec![0x02];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&[0u8; 1000]);
    B::raw_write(&mut raw, &header).await.unwrap();
    let good = B::socket(SocketType::Push, opts()).unwrap();
    B::connect(&good, &ep).await.unwrap();
    B::send(&good, msg([b"fine"])).await.unwrap();
    assert_eq!(recv::<B>(&pull).await, msg([b"fine"]));
    drop(raw);
}

/// `close` does not wait for accepted connections that never finished their handshake.
pub async fn close_does_not_wait_for_handshakes<B: Backend>(t: Transport) {
    let pull = B::socket(SocketType::Pull, Options::default()).unwrap();
    let mut mon = B::monitor(&pull);
    let ep = B::bind(&pull, &t.endpoint()).await.unwrap().to_string();
    let raw = B::raw_connect(&ep).await;
    expect_event::<B>(&mut mon, "accepted", |e| {
        matches!(e, MonitorEvent::Accepted { .. })
    })
    .await;
    within_for::<B, _>(Duration::from_secs(5), "close", B::close(pull)).await;
    drop(raw);

    // The connecting side too: nothing is queued, so nothing is waited for.
    let (listener, ep) = B::raw_listen().await;
    let push = B::socket(SocketType::Push, Options::default()).unwrap();
    B::connect(&push, &ep).await.unwrap();
    let raw = B::raw_accept(&listener).await;
    within_for::<B, _>(Duration::from_secs(5), "close", B::close(push)).await;
    drop(raw);
}

/// Completes a ZMTP handshake over a raw stream as `ty`; returns the codec state.
async fn raw_handshake<B: Backend>(raw: &mut Raw<B>, ty: SocketType) -> Connection {
    let mut conn = Connection::new(Config::new(ty), Instant::now()).unwrap();
    let mut out = omq_zmtp::WriteBuf::new();
    within::<B, _>("the raw handshake", async {
        let mut buf = vec![0u8; 4096];
        while !conn.is_established() {
            conn.poll_transmit(&mut out);
            let bytes = drain(&mut out);
            B::raw_write(raw, &bytes).await.unwrap();
            let n = B::raw_read(raw, &mut buf).await.unwrap();
            assert!(n > 0, "peer closed during the handshake");
            conn.handle_input(Instant::now(), &buf[..n]).unwrap();
        }
        conn.poll_transmit(&mut out);
        let bytes = drain(&mut out);
        B::raw_write(raw, &bytes).await.unwrap();
    })
    .await;
    conn
}

fn drain(out: &mut omq_zmtp::WriteBuf) -> Vec<u8> {
    let mut bytes = Vec::new();
    while bytes::Buf::has_remaining(out) {
        let c = bytes::Buf::chunk(out).to_vec();
        bytes::Buf::advance(out, c.len());
        bytes.extend_from_slice(&c);
    }
    bytes
}

/// `immediate`: messages go only to connected peers, never into the pipe of an endpoint that is
/// not up; without it, a connected endpoint queues messages until it connects.
pub async fn immediate_skips_unconnected_endpoints<B: Backend>(t: Transport) {
    if t == Transport::Inproc {
        // inproc connects at once (or waits for its bind, which immediate does not change).
        return;
    }
    let pull = B::socket(SocketType::Pull, opts()).unwrap();
    let up = B::bind(&pull, &t.endpoint()).await.unwrap().to_string();
    let down = fixed_endpoint(t);
    let push = B::socket(SocketType::Push, opts_with(|o| o.immediate = true)).unwrap();
    let mut mon = B::monitor(&push);
    B::connect(&push, &down).await.unwrap();
    B::connect(&push, &up).await.unwrap();
    await_handshakes::<B>(t, &mut mon, 1).await;
    for i in 0..10u32 {
        B::send(&push, msg([&i.to_be_bytes()])).await.unwrap();
    }
    for i in 0..10u32 {
        assert_eq!(
            recv::<B>(&pull).await,
            msg([&i.to_be_bytes()]),
            "a message went to the endpoint that is down"
        );
    }
}

/// REQ round-robins requests over REP peers, and each reply comes from the one asked.
pub async fn req_round_robins_over_reps<B: Backend>(t: Transport) {
    let req = B::socket(SocketType::Req, opts()).unwrap();
    let mut mon = B::monitor(&req);
    let ep = B::bind(&req, &t.endpoint()).await.unwrap().to_string();
    let r1 = B::socket(SocketType::Rep, opts()).unwrap();
    let r2 = B::socket(SocketType::Rep, opts()).unwrap();
    B::connect(&r1, &ep).await.unwrap();
    B::connect(&r2, &ep).await.unwrap();
    await_handshakes::<B>(t, &mut mon, 2).await;
    let mut served = [0; 2];
    for i in 0..10u32 {
        B::send(&req, msg([&i.to_be_bytes()])).await.unwrap();
        let (who, rep) = match race(B::recv(&r1), B::recv(&r2)).await {
            Either::Left(m) => (0, (m.unwrap(), &r1)),
            Either::Right(m) => (1, (m.unwrap(), &r2)),
        };
        served[who] += 1;
        assert_eq!(rep.0, msg([&i.to_be_bytes()]));
        B::send(rep.1, msg([b"from", &[who as u8]])).await.unwrap();
        assert_eq!(recv::<B>(&req).await, msg([b"from", &[who as u8]]));
    }
    assert_eq!(served, [5, 5], "requests were not spread evenly");
}

/// A PAIR's inproc connect that was disconnected before its bind leaves no trace: the later bind
/// does not claim the PAIR's one slot, and the PAIR keeps working with its real peer.
pub async fn disconnected_pending_inproc_leaves_no_trace<B: Backend>(t: Transport) {
    let name = Transport::Inproc.endpoint();
    let a = B::socket(SocketType::Pair, opts()).unwrap();
    B::connect(&a, &name).await.unwrap();
    B::disconnect(&a, &name).await.unwrap();
    let c = B::socket(SocketType::Pair, opts()).unwrap();
    let ep = B::bind(&c, &t.endpoint()).await.unwrap().to_string();
    let late = B::socket(SocketType::Pair, opts()).unwrap();
    B::bind(&late, &name).await.unwrap();
    B::connect(&a, &ep).await.unwrap();
    B::send(&a, msg([b"to c"])).await.unwrap();
    assert_eq!(recv::<B>(&c).await, msg([b"to c"]));
    B::send(&c, msg([b"to a"])).await.unwrap();
    assert_eq!(recv::<B>(&a).await, msg([b"to a"]));
}

/// `close` with linger delivers everything even when the closing side has unread input (a
/// socket closed with unread input resets the connection, which can destroy what the peer has
/// not read yet): the close is an orderly FIN and waits for the peer's, heartbeats or not.
pub async fn linger_survives_unread_input<B: Backend>(t: Transport) {
    let o = |timeout| {
        opts_with(|o| {
            o.linger = Some(Duration::from_secs(5));
            o.heartbeat_interval = Some(Duration::from_millis(20));
            o.heartbeat_timeout = timeout;
        })
    };
    // The ROUTER reads all along and hears the DEALER's PINGs, which come no more often than
    // every 20 ms: its timeout leaves room for a late timer on a loaded machine. (The DEALER
    // stops reading once its receive pipe is full, which is no timeout of its own.)
    let (dealer, router, _) = bound_pair::<B>(
        t,
        (SocketType::Dealer, o(None)),
        (SocketType::Router, o(Some(Duration::from_secs(1)))),
    )
    .await;
    const N: u32 = 2000;
    let source = async {
        for i in 0..N {
            B::send(
                &dealer,
                msg([&i.to_be_bytes(), &vec![1u8; (i as usize * 31) % 9000]]),
            )
            .await
            .unwrap();
        }
        B::close(dealer).await;
    };
    let echo = async {
        for i in 0..N {
            let m = recv::<B>(&router).await;
            assert_eq!(m.frames()[1], i.to_be_bytes()[..], "message {i}");
            // Echo back to a dealer that never reads.
            B::send(&router, m).await.unwrap();
        }
    };
    within::<B, _>("every message", join(source, echo)).await;
}

/// `close` does not sit out a reconnect wait: with linger 0 it returns at once even while the
/// endpoint waits a long reconnect interval.
pub async fn close_interrupts_reconnect_wait<B: Backend>(t: Transport) {
    if t == Transport::Inproc {
        return;
    }
    let push = B::socket(
        SocketType::Push,
        opts_with(|o| o.reconnect_interval = Some(Duration::from_secs(60))),
    )
    .unwrap();
    let mut mon = B::monitor(&push);
    B::connect(&push, &fixed_endpoint(t)).await.unwrap();
    B::send(&push, msg([b"queued"])).await.unwrap();
    expect_event::<B>(&mut mon, "a failed attempt", |e| {
        matches!(e, MonitorEvent::ConnectDelayed { .. })
    })
    .await;
    within_for::<B, _>(Duration::from_secs(5), "close", B::close(push)).await;
}

/// A listener that closes does not remove the socket file of another socket that bound the same
/// ipc path since.
pub async fn ipc_rebind_keeps_the_new_file<B: Backend>(t: Transport) {
    if t != Transport::Ipc {
        return;
    }
    let ep = t.endpoint();
    let first = B::socket(SocketType::Pull, opts()).unwrap();
    let mut m1 = B::monitor(&first);
    B::bind(&first, &ep).await.unwrap();
    B::unbind(&first, &ep).await.unwrap();
    let second = B::socket(SocketType::Pull, opts()).unwrap();
    B::bind(&second, &ep).await.unwrap();
    expect_event::<B>(&mut m1, "the first listener closed", |e| {
        matches!(e, MonitorEvent::Closed { .. })
    })
    .await;
    let push = B::socket(SocketType::Push, opts()).unwrap();
    B::connect(&push, &ep).await.unwrap();
    B::send(&push, msg([b"to the second"])).await.unwrap();
    assert_eq!(recv::<B>(&second).await, msg([b"to the second"]));
}
