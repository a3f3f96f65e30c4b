//! Any bytes from a device: frame decoding, error extraction and every typed answer decoder
//! must return, never panic.
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
