//! The virtual device's request handler fed any sequence of frames, with resets booting the
//! simulated MCUboot (swaps, reverts, power loss) in between: it must never panic, every answer
//! must be a frame answering its request, and the device must still answer an echo at the end.
//!
//! Input: `[profile byte] ([u16 length] [frame])*`. Each frame is handled as it is and, when its
//! header's length field is wrong, once more with the length fixed, so that mutated bodies
//! reach the handlers instead of stopping at the frame decoder.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use smpflash_core::command::os::Echo;
use smpflash_core::command::{decode_response, encode_request};
use smpflash_core::frame::{Frame, Version, HEADER_LEN};
use smpflash_sim::boot::bootloader;
use smpflash_sim::referee;
use smpflash_sim::smp::server;
use smpflash_sim::profile::SimProfile;
use smpflash_sim::state::State;
use smpflash_sim::Profile;

/// Every profile, with slots shrunk to 64 KiB so a fresh device is quick to copy.
fn devices() -> &'static [(Profile, State)] {
    static DEVICES: OnceLock<Vec<(Profile, State)>> = OnceLock::new();
    DEVICES.get_or_init(|| {
        SimProfile::ALL
            .iter()
            .map(|&kind| {
                let mut p = Profile::builtin(kind);
                p.apply_override("slot_size=0x10000").unwrap();
                let state = State::factory(&p);
                (p, state)
            })
            .collect()
    })
}

/// What Zephyr's answers always are, even to malformed packets (a bad length, version or op
/// is answered with an error, as `smp.c` does): well-formed responses whose body is a map, the
/// first answering the packet's own group, id and sequence.
fn check_answers(request: &[u8], answers: &[Vec<u8>]) {
    for answer in answers {
        let ans = Frame::decode(answer).expect("the answer is a frame");
        assert!(ans.header.op.is_response());
        let body: ciborium::Value = ciborium::from_reader(ans.body.as_slice()).expect("the answer is CBOR");
        assert!(body.is_map());
    }
    if let Some(first) = answers.first() {
        assert!(request.len() >= HEADER_LEN, "an answer to fewer bytes than a header");
        let ans = Frame::decode(first).unwrap();
        let group = u16::from_be_bytes([request[4], request[5]]);
        assert_eq!((ans.header.group, ans.header.id, ans.header.seq), (group, request[7], request[6]));
    }
}

fn handle(state: &mut State, profile: &Profile, raw: &[u8], power_loss: Option<usize>) {
    // The referee judges every packet the device gets, whatever it holds: it must not panic.
    let slots = referee::needs_slots(raw).then(|| referee::slots::read(state, profile));
    let entered = state.boot.in_recovery;
    let reply = server::handle(state, profile, raw);
    check_answers(raw, &reply.frames);
    let ctx = referee::Context { profile, entered, slots_before: slots.as_deref() };
    let mut judge = referee::Referee::default();
    let _ = judge.packet(&referee::Client::Direct, &ctx, raw, &reply.frames);
    let _ = judge.observe(&referee::Client::Ble, referee::Observation::LengthMismatch { write: raw.to_vec() });
    if reply.reset {
        // What the device does on reset: RAM is lost, MCUboot decides, maybe power fails
        // mid-swap and the next boot resumes.
        state.upload = None;
        let s = &mut *state;
        let (_, _, result) = bootloader::boot(&mut s.flash, &mut s.boot, profile, power_loss);
        if result.is_err() {
            let (_, _, again) = bootloader::boot(&mut s.flash, &mut s.boot, profile, None);
            assert!(again.is_ok(), "a boot without a power loss completes");
        }
        assert!(state.boot.progress.is_none(), "no swap is left half done after a full boot");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let (profile, factory) = &devices()[pick as usize % devices().len()];
    let mut state = factory.clone();
    let power_loss = (pick >= 128).then_some(pick as usize % 16);
    let mut frames = 0;
    while rest.len() >= 2 && frames < 64 {
        let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        let take = len.min(rest.len() - 2);
        let raw = &rest[2..2 + take];
        rest = &rest[2 + take..];
        frames += 1;
        handle(&mut state, profile, raw, power_loss);
        if raw.len() >= HEADER_LEN && raw.len() - HEADER_LEN <= u16::MAX as usize {
            let body = (raw.len() - HEADER_LEN) as u16;
            if raw[2..4] != body.to_be_bytes() {
                let mut fixed = raw.to_vec();
                fixed[2..4].copy_from_slice(&body.to_be_bytes());
                handle(&mut state, profile, &fixed, power_loss);
            }
        }
    }
    let echo = encode_request(&Echo { d: "alive".into() }, Version::V2, 0).unwrap().encode();
    let reply = server::handle(&mut state, profile, &echo);
    let answer = Frame::decode(reply.frames.last().expect("an echo is answered")).unwrap();
    assert_eq!(decode_response::<Echo>(&answer).unwrap().r, "alive");
});
