//! What the virtual device answers to requests smpflash would never send, checked against
//! what Zephyr's SMP server does with them (`subsys/mgmt/mcumgr/smp/src/smp.c`, os_mgmt.c,
//! the transports), over a real UDP socket, a real pty and the BLE link model.
//!
//! Requests are built byte by byte here: the point is headers, lengths, ops and bodies that
//! smpflash-core's typed commands cannot produce.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ciborium::Value;
use smpflash_core::frame::{Frame, Op, Version};
use smpflash_core::gatt::GattLink;
use smpflash_sim::front::ble::BleFrontEnd;
use smpflash_sim::front::ble_link::LinkParams;
use smpflash_sim::front::udp::{self, UdpOptions, UdpServer};
use smpflash_sim::{Device, DeviceOptions, Profile};
use tokio::net::UdpSocket;

const READ: u8 = 0;
const WRITE: u8 = 2;
const V1: u8 = 0;
const V2: u8 = 1;

/// A request as raw bytes: `len` overrides the header's length field.
fn raw(op: u8, version: u8, group: u16, id: u8, seq: u8, body: &[u8], len: Option<u16>) -> Vec<u8> {
    let len = len.unwrap_or(body.len() as u16).to_be_bytes();
    let g = group.to_be_bytes();
    let mut out = vec![(version << 3) | op, 0, len[0], len[1], g[0], g[1], seq, id];
    out.extend_from_slice(body);
    out
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).unwrap();
    out
}

fn text_map(entries: &[(&str, Value)]) -> Vec<u8> {
    cbor(&Value::Map(entries.iter().map(|(k, v)| (Value::Text((*k).into()), v.clone())).collect()))
}

fn echo_body(d: &str) -> Vec<u8> {
    text_map(&[("d", Value::Text(d.into()))])
}

/// An answer: its header and its body as CBOR.
struct Answer {
    frame: Frame,
    body: Value,
}

impl Answer {
    fn parse(bytes: &[u8]) -> Answer {
        let frame = Frame::decode(bytes).expect("the answer is a well-formed frame");
        let body = ciborium::from_reader(frame.body.as_slice()).expect("the answer's body is CBOR");
        Answer { frame, body }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.body.as_map()?.iter().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v)
    }

    fn rc(&self) -> Option<i64> {
        self.get("rc").and_then(|v| v.as_integer()).map(|i| i64::try_from(i).unwrap())
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| v.as_text())
    }

    /// (op, version, group, id, seq) of the answer's header.
    fn addressed(&self) -> (Op, Version, u16, u8, u8) {
        let h = self.frame.header;
        (h.op, h.version, h.group, h.id, h.seq)
    }
}

fn device(profile: &str) -> Arc<Device> {
    Device::new(Profile::by_name(profile).unwrap(), DeviceOptions { time_scale: 0.0, ..Default::default() })
        .unwrap()
}

/// A device on a real UDP socket and a raw socket talking to it.
struct Udp {
    _server: UdpServer,
    socket: UdpSocket,
}

impl Udp {
    async fn start(profile: &str) -> Udp {
        let server =
            udp::serve(device(profile), "127.0.0.1:0".parse().unwrap(), UdpOptions::default()).await.unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0".parse::<SocketAddr>().unwrap()).await.unwrap();
        socket.connect(server.local_addr()).await.unwrap();
        Udp { _server: server, socket }
    }

    /// Sends one datagram and collects the answers: the first within 2 s, more until the
    /// device has been quiet for 300 ms.
    async fn exchange(&self, datagram: &[u8]) -> Vec<Answer> {
        self.socket.send(datagram).await.unwrap();
        let mut answers = Vec::new();
        let mut buf = vec![0u8; 65536];
        let mut wait = Duration::from_secs(2);
        while let Ok(Ok(n)) = tokio::time::timeout(wait, self.socket.recv(&mut buf)).await {
            answers.push(Answer::parse(&buf[..n]));
            wait = Duration::from_millis(300);
        }
        answers
    }

