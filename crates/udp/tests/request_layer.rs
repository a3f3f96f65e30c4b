//! The request layer over a real UDP socket, against a scripted peer that answers late, twice,
//! out of order, with strangers' sequence numbers, or in the old protocol version.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smpflash_core::client::Client;
use smpflash_core::command::image::ImageUpload;
use smpflash_core::command::os::{Echo, EchoResponse, McumgrParams};
use smpflash_core::frame::{Frame, Header, Version};
use smpflash_core::{cbor, Error};
use smpflash_udp::UdpTransport;
use tokio::net::UdpSocket;

/// What the peer sends back for one request: (delay, datagram) pairs.
type Script = Box<dyn Fn(&Frame) -> Vec<(Duration, Vec<u8>)> + Send + Sync>;

async fn peer(script: Script) -> SocketAddr {
    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            let frame = Frame::decode(&buf[..n]).unwrap();
            for (delay, datagram) in script(&frame) {
                let sock = sock.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    sock.send_to(&datagram, from).await.unwrap();
                });
            }
        }
    });
    addr
}

fn reply(req: &Frame, version: Version, seq: u8, body: &impl serde::Serialize) -> Vec<u8> {
    let h = Header { version, op: req.header.op.response(), seq, ..req.header };
    Frame::new(h, cbor::to_vec(body, "test").unwrap()).unwrap().encode()
}

fn echo_text(req: &Frame) -> String {
    let v: ciborium::Value = cbor::from_slice(&req.body, "echo").unwrap();
    let map = v.into_map().unwrap();
    map.into_iter().find(|(k, _)| k.as_text() == Some("d")).unwrap().1.into_text().unwrap()
}

fn echo_reply(req: &Frame, seq: u8) -> Vec<u8> {
    reply(req, Version::V2, seq, &EchoResponse { r: echo_text(req) })
}

async fn client(script: Script) -> Client {
    let addr = peer(script).await;
    let t = UdpTransport::connect_addr(addr).await.unwrap();
    Client::new(Arc::new(t)).with_timeout(Duration::from_millis(400))
}

fn echo(text: &str) -> Echo {
    Echo { d: text.into() }
}

#[tokio::test]
async fn answers_out_of_order_reach_their_own_requests() {
    // Answer each request after a delay that shrinks with its text, so later requests are
    // answered first.
    let c = client(Box::new(|req| {
        let n: u64 = echo_text(req).parse().unwrap();
        vec![(Duration::from_millis(200 - 40 * n), echo_reply(req, req.header.seq))]
    }))
    .await;
    let (r0, r1, r4) = (echo("0"), echo("1"), echo("4"));
    let (a, b, d) = tokio::join!(c.request(&r0), c.request(&r1), c.request(&r4));
    assert_eq!((a.unwrap().r, b.unwrap().r, d.unwrap().r), ("0".into(), "1".into(), "4".into()));
    let s = c.stats();
    assert_eq!((s.sent, s.answered, s.late, s.duplicate, s.unknown), (3, 3, 0, 0, 0));
}

#[tokio::test]
async fn late_duplicate_and_unknown_answers_are_counted_not_fatal() {
    let c = client(Box::new(|req| match echo_text(req).as_str() {
        "slow" => vec![(Duration::from_millis(700), echo_reply(req, req.header.seq))],
        "twice" => vec![
            (Duration::ZERO, echo_reply(req, req.header.seq)),
            (Duration::from_millis(50), echo_reply(req, req.header.seq)),
        ],
        "stranger" => vec![
            (Duration::ZERO, echo_reply(req, req.header.seq.wrapping_add(100))),
            (Duration::from_millis(20), echo_reply(req, req.header.seq)),
        ],
        "garbage" => vec![
            (Duration::ZERO, vec![0x0B, 0x00, 0x00]),
            (Duration::from_millis(20), echo_reply(req, req.header.seq)),
        ],
        _ => vec![(Duration::ZERO, echo_reply(req, req.header.seq))],
    }))
    .await;

    let e = c.request(&echo("slow")).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert_eq!(c.request(&echo("twice")).await.unwrap().r, "twice");
    assert_eq!(c.request(&echo("stranger")).await.unwrap().r, "stranger");
    assert_eq!(c.request(&echo("garbage")).await.unwrap().r, "garbage");
    // Let the slow answer and the second copy arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.request(&echo("after")).await.unwrap().r, "after");
    let s = c.stats();
    assert_eq!((s.timed_out, s.late, s.duplicate, s.unknown, s.malformed), (1, 1, 1, 1, 1), "{s:?}");
}

#[tokio::test]
async fn a_v1_only_device_makes_the_client_fall_back() {
    #[derive(serde::Serialize)]
    struct Rc {
        rc: i64,
    }
    let c = client(Box::new(|req| match req.header.version {
        Version::V2 => vec![(Duration::ZERO, reply(req, Version::V1, req.header.seq, &Rc { rc: 13 }))],
        Version::V1 => vec![(
            Duration::ZERO,
            reply(req, Version::V1, req.header.seq, &EchoResponse { r: echo_text(req) }),
        )],
    }))
    .await;
    assert_eq!(c.version(), Version::V2);
    assert_eq!(c.request(&echo("old")).await.unwrap().r, "old");
    assert_eq!(c.version(), Version::V1);
}

#[tokio::test]
async fn device_errors_and_oversized_requests_are_specific() {
    #[derive(serde::Serialize)]
    struct Rc {
        rc: i64,
    }
    let c = client(Box::new(|req| {
        vec![(Duration::ZERO, reply(req, Version::V2, req.header.seq, &Rc { rc: 8 }))]
    }))
    .await;
    match c.request(&McumgrParams {}).await {
        Err(Error::Device(d)) => assert!(d.is_not_supported()),
        other => panic!("expected ENOTSUP, got {other:?}"),
    }
    let big = ImageUpload { off: 0, data: serde_bytes::ByteBuf::from(vec![0; 2000]), ..Default::default() };
    assert!(matches!(c.request(&big).await, Err(Error::FrameTooLarge { limit: 1472, .. })));
}
