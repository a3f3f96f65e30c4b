//! The referee: what the virtual device makes of each client's traffic. It names the mistakes
//! a hand-written client makes ([`Mistake`]), once per kind and then counts them, and keeps a
//! per-client account (requests, answers by code, image bytes written, marks, resets) for the
//! summary printed when the device stops.
//!
//! Zephyr answers a malformed request with a bare `{"rc": 3}`, or with nothing; a developer
//! who prints the answer as hex never learns why. The device knows exactly what it received,
//! so it says what was wrong and how to fix it, in one sentence.
//!
//! Everything here is pure: the device hands over each packet with its answers (and the image
//! slots before the packet, when it resets or marks), and the front ends report what they saw
//! on the link ([`Observation`]); nothing is sent or printed from here.

pub mod mistake;
pub mod slots;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use ciborium::Value;
use smpflash_core::command::image::{ImageStateWrite, ImageUpload};
use smpflash_core::command::os::{McumgrParams, Reset};
use smpflash_core::command::Command;
use smpflash_core::frame::HEADER_LEN;
use smpflash_core::mcuboot::IMAGE_MAGIC;
use smpflash_core::rc;

pub use mistake::{GroupHint, Mistake};
pub use slots::SlotView;

use crate::profile::Profile;
use crate::smp::request::field;
use crate::smp::server::{self, Lookup};

/// Who sent a packet: one UDP peer, the serial line, or one BLE connection.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Client {
    /// A UDP peer, by address and port.
    Udp(SocketAddr),
    /// The serial line (one client at a time).
    Serial,
    /// The BLE central (one at a time, across reconnections).
    Ble,
    /// A caller that did not say (tests that call the device directly).
    Direct,
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::Udp(a) => write!(f, "udp {a}"),
            Client::Serial => write!(f, "serial"),
            Client::Ble => write!(f, "ble central"),
            Client::Direct => write!(f, "direct"),
        }
    }
}

/// What a front end saw on the link that the SMP server never does (it drops it first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A request arrived while every buffer was busy and was dropped (or, over BLE, had to
    /// wait for one): `buffers` is how many the client may keep in flight on this link.
    NoBuffer {
        /// Requests the client may keep in flight.
        buffers: usize,
        /// The request was dropped (UDP, serial); otherwise it waited (the BLE model holds
        /// the link where a device would drop it).
        dropped: bool,
    },
    /// A BLE write longer than MTU - 3.
    WriteTooLong {
        /// The write's length.
        len: usize,
        /// The ATT MTU.
        mtu: usize,
    },
    /// A packet longer than the SMP buffer.
    TooLarge {
        /// The packet's length.
        len: usize,
        /// The buffer size.
        buf_size: usize,
    },
    /// A BLE write that starts a packet but is shorter than a header, or holds more bytes than
    /// its header announces (the reassembly drops it).
    LengthMismatch {
        /// The write, as it came.
        write: Vec<u8>,
    },
    /// An answer was lost because nobody had enabled notifications.
    AnswerUnheard,
}

/// One mistake kind's record for a client: the first instance and how often it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The first instance.
    pub first: Mistake,
    /// How many times.
    pub count: u64,
}

/// A client's account, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientLog {
    /// Requests received (each SMP request of a packet).
    pub requests: u64,
    /// Answered with success.
    pub ok: u64,
    /// Answered with an error, by code name.
    pub errors: BTreeMap<String, u64>,
    /// Requests never answered (dropped before the SMP server, or after an error in the same
    /// packet).
    pub unanswered: u64,
    /// Image bytes the device wrote to flash for this client.
    pub image_bytes: u64,
    /// Uploads that reached their declared length.
    pub uploads_completed: u64,
    /// Accepted image state writes: "test HASH" or "confirm HASH"/"confirm running".
    pub marks: Vec<String>,
    /// Accepted resets.
    pub resets: u64,
    /// Mistakes, by kind, in the order first seen.
    pub mistakes: Vec<(&'static str, Seen)>,
    /// Where this client's last upload chunk ended.
    chunk_end: Option<u64>,
    /// The `off` of the device's last upload answer.
    answered_off: Option<u64>,
    /// The declared length of the upload in progress.
    upload_len: Option<u64>,
}

