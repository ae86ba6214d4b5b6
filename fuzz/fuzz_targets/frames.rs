//! The frame decoder on arbitrary bytes, with small limits from the first byte, through both
//! inputs: never panics, never hands back more than it was given, and both inputs agree.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use omq_zmtp::{Command, Decoded, Decoder, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, data)) = data.split_first() else {
        return;
    };
    let mut limits = Limits::default();
    if knobs & 1 != 0 {
        limits.max_message_size = Some(u64::from(knobs) * 16);
    }
    if knobs & 2 != 0 {
        limits.max_frame_size = Some(u64::from(knobs));
    }
    limits.max_parts = usize::from(knobs >> 4) + 1;

    let mut from_slice = Vec::new();
    let mut dec = Decoder::new(limits);
    let mut input = data;
    let slice_result = loop {
        match dec.decode_slice(&mut input) {
            Ok(Some(d)) => from_slice.push(d),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    if slice_result.is_ok() {
        assert!(input.len() < dec.bytes_needed());
    }

    let mut from_buf = Vec::new();
    let mut dec = Decoder::new(limits);
    let mut buf = BytesMut::from(data);
    let buf_result = loop {
        match dec.decode_buf(&mut buf) {
            Ok(Some(d)) => from_buf.push(d),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert_eq!(slice_result, buf_result);
    assert_eq!(from_slice, from_buf);
    assert_eq!(input.len(), buf.len());

    let mut total = 0;
    for d in &from_slice {
        match d {
            Decoded::Message(m) => total += m.size(),
            Decoded::Command(body) => {
                total += body.len();
                let _ = Command::parse(body);
            }
            _ => {}
        }
    }
    assert!(total <= data.len());
});
