//! The request layer over the in-memory loopback, against a scripted peer that answers late,
//! twice, out of order, with strangers' sequence numbers, in the old protocol version, not at
//! all, or drops the link. Time is paused: every delay and timeout runs in virtual time.
//!
//! The same cases over a real UDP socket live in `crates/udp/tests/request_layer.rs`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use smpflash_core::client::{Client, IDEMPOTENT_ATTEMPTS};
use smpflash_core::command::image::ImageUpload;
use smpflash_core::command::os::{Echo, EchoResponse, McumgrParams};
use smpflash_core::frame::{Frame, Header, Op, Version};
use smpflash_core::loopback::{Loopback, Reply};
use smpflash_core::{cbor, Error};

fn reply(req: &Frame, version: Version, seq: u8, body: &impl serde::Serialize) -> Reply {
    let h = Header { version, op: req.header.op.response(), seq, ..req.header };
    Reply::frame(&Frame::new(h, cbor::to_vec(body, "test").unwrap()).unwrap())
}

fn echo_text(req: &Frame) -> String {
    let v: ciborium::Value = cbor::from_slice(&req.body, "echo").unwrap();
    let map = v.into_map().unwrap();
    map.into_iter().find(|(k, _)| k.as_text() == Some("d")).unwrap().1.into_text().unwrap()
}

fn echo_reply(req: &Frame, seq: u8) -> Reply {
    reply(req, Version::V2, seq, &EchoResponse { r: echo_text(req) })
}

/// A client whose peer answers as `script`, with the timeout the UDP version uses.
fn client(script: impl Fn(&Frame) -> Vec<Reply> + Send + Sync + 'static) -> Client {
    let link = Loopback::serving(script).with_max_frame(1472);
    Client::new(Arc::new(link)).with_timeout(Duration::from_millis(400))
}

fn echo(text: &str) -> Echo {
    Echo { d: text.into() }
}

#[derive(serde::Serialize)]
struct Rc {
    rc: i64,
}