impl ClientLog {
    /// Records a mistake; returns it when it is the first of its kind for this client (the
    /// one to warn about).
    fn record(&mut self, m: Mistake) -> Option<Mistake> {
        let kind = m.kind();
        if let Some((_, seen)) = self.mistakes.iter_mut().find(|(k, _)| *k == kind) {
            seen.count += 1;
            return None;
        }
        self.mistakes.push((kind, Seen { first: m.clone(), count: 1 }));
        Some(m)
    }
}

/// What the device knows when it hands a packet to the referee.
pub struct Context<'a> {
    /// The device's profile.
    pub profile: &'a Profile,
    /// MCUboot's serial recovery entered from the application.
    pub entered: bool,
    /// The slots before the packet was handled, when it holds a reset or a state write.
    pub slots_before: Option<&'a [SlotView]>,
}

/// Whether a packet needs the slots before it is handled ([`Context::slots_before`]): it
/// starts with a reset or an image state write.
pub fn needs_slots(packet: &[u8]) -> bool {
    packet.len() >= HEADER_LEN && {
        let group = u16::from_be_bytes([packet[4], packet[5]]);
        let id = packet[7];
        (group, id) == (Reset::GROUP, Reset::ID)
            || (group, id) == (ImageStateWrite::GROUP, ImageStateWrite::ID)
    }
}

/// The referee: one [`ClientLog`] per client.
#[derive(Debug, Default)]
pub struct Referee {
    clients: BTreeMap<Client, ClientLog>,
}

impl Referee {
    /// The accounts so far, by client.
    pub fn clients(&self) -> &BTreeMap<Client, ClientLog> {
        &self.clients
    }

    /// A front end's observation; returns the mistake when it is the first of its kind.
    pub fn observe(&mut self, client: &Client, seen: Observation) -> Option<Mistake> {
        let log = self.clients.entry(client.clone()).or_default();
        let m = match seen {
            Observation::NoBuffer { buffers, dropped } => {
                if dropped {
                    log.requests += 1;
                    log.unanswered += 1;
                }
                Mistake::TooManyInFlight { buffers }
            }
            Observation::WriteTooLong { len, mtu } => Mistake::WriteTooLong { len, mtu },
            Observation::TooLarge { len, buf_size } => Mistake::FrameTooLarge { len, buf_size },
            Observation::LengthMismatch { write } if write.len() < HEADER_LEN => {
                Mistake::TooShort { len: write.len() }
            }
            Observation::LengthMismatch { write } => {
                log.requests += 1;
                log.unanswered += 1;
                let said = usize::from(u16::from_be_bytes([write[2], write[3]]));
                let got = write.len() - HEADER_LEN;
                let hint = group_hint(u16::from_be_bytes([write[4], write[5]]), got);
                Mistake::HeaderLength { said, got, hint, json: is_json(&write[HEADER_LEN..]) }
            }
            Observation::AnswerUnheard => Mistake::AnswerUnheard,
        };
        log.record(m)
    }

    /// One packet and the answers the device sent to it; returns the mistakes to warn about
    /// (the first of each kind for this client).
    pub fn packet(
        &mut self,
        client: &Client,
        ctx: &Context<'_>,
        packet: &[u8],
        answers: &[Vec<u8>],
    ) -> Vec<Mistake> {
        let log = self.clients.entry(client.clone()).or_default();
        let mut found = Vec::new();
        let mut answers = answers.iter();
        let mut rest = packet;
        let mut judged = true;
        while rest.len() >= HEADER_LEN {
            let (op, said) = (rest[0] & 0x07, usize::from(u16::from_be_bytes([rest[2], rest[3]])));
            let (group, id) = (u16::from_be_bytes([rest[4], rest[5]]), rest[7]);
            let after = &rest[HEADER_LEN..];
            log.requests += 1;
            let answer = answers.next();
            if judged {
                let next = judge(ctx, log, op, said, group, id, after);
                judged = next.is_empty();
                found.extend(next);
            }
            account(log, group, id, after.get(..said).unwrap_or(after), answer);
            if answer.is_none() || after.len() < said {
                break;
            }
            rest = &after[said..];
        }
        found.into_iter().filter_map(|m| log.record(m)).collect()
    }
}

