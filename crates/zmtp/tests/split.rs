//! Every input split at every byte offset, and fed a byte at a time, decodes to the same events and
//! the same output as the whole input at once.

mod common;

use std::time::Instant;

use common::{feed_in_pieces, feed_read_buf_in_pieces, raw_handshake};
use omq_zmtp::{Config, Connection, Event, Message, SocketType, WriteBuf};

fn server() -> Connection {
    Connection::new(Config::new(SocketType::Router), Instant::now()).unwrap()
}

/// A DEALER's whole side of a conversation: greeting, READY, then a mix of frames and commands.
fn dealer_stream(large: usize) -> Vec<u8> {
    let mut s = raw_handshake(SocketType::Dealer, 1);
    let mut buf = WriteBuf::new();
    buf.set_zero_copy_threshold(64);
    buf.encode_message(&Message::from("hello"));
    buf.encode_message(&Message::from_iter(["", "a", ""]));
    buf.encode_message(&Message::from(vec![1u8; 255]));
    buf.encode_message(&Message::from(vec![2u8; 256]));
    buf.encode_message(&Message::from(vec![3u8; large]));
    buf.drain_into(&mut s);
    // A PING between the frames of a multipart message, as libzmq can send.
    s.extend_from_slice(b"\x01\x03one\x04\x09\x04PING\x00\x0aHI\x00\x03two");
    // An unknown command, a SUBSCRIBE, and a non-minimal LONG encoding of a 2-byte frame.
    s.extend_from_slice(b"\x04\x04\x03FOO\x04\x0b\x09SUBSCRIBEt");
    s.extend_from_slice(b"\x02\x00\x00\x00\x00\x00\x00\x00\x02ok");
    s
}

fn check_splits(stream: &[u8], cut_sets: impl Iterator<Item = Vec<usize>>) {
    let (events, out, err) = feed_in_pieces(server(), Instant::now(), stream, &[]);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(events.len(), 1 + 5 + 1 + 1 + 1);
    assert_eq!(events[0], Event::Established);
    assert_eq!(
        events[6],
        Event::Message(Message::from_iter(["one", "two"]))
    );
    assert_eq!(events[8], Event::Message("ok".into()));
    assert!(out.ends_with(b"\x04\x07\x04PONGHI"));
    for cuts in cut_sets {
        let (e, o, err) = feed_in_pieces(server(), Instant::now(), stream, &cuts);
        assert!(err.is_none(), "{cuts:?}: {err:?}");
        assert_eq!(e, events, "cuts {cuts:?}");
        assert_eq!(o, out, "cuts {cuts:?}");
        let (e, err) = feed_read_buf_in_pieces(server(), Instant::now(), stream, &cuts);
        assert!(err.is_none(), "{cuts:?}: {err:?}");
        assert_eq!(e, events, "read buf, cuts {cuts:?}");
    }
}

#[test]
fn every_single_split_point() {
    let stream = dealer_stream(300);
    check_splits(&stream, (0..=stream.len()).map(|k| vec![k]));
}

#[test]
fn every_pair_of_split_points_in_the_handshake() {
    let stream = dealer_stream(300);
    let hs = raw_handshake(SocketType::Dealer, 1).len() + 8;
    check_splits(
        &stream,
        (0..hs).flat_map(|a| (a..hs).step_by(3).map(move |b| vec![a, b])),
    );
}

#[test]
fn byte_at_a_time() {
    let stream = dealer_stream(70_000);
    check_splits(&stream, std::iter::once((1..stream.len()).collect()));
}

#[test]
fn large_frame_split_in_many_places() {
    let stream = dealer_stream(70_000);
    let len = stream.len();
    check_splits(
        &stream,
        (1..200).map(|i| {
            vec![i * 7 % len, (i * 7919) % len]
                .into_iter()
                .fold(Vec::new(), |mut v, c| {
                    if v.last().is_none_or(|&l| c >= l) {
                        v.push(c);
                    }
                    v
                })
        }),
    );
}
