//! A PUSH and a PULL connection joined by an in-memory pipe: handshake, then a stream of messages
//! encoded in batches and decoded from a read buffer, as a backend's driver would do it.
//!
//! `cargo run --release -p omq-zmtp --example pair -- [MESSAGES] [SIZE]`

use std::time::Instant;

use bytes::{Buf, BytesMut};
use omq_zmtp::{Config, Connection, Event, Message, SocketType, WriteBuf};

const BATCH: usize = 256;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(10_000_000), |s| s.parse())?;
    let size: usize = args.next().map_or(Ok(8), |s| s.parse())?;

    let now = Instant::now();
    let mut push = Connection::new(Config::new(SocketType::Push), now)?;
    let mut pull = Connection::new(Config::new(SocketType::Pull), now)?;

    // The "socket" between them: what PUSH wrote and PULL has not read yet.
    let mut wire = WriteBuf::new();
    let mut back = WriteBuf::new();
    let mut read_buf = BytesMut::with_capacity(256 * 1024);
    while !(push.is_established() && pull.is_established()) {
        push.poll_transmit(&mut wire);
        read_buf.extend_from_slice(wire.chunk());
        wire.advance(wire.remaining());
        pull.handle_read_buf(now, &mut read_buf)?;
        pull.poll_transmit(&mut back);
        let n = push.handle_input(now, back.chunk())?;
        back.advance(n);
    }
    println!(
        "handshake done: PUSH sees a {:?} peer speaking ZMTP {:?}",
        push.peer().and_then(|p| p.socket_type),
        push.peer().map(|p| p.version)
    );

    let msg = Message::from(vec![0x5Au8; size]);
    let start = Instant::now();
    let mut sent = 0;
    let mut received = 0;
    let mut bytes = 0;
    while received < count {
        // Driver side of PUSH: encode a batch, "write" it in one go.
        for _ in 0..BATCH.min(count - sent) {
            push.send(&msg, &mut wire)?;
            sent += 1;
        }
        while wire.has_remaining() {
            let chunk = wire.chunk();
            read_buf.extend_from_slice(chunk);
            let n = chunk.len();
            wire.advance(n);
        }
        // Driver side of PULL: decode everything read, hand messages on.
        pull.handle_read_buf(now, &mut read_buf)?;
        while let Some(event) = pull.poll_event() {
            if let Event::Message(m) = event {
                bytes += m.size();
                received += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{received} messages of {size} B in {secs:.3} s: {:.2} M msg/s, {:.1} MB/s of payload",
        received as f64 / secs / 1e6,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