/// The mistakes one request shows.
fn judge(
    ctx: &Context<'_>,
    log: &mut ClientLog,
    op: u8,
    said: usize,
    group: u16,
    id: u8,
    after: &[u8],
) -> Vec<Mistake> {
    let got = after.len();
    if got < said || (got > said && !tiles(&after[said..])) {
        return vec![Mistake::HeaderLength { said, got, hint: group_hint(group, got), json: is_json(after) }];
    }
    if op != 0 && op != 2 {
        return vec![Mistake::NotARequestOp { op }];
    }
    let body = &after[..said];
    let name = match server::describe(ctx.profile, ctx.entered, group, id, op == 0) {
        Lookup::UnknownGroup => return vec![Mistake::UnknownGroup { group, hint: group_hint(group, got) }],
        Lookup::UnknownCommand(known) => return vec![Mistake::UnknownCommand { group, id, known }],
        Lookup::WrongOp(_) if (group, id) == (McumgrParams::GROUP, McumgrParams::ID) => {
            return vec![Mistake::ConfirmAsParams]
        }
        Lookup::WrongOp(command) => return vec![Mistake::WrongOp { command, sent_read: op == 0 }],
        Lookup::Found { name, decodes_body } => {
            if decodes_body && !is_cbor_map(body) {
                return vec![Mistake::NotCbor { command: name, json: is_json(body) }];
            }
            name
        }
    };
    let map: Value = ciborium::from_reader(body).unwrap_or(Value::Null);
    match name {
        n if n == ImageUpload::NAME => upload_mistakes(log, &map),
        n if n == ImageStateWrite::NAME && op == 2 => state_write_mistakes(ctx, &map),
        n if n == Reset::NAME => reset_mistakes(ctx),
        _ => Vec::new(),
    }
}

/// The bytes after a request's length are whole requests, one after the other: several
/// requests in one packet, which Zephyr handles, rather than a wrong length.
fn tiles(mut rest: &[u8]) -> bool {
    while !rest.is_empty() {
        let Some(len) = smpflash_core::frame::expected_len(rest) else {
            return false;
        };
        if len > rest.len() {
            return false;
        }
        rest = &rest[len..];
    }
    true
}

fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.is_object() || v.is_array())
}

fn is_cbor_map(body: &[u8]) -> bool {
    matches!(ciborium::from_reader::<Value, _>(body), Ok(Value::Map(_)))
}

/// What an unknown group's bytes suggest: a little-endian header, or the body's length in the
/// group field.
fn group_hint(group: u16, body_len: usize) -> Option<GroupHint> {
    let le = group.swap_bytes();
    let known = |g: u16| g <= rc::group::ENUM || g == rc::group::ZEPHYR_BASIC;
    if known(group) {
        return None;
    }
    if known(le) {
        return Some(GroupHint::ByteOrder { meant: le });
    }
    (usize::from(le).abs_diff(body_len) <= HEADER_LEN || usize::from(group).abs_diff(body_len) <= HEADER_LEN)
        .then_some(GroupHint::LengthInGroup { little_endian: le })
}

fn uint(map: &Value, key: &str) -> Option<u64> {
    field(map, key)?.as_integer().and_then(|i| u64::try_from(i).ok())
}