#[tokio::test(start_paused = true)]
async fn answers_out_of_order_reach_their_own_requests() {
    // Answer each request after a delay that shrinks with its text, so later requests are
    // answered first.
    let c = client(|req| {
        let n: u64 = echo_text(req).parse().unwrap();
        vec![echo_reply(req, req.header.seq).after(Duration::from_millis(200 - 40 * n))]
    });
    let (r0, r1, r4) = (echo("0"), echo("1"), echo("4"));
    let (a, b, d) = tokio::join!(c.request(&r0), c.request(&r1), c.request(&r4));
    assert_eq!((a.unwrap().r, b.unwrap().r, d.unwrap().r), ("0".into(), "1".into(), "4".into()));
    let s = c.stats();
    assert_eq!((s.sent, s.answered, s.late, s.duplicate, s.unknown), (3, 3, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn late_duplicate_and_unknown_answers_are_counted_not_fatal() {
    let c = client(|req| match echo_text(req).as_str() {
        "slow" => vec![echo_reply(req, req.header.seq).after(Duration::from_millis(700))],
        "twice" => vec![
            echo_reply(req, req.header.seq),
            echo_reply(req, req.header.seq).after(Duration::from_millis(50)),
        ],
        "stranger" => vec![
            echo_reply(req, req.header.seq.wrapping_add(100)),
            echo_reply(req, req.header.seq).after(Duration::from_millis(20)),
        ],
        "garbage" => {
            vec![
                Reply::bytes([0x0B, 0x00, 0x00]),
                echo_reply(req, req.header.seq).after(Duration::from_millis(20)),
            ]
        }
        _ => vec![echo_reply(req, req.header.seq)],
    });

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

#[tokio::test(start_paused = true)]
async fn a_v1_only_device_makes_the_client_fall_back() {
    let c = client(|req| match req.header.version {
        Version::V2 => vec![reply(req, Version::V1, req.header.seq, &Rc { rc: 13 })],
        Version::V1 => vec![reply(req, Version::V1, req.header.seq, &EchoResponse { r: echo_text(req) })],
    });
    assert_eq!(c.version(), Version::V2);
    assert_eq!(c.request(&echo("old")).await.unwrap().r, "old");
    assert_eq!(c.version(), Version::V1);
}

#[tokio::test(start_paused = true)]
async fn device_errors_and_oversized_requests_are_specific() {
    let c = client(|req| vec![reply(req, Version::V2, req.header.seq, &Rc { rc: 8 })]);
    match c.request(&McumgrParams {}).await {
        Err(Error::Device(d)) => assert!(d.is_not_supported()),
        other => panic!("expected ENOTSUP, got {other:?}"),
    }
    let big = ImageUpload { off: 0, data: serde_bytes::ByteBuf::from(vec![0; 2000]), ..Default::default() };
    assert!(matches!(c.request(&big).await, Err(Error::FrameTooLarge { limit: 1472, .. })));
}

// ---- beyond the UDP file: cases only a scripted in-memory peer makes easy ----

#[tokio::test(start_paused = true)]
async fn an_unanswered_request_times_out_after_its_own_timeout() {
    let c = client(|_| vec![]);
    match c.request_with_timeout(&echo("lost"), Duration::from_millis(250)).await {
        Err(Error::Timeout { what, timeout_ms, .. }) => {
            assert_eq!((what.as_str(), timeout_ms), ("echo", 250))
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let s = c.stats();
    assert_eq!((s.sent, s.answered, s.timed_out), (1, 0, 1), "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn idempotent_requests_are_asked_again_when_answers_are_lost() {
    // The first two requests go unanswered, the third is answered.
    let seen = Arc::new(AtomicU32::new(0));
    let count = seen.clone();
    let c = client(move |req| {
        if count.fetch_add(1, Ordering::SeqCst) < 2 {
            vec![]
        } else {
            vec![echo_reply(req, req.header.seq)]
        }
    });
    assert_eq!(c.request_idempotent(&echo("again")).await.unwrap().r, "again");
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    let s = c.stats();
    assert_eq!((s.sent, s.answered, s.timed_out), (3, 1, 2), "{s:?}");
    // Every attempt used a sequence number of its own.
    assert_eq!(c.request(&echo("next")).await.unwrap().r, "next");
}

#[tokio::test(start_paused = true)]
async fn idempotent_requests_give_up_after_their_attempts() {
    let c = client(|_| vec![]);
    let e = c.request_idempotent(&echo("never")).await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    let s = c.stats();
    assert_eq!((s.sent, s.timed_out), (IDEMPOTENT_ATTEMPTS as u64, IDEMPOTENT_ATTEMPTS as u64), "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn a_device_error_is_not_asked_again() {
    let c = client(|req| vec![reply(req, Version::V2, req.header.seq, &Rc { rc: 8 })]);
    let e = c.request_idempotent(&McumgrParams {}).await.unwrap_err();
    assert!(matches!(&e, Error::Device(d) if d.is_not_supported()), "{e}");
    assert_eq!(c.stats().sent, 1);
}

#[tokio::test(start_paused = true)]
async fn a_closed_link_fails_the_waiting_and_every_later_request() {
    // "bye" closes the link without answering; requests waiting then fail at once, not at
    // their timeout.
    let c = client(|req| match echo_text(req).as_str() {
        "bye" => vec![Reply::close().after(Duration::from_millis(100))],
        "slow" => vec![echo_reply(req, req.header.seq).after(Duration::from_secs(3))],
        _ => vec![echo_reply(req, req.header.seq)],
    });
    assert_eq!(c.request(&echo("hi")).await.unwrap().r, "hi");
    let (slow, bye) = (echo("slow"), echo("bye"));
    let long = Duration::from_secs(10);
    let (a, b) = tokio::join!(c.request_with_timeout(&slow, long), c.request_with_timeout(&bye, long));
    assert!(matches!(a, Err(ref e) if e.is_link_lost()), "{a:?}");
    assert!(matches!(b, Err(ref e) if e.is_link_lost()), "{b:?}");
    let after = c.request(&echo("after")).await;
    assert!(matches!(after, Err(ref e) if e.is_link_lost()), "{after:?}");
    assert_eq!(c.stats().timed_out, 0);
}

#[tokio::test(start_paused = true)]
async fn a_hand_driven_peer_sees_each_request_and_sequence_numbers_advance() {
    let (link, peer) = Loopback::pair();
    let c = Client::new(Arc::new(link)).with_timeout(Duration::from_secs(1));
    let device = async {
        let mut seqs = Vec::new();
        for _ in 0..3 {
            let req = peer.recv_frame().await.unwrap();
            assert_eq!((req.header.op, req.header.group, req.header.id), (Op::Write, 0, 0));
            assert_eq!(req.header.version, Version::V2);
            seqs.push(req.header.seq);
            peer.send(echo_reply(&req, req.header.seq).payload().unwrap()).unwrap();
        }
        // A fourth request, answered only after the link was closed: it never arrives.
        let req = peer.recv_frame().await.unwrap();
        peer.close();
        assert!(matches!(
            peer.send(echo_reply(&req, req.header.seq).payload().unwrap()),
            Err(ref e) if e.is_link_lost()
        ));
        seqs
    };
    let host = async {
        let mut answers = Vec::new();
        for text in ["a", "b", "c"] {
            answers.push(c.request(&echo(text)).await.unwrap().r);
        }
        (answers, c.request(&echo("d")).await)
    };
    let (seqs, (answers, last)) = tokio::join!(device, host);
    assert_eq!(answers, ["a", "b", "c"]);
    assert_eq!(seqs, [0, 1, 2]);
    assert!(matches!(last, Err(ref e) if e.is_link_lost()), "{last:?}");
}

#[tokio::test(start_paused = true)]
async fn slow_commands_wait_for_their_own_timeout_and_others_for_the_ordinary_one() {
    use smpflash_core::command::image::{ImageErase, ImageStateRead, ImageStateWrite, ERASE_TIMEOUT};
    use smpflash_core::command::Empty;
    // A device that needs 20 s to erase a slot (an nRF5340's 0xF0000-byte slot) and answers
    // echo as slowly.
    let c = client(|req| {
        let slow = Duration::from_secs(20);
        if req.header.group == 1 {
            vec![reply(req, Version::V2, req.header.seq, &Empty {}).after(slow)]
        } else {
            vec![echo_reply(req, req.header.seq).after(slow)]
        }
    });
    assert_eq!(c.timeout_for::<ImageErase>(), ERASE_TIMEOUT);
    assert_eq!(c.timeout_for::<ImageStateWrite>(), Duration::from_secs(10));
    assert_eq!(c.timeout_for::<ImageStateRead>(), Duration::from_millis(400));
    let started = tokio::time::Instant::now();
    c.request(&ImageErase { slot: None }).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(20));
    match c.request(&echo("slow")).await {
        Err(Error::Timeout { timeout_ms: 400, .. }) => {}
        other => panic!("expected the ordinary timeout, got {other:?}"),
    }
    // A longer ordinary timeout is never shortened by a command's own.
    let c = Client::new(Arc::new(Loopback::serving(|_| vec![]))).with_timeout(Duration::from_secs(90));
    assert_eq!(c.timeout_for::<ImageErase>(), Duration::from_secs(90));
}

#[tokio::test(start_paused = true)]
async fn idempotent_retries_share_one_timeout() {
    // Before: four attempts of 10 s each, 40 s for one unanswered params.
    let seen = Arc::new(AtomicU32::new(0));
    let count = seen.clone();
    let c = Client::new(Arc::new(Loopback::serving(move |_| {
        count.fetch_add(1, Ordering::SeqCst);
        vec![]
    })))
    .with_timeout(Duration::from_secs(10));
    let started = tokio::time::Instant::now();
    match c.request_idempotent(&McumgrParams {}).await {
        Err(Error::Timeout { timeout_ms: 10_000, .. }) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::from_secs(10), "the whole is bounded by --timeout");
    assert_eq!(seen.load(Ordering::SeqCst), IDEMPOTENT_ATTEMPTS, "every copy went out within it");

    // A device slower than the spacing of the copies is not cut short: the first copy's
    // answer, 7 s later, is taken.
    let c = client(|req| vec![echo_reply(req, req.header.seq).after(Duration::from_secs(7))])
        .with_timeout(Duration::from_secs(10));
    let started = tokio::time::Instant::now();
    assert_eq!(c.request_idempotent(&echo("slow")).await.unwrap().r, "slow");
    assert_eq!(started.elapsed(), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn a_request_that_does_not_fit_the_device_buffer_fails_before_it_is_sent() {
    use smpflash_core::command::os::McumgrParamsResponse;
    use smpflash_core::upload::Limits;
    let seen = Arc::new(AtomicU32::new(0));
    let count = seen.clone();
    let link = Loopback::serving(move |req| {
        if req.header.id == 6 {
            return vec![reply(
                req,
                Version::V2,
                req.header.seq,
                &McumgrParamsResponse { buf_size: 128, buf_count: 2 },
            )];
        }
        count.fetch_add(1, Ordering::SeqCst);
        vec![echo_reply(req, req.header.seq)]
    })
    .with_max_frame(1472)
    .with_frame_overhead(4);
    let c = Client::new(Arc::new(link)).with_timeout(Duration::from_millis(400));
    // Nothing known yet: only the transport's limit applies.
    let long = "x".repeat(200);
    assert_eq!(c.request(&echo(&long)).await.unwrap().r, long);
    // Once the device reports a 128-byte buffer, a frame that with the 4 bytes of framing
    // does not fit fails at once, naming both sizes, and never reaches the device.
    Limits::query(&c).await.unwrap();
    let before = seen.load(Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    let e = c.request(&echo(&long)).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooLargeForDevice { what: "echo", buf_size: 128, overhead: 4, reported: true, .. }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("request of 213 bytes (+4 bytes of transport framing)")
            && text.contains("128-byte buffer"),
        "{text}"
    );
    assert_eq!(started.elapsed(), Duration::ZERO, "no waiting for a timeout");
    assert_eq!(seen.load(Ordering::SeqCst), before, "nothing was sent");
    // 8-byte header + {"d": 111 bytes} (13 + 111) = 124 bytes + 4 of framing fits 128
    // exactly; one more byte does not.
    assert!(c.request(&echo(&"y".repeat(111))).await.is_ok());
    assert!(matches!(c.request(&echo(&"y".repeat(112))).await, Err(Error::TooLargeForDevice { .. })));
    // A given buffer (--buf-size) wins over the reported one.
    c.set_given_buf_size(Some(1024));
    assert_eq!(c.request(&echo(&long)).await.unwrap().r, long);
}
