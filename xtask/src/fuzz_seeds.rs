//! Seed inputs for the fuzz targets, made from code rather than kept as binary files: whole
//! DFU exchanges for the device's request handler, console traffic for the serial codec, and
//! DFU packages for the zip reader. A fuzzer starting from these reaches the handlers' deep
//! paths (uploads, marking, swaps) in seconds instead of first having to find a valid frame.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};
use smpflash_core::command::image::{ImageErase, ImageStateRead, ImageStateWrite, ImageUpload, SlotInfo};
use smpflash_core::command::os::{AppInfo, BootloaderInfo, BootloaderMode, Echo, McumgrParams, Reset};
use smpflash_core::command::{encode_request, Command};
use smpflash_core::frame::Version;
use smpflash_core::mcuboot::ImageVersion;
use smpflash_sim::image::slot;

/// Writes the seeds of `target` into `dir` (`seed-N` files); returns how many. Targets without
/// seeds of their own get none.
pub fn write(target: &str, dir: &Path) -> std::io::Result<usize> {
    let seeds = match target {
        "sim_request" => sim_request(),
        "serial_codec" => serial_codec(),
        "zip_manifest" => zip_manifest(),
        _ => Vec::new(),
    };
    std::fs::create_dir_all(dir)?;
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), seed)?;
    }
    Ok(seeds.len())
}

fn frame<C: Command>(cmd: &C, seq: u8) -> Vec<u8> {
    encode_request(cmd, Version::V2, seq).expect("seed requests encode").encode()
}

fn image(major: u8, len: usize) -> Vec<u8> {
    let body: Vec<u8> = (0..len as u32).map(|i| (i.wrapping_mul(0x9E37_79B9) >> 11) as u8).collect();
    slot::build(ImageVersion { major, minor: 0, revision: 0, build_num: 0 }, &body)
}

/// The requests of a whole DFU of `img` to image `index`: inspect, upload, mark, reset,
/// confirm, and the other commands the device knows.
fn dfu(img: &[u8], index: u32, chunk: usize) -> Vec<Vec<u8>> {
    let hash = slot::read_info(img).expect("a built image").hash.to_vec();
    let mut seq = 0u8;
    let mut next = || {
        seq = seq.wrapping_add(1);
        seq
    };
    let mut out = vec![
        frame(&Echo { d: "hello".into() }, next()),
        frame(&McumgrParams {}, next()),
        frame(&BootloaderInfo {}, next()),
        frame(&BootloaderMode::default(), next()),
        frame(&SlotInfo {}, next()),
        frame(&ImageStateRead {}, next()),
    ];
    for (i, part) in img.chunks(chunk).enumerate() {
        let off = (i * chunk) as u64;
        let first = off == 0;
        let req = ImageUpload {
            image: first.then_some(index),
            len: first.then_some(img.len() as u64),
            off,
            sha: first.then(|| Sha256::digest(img).to_vec().into()),
            data: part.to_vec().into(),
            upgrade: None,
        };
        out.push(frame(&req, next()));
    }
    out.extend([
        frame(&ImageStateWrite { hash: Some(hash.clone().into()), confirm: false }, next()),
        frame(&Reset::default(), next()),
        frame(&ImageStateRead {}, next()),
        frame(&ImageStateWrite { hash: None, confirm: true }, next()),
        frame(&AppInfo { format: Some("a".into()) }, next()),
        frame(&ImageErase { slot: Some(1) }, next()),
        frame(&ImageStateRead {}, next()),
    ]);
    out
}

/// `sim_request` input: a profile byte, then length-prefixed frames.
fn sim_request() -> Vec<Vec<u8>> {
    let img = image(2, 1500);
    let mut seeds = Vec::new();
    for pick in [0u8, 1, 2, 3, 4, 130, 131] {
        let mut input = vec![pick];
        let mut frames = dfu(&img, 0, 256);
        if pick == 0 {
            // The nRF5340 profile has a network core image too.
            frames.extend(dfu(&image(3, 700), 1, 256));
        }
        for f in frames {
            input.extend_from_slice(&(f.len() as u16).to_le_bytes());
            input.extend(f);
        }
        seeds.push(input);
    }
    seeds
}

/// `serial_codec` input: a control byte, read sizes, then console bytes.
fn serial_codec() -> Vec<Vec<u8>> {
    let encode = |f: &[u8]| smpflash_serial::encode_frame(f).expect("small frames encode");
    let mut wire = b"*** Booting Zephyr OS build v3.7.0 ***\r\n".to_vec();
    wire.extend(encode(&frame(&Echo { d: "hi".into() }, 1)));
    wire.extend(b"[00:00:01.000,000] <inf> mcumgr_img_grp: Erased 0x1000 bytes\r\n");
    let upload = ImageUpload { off: 512, data: vec![0xA5; 300].into(), ..Default::default() };
    wire.extend(encode(&frame(&upload, 2)));
    wire.extend(b"uart:~$ \x06\x09AAw*\n\x04\x14AAAA\n");
    wire.extend(&encode(&frame(&ImageStateRead {}, 3))[..20]);
    [0u8, 0x21, 0x41, 0xE0, 0xFF]
        .iter()
        .map(|&ctl| [&[ctl][..], &[3, 60, 1, 97, 5, 17, 2, 44], &wire].concat())
        .collect()
}

const MANIFEST: &str = r#"{"format-version": 1, "name": "dfu_application", "files": [
 {"type": "application", "image_index": "0", "load_address": 65536, "file": "app.bin"},
 {"type": "network", "image_index": 1, "load_address": "0x1008000", "file": "net.bin"}]}"#;

const MANIFEST_V0: &str = r#"{"format-version": 0, "files": [
 {"type": "application", "file": "app.bin"}, {"type": "NETWORK", "file": "net.bin"}]}"#;

/// `zip_manifest` input: a mode byte, then a zip (mode 0) or manifest text zipped with two
/// images by the target itself (modes 1 and 2).
fn zip_manifest() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for manifest in [MANIFEST, MANIFEST_V0] {
        for mode in [1u8, 2] {
            seeds.push([&[mode][..], manifest.as_bytes()].concat());
        }
    }
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in [
        ("manifest.json", MANIFEST.as_bytes().to_vec()),
        ("app.bin", image(2, 300)),
        ("net.bin", image(2, 200)),
    ] {
        zip.start_file(name, options).expect("zip in memory");
        zip.write_all(&bytes).expect("zip in memory");
    }
    let bytes = zip.finish().expect("zip in memory").into_inner();
    seeds.push([&[0u8][..], &bytes].concat());
    seeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_new_target_gets_seeds() {
        let dir = std::env::temp_dir().join(format!("smpflash-seeds-{}", std::process::id()));
        for t in ["sim_request", "serial_codec", "zip_manifest"] {
            assert!(write(t, &dir.join(t)).unwrap() > 0, "{t}");
        }
        assert_eq!(write("frame_decode", &dir.join("frame_decode")).unwrap(), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_zip_seed_is_a_package_the_reader_takes() {
        let zip = zip_manifest().pop().unwrap();
        let images = smpflash_core::mcuboot::read_dfu_zip(&zip[1..]).unwrap();
        assert_eq!(images.iter().map(|i| i.image_index).collect::<Vec<_>>(), [0, 1]);
    }
}
