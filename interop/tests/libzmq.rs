//! The codec against a real libzmq (4.3, built by the `zmq` crate) over TCP: handshakes both
//! ways, message flow both ways including multipart and large frames, subscriptions, REQ/REP
//! envelopes, heartbeats, and refusal of an incompatible socket type.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use omq_interop::{Driver, DriverError};
use omq_zmtp::{Config, Event, Message, ProtocolError, SocketType};

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// A libzmq socket bound to an ephemeral tcp port, and that port's address.
fn bound(ctx: &zmq::Context, kind: zmq::SocketType) -> (zmq::Socket, String) {
    bound_with(ctx, kind, |_| {})
}

/// The same, with options set before the bind (libzmq's listener copies the socket's options
/// when it binds, so later changes do not reach the connections it accepts).
fn bound_with(
    ctx: &zmq::Context,
    kind: zmq::SocketType,
    setup: impl FnOnce(&zmq::Socket),
) -> (zmq::Socket, String) {
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    setup(&s);
    s.bind("tcp://127.0.0.1:*").unwrap();
    let ep = s.get_last_endpoint().unwrap().unwrap();
    let addr = ep.trim_start_matches("tcp://").to_string();
    (s, addr)
}

/// Messages of every interesting shape: empty, small, at the inline and short-frame limits,
/// long, large, multipart with empty frames.
fn shapes() -> Vec<Vec<Vec<u8>>> {
    let mut v = Vec::new();
    for (i, size) in [0usize, 1, 8, 62, 63, 255, 256, 1024, 70_000, 300_000]
        .into_iter()
        .enumerate()
    {
        v.push(vec![vec![i as u8; size]]);
    }
    v.push(vec![b"".to_vec(), b"body".to_vec()]);
    v.push(vec![
        b"a".to_vec(),
        vec![7; 100_000],
        b"".to_vec(),
        b"z".to_vec(),
    ]);
    v
}

fn to_message(frames: &[Vec<u8>]) -> Message {
    frames.iter().cloned().collect()
}

fn frames_of(m: &Message) -> Vec<Vec<u8>> {
    m.iter().map(|f| f.to_vec()).collect()
}

#[test]
fn libzmq_push_to_omq_pull() {
    let ctx = zmq::Context::new();
    let (push, addr) = bound(&ctx, zmq::PUSH);
    let mut pull = Driver::connect(&addr, Config::new(SocketType::Pull)).unwrap();
    // A bound libzmq socket attaches a peer only once the handshake is done, and its send
    // blocks until then: run our side of the handshake first.
    assert_eq!(pull.next_event(deadline()).unwrap(), Event::Established);
    let shapes = shapes();
    for round in 0..20 {
        for s in &shapes {
            push.send_multipart(s.iter(), 0).unwrap();
        }
        for s in &shapes {
            let m = pull.recv(deadline()).unwrap();
            assert_eq!(&frames_of(&m), s, "round {round}");
        }
    }
    let peer = pull.conn.peer().unwrap();
    assert_eq!(peer.socket_type, Some(SocketType::Push));
    assert_eq!(peer.version, omq_zmtp::Version::V3_1);
}

#[test]
fn omq_push_to_libzmq_pull() {
    let ctx = zmq::Context::new();
    let (pull, addr) = bound(&ctx, zmq::PULL);
    pull.set_rcvtimeo(10_000).unwrap();
    let mut push = Driver::connect(&addr, Config::new(SocketType::Push)).unwrap();
    assert_eq!(push.next_event(deadline()).unwrap(), Event::Established);
    let shapes = shapes();
    for _ in 0..20 {
        for s in &shapes {
            push.send(&to_message(s)).unwrap();
        }
        for s in &shapes {
            assert_eq!(&pull.recv_multipart(0).unwrap(), s);
        }
    }
}

#[test]
fn libzmq_req_to_omq_rep() {
    let ctx = zmq::Context::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let req = ctx.socket(zmq::REQ).unwrap();
    req.set_linger(0).unwrap();
    req.set_rcvtimeo(10_000).unwrap();
    req.set_identity(b"client-1").unwrap();
    req.connect(&format!("tcp://{}", listener.local_addr().unwrap()))
        .unwrap();
    let mut config = Config::new(SocketType::Rep);
    config.as_server = true;
    let mut rep = Driver::accept(&listener, config).unwrap();
    for i in 0..50 {
        let body = format!("request {i}");
        req.send(body.as_bytes(), 0).unwrap();
        // REQ puts an empty delimiter in front; the REP side sees the envelope.
        let m = rep.recv(deadline()).unwrap();
        assert_eq!(frames_of(&m), [b"".to_vec(), body.clone().into_bytes()]);
        rep.send(&Message::from_iter(["", "reply"])).unwrap();
        assert_eq!(req.recv_bytes(0).unwrap(), b"reply");
    }
    let peer = rep.conn.peer().unwrap();
    assert_eq!(peer.socket_type, Some(SocketType::Req));
    assert_eq!(peer.identity.as_deref(), Some(&b"client-1"[..]));
}

