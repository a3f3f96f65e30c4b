//! Any file a user may hand over: the package loader (bin, Intel HEX, NCS zip) and the MCUboot
//! image parser must return an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smpflash_core::mcuboot::{Image, Package};

fuzz_target!(|data: &[u8]| {
    let _ = Image::parse(data.to_vec());
    let _ = Package::from_bytes(data.to_vec(), "fuzz.bin");
    let _ = Package::from_bytes(data.to_vec(), "fuzz.hex");
});