    async fn one(&self, datagram: &[u8]) -> Answer {
        let mut answers = self.exchange(datagram).await;
        assert_eq!(answers.len(), 1, "one answer expected");
        answers.pop().unwrap()
    }

    /// The device still answers an ordinary echo, and nothing else is on the way.
    async fn still_answers(&self) {
        let a = self.one(&raw(WRITE, V2, 0, 0, 200, &echo_body("still"), None)).await;
        assert_eq!((a.frame.header.seq, a.text("r")), (200, Some("still")));
    }
}

#[tokio::test]
async fn echo_is_registered_for_read_and_write() {
    // Zephyr: os_mgmt.c os_mgmt_group_handlers, [OS_MGMT_ID_ECHO] = { os_mgmt_echo, os_mgmt_echo }.
    let udp = Udp::start("zephyr-default").await;
    for version in [V1, V2] {
        let a = udp.one(&raw(READ, version, 0, 0, 7, &echo_body("read op"), None)).await;
        let v = if version == V2 { Version::V2 } else { Version::V1 };
        assert_eq!(a.addressed(), (Op::ReadResponse, v, 0, 0, 7));
        assert_eq!((a.rc(), a.text("r")), (None, Some("read op")));
        let a = udp.one(&raw(WRITE, version, 0, 0, 8, &echo_body("write op"), None)).await;
        assert_eq!(a.addressed(), (Op::WriteResponse, v, 0, 0, 8));
        assert_eq!(a.text("r"), Some("write op"));
    }
}

#[tokio::test]
async fn an_echo_without_d_answers_an_empty_string() {
    // Zephyr: os_mgmt_echo starts from `struct zcbor_string data = { 0 }` and
    // zcbor_map_decode_bulk does not require the key.
    let udp = Udp::start("zephyr-default").await;
    for body in [text_map(&[]), text_map(&[("other", Value::Integer(1.into()))])] {
        let a = udp.one(&raw(WRITE, V2, 0, 0, 1, &body, None)).await;
        assert_eq!((a.rc(), a.text("r")), (None, Some("")));
    }
    // A `d` that is not text fails the decode: EINVAL; so does `d` twice (-EADDRINUSE).
    let a = udp.one(&raw(WRITE, V2, 0, 0, 2, &text_map(&[("d", Value::Integer(5.into()))]), None)).await;
    assert_eq!(a.rc(), Some(3));
    let twice = text_map(&[("d", Value::Text("a".into())), ("d", Value::Text("b".into()))]);
    assert_eq!(udp.one(&raw(WRITE, V2, 0, 0, 3, &twice, None)).await.rc(), Some(3));
}

#[tokio::test]
async fn a_header_longer_than_the_datagram_is_answered_ecorrupt() {
    // Zephyr: smp.c smp_process_request_packet, "Does buffer contain whole message?" ->
    // MGMT_ERR_ECORRUPT, answered by smp_on_err with the request's header turned into a
    // response (smp_make_rsp_hdr).
    let udp = Udp::start("zephyr-default").await;
    let body = echo_body("short");
    let a = udp.one(&raw(WRITE, V2, 0, 0, 9, &body, Some(body.len() as u16 + 10))).await;
    assert_eq!(a.addressed(), (Op::WriteResponse, Version::V2, 0, 0, 9));
    assert_eq!(a.rc(), Some(9));
    // Any group, id and op: the length is checked before anything else.
    let a = udp.one(&raw(READ, V1, 0x1234, 42, 10, &[0xA0], Some(100))).await;
    assert_eq!(a.addressed(), (Op::ReadResponse, Version::V1, 0x1234, 42, 10));
    assert_eq!(a.rc(), Some(9));
    udp.still_answers().await;
}