fn upload_mistakes(log: &mut ClientLog, map: &Value) -> Vec<Mistake> {
    let mut out = Vec::new();
    let off = uint(map, "off").unwrap_or(0);
    let data = match field(map, "data") {
        Some(Value::Bytes(b)) => b.as_slice(),
        _ => &[],
    };
    if off == 0 {
        if field(map, "len").is_none() {
            out.push(Mistake::UploadWithoutLen);
        }
        if data.len() >= 4 && data[..4] != IMAGE_MAGIC.to_le_bytes() {
            out.push(Mistake::UploadNotAnImage { first: data[..4].to_vec() });
        }
        log.upload_len = uint(map, "len");
        log.answered_off = None;
    } else if let Some(end) = log.chunk_end {
        // The device's offset is the truth: a chunk from where the device last answered is
        // right, whatever the client sent before.
        if Some(off) != log.answered_off {
            if off > end {
                out.push(Mistake::OffsetSkips { expected: end, got: off });
            } else if off < end {
                out.push(Mistake::OffsetRepeats { expected: end, got: off });
            }
        }
    }
    log.chunk_end = Some(off + data.len() as u64);
    out
}

fn state_write_mistakes(ctx: &Context<'_>, map: &Value) -> Vec<Mistake> {
    let hash = matches!(field(map, "hash"), Some(Value::Bytes(b)) if !b.is_empty());
    let confirm = matches!(field(map, "confirm"), Some(Value::Bool(true)));
    if hash {
        return Vec::new();
    }
    if !confirm {
        return vec![Mistake::StateWriteOfNothing];
    }
    let image0 = ctx.slots_before.map(slots::situations).and_then(|s| s.into_iter().next());
    match image0 {
        Some((_, s)) if !s.under_test() && !s.marked() => match (&s.running, &s.other) {
            (Some(r), Some(o)) if r.version != o.version => {
                vec![Mistake::ConfirmWithoutHash { running: r.version.clone(), waiting: o.version.clone() }]
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// An image that runs under test, never confirmed: what is left undone when the device stops.
pub fn never_confirmed(s: &slots::ImageSituation) -> Option<Mistake> {
    s.under_test().then(|| Mistake::NeverConfirmed {
        test: s.running.as_ref().map_or("?", |r| r.version.as_str()).to_string(),
        back_to: s.other.as_ref().map_or("the previous image", |o| o.version.as_str()).to_string(),
    })
}

fn reset_mistakes(ctx: &Context<'_>) -> Vec<Mistake> {
    let Some(before) = ctx.slots_before else {
        return Vec::new();
    };
    let images = slots::situations(before);
    if let Some((_, s)) = images.iter().find(|(_, s)| s.under_test()) {
        let test = s.running.as_ref().map_or("?", |r| r.version.as_str()).to_string();
        let back_to = s.other.as_ref().map_or("the previous image", |o| o.version.as_str()).to_string();
        return vec![Mistake::ResetRevertsTest { test, back_to }];
    }
    if images.iter().any(|(_, s)| s.marked()) {
        return Vec::new();
    }
    // A plain restart with nothing waiting is no mistake; one with a new image waiting
    // unmarked is: nothing will change.
    images
        .iter()
        .find_map(|(_, s)| match (&s.running, &s.other) {
            (Some(r), Some(o)) if r.version != o.version => {
                Some(Mistake::ResetNothingMarked { running: r.version.clone(), waiting: o.version.clone() })
            }
            _ => None,
        })
        .into_iter()
        .collect()
}

/// Counts one request's answer in the client's account.
fn account(log: &mut ClientLog, group: u16, id: u8, body: &[u8], answer: Option<&Vec<u8>>) {
    let Some(answer) = answer else {
        log.unanswered += 1;
        return;
    };
    let Some(reply) = answer.get(HEADER_LEN..).and_then(|b| ciborium::from_reader::<Value, _>(b).ok()) else {
        return;
    };
    let rc = uint(&reply, "rc").unwrap_or(0);
    let err = field(&reply, "err").map(|e| (uint(e, "group").unwrap_or(0), uint(e, "rc").unwrap_or(0)));
    match (rc, err) {
        (0, None) | (0, Some((_, 0))) => log.ok += 1,
        (0, Some((g, code))) => {
            let name = rc::group_err_name(g as u16, code as i64).unwrap_or("unknown");
            *log.errors
                .entry(format!("{} group rc {code} ({name})", rc::group_name(g as u16)))
                .or_default() += 1;
            return;
        }
        (code, _) => {
            let name = rc::mgmt_err_name(code as i64).unwrap_or("unknown");
            *log.errors.entry(format!("rc {code} ({name})")).or_default() += 1;
            return;
        }
    }
    let request: Value = ciborium::from_reader(body).unwrap_or(Value::Null);
    if (group, id) == (ImageUpload::GROUP, ImageUpload::ID) {
        let from = uint(&request, "off").unwrap_or(0);
        let data = match field(&request, "data") {
            Some(Value::Bytes(b)) => b.len() as u64,
            _ => 0,
        };
        if let Some(to) = uint(&reply, "off") {
            // Written only when the device took the chunk where it was sent.
            if data > 0 && to == from + data {
                log.image_bytes += data;
            }
            log.answered_off = Some(to);
            if log.upload_len == Some(to) {
                log.uploads_completed += 1;
                log.upload_len = None;
            }
        }
    } else if (group, id) == (ImageStateWrite::GROUP, ImageStateWrite::ID) {
        // A state read (op 0) carries neither key; only writes mark.
        let confirm = matches!(field(&request, "confirm"), Some(Value::Bool(true)));
        let what = match field(&request, "hash") {
            Some(Value::Bytes(h)) if !h.is_empty() => Some(hex::encode(&h[..h.len().min(4)])),
            _ => confirm.then(|| "the running image".to_string()),
        };
        if let Some(what) = what {
            log.marks.push(format!("{} {what}", if confirm { "confirm" } else { "test" }));
        }
    } else if (group, id) == (Reset::GROUP, Reset::ID) {
        log.resets += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::SimProfile;

    fn request(op: u8, group: u16, id: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![op, 0];
        p.extend_from_slice(&(body.len() as u16).to_be_bytes());
        p.extend_from_slice(&group.to_be_bytes());
        p.extend_from_slice(&[1, id]);
        p.extend_from_slice(body);
        p
    }

    fn cbor(v: Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(&v, &mut out).unwrap();
        out
    }

    fn upload(off: u64, data: &[u8], len: Option<u64>) -> Vec<u8> {
        let mut m = vec![
            (Value::Text("off".into()), Value::Integer(off.into())),
            (Value::Text("data".into()), Value::Bytes(data.to_vec())),
        ];
        if let Some(len) = len {
            m.push((Value::Text("len".into()), Value::Integer(len.into())));
        }
        request(2, 1, 1, &cbor(Value::Map(m)))
    }

    fn answer_off(off: u64) -> Vec<u8> {
        request(3, 1, 1, &cbor(Value::Map(vec![(Value::Text("off".into()), Value::Integer(off.into()))])))
    }

    fn kinds(found: &[Mistake]) -> Vec<&'static str> {
        found.iter().map(Mistake::kind).collect()
    }

    #[test]
    fn a_length_in_the_group_field_and_a_little_endian_group_are_told_apart() {
        // 315 bytes of body, their length written little-endian into the group field.
        assert_eq!(group_hint(0x3b01, 315), Some(GroupHint::LengthInGroup { little_endian: 315 }));
        // Group 1 written little-endian.
        assert_eq!(group_hint(0x0100, 40), Some(GroupHint::ByteOrder { meant: 1 }));
        assert_eq!(group_hint(1, 40), None);
        assert_eq!(group_hint(0x7777, 40), None);
    }

    #[test]
    fn several_whole_requests_in_a_packet_are_no_length_mistake() {
        let echo = request(2, 0, 0, &cbor(Value::Map(vec![])));
        let mut two = echo.clone();
        two.extend_from_slice(&echo);
        assert!(tiles(&echo) && tiles(&two));
        assert!(!tiles(&two[..two.len() - 1]));
        assert!(!tiles(b"{\"image\": 1}"));
    }

    #[test]
    fn offsets_follow_the_device_not_the_client() {
        let profile = Profile::by_name(SimProfile::ZephyrDefault.name()).unwrap();
        let ctx = Context { profile: &profile, entered: false, slots_before: None };
        let mut referee = Referee::default();
        let c = Client::Direct;
        let mut image = IMAGE_MAGIC.to_le_bytes().to_vec();
        image.resize(300, 0);
        assert!(referee
            .packet(&c, &ctx, &upload(0, &image[..100], Some(300)), &[answer_off(100)])
            .is_empty());
        // Pipelined: the next chunk goes out before the answer to the previous one.
        assert!(referee
            .packet(&c, &ctx, &upload(100, &image[100..200], None), &[answer_off(200)])
            .is_empty());
        // A resend from the device's answered offset is right.
        assert!(referee
            .packet(&c, &ctx, &upload(200, &image[200..250], None), &[answer_off(200)])
            .is_empty());
        assert!(referee
            .packet(&c, &ctx, &upload(200, &image[200..300], None), &[answer_off(300)])
            .is_empty());
        let log = &referee.clients()[&c];
        assert_eq!((log.image_bytes, log.uploads_completed, log.ok), (300, 1, 4));
        // Skipping ahead of both is a mistake, once per kind.
        let skip = referee.packet(&c, &ctx, &upload(0, &image[..100], Some(300)), &[answer_off(100)]);
        assert!(skip.is_empty());
        let skip = referee.packet(&c, &ctx, &upload(250, &image[250..], None), &[answer_off(100)]);
        assert_eq!(kinds(&skip), ["offset-skips"]);
        let again = referee.packet(&c, &ctx, &upload(320, &[0; 10], None), &[answer_off(100)]);
        assert!(again.is_empty(), "warned twice: {again:?}");
        assert_eq!(referee.clients()[&c].mistakes[0].1.count, 2);
    }

    #[test]
    fn the_upload_rules_and_the_body_encoding_are_checked() {
        let profile = Profile::by_name(SimProfile::ZephyrDefault.name()).unwrap();
        let ctx = Context { profile: &profile, entered: false, slots_before: None };
        let mut r = Referee::default();
        let found = r.packet(&Client::Direct, &ctx, &upload(0, &[0xff; 64], None), &[]);
        assert_eq!(kinds(&found), ["upload-without-len", "upload-not-an-image"]);
        let json = request(2, 1, 1, br#"{"image": {"data": "AAAA", "off": 0}}"#);
        assert_eq!(kinds(&r.packet(&Client::Direct, &ctx, &json, &[])), ["body-not-cbor"]);
        assert!(r.packet(&Client::Direct, &ctx, &json, &[]).is_empty(), "once per kind");
        let read_upload = request(0, 1, 1, &cbor(Value::Map(vec![])));
        assert_eq!(kinds(&r.packet(&Client::Direct, &ctx, &read_upload, &[])), ["wrong-op"]);
        let params_write = request(2, 0, 6, &cbor(Value::Map(vec![])));
        assert_eq!(kinds(&r.packet(&Client::Direct, &ctx, &params_write, &[])), ["confirm-as-params"]);
        let unknown = request(0, 1, 99, &cbor(Value::Map(vec![])));
        assert_eq!(kinds(&r.packet(&Client::Direct, &ctx, &unknown, &[])), ["unknown-command"]);
        let response = request(3, 0, 0, &cbor(Value::Map(vec![])));
        assert_eq!(kinds(&r.packet(&Client::Direct, &ctx, &response, &[])), ["not-a-request-op"]);
    }

    #[test]
    fn a_ble_write_too_short_for_a_header_is_named_not_indexed() {
        let mut r = Referee::default();
        let m = r.observe(&Client::Ble, Observation::LengthMismatch { write: vec![2, 0, 0] });
        assert_eq!(m.map(|m| m.kind()), Some("write-shorter-than-header"));
    }
}
