//! The serial front end in the raw framing (Zephyr's raw UART transport), through smpflash's own
//! serial client on a real pty: round trips, a frame that fills the buffer, garbage before a
//! request, two requests back to back, the buffer limit, and detection.
#![cfg(unix)]

use std::sync::Arc;
use std::time::Duration;

use smpflash_core::client::Client;
use smpflash_core::command::image::ImageStateRead;
use smpflash_core::command::os::{Echo, McumgrParams};
use smpflash_core::command::{encode_request, Command};
use smpflash_core::frame::{Frame, Version};
use smpflash_core::Error;
use smpflash_serial::{Accept, Framing, RawCodec, SerialTransport};
use smpflash_sim::front::pty::{self, PtyOptions};
use smpflash_sim::{Device, DeviceOptions, Profile};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::Decoder;

fn device() -> Arc<Device> {
    let options = DeviceOptions { time_scale: 0.0, ..Default::default() };
    Device::new(Profile::by_name("zephyr-default").unwrap(), options).unwrap()
}

fn raw_options() -> PtyOptions {
    PtyOptions { framing: Framing::Raw, ..Default::default() }
}

fn raw_client(path: &str) -> Client {
    let link = SerialTransport::open(path, 115_200).expect("open the pty").with_framing(Framing::Raw);
    Client::new(Arc::new(link)).with_timeout(Duration::from_secs(5))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_params_and_image_state_in_the_raw_framing() {
    let device = device();
    let server = pty::serve(device.clone(), raw_options()).await.unwrap();
    let client = raw_client(server.path());
    assert_eq!(client.request(&Echo { d: "hi".into() }).await.unwrap().r, "hi");
    let params = client.request(&McumgrParams {}).await.unwrap();
    assert_eq!(params.buf_size as usize, device.profile().buf_size);
    let state = client.request(&ImageStateRead {}).await.unwrap();
    assert!(state.images.iter().any(|s| s.slot == 0 && s.active), "{state:?}");
}

/// The whole buffer holds the frame (no length or CRC): `buf_size - 1` bytes of request, whose
/// answer is as long; a frame over the buffer is dropped as Zephyr drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_as_big_as_the_buffer() {
    let device = device();
    let buf_size = device.profile().buf_size;
    let server = pty::serve(device.clone(), raw_options()).await.unwrap();
    let link = SerialTransport::open(server.path(), 115_200).unwrap().with_framing(Framing::Raw);
    let client = Client::new(Arc::new(link)).with_timeout(Duration::from_millis(800));
    let fits = (0..buf_size)
        .rev()
        .find(|&n| encode_request(&Echo { d: "x".repeat(n) }, Version::V2, 0).unwrap().len() <= buf_size)
        .unwrap();
    let text = "x".repeat(fits);
    assert_eq!(client.request(&Echo { d: text.clone() }).await.unwrap().r, text);
    let over = "x".repeat(buf_size);
    assert!(matches!(client.request(&Echo { d: over }).await, Err(Error::Timeout { .. })));
    // Zephyr drops its header and then its body 8 bytes at a time; what is left over (the body
    // modulo 8) stays in the buffer, as on a raw UART without an input timeout.
}

/// Requests written by hand on the pty: garbage first (refused 8 bytes at a time, as Zephyr
/// refuses it), then two requests in one write; both answers come back as bare frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_then_two_requests_back_to_back() {
    let device = device();
    let server = pty::serve(device.clone(), raw_options()).await.unwrap();
    let mut port = tokio_serial::SerialStream::open(&tokio_serial::new(server.path(), 115_200)).unwrap();
    let a = encode_request(&Echo { d: "first".into() }, Version::V2, 1).unwrap().encode();
    let b = encode_request(&Echo { d: "second".into() }, Version::V2, 2).unwrap().encode();
    // 16 bytes of console text: two refused headers (`06 09 …`: op 6; `77 6f …` ('w'): op 7),
    // leaving nothing behind.
    let mut wire = b"\x06\x09hello world!\r\n".to_vec();
    assert_eq!(wire.len() % 8, 0);
    wire.extend_from_slice(&a);
    wire.extend_from_slice(&b);
    port.write_all(&wire).await.unwrap();
    let mut codec = RawCodec::new(Accept::Responses);
    let mut buf = BytesMut::new();
    let mut answers = Vec::new();
    let mut chunk = [0u8; 512];
    while answers.len() < 2 {
        let n = tokio::time::timeout(Duration::from_secs(5), port.read(&mut chunk)).await.unwrap().unwrap();
        buf.extend_from_slice(&chunk[..n]);
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            answers.push(Frame::decode(&frame).unwrap());
        }
    }
    assert_eq!(answers.iter().map(|f| f.header.seq).collect::<Vec<_>>(), [1, 2]);
    assert!(answers.iter().all(|f| (f.header.group, f.header.id) == (Echo::GROUP, Echo::ID)));
    assert!(buf.is_empty(), "nothing but frames on a raw UART");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_over_the_pty() {
    for framing in [Framing::Raw, Framing::Console] {
        let device = device();
        let server = pty::serve(device.clone(), PtyOptions { framing, ..Default::default() }).await.unwrap();
        let link = SerialTransport::open(server.path(), 115_200).unwrap();
        let (link, found) = link.detect_framing(Duration::from_millis(500)).await.unwrap();
        assert_eq!(found, Some(framing));
        let client = Client::new(Arc::new(link)).with_timeout(Duration::from_secs(5));
        assert_eq!(client.request(&Echo { d: "detected".into() }).await.unwrap().r, "detected");
    }
}
