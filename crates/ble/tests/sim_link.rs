//! SMP over GATT end to end on the simulated radio link: the real transport and request layer
//! against a small scripted device that reassembles writes and notifies answers the way
//! Zephyr's `smp_bt` does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smpflash_ble::{FrameReassembler, GattTransport};
use smpflash_core::client::Client;
use smpflash_core::command::image::{ImageStateRead, ImageStateResponse, SlotState};
use smpflash_core::command::os::{Echo, EchoResponse};
use smpflash_core::frame::{Frame, Header};
use smpflash_core::gatt::GattLink;
use smpflash_core::transport::Transport;
use smpflash_core::{cbor, ImageHash};
use smpflash_sim::front::ble_link::{link, LinkParams, SimPeripheral};

/// What the scripted device does with a request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Answer,
    /// Drop the link instead of answering, as a device that resets or crashes would.
    DisconnectOnRequest,
}

/// Sizes of the frames the device reassembled, to prove big requests arrived whole.
#[derive(Default)]
struct Seen {
    largest_request: AtomicUsize,
    requests: AtomicUsize,
}

/// An image state answer far larger than one notification at any MTU.
fn big_image_state() -> ImageStateResponse {
    ImageStateResponse {
        images: (0..24)
            .map(|i| SlotState {
                image: i / 2,
                slot: i % 2,
                version: format!("1.{i}.0.{}", 1000 + i),
                hash: Some(ImageHash::from(vec![i as u8; 32])),
                bootable: true,
                pending: false,
                confirmed: i % 2 == 0,
                active: i % 2 == 0,
                permanent: false,
            })
            .collect(),
        split_status: Some(0),
    }
}

fn answer(request: &Frame) -> Vec<u8> {
    let body = match (request.header.group, request.header.id) {
        (0, 0) => {
            let echo: Echo = cbor::from_slice(&request.body, "echo").unwrap();
            cbor::to_vec(&EchoResponse { r: echo.d }, "echo response").unwrap()
        }
        (1, 0) => cbor::to_vec(&big_image_state(), "image state").unwrap(),
        // MGMT_ERR_ENOTSUP for anything else.
        _ => cbor::to_vec(&std::collections::BTreeMap::from([("rc", 8)]), "error").unwrap(),
    };
    let header = Header { op: request.header.op.response(), ..request.header };
    Frame::new(header, body).unwrap().encode()
}

/// Runs the scripted device until the link goes down.
async fn device(peripheral: Arc<SimPeripheral>, behaviour: Behaviour, seen: Arc<Seen>) {
    let chunk = peripheral.mtu() - 3;
    let mut reassembler = FrameReassembler::new();
    while let Some(piece) = peripheral.next_write().await {
        let Some(bytes) = reassembler.push(&piece) else {
            continue;
        };
        seen.largest_request.fetch_max(bytes.len(), Ordering::SeqCst);
        seen.requests.fetch_add(1, Ordering::SeqCst);
        let request = Frame::decode(&bytes).expect("device got a well-formed frame");
        if behaviour == Behaviour::DisconnectOnRequest {
            peripheral.disconnect();
            return;
        }
        // Like smp_bt: a response goes out in pieces of mtu - 3, each sent before the next.
        for piece in answer(&request).chunks(chunk) {
            if peripheral.notify(piece).await.is_err() {
                return;
            }
        }
    }
}

struct Setup {
    client: Client,
    peripheral: Arc<SimPeripheral>,
    seen: Arc<Seen>,
}

fn setup(params: LinkParams, behaviour: Behaviour) -> Setup {
    let (central, peripheral) = link(params);
    let peripheral = Arc::new(peripheral);
    let seen = Arc::new(Seen::default());
    tokio::spawn(device(peripheral.clone(), behaviour, seen.clone()));
    let transport: Arc<dyn Transport> = Arc::new(GattTransport::new(central));
    // Simulated seconds on the paused clock; generous because legacy links are slow.
    let client = Client::new(transport).with_timeout(Duration::from_secs(120));
    Setup { client, peripheral, seen }
}

