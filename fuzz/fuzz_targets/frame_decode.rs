//! Any bytes from a device: frame decoding, error extraction, every typed answer decoder and
//! `smpflash decode`'s explainer (bytes and hex text) must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smpflash_core::command::image::*;
use smpflash_core::command::os::*;
use smpflash_core::command::{decode_response, Command};
use smpflash_core::frame::{expected_len, Frame};

fn one<C: Command>(f: &Frame) {
    let _ = decode_response::<C>(f);
}

fuzz_target!(|data: &[u8]| {
    let _ = expected_len(data);
    let _ = smpflash_core::cbor::diagnostic(data);
    for report in smpflash_core::decode::inspect(data, None) {
        for problem in &report.problems {
            let _ = problem.to_string();
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = smpflash_core::decode::parse_hex(text);
    }
    if let Ok(frame) = Frame::decode(data) {
        one::<Echo>(&frame);
        one::<Reset>(&frame);
        one::<McumgrParams>(&frame);
        one::<AppInfo>(&frame);
        one::<BootloaderInfo>(&frame);
        one::<BootloaderMode>(&frame);
        one::<ImageStateRead>(&frame);
        one::<ImageUpload>(&frame);
        one::<ImageErase>(&frame);
        one::<SlotInfo>(&frame);
    }
});
