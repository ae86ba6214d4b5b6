//! Encode and decode throughput of the codec, per message, at 8 B, 128 B, 1 KiB and 64 KiB, single
//! and three-part, of CURVE's boxes at 16 B and 16 KiB, and the cost of building and cloning a
//! `Message` on each side of the inline size. Run with `cargo bench -p omq-zmtp`.

use std::hint::black_box;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use omq_zmtp::{
    Config, Connection, CurveConfig, CurveKeyPair, Decoded, Decoder, INLINE_CAPACITY, Limits,
    Mechanism, Message, SocketType, WriteBuf,
};

const BATCH: usize = 1000;
const SIZES: [usize; 4] = [8, 128, 1024, 64 * 1024];

/// An established PUSH/PULL pair.
fn pair() -> (Connection, Connection) {
    establish(Config::new(SocketType::Push), Config::new(SocketType::Pull))
}

/// An established PUSH/PULL pair over CURVE.
fn curve_pair() -> (Connection, Connection) {
    let server = CurveKeyPair::generate().unwrap();
    let client = CurveKeyPair::generate().unwrap();
    let mut push = Config::new(SocketType::Push);
    push.mechanism = Mechanism::Curve(CurveConfig::client(client, server.public));
    let mut pull = Config::new(SocketType::Pull);
    pull.mechanism = Mechanism::Curve(CurveConfig::server(server));
    pull.as_server = true;
    establish(push, pull)
}

fn establish(push: Config, pull: Config) -> (Connection, Connection) {
    let now = Instant::now();
    let mut push = Connection::new(push, now).unwrap();
    let mut pull = Connection::new(pull, now).unwrap();
    let mut wire = WriteBuf::new();
    while !(push.is_established() && pull.is_established()) {
        push.poll_transmit(&mut wire);
        let n = pull.handle_input(now, wire.chunk()).unwrap();
        wire.advance(n);
        pull.poll_transmit(&mut wire);
        let n = push.handle_input(now, wire.chunk()).unwrap();
        wire.advance(n);
    }
    while pull.poll_event().is_some() {}
    while push.poll_event().is_some() {}
    (push, pull)
}

fn message(size: usize, parts: usize) -> Message {
    (0..parts).map(|_| vec![0xA5u8; size]).collect()
}

fn label(size: usize, parts: usize) -> String {
    let s = if size >= 1024 {
        format!("{}KiB", size / 1024)
    } else {
        format!("{size}B")
    };
    if parts == 1 {
        s
    } else {
        format!("{s}x{parts}")
    }
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(BATCH as u64));
    for size in SIZES {
        for parts in [1, 3] {
            let (mut push, _) = pair();
            let msgs: Vec<Message> = (0..BATCH).map(|_| message(size, parts)).collect();
            let mut out = WriteBuf::with_capacity(BATCH * (size + 9) * parts);
            g.bench_function(label(size, parts), |b| {
                b.iter(|| {
                    out.clear();
                    for m in &msgs {
                        push.send(m, &mut out).unwrap();
                    }
                    black_box(out.len());
                })
            });
        }
    }
    g.finish();
}

fn wire(size: usize, parts: usize) -> Vec<u8> {
    let (mut push, _) = pair();
    let mut out = WriteBuf::new();
    let m = message(size, parts);
    for _ in 0..BATCH {
        push.send(&m, &mut out).unwrap();
    }
    let mut v = Vec::new();
    out.drain_into(&mut v);
    v
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(BATCH as u64));
    for size in SIZES {
        for parts in [1, 3] {
            let bytes = wire(size, parts);
            // Through the whole connection, from a borrowed slice (large frames copied once).
            let (_, mut pull) = pair();
            g.bench_function(format!("connection/{}", label(size, parts)), |b| {
                b.iter(|| {
                    let n = pull.handle_input(Instant::now(), &bytes).unwrap();
                    assert_eq!(n, bytes.len());
                    let mut count = 0;
                    while let Some(e) = pull.poll_event() {
                        black_box(&e);
                        count += 1;
                    }
                    assert_eq!(count, BATCH);
                })
            });
            // The frame decoder alone, from a BytesMut read buffer (large frames zero-copy). The
            // buffer is filled outside the timed part.
            g.bench_function(format!("read_buf/{}", label(size, parts)), |b| {
                let mut dec = Decoder::new(Limits::default());
                b.iter_batched_ref(
                    || BytesMut::from(&bytes[..]),
                    |buf| {
                        let mut count = 0;
                        while let Some(d) = dec.decode_buf(buf).unwrap() {
                            let Decoded::Message(m) = d else {
                                unreachable!()
                            };
                            black_box(m);
                            count += 1;
                        }
                        assert_eq!(count, BATCH);
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

/// CURVE: sealing and opening one box per frame (decode needs fresh nonces, so each batch gets
/// a new pair and wire, built outside the timed part).
fn curve(c: &mut Criterion) {
    let mut g = c.benchmark_group("curve");
    g.throughput(Throughput::Elements(BATCH as u64));
    for size in [16, 16 * 1024] {
        let (mut push, _) = curve_pair();
        let m = message(size, 1);
        let mut out = WriteBuf::with_capacity(BATCH * (size + 64));
        g.bench_function(format!("encode/{}", label(size, 1)), |b| {
            b.iter(|| {
                out.clear();
                for _ in 0..BATCH {
                    push.send(&m, &mut out).unwrap();
                }
                black_box(out.len());
            })
        });
        g.bench_function(format!("decode/{}", label(size, 1)), |b| {
            b.iter_batched_ref(
                || {
                    let (mut push, pull) = curve_pair();
                    let mut out = WriteBuf::new();
                    for _ in 0..BATCH {
                        push.send(&m, &mut out).unwrap();
                    }
                    let mut wire = BytesMut::new();
                    out.drain_into(&mut wire);
                    (pull, wire)
                },
                |(pull, wire)| {
                    pull.handle_read_buf(Instant::now(), wire).unwrap();
                    let mut count = 0;
                    while let Some(e) = pull.poll_event() {
                        black_box(&e);
                        count += 1;
                    }
                    assert_eq!(count, BATCH);
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// Building a message from a slice (inline up to `INLINE_CAPACITY`, one allocation above),
/// cloning one (a copy inline, a reference count above), and building a three-part one.
fn message_construction(c: &mut Criterion) {
    let mut g = c.benchmark_group("message");
    let sizes = [8, INLINE_CAPACITY, INLINE_CAPACITY + 1, 1024, 64 * 1024];
    for size in sizes {
        let data = vec![0xA5u8; size];
        g.bench_function(format!("from_slice/{}", label(size, 1)), |b| {
            b.iter(|| Message::from(black_box(&data[..])))
        });
        let m = Message::from(&data[..]);
        g.bench_function(format!("clone/{}", label(size, 1)), |b| {
            b.iter(|| black_box(&m).clone())
        });
        g.bench_function(format!("push/{}", label(size, 3)), |b| {
            b.iter(|| {
                let mut m = Message::new();
                for _ in 0..3 {
                    m.push(black_box(&data[..]));
                }
                m
            })
        });
    }
    g.finish();
}

criterion_group!(benches, encode, decode, curve, message_construction);
criterion_main!(benches);