#[tokio::test(start_paused = true)]
async fn echo_over_a_legacy_link_with_mtu_23() {
    let s = setup(LinkParams::legacy(), Behaviour::Answer);
    let start = tokio::time::Instant::now();
    let r = s.client.request(&Echo { d: "hello".into() }).await.unwrap();
    assert_eq!(r.r, "hello");
    // The request is one write and the answer one notification, each waiting for its own
    // connection event: a round trip costs two intervals.
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert_eq!(s.seen.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn large_frames_both_ways_over_mtu_23() {
    let s = setup(LinkParams::legacy(), Behaviour::Answer);
    let text: String = (0..2100).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let r = s.client.request(&Echo { d: text.clone() }).await.unwrap();
    assert_eq!(r.r, text);
    let largest = s.seen.largest_request.load(Ordering::SeqCst);
    assert!(largest > 2000, "request frame was {largest} bytes");
    // More than a hundred 20-byte writes and notifications each way.
    let stats = s.peripheral.stats();
    assert!(stats.values_to_peripheral > 100, "{stats:?}");
    assert!(stats.values_to_central > 100, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn large_answer_over_mtu_23() {
    let s = setup(LinkParams::legacy(), Behaviour::Answer);
    let state = s.client.request(&ImageStateRead {}).await.unwrap();
    assert_eq!(state, big_image_state());
    let answer_len = answer(&Frame::decode(&[0, 0, 0, 0, 0, 1, 0, 0]).unwrap()).len();
    assert!(answer_len > 10 * 20, "answer of {answer_len} bytes is not big");
    assert_eq!(s.peripheral.stats().values_to_central as usize, answer_len.div_ceil(20));
}

#[tokio::test(start_paused = true)]
async fn echo_and_large_answer_over_a_fast_phone_link() {
    let s = setup(LinkParams::phone_fast(), Behaviour::Answer);
    let r = s.client.request(&Echo { d: "hi".into() }).await.unwrap();
    assert_eq!(r.r, "hi");
    let state = s.client.request(&ImageStateRead {}).await.unwrap();
    assert_eq!(state, big_image_state());
    let answer_len = answer(&Frame::decode(&[0, 0, 0, 0, 0, 1, 0, 0]).unwrap()).len();
    assert!(answer_len > 3 * 495, "answer of {answer_len} bytes is not several MTUs");
    let text = "x".repeat(3000);
    let r = s.client.request(&Echo { d: text.clone() }).await.unwrap();
    assert_eq!(r.r, text);
    assert!(s.seen.largest_request.load(Ordering::SeqCst) > 3000);
}

#[tokio::test(start_paused = true)]
async fn concurrent_large_requests_do_not_interleave_fragments() {
    let s = setup(LinkParams::legacy(), Behaviour::Answer);
    let a = Echo { d: "A".repeat(700) };
    let b = Echo { d: "B".repeat(900) };
    let c = Echo { d: "C".repeat(50) };
    let (ra, rb, rc) = tokio::join!(s.client.request(&a), s.client.request(&b), s.client.request(&c),);
    assert_eq!(ra.unwrap().r, a.d);
    assert_eq!(rb.unwrap().r, b.d);
    assert_eq!(rc.unwrap().r, c.d);
    assert_eq!(s.seen.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn disconnect_while_waiting_for_the_answer_fails_promptly() {
    let params = LinkParams::phone_slow();
    let interval = params.conn_interval;
    let s = setup(params, Behaviour::DisconnectOnRequest);
    let start = tokio::time::Instant::now();
    let e = s.client.request(&Echo { d: "anyone?".into() }).await.unwrap_err();
    assert!(e.is_link_lost(), "{e}");
    // Within a few connection events, nowhere near the 120 s request timeout.
    assert!(start.elapsed() <= interval * 3, "took {:?}", start.elapsed());
    // Later requests fail at once with the same error.
    let e = s.client.request(&Echo { d: "again".into() }).await.unwrap_err();
    assert!(e.is_link_lost(), "{e}");
}

#[tokio::test(start_paused = true)]
async fn disconnect_while_sending_a_large_frame_fails_promptly() {
    let params = LinkParams { disconnect_after_bytes: Some(500), ..LinkParams::legacy() };
    let interval = params.conn_interval;
    let s = setup(params, Behaviour::Answer);
    let start = tokio::time::Instant::now();
    let e = s.client.request(&Echo { d: "z".repeat(2000) }).await.unwrap_err();
    assert!(e.is_link_lost(), "{e}");
    // 500 bytes at 4 x 20 bytes per 50 ms event is about 7 events.
    assert!(start.elapsed() <= interval * 8, "took {:?}", start.elapsed());
    assert_eq!(s.seen.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn transport_reports_disconnect_to_a_waiting_receiver() {
    let (central, peripheral) = link(LinkParams::phone_fast());
    let transport = Arc::new(GattTransport::new(central));
    let waiting = {
        let t = transport.clone();
        tokio::spawn(async move { t.recv().await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    peripheral.disconnect();
    let e = waiting.await.unwrap().unwrap_err();
    assert!(e.is_link_lost(), "{e}");
    assert!(!transport.link().is_connected());
    let e = transport.send(&[0; 8]).await.unwrap_err();
    assert!(e.is_link_lost(), "{e}");
    assert_eq!(transport.max_frame(), u16::MAX as usize + 8);
}

/// The same exchange against the wall clock, with the link scaled to run ten times faster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_in_scaled_real_time() {
    let s = setup(LinkParams::phone_fast().with_time_scale(0.1), Behaviour::Answer);
    let wall = std::time::Instant::now();
    let state = s.client.request(&ImageStateRead {}).await.unwrap();
    assert_eq!(state, big_image_state());
    let r = s.client.request(&Echo { d: "y".repeat(2500) }).await.unwrap();
    assert_eq!(r.r.len(), 2500);
    assert!(wall.elapsed() < Duration::from_secs(2), "{:?}", wall.elapsed());
}
