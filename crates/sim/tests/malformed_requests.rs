//! The virtual device as a server under malformed input: arbitrary bytes, frames with arbitrary
//! headers and CBOR bodies of the wrong shape, and valid requests with bytes flipped, cut or
//! added. Nothing may panic, every answer must itself be a well-formed frame, and the device
//! must still answer an echo afterwards — handled directly, by the device with its resets, and
//! over the UDP front end.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ciborium::Value;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_bytes::ByteBuf;
use smpflash_core::client::Client;
use smpflash_core::command::image::{ImageErase, ImageStateRead, ImageStateWrite, ImageUpload, SlotInfo};
use smpflash_core::command::os::{AppInfo, BootloaderInfo, BootloaderMode, Echo, McumgrParams, Reset};
use smpflash_core::command::{decode_response, encode_request, Command};
use smpflash_core::frame::{Frame, Header, Op, Version};
use smpflash_sim::faults::Rng;
use smpflash_sim::front::udp::{self, UdpOptions};
use smpflash_sim::image::slot;
use smpflash_sim::smp::server;
use smpflash_sim::state::State;
use smpflash_sim::{Device, DeviceOptions, Profile};
use smpflash_udp::UdpTransport;

/// Keys the device's handlers look at, so generated bodies reach past the first lookup.
const KEYS: &[&str] = &[
    "d", "force", "format", "query", "image", "len", "off", "sha", "data", "upgrade", "hash", "confirm",
    "slot",
];

fn frame_of<C: Command>(cmd: &C, version: Version, seq: u8) -> Vec<u8> {
    encode_request(cmd, version, seq).unwrap().encode()
}

/// One valid request of every kind the device handles.
fn valid_requests() -> Vec<Vec<u8>> {
    let image = slot::build(Default::default(), &[0x5A; 600]);
    let hash = ByteBuf::from(slot::read_info(&image).unwrap().hash.to_vec());
    let first = ImageUpload {
        image: Some(0),
        len: Some(image.len() as u64),
        off: 0,
        sha: Some(ByteBuf::from(vec![7; 32])),
        data: ByteBuf::from(image[..200].to_vec()),
        upgrade: Some(true),
    };
    let next = ImageUpload { off: 200, data: ByteBuf::from(image[200..400].to_vec()), ..Default::default() };
    let mut out = Vec::new();
    for v in [Version::V1, Version::V2] {
        out.extend([
            frame_of(&Echo { d: "hello".into() }, v, 1),
            frame_of(&Reset { force: Some(1), boot_mode: None }, v, 2),
            frame_of(&McumgrParams {}, v, 3),
            frame_of(&AppInfo { format: Some("a".into()) }, v, 4),
            frame_of(&BootloaderInfo {}, v, 5),
            frame_of(&BootloaderMode::default(), v, 6),
            frame_of(&ImageStateRead {}, v, 7),
            frame_of(&ImageStateWrite { hash: Some(hash.clone()), confirm: false }, v, 8),
            frame_of(&ImageStateWrite { hash: None, confirm: true }, v, 9),
            frame_of(&first, v, 10),
            frame_of(&next, v, 11),
            frame_of(&ImageErase { slot: Some(1) }, v, 12),
            frame_of(&SlotInfo {}, v, 13),
        ]);
    }
    out
}

fn cbor_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|i| Value::Integer(i.into())),
        any::<u64>().prop_map(|i| Value::Integer(i.into())),
        Just(Value::Integer(0.into())),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        any::<f64>().prop_map(Value::Float),
        ".{0,12}".prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(Value::Bytes),
        // Data that starts like an image, so uploads get past the header check.
        proptest::collection::vec(any::<u8>(), 28..120).prop_map(|mut b| {
            b.splice(0..0, [0x3D, 0xB8, 0xF3, 0x96]);
            Value::Bytes(b)
        }),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
        ]
    })
}

/// A frame with an arbitrary header and a map of known keys with values of any type.
fn shaped_frame() -> impl Strategy<Value = Vec<u8>> {
    let entries = proptest::collection::vec((proptest::sample::select(KEYS), cbor_value()), 0..5);
    (0u8..4, any::<bool>(), 0u16..4, 0u8..10, any::<u8>(), entries, any::<bool>()).prop_map(
        |(op, v2, group, id, seq, entries, as_map)| {
            let body = if as_map {
                Value::Map(entries.into_iter().map(|(k, v)| (Value::Text(k.into()), v)).collect())
            } else {
                Value::Array(entries.into_iter().map(|(_, v)| v).collect())
            };
            let mut bytes = Vec::new();
            ciborium::into_writer(&body, &mut bytes).unwrap();
            let op = [Op::Read, Op::ReadResponse, Op::Write, Op::WriteResponse][op as usize];
            let version = if v2 { Version::V2 } else { Version::V1 };
            let header = Header { version, op, flags: 0, len: 0, group, seq, id };
            Frame::new(header, bytes).map(|f| f.encode()).unwrap_or_default()
        },
    )
}

