//! Property tests of the console codec: whatever the frames, however the bytes are cut into
//! reads, and whatever the device prints around them, frames come out whole and in order.

use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use smpflash_serial::codec::{encode_frame, ConsoleCodec, ConsoleItem, MAX_LINE};
use tokio_util::codec::Decoder;

/// Feeds `wire` to a fresh codec in reads of the given sizes (cycled), then ends the stream.
fn decode_in_chunks(mut codec: ConsoleCodec, wire: &[u8], sizes: &[usize]) -> Vec<ConsoleItem> {
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut rest = wire;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(item) = codec.decode(&mut buf).unwrap() {
            items.push(item);
        }
    }
    while let Some(item) = codec.decode_eof(&mut buf).unwrap() {
        items.push(item);
    }
    items
}

fn frames(items: &[ConsoleItem]) -> Vec<Vec<u8>> {
    items
        .iter()
        .filter_map(|i| match i {
            ConsoleItem::Frame(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

/// A console line that cannot contain a packet marker: printable text, as loggers print.
fn log_line() -> impl Strategy<Value = Vec<u8>> {
    ("[ -~]{0,160}", prop_oneof![Just("\n"), Just("\r\n")])
        .prop_map(|(text, end)| format!("{text}{end}").into_bytes())
}

/// Any bytes at all, as one line: binary noise, a baud-rate mismatch, stray markers.
fn noise_line() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..300).prop_map(|mut bytes| {
        bytes.retain(|&b| b != b'\n');
        bytes.push(b'\n');
        bytes
    })
}

/// Bytes built mostly from the codec's own alphabet, so that markers, base64 and newlines meet
/// in every combination.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        3 => Just(vec![0x06, 0x09]),
        3 => Just(vec![0x04, 0x14]),
        2 => Just(b"\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"=".to_vec()),
        6 => "[A-Za-z0-9+/]{1,8}".prop_map(String::into_bytes),
        2 => vec(any::<u8>(), 1..4),
    ];
    vec(token, 0..400).prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn frames_survive_any_chunking(
        sent in vec(vec(any::<u8>(), 0..3000), 1..4),
        sizes in vec(1usize..300, 1..20),
    ) {
        let wire: Vec<u8> = sent.iter().flat_map(|f| encode_frame(f).unwrap()).collect();
        let items = decode_in_chunks(ConsoleCodec::new(), &wire, &sizes);
        prop_assert_eq!(items.len(), sent.len(), "unexpected items: {:?}", items);
        prop_assert_eq!(frames(&items), sent);
    }

    #[test]
    fn every_encoded_line_fits_zephyrs_limit(frame in vec(any::<u8>(), 0..3000)) {
        let wire = encode_frame(&frame).unwrap();
        for (i, line) in wire.split_inclusive(|&b| b == b'\n').enumerate() {
            prop_assert!(line.len() <= MAX_LINE);
            prop_assert_eq!((line.len() - 3) % 4, 0);
            let marker: &[u8] = if i == 0 { b"\x06\x09" } else { b"\x04\x14" };
            prop_assert_eq!(&line[..2], marker);
        }
    }

    #[test]
    fn noise_between_packets_is_skipped(
        packets in vec(
            (vec(any::<u8>(), 0..3000), vec(prop_oneof![log_line(), noise_line()], 0..4)),
            1..4,
        ),
        trailing in vec(log_line(), 0..3),
        sizes in vec(1usize..300, 1..20),
    ) {
        let mut wire = Vec::new();
        for (frame, noise) in &packets {
            wire.extend(noise.concat());
            wire.extend(encode_frame(frame).unwrap());
        }
        wire.extend(trailing.concat());
        let items = decode_in_chunks(ConsoleCodec::new(), &wire, &sizes);
        let sent: Vec<Vec<u8>> = packets.into_iter().map(|(f, _)| f).collect();
        prop_assert_eq!(frames(&items), sent);
    }

    #[test]
    fn log_lines_inside_a_packet_are_skipped(
        frame in vec(any::<u8>(), 0..3000),
        logs in vec(log_line(), 1..30),
        sizes in vec(1usize..300, 1..20),
    ) {
        let encoded = encode_frame(&frame).unwrap();
        let mut logs_left = logs.iter();
        let mut wire = Vec::new();
        for line in encoded.split_inclusive(|&b| b == b'\n') {
            if let Some(log) = logs_left.next() {
                wire.extend_from_slice(log);
            }
            wire.extend_from_slice(line);
        }
        let items = decode_in_chunks(ConsoleCodec::new(), &wire, &sizes);
        let logged = items.iter().filter(|i| matches!(i, ConsoleItem::Log(_))).count();
        let printed = logs
            .iter()
            .take(encoded.split_inclusive(|&b| b == b'\n').count())
            .filter(|l| !l.trim_ascii().is_empty())
            .count();
        prop_assert_eq!(logged, printed);
        prop_assert_eq!(frames(&items), vec![frame]);
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(
        bytes in prop_oneof![vec(any::<u8>(), 0..4000), hostile_bytes()],
        sizes in vec(1usize..500, 1..20),
        limit in prop_oneof![Just(None), (1usize..300).prop_map(Some)],
    ) {
        let codec = match limit {
            Some(limit) => ConsoleCodec::new().with_line_limit(limit),
            None => ConsoleCodec::new(),
        };
        decode_in_chunks(codec, &bytes, &sizes);
    }

    #[test]
    fn a_frame_after_arbitrary_garbage_still_decodes(
        garbage in prop_oneof![vec(any::<u8>(), 0..2000), hostile_bytes()],
        frame in vec(any::<u8>(), 0..600),
        sizes in vec(1usize..300, 1..20),
    ) {
        // Whatever came before, a newline ends it and the next packet start resynchronises.
        let mut wire = garbage;
        wire.push(b'\n');
        wire.extend(encode_frame(&frame).unwrap());
        let items = decode_in_chunks(ConsoleCodec::new(), &wire, &sizes);
        let got = frames(&items);
        prop_assert_eq!(got.last(), Some(&frame));
    }
}
