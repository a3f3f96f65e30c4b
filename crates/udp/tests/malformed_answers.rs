//! A device that answers wrongly: wrong sequence numbers, truncated CBOR, wrong types, huge
//! declared lengths, v1 and v2 mixed, answers for another command, offsets that make no sense.
//! Every case must end in a specific error — protocol, decode, device, timeout or stalled
//! upload — within a bounded time, and never in a panic, a hang or a false success. Each case
//! runs under a `tokio::time::timeout` far above what its own timeouts add up to.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smpflash_core::client::Client;
use smpflash_core::command::image::{ImageStateRead, ImageUpload};
use smpflash_core::command::os::{Echo, McumgrParams};
use smpflash_core::command::Command;
use smpflash_core::frame::{Frame, Header, Op, Version};
use smpflash_core::session::Session;
use smpflash_core::upload::{self, Limits, UploadOptions};
use smpflash_core::{cbor, Error};
use smpflash_udp::{UdpConnector, UdpTransport};
use tokio::net::UdpSocket;

/// What the peer sends back for one request.
type Script = Box<dyn Fn(&Frame) -> Vec<Vec<u8>> + Send + Sync>;

/// A UDP peer that answers every request as `script` says.
async fn peer(script: Script) -> SocketAddr {
    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(frame) = Frame::decode(&buf[..n]) else {
                continue;
            };
            for datagram in script(&frame) {
                let _ = sock.send_to(&datagram, from).await;
            }
        }
    });
    addr
}

/// An answer to `req` with `body` as its raw CBOR.
fn answer(req: &Frame, body: Vec<u8>) -> Vec<u8> {
    answer_as(req, req.header.version, body)
}

fn answer_as(req: &Frame, version: Version, body: Vec<u8>) -> Vec<u8> {
    let h = Header { version, op: req.header.op.response(), ..req.header };
    Frame::new(h, body).unwrap().encode()
}