#[tokio::test]
async fn a_header_shorter_than_the_datagram_makes_the_rest_the_next_request() {
    // Zephyr: smp_process_request_packet loops `while (req->len > 0)` and pulls nh_len bytes
    // after each request: the rest of the datagram is read as the next request.
    let udp = Udp::start("zephyr-default").await;
    let mut two = raw(WRITE, V2, 0, 0, 1, &echo_body("one"), None);
    two.extend(raw(READ, V2, 0, 0, 2, &echo_body("two"), None));
    let answers = udp.exchange(&two).await;
    let got: Vec<_> = answers.iter().map(|a| (a.frame.header.seq, a.text("r").map(str::to_owned))).collect();
    assert_eq!(got, [(1, Some("one".to_owned())), (2, Some("two".to_owned()))]);

    // A length of 3 for a 9-byte echo body: the handler's reader covers the whole rest of
    // the datagram (cbor_nb_reader_init), so the echo is answered; the 6 bytes after the
    // first 3 are too short for a header and are dropped silently.
    let body = echo_body("hello");
    assert_eq!(body.len(), 9);
    let answers = udp.exchange(&raw(WRITE, V2, 0, 0, 3, &body, Some(3))).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].text("r"), Some("hello"));

    // Enough bytes left over to read as a header: they are handled as one (here an
    // impossible length, so ECORRUPT with that "header"'s fields).
    let mut tail = raw(WRITE, V2, 0, 0, 4, &echo_body("x"), None);
    tail.extend([0x02, 0x00, 0x7F, 0x00, 0x00, 0x09, 0x33, 0x01]);
    let answers = udp.exchange(&tail).await;
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].text("r"), Some("x"));
    assert_eq!(answers[1].addressed(), (Op::WriteResponse, Version::V1, 9, 1, 0x33));
    assert_eq!(answers[1].rc(), Some(9));

    // An error answer ends the datagram: the request after it is not handled.
    let mut after_error = raw(WRITE, V2, 77, 0, 5, &text_map(&[]), None);
    after_error.extend(raw(WRITE, V2, 0, 0, 6, &echo_body("never"), None));
    let answers = udp.exchange(&after_error).await;
    assert_eq!(answers.len(), 1);
    assert_eq!((answers[0].frame.header.seq, answers[0].rc()), (5, Some(8)));
}

#[tokio::test]
async fn handler_lookup_comes_before_body_decoding() {
    // Zephyr: smp_handle_single_payload: mgmt_find_handler(group, id) NULL -> ENOTSUP; the
    // op's handler NULL -> ENOTSUP; the body is only decoded by the handler.
    let udp = Udp::start("zephyr-default").await;
    let garbage = [0xFF, 0xFF, 0x1C];
    // Unknown group.
    assert_eq!(udp.one(&raw(WRITE, V2, 77, 0, 1, &garbage, None)).await.rc(), Some(8));
    // Unknown command id in a known group.
    assert_eq!(udp.one(&raw(READ, V2, 0, 99, 2, &garbage, None)).await.rc(), Some(8));
    assert_eq!(udp.one(&raw(WRITE, V2, 1, 3, 3, &garbage, None)).await.rc(), Some(8));
    // A known command with the op it is not registered for: reset is write-only, params
    // read-only, upload write-only.
    assert_eq!(udp.one(&raw(READ, V2, 0, 5, 4, &garbage, None)).await.rc(), Some(8));
    assert_eq!(udp.one(&raw(WRITE, V2, 0, 6, 5, &garbage, None)).await.rc(), Some(8));
    assert_eq!(udp.one(&raw(READ, V2, 1, 1, 6, &garbage, None)).await.rc(), Some(8));
}