#[test]
fn libzmq_sub_subscribes_to_omq_pub() {
    let ctx = zmq::Context::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let sub = ctx.socket(zmq::SUB).unwrap();
    sub.set_linger(0).unwrap();
    sub.set_rcvtimeo(10_000).unwrap();
    sub.set_subscribe(b"A").unwrap();
    sub.connect(&format!("tcp://{}", listener.local_addr().unwrap()))
        .unwrap();
    let mut publisher = Driver::accept(&listener, Config::new(SocketType::Pub)).unwrap();
    assert_eq!(
        publisher.next_event(deadline()).unwrap(),
        Event::Established
    );
    // libzmq speaks 3.1: a SUBSCRIBE command.
    assert_eq!(
        publisher.next_event(deadline()).unwrap(),
        Event::Subscribe(bytes::Bytes::from_static(b"A"))
    );
    for m in ["A-1", "B-1", "A-2"] {
        publisher.send(&Message::from(m)).unwrap();
    }
    // The SUB filters locally as well.
    assert_eq!(sub.recv_bytes(0).unwrap(), b"A-1");
    assert_eq!(sub.recv_bytes(0).unwrap(), b"A-2");
    sub.set_unsubscribe(b"A").unwrap();
    assert_eq!(
        publisher.next_event(deadline()).unwrap(),
        Event::Cancel(bytes::Bytes::from_static(b"A"))
    );
}

#[test]
fn omq_sub_subscribes_to_libzmq_xpub() {
    let ctx = zmq::Context::new();
    let (xpub, addr) = bound(&ctx, zmq::XPUB);
    xpub.set_rcvtimeo(10_000).unwrap();
    let mut sub = Driver::connect(&addr, Config::new(SocketType::Sub)).unwrap();
    assert_eq!(sub.next_event(deadline()).unwrap(), Event::Established);
    sub.subscribe(b"topic").unwrap();
    // libzmq's XPUB hands subscriptions to the application as `\x01topic`.
    assert_eq!(xpub.recv_bytes(0).unwrap(), b"\x01topic");
    xpub.send("topic.1", 0).unwrap();
    assert_eq!(sub.recv(deadline()).unwrap(), Message::from("topic.1"));
}

/// Runs a second of heartbeat-only traffic between a libzmq DEALER and our ROUTER, then checks
/// that messages still flow both ways.
fn heartbeat_second(libzmq_pings: bool, we_ping: bool) {
    let ctx = zmq::Context::new();
    let (dealer, addr) = bound_with(&ctx, zmq::DEALER, |s| {
        if libzmq_pings {
            s.set_heartbeat_ivl(50).unwrap();
            s.set_heartbeat_timeout(200).unwrap();
        }
        s.set_rcvtimeo(10_000).unwrap();
    });
    let mut config = Config::new(SocketType::Router);
    if we_ping {
        config.heartbeat_interval = Some(Duration::from_millis(50));
        config.heartbeat_timeout = Some(Duration::from_millis(200));
    }
    let mut router = Driver::connect(&addr, config).unwrap();
    assert_eq!(router.next_event(deadline()).unwrap(), Event::Established);
    // Only one side pings, so the only traffic the pinging side sees is the other's PONGs: if
    // they did not come, it would drop the connection after 200 ms (libzmq by closing it, we
    // with a HeartbeatTimeout error).
    router
        .run_until(Instant::now() + Duration::from_secs(1), |_| false)
        .unwrap();
    dealer.send("still here", 0).unwrap();
    assert_eq!(
        router.recv(deadline()).unwrap(),
        Message::from("still here")
    );
    router.send(&Message::from("me too")).unwrap();
    assert_eq!(dealer.recv_bytes(0).unwrap(), b"me too");
}

#[test]
fn we_answer_libzmq_pings() {
    heartbeat_second(true, false);
}

#[test]
fn libzmq_answers_our_pings() {
    heartbeat_second(false, true);
}

#[test]
fn incompatible_socket_type_is_refused() {
    let ctx = zmq::Context::new();
    let (_push, addr) = bound(&ctx, zmq::PUSH);
    let mut ours = Driver::connect(&addr, Config::new(SocketType::Push)).unwrap();
    // Whichever side reads the other's READY first refuses: either we see libzmq's READY and
    // fail, or libzmq sees ours and closes. The connection never becomes established.
    match ours.next_event(deadline()) {
        Err(DriverError::Zmtp(omq_zmtp::Error::Protocol(
            ProtocolError::IncompatibleSocketType { theirs, .. },
        ))) => assert_eq!(theirs, b"PUSH"),
        Err(DriverError::Closed) => assert!(!ours.conn.is_established()),
        other => panic!("{other:?}"),
    }
}