fn cbor(value: &ciborium::Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

/// `{key: value, ...}` as CBOR.
fn map(entries: &[(&str, ciborium::Value)]) -> Vec<u8> {
    cbor(&ciborium::Value::Map(
        entries.iter().map(|(k, v)| (ciborium::Value::Text((*k).into()), v.clone())).collect(),
    ))
}

fn int(i: i64) -> ciborium::Value {
    ciborium::Value::Integer(i.into())
}

fn text(t: &str) -> ciborium::Value {
    ciborium::Value::Text(t.into())
}

/// Longest any case may take: every case's own timeouts add up to far less.
const BOUND: Duration = Duration::from_secs(10);

async fn client(script: Script) -> Client {
    let addr = peer(script).await;
    Client::new(Arc::new(UdpTransport::connect_addr(addr).await.unwrap()))
        .with_timeout(Duration::from_millis(300))
}

/// Runs `request` against a peer answering as `script`, within [`BOUND`].
async fn ask<C: Command>(script: Script, cmd: C) -> (Result<C::Response, Error>, Client) {
    let c = client(script).await;
    let r = tokio::time::timeout(BOUND, c.request(&cmd)).await.expect("the request hung");
    (r, c)
}

fn echo() -> Echo {
    Echo { d: "hi".into() }
}

#[tokio::test]
async fn a_wrong_sequence_number_is_not_taken_for_the_answer() {
    let (r, c) = ask(
        Box::new(|req| {
            let mut h = req.header;
            h.seq = h.seq.wrapping_add(1);
            h.op = h.op.response();
            vec![Frame::new(h, map(&[("r", text("hi"))])).unwrap().encode()]
        }),
        echo(),
    )
    .await;
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert_eq!(c.stats().unknown, 1);
}

#[tokio::test]
async fn an_answer_for_another_group_or_command_is_not_taken_either() {
    for (group, id, op) in [(1u16, 0u8, Op::WriteResponse), (0, 1, Op::WriteResponse), (0, 0, Op::Write)] {
        let (r, c) = ask(
            Box::new(move |req| {
                let h = Header { group, id, op, ..req.header };
                vec![Frame::new(h, map(&[("r", text("hi"))])).unwrap().encode()]
            }),
            echo(),
        )
        .await;
        assert!(matches!(r, Err(Error::Timeout { .. })), "group {group} id {id} {op:?}: {r:?}");
        assert_eq!(c.stats().unknown, 1, "group {group} id {id} {op:?}");
    }
}

#[tokio::test]
async fn truncated_cbor_is_a_decode_error() {
    let body = map(&[("r", text("a longer echo text"))]);
    for cut in [0, 1, 3, body.len() - 1] {
        let part = body[..cut].to_vec();
        let (r, _) = ask(Box::new(move |req| vec![answer(req, part.clone())]), echo()).await;
        assert!(matches!(r, Err(Error::Decode { .. })), "cut at {cut}: {r:?}");
    }
}

#[tokio::test]
async fn truncated_and_overlong_frames_are_dropped_and_counted() {
    // The header declares more (or less) body than the datagram carries: not a frame.
    for declared in [u16::MAX, 200, 0] {
        let (r, c) = ask(
            Box::new(move |req| {
                let mut bytes = answer(req, map(&[("r", text("hi"))]));
                bytes[2..4].copy_from_slice(&declared.to_be_bytes());
                vec![bytes]
            }),
            echo(),
        )
        .await;
        assert!(matches!(r, Err(Error::Timeout { .. })), "declared {declared}: {r:?}");
        assert_eq!(c.stats().malformed, 1, "declared {declared}");
    }
}

#[tokio::test]
async fn wrong_types_are_decode_errors() {
    let (r, _) = ask(Box::new(|req| vec![answer(req, map(&[("r", int(5))]))]), echo()).await;
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    let (r, _) =
        ask(Box::new(|req| vec![answer(req, map(&[("images", text("none"))]))]), ImageStateRead {}).await;
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    let (r, _) = ask(
        Box::new(|req| vec![answer(req, map(&[("buf_size", int(-1)), ("buf_count", int(4))]))]),
        McumgrParams {},
    )
    .await;
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    // The error keys themselves of the wrong type.
    let (r, _) = ask(Box::new(|req| vec![answer(req, map(&[("rc", text("bad"))]))]), echo()).await;
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    let (r, _) =
        ask(Box::new(|req| vec![answer(req, map(&[("err", map_value(&[("group", text("x"))]))]))]), echo())
            .await;
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    // Not a map at all.
    for body in [cbor(&int(7)), cbor(&ciborium::Value::Array(vec![int(1)])), vec![0xF6]] {
        let (r, _) = ask(Box::new(move |req| vec![answer(req, body.clone())]), echo()).await;
        assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    }
}

fn map_value(entries: &[(&str, ciborium::Value)]) -> ciborium::Value {
    ciborium::Value::Map(entries.iter().map(|(k, v)| (text(k), v.clone())).collect())
}

#[tokio::test]
async fn huge_declared_cbor_lengths_are_decode_errors_without_allocating_them() {
    // {"r": <text string declaring 2^63 bytes>}, {"images": <array declaring 2^32 items>},
    // and 100 000 nested arrays.
    let huge_text = [&[0xA1, 0x61, b'r', 0x7B][..], &0x8000_0000_0000_0000u64.to_be_bytes(), b"abc"].concat();
    let (r, _) = ask(Box::new(move |req| vec![answer(req, huge_text.clone())]), echo()).await;
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    let huge_array =
        [&[0xA1, 0x66][..], b"images", &[0x9A], &0xFFFF_FFFFu32.to_be_bytes(), &[0xA0, 0xA0]].concat();
    let (r, _) = ask(Box::new(move |req| vec![answer(req, huge_array.clone())]), ImageStateRead {}).await;
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    let deep = [vec![0xA1, 0x61, b'r'], vec![0x81; 1400]].concat();
    let (r, _) = ask(Box::new(move |req| vec![answer(req, deep.clone())]), echo()).await;
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
}

#[tokio::test]
async fn v1_and_v2_answers_mixed_end_in_the_device_error() {
    // A v1 "not supported" to the v2 request makes the client fall back; the v1 retry then
    // gets a v2-style group error: that error is what the caller sees.
    let (r, c) = ask(
        Box::new(|req| match req.header.version {
            Version::V2 => vec![answer_as(req, Version::V1, map(&[("rc", int(8))]))],
            Version::V1 => vec![answer_as(
                req,
                Version::V2,
                map(&[("err", map_value(&[("group", int(0)), ("rc", int(2))]))]),
            )],
        }),
        echo(),
    )
    .await;
    match r {
        Err(Error::Device(e)) => assert_eq!((e.group, e.rc), (Some(0), 2)),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.version(), Version::V1);
    // A v1 answer to the v1 retry that is v1 "not supported" again: reported, no third try.
    let (r, c) = ask(Box::new(|req| vec![answer_as(req, Version::V1, map(&[("rc", int(8))]))]), echo()).await;
    assert!(matches!(&r, Err(Error::Device(e)) if e.is_not_supported()), "{r:?}");
    assert_eq!(c.stats().sent, 2);
}

// ---- the upload engine against the same kinds of answers ----

/// The image the uploads send: 8 KiB of noise, about 9 chunks at these limits.
fn image() -> Vec<u8> {
    (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

const LIMITS: Limits = Limits { buf_size: 1024, buf_count: 4, reported: true };

/// Uploads [`image`] to a peer answering upload requests as `script`, within [`BOUND`].
async fn upload_against(script: Script) -> Result<upload::UploadReport, Error> {
    let addr = peer(script).await;
    let mut session =
        Session::open(Box::new(UdpConnector::new(addr.to_string())), Duration::from_millis(200))
            .await
            .unwrap();
    let opts = UploadOptions {
        timeout: Duration::from_millis(100),
        first_timeout: Duration::from_millis(200),
        max_attempts: 4,
        ..Default::default()
    };
    let bytes = image();
    tokio::time::timeout(BOUND, upload::upload(&mut session, &bytes, &LIMITS, &opts, &()))
        .await
        .expect("the upload hung")
}

/// A well-behaved device's bookkeeping, for scripts that misbehave only now and then.
#[derive(Default)]
struct Dev {
    off: u64,
    answers: u64,
}

fn request(req: &Frame) -> ImageUpload {
    cbor::from_slice(&req.body, "upload").unwrap()
}

/// A device that writes what comes at its offset and answers with the offset it expects —
/// except that `twist` may replace the answer body.
fn device(twist: impl Fn(&mut Dev, &ImageUpload) -> Option<Vec<u8>> + Send + Sync + 'static) -> Script {
    let dev = Mutex::new(Dev::default());
    Box::new(move |req| {
        let r = request(req);
        let mut d = dev.lock().unwrap();
        d.answers += 1;
        if r.off == 0 {
            d.off = 0;
        }
        if r.off == d.off {
            d.off += r.data.len() as u64;
        }
        let body = twist(&mut d, &r).unwrap_or_else(|| map(&[("off", int(d.off as i64))]));
        vec![answer(req, body)]
    })
}

#[tokio::test]
async fn an_upload_answered_well_succeeds() {
    // The control case: the peer's bookkeeping is right, so the cases below fail for their
    // twist alone.
    let report = upload_against(device(|_, _| None)).await.unwrap();
    assert_eq!(report.bytes, 8192);
}

#[tokio::test]
async fn an_offset_that_never_advances_stalls_the_upload() {
    // The device answers every chunk with the chunk's own offset: it never takes anything.
    let r = upload_against(device(|_, req| Some(map(&[("off", int(req.off as i64))])))).await;
    assert!(matches!(r, Err(Error::UploadStalled { .. })), "{r:?}");
}

#[tokio::test]
async fn an_offset_stuck_halfway_stalls_the_upload() {
    let r = upload_against(device(|d, _| (d.off > 4096).then(|| map(&[("off", int(3000))])))).await;
    assert!(matches!(r, Err(Error::UploadStalled { .. })), "{r:?}");
}

#[tokio::test]
async fn an_offset_beyond_the_image_is_a_protocol_error_not_success() {
    // On the first answer (a "resume" past the end) and in the middle of the upload.
    let r = upload_against(device(|_, _| Some(map(&[("off", int(1 << 20))])))).await;
    assert!(matches!(r, Err(Error::Protocol(_))), "{r:?}");
    let r = upload_against(device(|d, _| (d.answers == 4).then(|| map(&[("off", int(9000))])))).await;
    assert!(matches!(r, Err(Error::Protocol(_))), "{r:?}");
}

#[tokio::test]
async fn an_upload_answer_of_the_wrong_type_is_a_decode_error() {
    let r = upload_against(device(|d, _| (d.answers == 3).then(|| map(&[("off", text("x"))])))).await;
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    let r = upload_against(device(|d, _| (d.answers == 2).then(|| map(&[("off", int(-5))])))).await;
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
    let r = upload_against(device(|d, _| (d.answers == 1).then(|| vec![0xA1, 0x63, b'o']))).await;
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
}

#[tokio::test]
async fn a_device_that_keeps_losing_the_upload_gives_up() {
    // Every fourth answer says offset 0: the device lost the upload, so the engine starts
    // over; it must not start over forever.
    let r = upload_against(device(|d, _| d.answers.is_multiple_of(4).then(|| map(&[("off", int(0))])))).await;
    assert!(matches!(r, Err(Error::UploadStalled { .. })), "{r:?}");
}

#[tokio::test]
async fn a_mismatching_hash_on_the_last_chunk_is_reported() {
    let r = upload_against(device(|d, _| {
        (d.off == 8192).then(|| map(&[("off", int(8192)), ("match", ciborium::Value::Bool(false))]))
    }))
    .await;
    assert!(matches!(r, Err(Error::UploadMismatch)), "{r:?}");
}

#[tokio::test]
async fn unanswerable_uploads_stall_within_bounds() {
    let wrong_seq: Script = Box::new(|req| {
        let h = Header { seq: req.header.seq.wrapping_add(7), op: req.header.op.response(), ..req.header };
        vec![Frame::new(h, map(&[("off", int(0))])).unwrap().encode()]
    });
    let huge_len: Script = Box::new(|req| {
        let mut bytes = answer(req, map(&[("off", int(100))]));
        bytes[2..4].copy_from_slice(&u16::MAX.to_be_bytes());
        vec![bytes]
    });
    let other_command: Script = Box::new(|req| {
        let h = Header { group: 0, id: 0, op: req.header.op.response(), ..req.header };
        vec![Frame::new(h, map(&[("r", text("echo"))])).unwrap().encode()]
    });
    for (name, script) in
        [("wrong sequence", wrong_seq), ("huge length", huge_len), ("other command", other_command)]
    {
        let r = upload_against(script).await;
        assert!(matches!(r, Err(Error::UploadStalled { .. })), "{name}: {r:?}");
    }
}

#[tokio::test]
async fn upload_errors_in_mixed_protocol_versions_are_the_device_error() {
    let r = upload_against(Box::new(|req| match req.header.version {
        Version::V2 => vec![answer_as(req, Version::V1, map(&[("rc", int(8))]))],
        Version::V1 => vec![answer_as(
            req,
            Version::V2,
            map(&[("err", map_value(&[("group", int(1)), ("rc", int(9))]))]),
        )],
    }))
    .await;
    match r {
        Err(Error::Device(e)) => assert_eq!((e.group, e.rc), (Some(1), 9)),
        other => panic!("{other:?}"),
    }
}
