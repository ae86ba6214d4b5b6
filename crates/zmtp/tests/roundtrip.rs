//! proptest: arbitrary multipart messages survive encode -> arbitrary chunking -> decode, through
//! both decoder inputs, whatever the encoder's zero-copy threshold.

use std::io::IoSlice;

use bytes::{Buf, Bytes, BytesMut};
use omq_zmtp::{Decoded, Decoder, Limits, Message, WriteBuf};
use proptest::prelude::*;

fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..70),
        3 => proptest::collection::vec(any::<u8>(), 60..600),
        1 => proptest::collection::vec(any::<u8>(), 0..20_000),
    ]
}

fn message() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(frame(), 1..5)
}

fn to_message(frames: &[Vec<u8>]) -> Message {
    // Build frames both from borrowed slices and from shared Bytes, so both encoder paths run.
    frames
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if i % 2 == 0 {
                omq_zmtp::Frame::from(&f[..])
            } else {
                omq_zmtp::Frame::from(Bytes::from(f.clone()))
            }
        })
        .collect()
}

/// Flattens a WriteBuf through `chunks_vectored`, as a vectored write would see it.
fn flatten_vectored(buf: &mut WriteBuf) -> Vec<u8> {
    let mut out = Vec::new();
    while buf.has_remaining() {
        let mut iov = [IoSlice::new(&[]); 4];
        let n = buf.chunks_vectored(&mut iov);
        assert!(n > 0);
        // Pretend the write took all but the last 3 bytes of what was offered, when it can.
        let offered: usize = iov[..n].iter().map(|s| s.len()).sum();
        let written = if offered > 3 { offered - 3 } else { offered };
        let mut left = written;
        for s in &iov[..n] {
            let take = left.min(s.len());
            out.extend_from_slice(&s[..take]);
            left -= take;
        }
        buf.advance(written);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 8 } else { 256 }, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_round_trip(
        msgs in proptest::collection::vec(message(), 1..20),
        chunks in proptest::collection::vec(1usize..3000, 1..50),
        threshold in prop_oneof![Just(0usize), Just(64), Just(8192), Just(usize::MAX)],
    ) {
        let msgs: Vec<Message> = msgs.iter().map(|m| to_message(m)).collect();
        let mut out = WriteBuf::new();
        out.set_zero_copy_threshold(threshold);
        for m in &msgs {
            out.encode_message(m);
        }
        let total = out.len();
        let wire = flatten_vectored(&mut out);
        prop_assert_eq!(wire.len(), total);
        prop_assert!(out.is_empty());

        // Slice input, arbitrary read sizes, unconsumed bytes carried over.
        let mut dec = Decoder::new(Limits::default());
        let mut pending = Vec::new();
        let mut got = Vec::new();
        let mut pos = 0;
        let mut sizes = chunks.iter().cycle();
        while pos < wire.len() {
            let n = (*sizes.next().unwrap()).min(wire.len() - pos);
            pending.extend_from_slice(&wire[pos..pos + n]);
            pos += n;
            let mut input = &pending[..];
            while let Some(d) = dec.decode_slice(&mut input).unwrap() {
                let Decoded::Message(m) = d else { panic!("no commands were sent") };
                got.push(m);
            }
            let consumed = pending.len() - input.len();
            pending.drain(..consumed);
        }
        prop_assert!(pending.is_empty());
        prop_assert_eq!(&got, &msgs);

        // BytesMut input, same chunking.
        let mut dec = Decoder::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut pos = 0;
        let mut sizes = chunks.iter().cycle();
        while pos < wire.len() {
            let n = (*sizes.next().unwrap()).min(wire.len() - pos);
            buf.extend_from_slice(&wire[pos..pos + n]);
            pos += n;
            while let Some(Decoded::Message(m)) = dec.decode_buf(&mut buf).unwrap() {
                got.push(m);
            }
            prop_assert!(buf.len() < dec.bytes_needed());
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(&got, &msgs);
    }
}
