//! The request layer over `SerialTransport`, against a small scripted SMP responder on the far
//! end of a real pty pair and of a TCP connection. The responder chats on its console like a
//! Zephyr device: a boot banner, a log line before each answer, another between its lines.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use smpflash_core::client::Client;
use smpflash_core::command::os::{Echo, EchoResponse};
use smpflash_core::command::Command;
use smpflash_core::frame::{Frame, Header};
use smpflash_core::transport::{Transport, TransportKind};
use smpflash_core::{cbor, Error};
use smpflash_serial::codec::{encode_frame, ConsoleCodec, ConsoleItem};
use smpflash_serial::SerialTransport;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

const BANNER: &[u8] = b"*** Booting Zephyr OS build v3.7.0 ***\r\n";
const LOG: &[u8] = b"[00:00:01.234,000] <inf> app: hello\r\n";

/// Answers echo requests until the stream ends; returns how many it answered.
async fn echo_responder<S>(stream: S) -> usize
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut console = Framed::new(stream, ConsoleCodec::new());
    console.get_mut().write_all(BANNER).await.unwrap();
    let mut answered = 0;
    while let Some(Ok(item)) = console.next().await {
        let ConsoleItem::Frame(bytes) = item else {
            continue;
        };
        let request = Frame::decode(&bytes).expect("request frame");
        assert_eq!(
            (request.header.group, request.header.id),
            (Echo::GROUP, Echo::ID),
            "the responder only knows echo"
        );
        let echo: Echo = cbor::from_slice(&request.body, "echo").unwrap();
        let body = cbor::to_vec(&EchoResponse { r: echo.d }, "echo").unwrap();
        let answer =
            Frame::new(Header { op: request.header.op.response(), ..request.header }, body).unwrap().encode();

        console.get_mut().write_all(LOG).await.unwrap();
        let wire = encode_frame(&answer).unwrap();
        if wire.iter().filter(|&&b| b == b'\n').count() == 1 {
            console.send(answer).await.unwrap();
        } else {
            let stream = console.get_mut();
            for (i, line) in wire.split_inclusive(|&b| b == b'\n').enumerate() {
                if i == 1 {
                    stream.write_all(LOG).await.unwrap();
                }
                stream.write_all(line).await.unwrap();
            }
            stream.flush().await.unwrap();
        }
        answered += 1;
    }
    answered
}

/// Echo of "hi", then two multi-line echoes in flight at once (their lines must not mix on
/// the wire, or the responder would see broken packets and never answer).
async fn exercise(transport: SerialTransport) {
    let client = Client::new(Arc::new(transport.with_max_frame(1024))).with_timeout(Duration::from_secs(5));
    let answer = client.request(&Echo { d: "hi".into() }).await.unwrap();
    assert_eq!(answer.r, "hi");

    let long_a = "a".repeat(300);
    let long_b = "b".repeat(450);
    let (echo_a, echo_b) = (Echo { d: long_a.clone() }, Echo { d: long_b.clone() });
    let (a, b) = tokio::join!(client.request(&echo_a), client.request(&echo_b));
    assert_eq!(a.unwrap().r, long_a);
    assert_eq!(b.unwrap().r, long_b);
    let stats = client.stats();
    assert_eq!((stats.answered, stats.malformed, stats.unknown), (3, 0, 0));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_over_a_pty_pair() {
    let (device_end, host_end) = tokio_serial::SerialStream::pair().unwrap();
    let responder = tokio::spawn(echo_responder(device_end));
    exercise(SerialTransport::from_stream(host_end, "pty")).await;
    responder.abort();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_over_a_pty_opened_by_path() {
    use tokio_serial::SerialPort;

    let (device_end, host_end) = tokio_serial::SerialStream::pair().unwrap();
    let path = host_end.name().expect("the pty slave has a path");
    // Paced, so that the two concurrent requests would interleave their lines if the
    // transport let go of the port between lines.
    let transport = SerialTransport::open(&path, 115_200).unwrap().with_line_delay(Duration::from_millis(2));
    assert_eq!(transport.describe(), format!("serial {path} @ 115200"));
    // Our own descriptor keeps the pty open from here on.
    drop(host_end);
    let responder = tokio::spawn(echo_responder(device_end));
    exercise(transport).await;
    responder.abort();
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_device_end_of_a_pty_disconnects() {
    let (device_end, host_end) = tokio_serial::SerialStream::pair().unwrap();
    let transport = SerialTransport::from_stream(host_end, "pty");
    drop(device_end);
    let err = tokio::time::timeout(Duration::from_secs(5), transport.recv())
        .await
        .expect("recv should end when the pty's other side closes")
        .unwrap_err();
    assert!(err.is_link_lost(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let responder = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        echo_responder(socket).await
    });
    let target = format!("tcp://{addr}");
    let transport = SerialTransport::connect(&target, 115_200).await.unwrap();
    assert_eq!(transport.describe(), format!("serial {target}"));
    exercise(transport).await;
    // The client is gone, so the socket closed and the responder ended.
    assert_eq!(responder.await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_peer_closing_is_a_disconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        socket.write_all(LOG).await.unwrap();
        socket.write_all(&encode_frame(b"one frame").unwrap()).await.unwrap();
    });
    let transport = SerialTransport::connect_tcp(&addr.to_string()).await.unwrap();
    server.await.unwrap();
    assert_eq!(transport.recv().await.unwrap(), b"one frame");
    assert!(matches!(transport.recv().await, Err(ref e) if e.is_link_lost()));
}

#[tokio::test]
async fn unreachable_tcp_target_is_a_transport_error() {
    // Bind then drop, so the port is very likely closed.
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let err = SerialTransport::connect_tcp(&format!("tcp://{addr}")).await.unwrap_err();
    assert!(matches!(err, Error::Transport(ref t) if t.kind == TransportKind::Open), "{err:?}");
}
