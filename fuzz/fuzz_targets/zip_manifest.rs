//! NCS DFU packages: raw zip-ish bytes, and — since a mutated zip rarely gets past its CRCs —
//! arbitrary `manifest.json` text zipped with two valid images. The package reader must return
//! an error or images the manifest names, never panic.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use smpflash_core::mcuboot::{read_dfu_zip, ImageVersion, Package};
use zip::write::SimpleFileOptions;

fn images() -> &'static [(&'static str, Vec<u8>); 2] {
    static IMAGES: OnceLock<[(&'static str, Vec<u8>); 2]> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let v = ImageVersion { major: 1, minor: 2, revision: 3, build_num: 0 };
        [
            ("app.bin", smpflash_sim::image::slot::build(v, &[0xA5; 256])),
            ("net.bin", smpflash_sim::image::slot::build(v, &[0x5A; 128])),
        ]
    })
}

fn zip_with(manifest: &[u8], stored: bool) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if stored { zip::CompressionMethod::Stored } else { zip::CompressionMethod::Deflated };
    let options = SimpleFileOptions::default().compression_method(method);
    out.start_file("manifest.json", options).unwrap();
    out.write_all(manifest).unwrap();
    for (name, bytes) in images() {
        out.start_file(*name, options).unwrap();
        out.write_all(bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = match mode % 3 {
        0 => rest.to_vec(),
        m => zip_with(rest, m == 1),
    };
    let direct = read_dfu_zip(&bytes);
    if let Ok(images) = &direct {
        assert!(!images.is_empty());
        assert!(images.windows(2).all(|w| w[0].image_index < w[1].image_index), "sorted, no index twice");
    }
    let package = Package::from_bytes(bytes, "fuzz.zip");
    assert_eq!(direct.is_ok(), package.is_ok(), "the loader and the zip reader disagree");
});