/// A valid request with bytes flipped, cut off or appended.
fn mutated_frame() -> impl Strategy<Value = Vec<u8>> {
    let edits = proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6);
    (
        proptest::sample::select(valid_requests()),
        edits,
        proptest::option::of(any::<usize>()),
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(mut frame, edits, cut, tail)| {
            for (at, x) in edits {
                let i = at % frame.len();
                frame[i] ^= x;
            }
            if let Some(cut) = cut {
                frame.truncate(cut % (frame.len() + 1));
            }
            frame.extend(tail);
            frame
        })
}

fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..300), shaped_frame(), mutated_frame()]
}

fn profiles() -> Vec<Profile> {
    ["nrf5340", "zephyr-default", "overwrite-only", "direct-xip", "mcuboot-recovery"]
        .iter()
        .map(|n| Profile::by_name(n).unwrap())
        .collect()
}

/// What the device sent for one packet must be well-formed answers: each a frame with a
/// response op and a map body, the first answering the packet's first header (its group,
/// command and sequence number, read raw as Zephyr does: the request itself need not be a
/// frame smpflash would send — a wrong length, version or op is answered too).
fn check_answers(request: &[u8], answers: &[Vec<u8>]) {
    for answer in answers {
        let ans = Frame::decode(answer).expect("the device's answer does not decode");
        assert!(ans.header.op.is_response(), "{:?}", ans.header);
        let body: Value = ciborium::from_reader(ans.body.as_slice()).expect("the answer's body is not CBOR");
        assert!(body.is_map(), "{body:?}");
    }
    if let Some(first) = answers.first() {
        assert!(request.len() >= 8, "an answer to {} bytes, shorter than a header", request.len());
        let ans = Frame::decode(first).unwrap();
        let group = u16::from_be_bytes([request[4], request[5]]);
        assert_eq!((ans.header.group, ans.header.id, ans.header.seq), (group, request[7], request[6]));
    }
}

fn echo_works(state: &mut State, profile: &Profile) {
    let req = frame_of(&Echo { d: "still here".into() }, Version::V2, 77);
    let reply = server::handle(state, profile, &req);
    let frame = Frame::decode(reply.frames.last().expect("an answer to echo")).unwrap();
    assert_eq!(decode_response::<Echo>(&frame).unwrap().r, "still here");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The request handler alone, on every profile, with state carried from frame to frame
    /// (a half-done upload, a marked slot) as on a device that keeps running.
    #[test]
    fn the_request_handler_never_panics(frames in proptest::collection::vec(any_frame(), 1..12)) {
        for profile in profiles() {
            let mut state = State::factory(&profile);
            for raw in &frames {
                let reply = server::handle(&mut state, &profile, raw);
                check_answers(raw, &reply.frames);
            }
            echo_works(&mut state, &profile);
        }
    }
}

/// One runtime for the device cases: a runtime per case would dominate the run time.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The device with its buffers, fault bookkeeping and resets (a reset request among the
    /// frames makes it boot, swapping whatever got marked).
    #[test]
    fn the_device_survives_and_still_answers(frames in proptest::collection::vec(any_frame(), 1..16),
                                              profile in proptest::sample::select(profiles())) {
        runtime().block_on(async {
            let device = Device::new(profile, DeviceOptions { time_scale: 0.0, ..Default::default() }).unwrap();
            for raw in &frames {
                let outcome = device.handle(&smpflash_sim::referee::Client::Direct, raw).await;
                check_answers(raw, &outcome.responses);
                if outcome.reset {
                    device.reset().await;
                }
            }
            let echo = frame_of(&Echo { d: "ok".into() }, Version::V2, 1);
            let answer = device.handle(&smpflash_sim::referee::Client::Direct, &echo).await.responses.pop().expect("an echo answer");
            assert_eq!(decode_response::<Echo>(&Frame::decode(&answer).unwrap()).unwrap().r, "ok");
        });
    }
}

/// Thousands of malformed datagrams through the UDP front end, then an ordinary client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_udp_front_end_survives_garbage_and_keeps_serving() {
    let device = Device::new(
        Profile::by_name("nrf5340").unwrap(),
        DeviceOptions { time_scale: 0.0, ..Default::default() },
    )
    .unwrap();
    let server =
        udp::serve(device.clone(), "127.0.0.1:0".parse().unwrap(), UdpOptions::default()).await.unwrap();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(server.local_addr()).await.unwrap();

    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = any_frame();
    let mut rng = Rng::new(11);
    for i in 0..3000u32 {
        let mut frame = strategy.new_tree(&mut runner).unwrap().current();
        // Now and then a datagram far larger than any SMP buffer.
        if rng.chance(0.01) {
            frame.resize(9000, 0xA5);
        }
        socket.send(&frame).await.unwrap();
        if i.is_multiple_of(50) {
            // Let the device drain its buffers now and then, so not everything is dropped
            // for want of a free one.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    // Resets among the garbage may still be rebooting the device; a fresh client retries.
    let client = Client::new(Arc::new(UdpTransport::connect_addr(server.local_addr()).await.unwrap()))
        .with_timeout(Duration::from_millis(500));
    let mut answered = None;
    for _ in 0..20 {
        if let Ok(r) = client.request(&Echo { d: "after the garbage".into() }).await {
            answered = Some(r.r);
            break;
        }
    }
    assert_eq!(answered.as_deref(), Some("after the garbage"));
    assert!(client.request(&ImageStateRead {}).await.unwrap().images.iter().any(|s| s.active));
}
