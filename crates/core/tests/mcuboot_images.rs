//! The MCUboot reader against images made by MCUboot's own imgtool
//! (`tests/fixtures/make_fixtures.sh`), with `expected.json` holding what imgtool itself said
//! about each of them.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};
use smpflash_core::mcuboot::{
    self, Cipher, Dependency, HashKind, Image, ImageError, ImageHash, ImageVersion, KeyExchange, PackageKind,
    SignatureKind, TlvKind,
};
use smpflash_core::Error;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/images");

fn path(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn image(name: &str) -> Image {
    Image::parse(read(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn expected() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(path("expected.json")).unwrap();
    match serde_json::from_str(&text).unwrap() {
        Value::Object(map) => map,
        other => panic!("expected.json is not an object: {other}"),
    }
}

fn as_usize(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

/// Type codes and hex values, the shape expected.json stores them in.
fn tlv_pairs<'a>(tlvs: impl IntoIterator<Item = &'a smpflash_core::mcuboot::Tlv>) -> Value {
    tlvs.into_iter().map(|t| json!([t.kind.code(), hex::encode(&t.value)])).collect()
}

#[test]
fn headers_and_tlvs_match_imgtool_dumpinfo() {
    let expected = expected();
    assert_eq!(expected.len(), 10, "every signed fixture is described");
    for (name, exp) in &expected {
        let img = image(name);
        let h = img.header();
        assert_eq!(img.bytes().len(), as_usize(&exp["size"]), "{name}");
        assert_eq!(u64::from(h.load_addr), exp["load_addr"].as_u64().unwrap(), "{name}");
        assert_eq!(usize::from(h.hdr_size), as_usize(&exp["hdr_size"]), "{name}");
        assert_eq!(usize::from(h.protect_tlv_size), as_usize(&exp["protected_tlv_size"]), "{name}");
        assert_eq!(h.img_size as usize, as_usize(&exp["img_size"]), "{name}");
        assert_eq!(u64::from(h.flags.bits()), exp["flags"].as_u64().unwrap(), "{name}");
        assert_eq!(img.version().to_string(), exp["version"].as_str().unwrap(), "{name}");

        let protected = img.protected_tlvs().map(|a| a.entries.iter());
        assert_eq!(tlv_pairs(protected.into_iter().flatten()), exp["protected_tlvs"], "{name}");
        assert_eq!(tlv_pairs(&img.tlvs().entries), exp["tlvs"], "{name}");
        assert_eq!(img.tlvs().total_len, as_usize(&exp["unprotected_tlv_tot"]), "{name}");
        assert_eq!(
            img.image_size(),
            usize::from(h.hdr_size)
                + h.img_size as usize
                + usize::from(h.protect_tlv_size)
                + img.tlvs().total_len,
            "{name}"
        );
    }
}

#[test]
fn hashes_match_imgtool_verify_and_an_independent_digest() {
    for (name, exp) in expected() {
        let img = image(&name);
        let encrypted = name == "encrypted.bin";
        assert_eq!(img.hash_verified(), !encrypted, "{name}");
        assert_eq!(exp["validated"].as_bool().unwrap(), !encrypted, "{name}");
        if let Some(digest) = exp["digest"].as_str() {
            assert_eq!(img.hash_hex(), digest, "{name}");
        }
        if encrypted {
            continue;
        }
        let bytes = img.bytes();
        let covered =
            as_usize(&exp["hdr_size"]) + as_usize(&exp["img_size"]) + as_usize(&exp["protected_tlv_size"]);
        let independent = match img.hash_kind() {
            HashKind::Sha256 => Sha256::digest(&bytes[..covered]).to_vec(),
            HashKind::Sha384 => Sha384::digest(&bytes[..covered]).to_vec(),
            HashKind::Sha512 => Sha512::digest(&bytes[..covered]).to_vec(),
        };
        assert_eq!(img.hash(), independent.as_slice(), "{name}");
        assert_eq!(img.image_hash(), ImageHash::from(independent.clone()), "{name}");
        assert_eq!(img.image_hash().to_string(), img.hash_hex(), "{name}");
    }
}

#[test]
fn same_payload_gives_same_hash_whatever_the_signature() {
    let reference = image("hash-only.bin").hash_hex();
    for name in ["ecdsa-p256.bin", "ed25519.bin", "rsa-2048.bin", "padded.bin"] {
        assert_eq!(image(name).hash_hex(), reference, "{name}");
    }
}

#[test]
fn signature_and_hash_kinds() {
    let cases = [
        ("hash-only.bin", SignatureKind::None, HashKind::Sha256),
        ("ecdsa-p256.bin", SignatureKind::EcdsaP256, HashKind::Sha256),
        ("ecdsa-p384.bin", SignatureKind::EcdsaP384, HashKind::Sha384),
        ("ed25519.bin", SignatureKind::Ed25519, HashKind::Sha256),
        ("ed25519-pure.bin", SignatureKind::Ed25519Pure, HashKind::Sha512),
        ("rsa-2048.bin", SignatureKind::Rsa2048, HashKind::Sha256),
        ("padded.bin", SignatureKind::None, HashKind::Sha256),
        ("protected.bin", SignatureKind::EcdsaP256, HashKind::Sha256),
        ("encrypted.bin", SignatureKind::EcdsaP256, HashKind::Sha256),
        ("flags.bin", SignatureKind::None, HashKind::Sha256),
    ];
    for (name, signature, hash) in cases {
        let img = image(name);
        assert_eq!(img.signature(), signature, "{name}");
        assert_eq!(img.hash_kind(), hash, "{name}");
        assert_eq!(img.hash().len(), hash.digest_len(), "{name}");
    }
    assert_eq!(SignatureKind::EcdsaP256.to_string(), "ECDSA-P256");
    assert_eq!(SignatureKind::None.to_string(), "none");
}

#[test]
fn header_fields_of_the_hash_only_image() {
    let img = image("hash-only.bin");
    let h = img.header();
    assert_eq!(h.hdr_size, 0x200);
    assert_eq!(h.img_size, 4096);
    assert_eq!(h.protect_tlv_size, 0);
    assert_eq!(h.load_addr, 0);
    assert_eq!(img.version(), ImageVersion { major: 1, minor: 2, revision: 3, build_num: 4 });
    assert_eq!(img.version().to_string(), "1.2.3+4");
    assert!(img.protected_tlvs().is_none());
    assert_eq!(img.security_counter(), None);
    assert!(img.dependencies().is_empty());
    assert!(!img.encryption().is_encrypted());
    assert_eq!(img.encryption().to_string(), "none");
    assert_eq!(img.trailer_len(), 0);
    assert!(!img.has_boot_magic());
    // The body is the payload imgtool was given.
    assert_eq!(&img.bytes()[0x200..0x200 + 4096], read("raw.bin").as_slice());
}

#[test]
fn padded_image_reports_trailer_and_boot_magic() {
    let img = image("padded.bin");
    assert_eq!(img.bytes().len(), 0x4000);
    assert_eq!(img.trailer_len(), 0x4000 - img.image_size());
    assert!(img.trailer_len() > 16);
    assert!(img.has_boot_magic());
    assert_eq!(img.image_size(), image("hash-only.bin").image_size());
    img.check_fits(0x4000).unwrap();
}

#[test]
fn protected_area_carries_counter_dependency_and_custom_tlv() {
    let img = image("protected.bin");
    let area = img.protected_tlvs().expect("protected area");
    assert!(area.is_protected());
    assert_eq!(area.total_len, usize::from(img.header().protect_tlv_size));
    assert_eq!(img.security_counter(), Some(5));
    assert_eq!(
        img.dependencies(),
        [Dependency {
            image_id: 1,
            min_version: ImageVersion { major: 0, minor: 1, revision: 0, build_num: 0 },
        }]
    );
    let custom = area.find(TlvKind::Unknown(0xa0)).expect("custom TLV kept");
    assert_eq!(custom.kind.to_string(), "unknown (0xa0)");
    assert_eq!(custom.kind.name(), None);
    assert_eq!(area.find(TlvKind::SecCnt).unwrap().kind.to_string(), "SEC_CNT");
}

#[test]
fn encrypted_image_reports_cipher_and_key_exchange() {
    let img = image("encrypted.bin");
    let enc = img.encryption();
    assert!(enc.is_encrypted());
    assert_eq!(enc.cipher, Some(Cipher::Aes128));
    assert_eq!(enc.key_exchange, Some(KeyExchange::EciesP256));
    assert_eq!(enc.to_string(), "AES-128, key exchanged with ECIES-P256");
    assert!(!img.hash_verified());
    assert_eq!(img.hash(), img.tlvs().find(TlvKind::Sha256).unwrap().value.as_slice());
}

#[test]
fn header_flags_are_named() {
    let img = image("flags.bin");
    assert_eq!(img.header().flags.names(), ["NON_BOOTABLE", "RAM_LOAD"]);
    assert_eq!(img.header().load_addr, 0x2000_0000);
    assert_eq!(img.version().to_string(), "0.0.1+0");
}

#[test]
fn hex_file_flattens_to_the_same_bytes_as_the_bin() {
    let package = mcuboot::load(&path("hash-only.hex")).unwrap();
    assert_eq!(package.kind, PackageKind::Hex);
    assert_eq!(package.images.len(), 1);
    let entry = &package.images[0];
    assert_eq!(entry.image_index, 0);
    assert_eq!(entry.name, "hash-only.hex");
    assert_eq!(entry.address, Some(0x1_0000));
    assert_eq!(entry.image.bytes(), read("hash-only.bin").as_slice());
}

#[test]
fn hex_with_a_bad_checksum_names_the_line() {
    let text = std::fs::read_to_string(path("hash-only.hex")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let line = &mut lines[5];
    let last = line.pop().unwrap();
    line.push(if last == '0' { '1' } else { '0' });
    let bad = lines.join("\n");
    match mcuboot::Package::from_bytes(bad.into_bytes(), "x.hex") {
        Err(err @ ImageError::HexChecksum { line: 6, expected, found, .. }) => {
            assert_ne!(expected, found);
            let msg = err.to_string();
            assert!(msg.contains("line 6") && msg.contains("checksum"), "{msg}");
        }
        other => panic!("expected HexChecksum, got {other:?}"),
    }
}

#[test]
fn bin_loads_by_path() {
    let package = mcuboot::load(&path("ecdsa-p256.bin")).unwrap();
    assert_eq!(package.kind, PackageKind::Bin);
    assert_eq!(package.images.len(), 1);
    assert_eq!(package.images[0].name, "ecdsa-p256.bin");
    assert_eq!(package.images[0].address, None);
    assert!(package.image(0).is_some());
    assert!(package.image(1).is_none());
}

#[test]
fn missing_file_is_io_error() {
    match mcuboot::load(&path("no-such-file.bin")) {
        Err(ImageError::Io { path, source }) => {
            assert!(path.ends_with("no-such-file.bin"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn image_errors_convert_into_the_crate_error_unchanged() {
    let err: Error = mcuboot::load(&path("raw.bin")).unwrap_err().into();
    assert!(matches!(err, Error::Image(ImageError::NotMcubootImage { .. })), "{err:?}");
    assert!(err.to_string().starts_with("no MCUboot header"), "{err}");
    let err: Error = mcuboot::load(&path("no-such-file.bin")).unwrap_err().into();
    assert!(std::error::Error::source(&err).is_some(), "the OS error stays reachable");
}

#[test]
fn raw_binary_is_not_an_mcuboot_image() {
    let err = mcuboot::load(&path("raw.bin")).unwrap_err();
    assert!(matches!(err, ImageError::NotMcubootImage { found: 0x244a_330c }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("raw binary") && msg.contains("imgtool"), "{msg}");
}

#[test]
fn flipped_body_byte_is_hash_mismatch() {
    let mut bytes = read("ecdsa-p256.bin");
    bytes[0x200 + 100] ^= 0x01;
    let err = Image::parse(bytes).unwrap_err();
    let ImageError::HashMismatch { stored, computed } = &err else {
        panic!("expected HashMismatch, got {err:?}");
    };
    assert_eq!(*stored, image("ecdsa-p256.bin").image_hash());
    assert_ne!(stored, computed);
    assert_eq!(image("ecdsa-p256.bin").hash_kind(), HashKind::Sha256);
    assert_eq!(computed.as_bytes().len(), 32);
    assert_eq!(computed.to_string().len(), 64);
    let msg = err.to_string();
    assert!(msg.starts_with("image hash mismatch"), "{msg}");
    assert!(msg.contains(&stored.to_string()) && msg.contains(&computed.to_string()), "{msg}");
}

#[test]
fn flipped_protected_tlv_byte_is_hash_mismatch() {
    let img = image("protected.bin");
    let counter = img.protected_tlvs().unwrap().find(TlvKind::SecCnt).unwrap();
    let mut bytes = read("protected.bin");
    bytes[counter.offset + 4] = 6;
    assert!(matches!(Image::parse(bytes), Err(ImageError::HashMismatch { .. })));
}

#[test]
fn cut_files_are_truncated() {
    let bytes = read("ecdsa-p256.bin");
    let cut_tail = bytes[..bytes.len() - 1].to_vec();
    assert!(matches!(Image::parse(cut_tail), Err(ImageError::TruncatedImage { what: "TLV area", .. })));
    let cut_body = bytes[..0x200 + 1000].to_vec();
    match Image::parse(cut_body) {
        Err(ImageError::TruncatedImage { what, needed, actual }) => {
            assert_eq!(what, "image body");
            assert_eq!(needed, 0x200 + 4096);
            assert_eq!(actual, 0x200 + 1000);
        }
        other => panic!("expected TruncatedImage, got {other:?}"),
    }
    let cut_header = bytes[..20].to_vec();
    assert!(matches!(Image::parse(cut_header), Err(ImageError::TruncatedImage { what: "image header", .. })));
    let protected = read("protected.bin");
    let cut_protected = protected[..0x200 + 4096 + 10].to_vec();
    assert!(matches!(
        Image::parse(cut_protected),
        Err(ImageError::TruncatedImage { what: "protected TLV area", .. })
    ));
}

#[test]
fn wrong_header_magic_is_not_an_mcuboot_image() {
    let mut bytes = read("hash-only.bin");
    bytes[0] ^= 0xff;
    match Image::parse(bytes) {
        Err(ImageError::NotMcubootImage { found }) => assert_eq!(found, 0x96f3_b8c2),
        other => panic!("expected NotMcubootImage, got {other:?}"),
    }
}

#[test]
fn corrupt_tlv_magic_is_bad_tlv_magic() {
    let img = image("ecdsa-p256.bin");
    let at = img.tlvs().offset;
    let mut bytes = img.into_bytes();
    bytes[at] = 0x00;
    match Image::parse(bytes) {
        Err(ImageError::BadTlvMagic { offset, found, expected }) => {
            assert_eq!(offset, at);
            assert_eq!(found, 0x6900);
            assert_eq!(expected, 0x6907);
        }
        other => panic!("expected BadTlvMagic, got {other:?}"),
    }

    let img = image("protected.bin");
    let at = img.protected_tlvs().unwrap().offset;
    let mut bytes = img.into_bytes();
    bytes[at] = 0x07;
    assert!(matches!(
        Image::parse(bytes),
        Err(ImageError::BadTlvMagic { expected: 0x6908, found: 0x6907, .. })
    ));
}

#[test]
fn protected_size_disagreeing_with_header_is_bad_tlv() {
    let mut bytes = read("protected.bin");
    let declared = u16::from_le_bytes([bytes[10], bytes[11]]);
    bytes[10..12].copy_from_slice(&(declared + 4).to_le_bytes());
    let err = Image::parse(bytes).unwrap_err();
    match err {
        ImageError::ProtectedTlvSizeMismatch { offset, actual, declared: d } => {
            assert_eq!(offset, 0x200 + 4096);
            assert_eq!(actual, usize::from(declared));
            assert_eq!(d, usize::from(declared) + 4);
        }
        other => panic!("expected ProtectedTlvSizeMismatch, got {other:?}"),
    }
}

#[test]
fn overrunning_tlv_entry_is_bad_tlv() {
    let img = image("ecdsa-p256.bin");
    let last = img.tlvs().entries.last().unwrap().offset;
    let mut bytes = img.into_bytes();
    let len = usize::from(u16::from_le_bytes([bytes[last + 2], bytes[last + 3]]));
    bytes[last + 2] += 1;
    let err = Image::parse(bytes).unwrap_err();
    match &err {
        ImageError::TlvEntryOverrun { kind, offset, len: declared, area_end } => {
            assert_eq!(*kind, TlvKind::EcdsaSig);
            assert_eq!(*offset, last);
            assert_eq!(*declared, len + 1);
            assert_eq!(*area_end, last + 4 + len);
        }
        other => panic!("expected TlvEntryOverrun, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("ECDSA_SIG"), "{msg}");
}

#[test]
fn image_without_hash_tlv_is_missing_hash() {
    let img = image("hash-only.bin");
    let sha = img.tlvs().find(TlvKind::Sha256).unwrap().offset;
    let mut bytes = img.into_bytes();
    // The unprotected area is outside the hash, so only the missing TLV can be reported.
    bytes[sha] = 0xa1;
    assert!(matches!(Image::parse(bytes), Err(ImageError::MissingHash)));
}

#[test]
fn check_fits_compares_the_whole_file_with_the_slot() {
    let img = image("rsa-2048.bin");
    let size = img.bytes().len();
    img.check_fits(size).unwrap();
    img.check_fits(0x40000).unwrap();
    match img.check_fits(size - 1) {
        Err(ImageError::ImageTooLarge { size: s, slot_size }) => {
            assert_eq!(s, size);
            assert_eq!(slot_size, size - 1);
        }
        other => panic!("expected ImageTooLarge, got {other:?}"),
    }
    assert!(matches!(
        image("padded.bin").check_fits(0x3fff),
        Err(ImageError::ImageTooLarge { size: 0x4000, .. })
    ));
}

#[test]
fn json_summary_has_hex_hash_and_names() {
    let package = mcuboot::load(&path("protected.bin")).unwrap();
    let v = serde_json::to_value(&package).unwrap();
    assert_eq!(v["kind"], "bin");
    let img = &v["images"][0]["image"];
    assert_eq!(img["hash"], image("protected.bin").hash_hex());
    assert_eq!(img["hash_kind"], "SHA-256");
    assert_eq!(img["signature"], "ECDSA-P256");
    assert_eq!(img["version"], "1.2.3+4");
    assert_eq!(img["security_counter"], 5);
    assert_eq!(img["dependencies"][0]["image_id"], 1);
    assert_eq!(img["dependencies"][0]["min_version"], "0.1.0+0");
    assert_eq!(img["header"]["flags"]["names"], json!([]));
    assert_eq!(img["protected_tlvs"]["entries"][2]["name"], "unknown (0xa0)");
    assert_eq!(img["tlvs"]["entries"][0]["name"], "SHA256");
    assert_eq!(img["tlvs"]["entries"][0]["value"], img["hash"]);
    assert_eq!(img["boot_magic"], false);
    assert!(img.get("bytes").is_none());
}

// ---- nRF Connect SDK DFU zips, assembled here from the fixtures ----

fn zip_with(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        zip.start_file(*name, options).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn manifest_v1() -> Value {
    // Listed net core first to check the package comes back sorted by image index.
    json!({
        "format-version": 1,
        "time": 1_700_000_000,
        "files": [
            {
                "type": "application",
                "board": "nrf5340dk_nrf5340_cpunet",
                "soc": "nRF5340",
                "load_address": "16777216",
                "image_index": "1",
                "slot_index_primary": "3",
                "slot_index_secondary": "4",
                "version_MCUBOOT": "1.2.3+4",
                "size": "4752",
                "file": "net_core_app_update.bin",
                "modtime": "1700000000"
            },
            {
                "type": "application",
                "board": "nrf5340dk_nrf5340_cpuapp",
                "soc": "nRF5340",
                "load_address": "65536",
                "image_index": "0",
                "slot_index_primary": "1",
                "slot_index_secondary": "2",
                "version_MCUBOOT": "1.2.3+4",
                "size": "4759",
                "file": "app_update.bin",
                "modtime": "1700000000"
            }
        ],
        "name": "dfu_application"
    })
}

fn write_temp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn ncs_zip_format_1_with_string_numbers() {
    let zip = zip_with(&[
        ("manifest.json", manifest_v1().to_string().into_bytes()),
        ("app_update.bin", read("ecdsa-p256.bin")),
        ("net_core_app_update.bin", read("ed25519.bin")),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let package = mcuboot::load(&write_temp(&dir, "dfu_application.zip", &zip)).unwrap();
    assert_eq!(package.kind, PackageKind::Zip);
    assert_eq!(package.images.len(), 2);

    let app = &package.images[0];
    assert_eq!(app.image_index, 0);
    assert_eq!(app.name, "app_update.bin");
    assert_eq!(app.address, Some(0x1_0000));
    assert_eq!(app.image.bytes(), read("ecdsa-p256.bin").as_slice());
    assert_eq!(app.image.signature(), SignatureKind::EcdsaP256);

    let net = &package.images[1];
    assert_eq!(net.image_index, 1);
    assert_eq!(net.name, "net_core_app_update.bin");
    assert_eq!(net.address, Some(0x0100_0000));
    assert_eq!(net.image.signature(), SignatureKind::Ed25519);
    assert_eq!(package.image(1).unwrap().name, "net_core_app_update.bin");
}

#[test]
fn ncs_zip_format_0_with_numbers_and_derived_indices() {
    let manifest = json!({
        "format-version": 0,
        "time": 1_600_000_000,
        "files": [
            {
                "type": "application",
                "board": "nrf5340dk_nrf5340_cpuapp",
                "soc": "nRF5340",
                "load_address": 65536,
                "version_MCUBOOT": "1.2.3+4",
                "size": 4648,
                "file": "app_update.bin",
                "modtime": 1_600_000_000
            },
            {
                "type": "network",
                "board": "nrf5340dk_nrf5340_cpunet",
                "soc": "nRF5340",
                "load_address": 16_777_216,
                "version_MCUBOOT": "1.2.3+4",
                "size": 4944,
                "file": "net_core_app_update.bin",
                "modtime": 1_600_000_000
            }
        ],
        "name": "dfu_application"
    });
    let zip = zip_with(&[
        ("manifest.json", manifest.to_string().into_bytes()),
        ("app_update.bin", read("hash-only.bin")),
        ("net_core_app_update.bin", read("rsa-2048.bin")),
    ]);
    let package = mcuboot::Package::from_bytes(zip, "update.zip").unwrap();
    assert_eq!(package.kind, PackageKind::Zip);
    let indices: Vec<u32> = package.images.iter().map(|i| i.image_index).collect();
    assert_eq!(indices, [0, 1]);
    assert_eq!(package.images[0].address, Some(65536));
    assert_eq!(package.images[0].image.signature(), SignatureKind::None);
    assert_eq!(package.images[1].image.signature(), SignatureKind::Rsa2048);
}

fn bad_package(zip: Vec<u8>) -> ImageError {
    let err = mcuboot::Package::from_bytes(zip, "dfu_application.zip").expect_err("a bad package");
    assert!(err.to_string().starts_with("bad DFU package: "), "{err}");
    err
}

#[test]
fn ncs_zip_errors_are_specific() {
    let err = bad_package(zip_with(&[("app_update.bin", read("hash-only.bin"))]));
    assert!(matches!(err, ImageError::ManifestMissing), "{err:?}");
    assert!(err.to_string().contains("manifest.json"), "{err}");

    let err = bad_package(zip_with(&[
        ("manifest.json", manifest_v1().to_string().into_bytes()),
        ("app_update.bin", read("hash-only.bin")),
    ]));
    assert!(
        matches!(&err, ImageError::PackageEntryMissing { name } if name == "net_core_app_update.bin"),
        "{err:?}"
    );
    assert!(err.to_string().contains("net_core_app_update.bin"), "{err}");

    let err = bad_package(zip_with(&[("manifest.json", b"{\"files\": [".to_vec())]));
    match &err {
        ImageError::ManifestJson { source } => assert!(source.is_eof(), "{source}"),
        other => panic!("expected ManifestJson, got {other:?}"),
    }
    assert!(err.to_string().contains("JSON"), "{err}");

    let mut dup = manifest_v1();
    dup["files"][0]["image_index"] = json!(0);
    let err = bad_package(zip_with(&[
        ("manifest.json", dup.to_string().into_bytes()),
        ("app_update.bin", read("hash-only.bin")),
        ("net_core_app_update.bin", read("hash-only.bin")),
    ]));
    match &err {
        ImageError::DuplicateImageIndex { image_index, first, second } => {
            assert_eq!(*image_index, 0);
            assert_eq!(first, "net_core_app_update.bin");
            assert_eq!(second, "app_update.bin");
        }
        other => panic!("expected DuplicateImageIndex, got {other:?}"),
    }
    assert!(err.to_string().contains("image index 0"), "{err}");

    let err = bad_package(b"PK\x03\x04 not really a zip".to_vec());
    assert!(matches!(err, ImageError::PackageNotZip { .. }), "{err:?}");
    assert!(err.to_string().contains("zip"), "{err}");
    assert!(std::error::Error::source(&err).is_some(), "the zip error is kept");
}

#[test]
fn ncs_zip_entry_errors_name_the_entry() {
    let mut corrupt = read("ed25519.bin");
    corrupt[0x300] ^= 0x80;
    let zip = zip_with(&[
        ("manifest.json", manifest_v1().to_string().into_bytes()),
        ("app_update.bin", read("ecdsa-p256.bin")),
        ("net_core_app_update.bin", corrupt),
    ]);
    let err = mcuboot::Package::from_bytes(zip, "dfu_application.zip").unwrap_err();
    assert!(err.to_string().starts_with("net_core_app_update.bin"), "{err}");
    match err {
        ImageError::PackageEntry { entry, source } => {
            assert_eq!(entry, "net_core_app_update.bin");
            assert!(matches!(*source, ImageError::HashMismatch { .. }), "{source:?}");
        }
        other => panic!("expected PackageEntry, got {other:?}"),
    }

    let zip = zip_with(&[
        ("manifest.json", manifest_v1().to_string().into_bytes()),
        ("app_update.bin", read("raw.bin")),
        ("net_core_app_update.bin", read("ed25519.bin")),
    ]);
    match mcuboot::Package::from_bytes(zip, "dfu_application.zip") {
        Err(ImageError::PackageEntry { entry, source }) => {
            assert_eq!(entry, "app_update.bin");
            assert!(matches!(*source, ImageError::NotMcubootImage { .. }));
        }
        other => panic!("expected PackageEntry, got {other:?}"),
    }
}
