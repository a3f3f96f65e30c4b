//! The serial front end, through smpflash's own serial client on a real pty: requests, resets
//! with the port staying open, UART pacing, console output and line noise.
#![cfg(unix)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;
use smpflash_core::client::Client;
use smpflash_core::command::image::{ImageStateRead, ImageUpload};
use smpflash_core::command::os::{Echo, McumgrParams, Reset};
use smpflash_core::command::Command;
use smpflash_core::frame::{Frame, Header, Version};
use smpflash_core::{cbor, Error};
use smpflash_serial::codec::{encode_frame, encoded_len, ConsoleCodec, ConsoleItem};
use smpflash_serial::SerialTransport;
use smpflash_sim::device::DeviceEvent;
use smpflash_sim::front::pty::{self, PtyOptions, SerialFaults};
use smpflash_sim::{Device, DeviceOptions, Profile};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

fn device() -> Arc<Device> {
    let options = DeviceOptions { time_scale: 0.0, ..Default::default() };
    Device::new(Profile::by_name("zephyr-default").unwrap(), options).unwrap()
}

/// A client on the pty's path, as a user would open a board's serial port.
fn open_client(path: &str, timeout: Duration) -> Client {
    let link = SerialTransport::open(path, 115_200).expect("open the pty");
    Client::new(Arc::new(link)).with_timeout(timeout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_params_and_image_state_over_the_pty() {
    let device = device();
    let server = pty::serve(device.clone(), PtyOptions::default()).await.unwrap();
    assert!(server.path().starts_with("/dev/"), "{}", server.path());
    let client = open_client(server.path(), Duration::from_secs(5));

    let echo = client.request(&Echo { d: "hi".into() }).await.unwrap();
    assert_eq!(echo.r, "hi");
    // Several lines each way.
    let long = "z".repeat(220);
    let echo = client.request(&Echo { d: long.clone() }).await.unwrap();
    assert_eq!(echo.r, long);

    let params = client.request(&McumgrParams {}).await.unwrap();
    let profile = device.profile();
    assert_eq!((params.buf_size as usize, params.buf_count as usize), (profile.buf_size, profile.buf_count));

    let state = client.request(&ImageStateRead {}).await.unwrap();
    let primary = state.images.iter().find(|s| s.image == 0 && s.slot == 0).expect("slot 0 is reported");
    assert!(primary.active && primary.confirmed, "{state:?}");
    assert_eq!(client.stats().answered, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_port_stays_open_across_a_reset() {
    let device = device();
    let mut events = device.subscribe();
    let server = pty::serve(device.clone(), PtyOptions::default()).await.unwrap();
    let client = open_client(server.path(), Duration::from_secs(5));

    client.request(&Reset::default()).await.unwrap();
    // The answer went out before the reboot; wait for the device to be back.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("the device reboots")
            .unwrap();
        if matches!(event, DeviceEvent::Booted(_)) {
            break;
        }
    }
    // Same client, same open port: the boot chatter in between is skipped.
    let echo = client.request(&Echo { d: "back".into() }).await.unwrap();
    assert_eq!(echo.r, "back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_link_takes_at_least_the_wire_time() {
    const BAUD: u32 = 460_800;
    let device = device();
    let options = PtyOptions { baud: Some(BAUD), ..Default::default() };
    let server = pty::serve(device, options).await.unwrap();
    let client = open_client(server.path(), Duration::from_secs(5));
    // Connect and settle before timing.
    client.request(&Echo { d: "x".into() }).await.unwrap();

    let text = "p".repeat(200);
    let echo = Echo { d: text.clone() };
    // Request and answer are the same size apart from the key ("d" vs "r").
    let frame_len = 8 + cbor::encoded_len(&echo).unwrap();
    let round_trip = 2 * encoded_len(frame_len);
    let rounds = 20_000usize.div_ceil(round_trip);
    let started = Instant::now();
    for _ in 0..rounds {
        assert_eq!(client.request(&echo).await.unwrap().r, text);
    }
    let elapsed = started.elapsed();

    let wire_bytes = rounds * round_trip;
    let wire_time = Duration::from_secs_f64(wire_bytes as f64 * 10.0 / BAUD as f64);
    // Only a lower bound: a loaded machine may take any time longer.
    assert!(
        elapsed >= wire_time.mul_f64(0.8),
        "{wire_bytes} wire bytes at {BAUD} baud need {wire_time:?}, took {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_answers_never_arrive_but_the_device_acts_and_keeps_serving() {
    let device = device();
    let mut events = device.subscribe();
    let noisy = PtyOptions {
        faults: SerialFaults { corrupt_byte_rate: 1.0, seed: 7, ..Default::default() },
        ..Default::default()
    };
    let server = pty::serve(device.clone(), noisy).await.unwrap();
    let client = open_client(server.path(), Duration::from_millis(500));
    for _ in 0..3 {
        let lost = client.request(&Echo { d: "lost".into() }).await;
        assert!(matches!(lost, Err(Error::Timeout { .. })), "{lost:?}");
    }
    // The device still takes requests: a reset goes through although its answer is lost.
    let lost = client.request(&Reset::default()).await;
    assert!(matches!(lost, Err(Error::Timeout { .. })), "{lost:?}");
    let booted = tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(events.recv().await, Ok(DeviceEvent::Booted(_))) {}
    })
    .await;
    assert!(booted.is_ok(), "the reset request never reached the device");
    assert_eq!(
        device.buffers().available_permits(),
        device.profile().buf_count,
        "every SMP buffer is free again"
    );
    drop(server);

    // The same without noise: everything gets through.
    let clean = PtyOptions {
        faults: SerialFaults { corrupt_byte_rate: 0.0, drop_line_rate: 0.0, seed: 7 },
        ..Default::default()
    };
    let server = pty::serve(device, clean).await.unwrap();
    let client = open_client(server.path(), Duration::from_secs(5));
    for _ in 0..3 {
        let echo = client.request(&Echo { d: "kept".into() }).await.unwrap();
        assert_eq!(echo.r, "kept");
    }
}

/// Reads console items until one matches.
async fn read_until(
    stream: &mut DuplexStream,
    codec: &mut ConsoleCodec,
    pending: &mut BytesMut,
    mut wanted: impl FnMut(&ConsoleItem) -> bool,
) -> Vec<ConsoleItem> {
    let mut seen = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        while let Some(item) = codec.decode(pending).unwrap() {
            let done = wanted(&item);
            seen.push(item);
            if done {
                return seen;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("nothing more on the console after {seen:?}"))
            .unwrap();
        assert!(n > 0, "the console closed after {seen:?}");
        pending.extend_from_slice(&chunk[..n]);
    }
}

fn request<C: Command>(cmd: &C, seq: u8) -> Vec<u8> {
    let header =
        Header { version: Version::V2, op: C::OP, flags: 0, len: 0, group: C::GROUP, seq, id: C::ID };
    let body = cbor::to_vec(cmd, C::NAME).unwrap();
    let frame = Frame::new(header, body).unwrap().encode();
    encode_frame(&frame).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_zephyr_log_lines_and_boot_banners() {
    let image =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/images/ecdsa-p256.bin"))
            .unwrap();
    let device = device();
    let (ours, mut theirs) = tokio::io::duplex(1 << 16);
    let _server = pty::serve_stream(device, ours, PtyOptions::default()).await;
    let mut codec = ConsoleCodec::new();
    let mut pending = BytesMut::new();

    let first_chunk = ImageUpload {
        image: Some(0),
        len: Some(image.len() as u64),
        off: 0,
        data: ByteBuf::from(image[..128].to_vec()),
        ..Default::default()
    };
    theirs.write_all(&request(&first_chunk, 1)).await.unwrap();
    let items =
        read_until(&mut theirs, &mut codec, &mut pending, |i| matches!(i, ConsoleItem::Frame(_))).await;
    let erased = items.iter().any(|i| {
        matches!(i, ConsoleItem::Log(l)
            if l.starts_with("[00:") && l.contains("<inf> mcumgr_img_grp: Erased 0x"))
    });
    assert!(erased, "no erase log line before the answer: {items:?}");

    theirs.write_all(&request(&Reset::default(), 2)).await.unwrap();
    let items = read_until(
        &mut theirs,
        &mut codec,
        &mut pending,
        |i| matches!(i, ConsoleItem::Log(l) if l.contains("Booting Zephyr OS")),
    )
    .await;
    assert!(
        matches!(items.first(), Some(ConsoleItem::Frame(_))),
        "the reset is answered before the reboot: {items:?}"
    );
    assert!(items.iter().all(|i| !matches!(i, ConsoleItem::Discarded(_))), "{items:?}");
}
