//! Any bytes on a serial console, cut into reads of any size: the console decoder must never
//! fail or panic, must not buffer more than a line, must yield the same items however the
//! bytes were cut, and every frame it yields must survive encoding and decoding again.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use smpflash_serial::{encode_frame, ConsoleCodec, ConsoleItem, FrameCodec};
use tokio_util::codec::Decoder;

/// Decodes `wire` fed in reads of the sizes `cuts` gives (cycled), then the end of stream.
fn decode(codec_limit: Option<usize>, wire: &[u8], cuts: &[u8]) -> Vec<ConsoleItem> {
    let mut codec = match codec_limit {
        Some(limit) => ConsoleCodec::new().with_line_limit(limit),
        None => ConsoleCodec::new(),
    };
    let limit = codec_limit.unwrap_or(smpflash_serial::codec::DEFAULT_LINE_LIMIT).max(1);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut rest = wire;
    let mut i = 0;
    while !rest.is_empty() {
        let n = if cuts.is_empty() { rest.len() } else { 1 + cuts[i % cuts.len()] as usize % 97 };
        i += 1;
        let (now, later) = rest.split_at(n.min(rest.len()));
        rest = later;
        buf.extend_from_slice(now);
        while let Some(item) = codec.decode(&mut buf).expect("decoding never fails on content") {
            items.push(item);
        }
        // A line longer than the limit is dropped, not kept: the buffer stays bounded.
        assert!(buf.len() <= limit + 1, "buffered {} bytes with a line limit of {limit}", buf.len());
    }
    while let Some(item) = codec.decode_eof(&mut buf).expect("decoding never fails on content") {
        items.push(item);
    }
    items
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, data)) = data.split_first() else {
        return;
    };
    // The first byte picks the line limit; then up to 8 bytes of read sizes.
    let limit = (ctl & 1 == 1).then_some(ctl as usize / 2 + 1);
    let (cuts, wire) = data.split_at(data.len().min((ctl as usize >> 5) + 1));

    let whole = decode(limit, wire, &[]);
    let chunked = decode(limit, wire, cuts);
    assert_eq!(whole, chunked, "the items depend on how the bytes were cut");

    for item in &whole {
        if let ConsoleItem::Frame(frame) = item {
            let again = encode_frame(frame).expect("a decoded frame fits the packet length");
            let mut codec = FrameCodec::new();
            let mut buf = BytesMut::from(&again[..]);
            assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(&frame[..]));
        }
    }
});