#[tokio::test]
async fn bodies_are_decoded_by_the_handlers_that_read_them() {
    let udp = Udp::start("zephyr-default").await;
    let array = cbor(&Value::Array(vec![Value::Text("d".into()), Value::Text("x".into())]));
    // Handlers that run zcbor_map_decode_bulk: an array, or not CBOR at all, is EINVAL.
    assert_eq!(udp.one(&raw(WRITE, V2, 0, 0, 1, &array, None)).await.rc(), Some(3));
    assert_eq!(udp.one(&raw(READ, V2, 0, 7, 2, &[0xFF], None)).await.rc(), Some(3));
    assert_eq!(udp.one(&raw(WRITE, V2, 1, 1, 3, &array, None)).await.rc(), Some(3));
    // A key that is not text ends zcbor's decoding before the map's end: EINVAL.
    let int_key = cbor(&Value::Map(vec![(Value::Integer(1.into()), Value::Integer(2.into()))]));
    assert_eq!(udp.one(&raw(WRITE, V2, 0, 0, 4, &int_key, None)).await.rc(), Some(3));
    // Handlers that never read their request (os_mgmt_mcumgr_params, img_mgmt_state_read,
    // img_mgmt_slot_info): any body is fine.
    let a = udp.one(&raw(READ, V2, 0, 6, 5, &array, None)).await;
    assert_eq!((a.rc(), a.get("buf_size").is_some()), (None, true));
    let a = udp.one(&raw(READ, V2, 1, 0, 6, &[0xFF, 0x00], None)).await;
    assert!(a.get("images").is_some(), "{:?}", a.body);
    let a = udp.one(&raw(READ, V2, 1, 6, 7, &array, None)).await;
    assert!(a.get("images").is_some(), "{:?}", a.body);
    // A bootloader query that is not text fails the decode (EINVAL); an unknown text query
    // is OS_MGMT_ERR_QUERY_YIELDS_NO_ANSWER.
    let q = text_map(&[("query", Value::Integer(1.into()))]);
    assert_eq!(udp.one(&raw(READ, V2, 0, 8, 8, &q, None)).await.rc(), Some(3));
    let q = text_map(&[("query", Value::Text("what".into()))]);
    let a = udp.one(&raw(READ, V2, 0, 8, 9, &q, None)).await;
    assert_eq!(
        a.get("err"),
        Some(&Value::Map(vec![
            (Value::Text("group".into()), Value::Integer(0.into())),
            (Value::Text("rc".into()), Value::Integer(3.into())),
        ]))
    );
}

#[tokio::test]
async fn os_group_errors_in_v1_are_translated_as_os_mgmt_does() {
    // Zephyr: os_mgmt.c os_mgmt_translate_error_code: INVALID_FORMAT -> EINVAL,
    // QUERY_YIELDS_NO_ANSWER -> ENOENT.
    let udp = Udp::start("zephyr-default").await;
    let a = udp.one(&raw(READ, V1, 0, 7, 1, &text_map(&[("format", Value::Text("x".into()))]), None)).await;
    assert_eq!(a.rc(), Some(3));
    let a = udp.one(&raw(READ, V1, 0, 8, 2, &text_map(&[("query", Value::Text("what".into()))]), None)).await;
    assert_eq!(a.rc(), Some(5));
}

#[tokio::test]
async fn headers_zephyr_reads_differently_from_a_strict_parser() {
    let udp = Udp::start("zephyr-default").await;
    // Fewer than 8 bytes: smp_read_hdr fails, no valid header, nothing is sent.
    assert!(udp.exchange(&[0x0A, 0x00, 0x00]).await.is_empty());
    // Version bits 2 and 3: smp_handle_single_req, MGMT_ERR_UNSUPPORTED_TOO_NEW, answered
    // with the version capped at v2 (smp_make_rsp_hdr).
    for version in [2, 3] {
        let a = udp.one(&raw(WRITE, version, 0, 0, 1, &echo_body("v"), None)).await;
        assert_eq!(a.addressed(), (Op::WriteResponse, Version::V2, 0, 0, 1));
        assert_eq!(a.rc(), Some(13));
    }
    // Reserved bits and flags are never looked at.
    let mut r = raw(WRITE, V2, 0, 0, 2, &echo_body("reserved"), None);
    r[0] |= 0xE0;
    r[1] = 0x5A;
    assert_eq!(udp.one(&r).await.text("r"), Some("reserved"));
    // A response op or ops 4-7 are not requests: MGMT_ERR_ENOTSUP (no CONFIG_SMP_CLIENT),
    // answered as a write response.
    for op in [1, 3, 4, 7] {
        let a = udp.one(&raw(op, V2, 0, 0, 3, &echo_body("r"), None)).await;
        assert_eq!((a.frame.header.op, a.rc()), (Op::WriteResponse, Some(8)));
    }
    udp.still_answers().await;
}

