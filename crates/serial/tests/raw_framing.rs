//! The raw framing over a real pty pair: `SerialTransport` with `Framing::Raw` against a scripted
//! responder that takes requests as Zephyr's raw UART transport does
//! (`mcumgr_serial_process_frag`, raw branch: 8 bytes of header, a header with op >= 4 or a
//! length over the buffer drops what was collected, complete at `nh_len + 8`), and detection of
//! the framing against raw, console and silent peers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use smpflash_core::cbor;
use smpflash_core::client::Client;
use smpflash_core::command::os::{Echo, EchoResponse};
use smpflash_core::frame::{Frame, Header, HEADER_LEN};
use smpflash_core::transport::Transport;
use smpflash_serial::codec::{encode_frame, ConsoleCodec, ConsoleItem};
use smpflash_serial::{Framing, SerialTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::SerialStream;
use tokio_util::codec::Framed;

/// The responder's SMP buffer (`CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE`).
const BUF_SIZE: usize = 8192;

fn echo_answer(request: &[u8]) -> Vec<u8> {
    let request = Frame::decode(request).expect("request frame");
    let echo: Echo = cbor::from_slice(&request.body, "echo").unwrap();
    let body = cbor::to_vec(&EchoResponse { r: echo.d }, "echo").unwrap();
    Frame::new(Header { op: request.header.op.response(), ..request.header }, body).unwrap().encode()
}

/// How the raw responder misbehaves.
#[derive(Clone, Copy, Default)]
struct Script {
    /// Bytes written before every answer.
    garbage: &'static [u8],
    /// Collect this many requests, then answer them all in one write.
    batch: usize,
}

/// A raw-UART device: reassembles requests byte by byte as Zephyr does, answers echoes with
/// bare frames. Returns the number of answers.
async fn raw_responder(mut port: SerialStream, script: Script) -> usize {
    let mut pending = Vec::new();
    let mut batch = Vec::new();
    let mut answered = 0;
    let mut byte = [0u8; 1];
    while port.read_exact(&mut byte).await.is_ok() {
        pending.push(byte[0]);
        if pending.len() < HEADER_LEN {
            continue;
        }
        let total = HEADER_LEN + u16::from_be_bytes([pending[2], pending[3]]) as usize;
        if total > BUF_SIZE || pending[0] & 0x07 >= 4 {
            pending.clear();
            continue;
        }
        if pending.len() < total {
            continue;
        }
        batch.extend_from_slice(script.garbage);
        batch.extend_from_slice(&echo_answer(&pending));
        pending.clear();
        answered += 1;
        if answered % script.batch.max(1) == 0 {
            port.write_all(&batch).await.unwrap();
            port.flush().await.unwrap();
            batch.clear();
        }
    }
    answered
}

/// A console device answering echoes.
async fn console_responder(port: SerialStream) {
    let mut console = Framed::new(port, ConsoleCodec::new());
    while let Some(Ok(item)) = console.next().await {
        if let ConsoleItem::Frame(bytes) = item {
            let wire = encode_frame(&echo_answer(&bytes)).unwrap();
            console.get_mut().write_all(&wire).await.unwrap();
        }
    }
}

fn pair() -> (SerialStream, SerialStream) {
    SerialStream::pair().expect("a pty pair")
}

fn raw_link(port: SerialStream) -> Client {
    let link = SerialTransport::from_stream(port, "pty").with_framing(Framing::Raw);
    assert_eq!((link.framing(), link.frame_overhead()), (Framing::Raw, 0));
    Client::new(Arc::new(link)).with_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn round_trip() {
    let (ours, theirs) = pair();
    let device = tokio::spawn(raw_responder(theirs, Script::default()));
    let client = raw_link(ours);
    assert_eq!(client.request(&Echo { d: "hi".into() }).await.unwrap().r, "hi");
    assert_eq!(client.request(&Echo { d: "again".into() }).await.unwrap().r, "again");
    drop(client);
    device.abort();
}

#[tokio::test]
async fn a_big_frame() {
    let (ours, theirs) = pair();
    let device = tokio::spawn(raw_responder(theirs, Script::default()));
    let client = raw_link(ours);
    let text = "z".repeat(BUF_SIZE - 64);
    assert_eq!(client.request(&Echo { d: text.clone() }).await.unwrap().r, text);
    drop(client);
    device.abort();
}

#[tokio::test]
async fn garbage_before_each_frame() {
    let (ours, theirs) = pair();
    // Console text, a console packet, and a plausible answer header announcing 0x0100 body bytes
    // whose body starts like a map: only the silence after it gets rid of it.
    let garbage: &[u8] =
        b"*** Booting Zephyr OS ***\r\n\x06\x09QUJD\n\x03\x00\x01\x00\x00\x00\x00\x00\xbf\x61\x78";
    let device = tokio::spawn(raw_responder(theirs, Script { garbage, batch: 1 }));
    let client = raw_link(ours);
    for text in ["one", "two"] {
        assert_eq!(client.request(&Echo { d: text.into() }).await.unwrap().r, text);
    }
    drop(client);
    device.abort();
}

#[tokio::test]
async fn two_frames_back_to_back() {
    let (ours, theirs) = pair();
    let device = tokio::spawn(raw_responder(theirs, Script { garbage: b"", batch: 2 }));
    let client = raw_link(ours);
    let (a, b) = (Echo { d: "a".repeat(100) }, Echo { d: "b".repeat(200) });
    let (ra, rb) = tokio::join!(client.request(&a), client.request(&b));
    assert_eq!(ra.unwrap().r, a.d);
    assert_eq!(rb.unwrap().r, b.d);
    assert_eq!(client.stats().answered, 2);
    drop(client);
    device.abort();
}

#[tokio::test]
async fn detection_finds_a_raw_device_and_leaves_it_clean() {
    let (ours, theirs) = pair();
    let device = tokio::spawn(raw_responder(theirs, Script::default()));
    let start = Instant::now();
    let (link, found) =
        SerialTransport::from_stream(ours, "pty").detect_framing(Duration::from_millis(300)).await.unwrap();
    assert_eq!(found, Some(Framing::Raw));
    assert!(start.elapsed() >= Duration::from_millis(300), "the console probe went unanswered first");
    // The console probe left nothing in the device's buffer: the first request goes through.
    let client = Client::new(Arc::new(link)).with_timeout(Duration::from_secs(2));
    assert_eq!(client.request(&Echo { d: "after".into() }).await.unwrap().r, "after");
    drop(client);
    device.abort();
}

#[tokio::test]
async fn detection_finds_a_console_device_in_one_round_trip() {
    let (ours, theirs) = pair();
    let device = tokio::spawn(console_responder(theirs));
    let start = Instant::now();
    let (link, found) =
        SerialTransport::from_stream(ours, "pty").detect_framing(Duration::from_secs(2)).await.unwrap();
    assert_eq!(found, Some(Framing::Console));
    assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());
    let client = Client::new(Arc::new(link)).with_timeout(Duration::from_secs(2));
    assert_eq!(client.request(&Echo { d: "after".into() }).await.unwrap().r, "after");
    drop(client);
    device.abort();
}

#[tokio::test]
async fn detection_without_an_answer_keeps_the_console_framing() {
    let (ours, _silent) = pair();
    let (link, found) =
        SerialTransport::from_stream(ours, "pty").detect_framing(Duration::from_millis(100)).await.unwrap();
    assert_eq!((found, link.framing()), (None, Framing::Console));
}