#[tokio::test]
async fn an_oversize_datagram_is_cut_to_the_mtu_and_answered_ecorrupt() {
    // Zephyr: smp_udp.c receives into a CONFIG_MCUMGR_TRANSPORT_UDP_MTU buffer (the sim's
    // MTU is buf_size, 384 here): the datagram is cut, the header's length no longer fits.
    let udp = Udp::start("zephyr-default").await;
    let big = raw(WRITE, V2, 0, 0, 5, &echo_body(&"z".repeat(500)), None);
    assert!(big.len() > 384);
    let a = udp.one(&big).await;
    assert_eq!((a.addressed(), a.rc()), ((Op::WriteResponse, Version::V2, 0, 0, 5), Some(9)));
    // Exactly buf_size still works.
    let d = "y".repeat(384 - 8 - echo_body("").len() - 2);
    let fits = raw(WRITE, V2, 0, 0, 6, &echo_body(&d), None);
    assert_eq!(fits.len(), 384);
    assert_eq!(udp.one(&fits).await.text("r"), Some(d.as_str()));
}

#[cfg(unix)]
mod serial {
    use super::*;
    use smpflash_serial::codec::{encode_frame, ConsoleCodec, ConsoleItem};
    use smpflash_sim::front::pty::{self, PtyOptions, PtyServer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::bytes::BytesMut;
    use tokio_util::codec::Decoder;

    /// A device on a real pty and a raw port on it.
    async fn open() -> (PtyServer, tokio_serial::SerialStream) {
        let options = PtyOptions { log_lines: false, ..Default::default() };
        let server = pty::serve(device("zephyr-default"), options).await.unwrap();
        let port = tokio_serial::SerialStream::open(&tokio_serial::new(server.path(), 115_200)).unwrap();
        (server, port)
    }

    /// Sends one serial packet and collects the answers (first within 2 s, then until quiet).
    async fn exchange(port: &mut tokio_serial::SerialStream, packet: &[u8]) -> Vec<Answer> {
        port.write_all(&encode_frame(packet).unwrap()).await.unwrap();
        let mut codec = ConsoleCodec::new();
        let mut pending = BytesMut::new();
        let mut answers = Vec::new();
        let mut chunk = [0u8; 512];
        let mut wait = Duration::from_secs(2);
        while let Ok(Ok(n)) = tokio::time::timeout(wait, port.read(&mut chunk)).await {
            pending.extend_from_slice(&chunk[..n]);
            while let Ok(Some(item)) = codec.decode(&mut pending) {
                if let ConsoleItem::Frame(f) = item {
                    answers.push(Answer::parse(&f));
                    wait = Duration::from_millis(300);
                }
            }
        }
        answers
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serial_answers_bad_lengths_as_udp_does() {
        // Zephyr's serial transports (serial_util.c mcumgr_serial_process_frag) check the
        // serial packet's own length and CRC, never the SMP header: the SMP server sees the
        // packet as UDP hands it over.
        let (_server, mut port) = open().await;
        let body = echo_body("short");
        let answers = exchange(&mut port, &raw(WRITE, V2, 0, 0, 9, &body, Some(body.len() as u16 + 4))).await;
        assert_eq!(answers.len(), 1);
        assert_eq!(
            (answers[0].addressed(), answers[0].rc()),
            ((Op::WriteResponse, Version::V2, 0, 0, 9), Some(9))
        );

        let mut two = raw(READ, V2, 0, 0, 1, &echo_body("one"), None);
        two.extend(raw(WRITE, V2, 0, 0, 2, &echo_body("two"), None));
        let answers = exchange(&mut port, &two).await;
        let got: Vec<_> =
            answers.iter().map(|a| (a.frame.header.op, a.text("r").map(str::to_owned))).collect();
        assert_eq!(got, [(Op::ReadResponse, Some("one".into())), (Op::WriteResponse, Some("two".into()))]);

        let answers = exchange(&mut port, &raw(READ, V2, 0, 0, 3, &text_map(&[]), None)).await;
        assert_eq!((answers.len(), answers[0].text("r")), (1, Some("")));
    }
}

mod ble {
    use super::*;
    use smpflash_sim::front::ble_link::SimCentral;

    async fn connect() -> (BleFrontEnd, SimCentral) {
        let front =
            BleFrontEnd::new(device("zephyr-default"), LinkParams::phone_fast().with_time_scale(0.05));
        let central = front.connect(Duration::from_secs(5)).await.unwrap();
        (front, central)
    }

    /// Reassembles notifications into answers until the link has been quiet for `quiet`.
    async fn answers(central: &SimCentral, quiet: Duration) -> Vec<Answer> {
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        while let Ok(Ok(value)) = tokio::time::timeout(quiet, central.notification()).await {
            pending.extend(value);
            while let Some(total) = smpflash_core::frame::expected_len(&pending) {
                if pending.len() < total {
                    break;
                }
                let rest = pending.split_off(total);
                out.push(Answer::parse(&pending));
                pending = rest;
            }
        }
        out
    }

    #[tokio::test]
    async fn a_write_whose_header_length_disagrees_is_dropped_whole() {
        // Zephyr: smp_reassembly.c smp_reassembly_collect: a first write longer than its
        // header's length is -EOVERFLOW, and smp_bt_chr_write drops it (nothing is answered);
        // a later write that overruns the packet drops the whole packet.
        let (_front, central) = connect().await;
        let body = echo_body("too long for its header");
        central.write(&raw(WRITE, V2, 0, 0, 1, &body, Some(4))).await.unwrap();
        assert!(answers(&central, Duration::from_millis(500)).await.is_empty());

        // Header says 6 bytes more than the first write; the next write brings 20 more.
        let body = echo_body("split");
        let whole = raw(WRITE, V2, 0, 0, 2, &body, None);
        let mut first = raw(WRITE, V2, 0, 0, 2, &body[..body.len() - 6], None);
        first[2..4].copy_from_slice(&(body.len() as u16).to_be_bytes());
        central.write(&first).await.unwrap();
        central.write(&[0u8; 20]).await.unwrap();
        assert!(answers(&central, Duration::from_millis(500)).await.is_empty());

        // The link is fine afterwards: the same packet written right, in two pieces, is
        // reassembled and answered.
        central.write(&whole[..10]).await.unwrap();
        central.write(&whole[10..]).await.unwrap();
        let got = answers(&central, Duration::from_millis(500)).await;
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].frame.header.seq, got[0].text("r")), (2, Some("split")));
    }

    #[tokio::test]
    async fn the_same_requests_get_the_same_answers_over_ble() {
        // What does not depend on framing is the SMP server's, the same on every transport.
        let (_front, central) = connect().await;
        central.write(&raw(READ, V2, 0, 0, 1, &echo_body("read op"), None)).await.unwrap();
        central.write(&raw(WRITE, V2, 77, 0, 2, &[0xFF, 0xFF], None)).await.unwrap();
        central.write(&raw(WRITE, V2, 0, 0, 3, &text_map(&[]), None)).await.unwrap();
        let got = answers(&central, Duration::from_millis(500)).await;
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].frame.header.op, got[0].text("r")), (Op::ReadResponse, Some("read op")));
        assert_eq!(got[1].rc(), Some(8));
        assert_eq!(got[2].text("r"), Some(""));
    }
}
