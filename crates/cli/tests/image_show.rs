//! `smpflash image show` on imgtool-made images, an NCS zip and broken files.

use std::io::Write;
use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/images")).join(name)
}

fn smpflash() -> Command {
    Command::cargo_bin("smpflash").unwrap()
}

#[test]
fn shows_a_signed_bin() {
    smpflash()
        .args(["image", "show"])
        .arg(fixture("ecdsa-p256.bin"))
        .assert()
        .success()
        .stdout(predicate::str::contains("version:          1.2.3+4"))
        .stdout(predicate::str::contains("signature:        ECDSA-P256"))
        .stdout(predicate::str::contains("ECDSA_SIG"))
        .stdout(predicate::str::contains("valid MCUboot image, SHA-256 hash verified"));
}

#[test]
fn json_matches_the_text_and_the_hex_equals_the_bin() {
    let run = |name: &str| {
        let out = smpflash().args(["--json", "image", "show"]).arg(fixture(name)).output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let bin = run("hash-only.bin");
    let hex = run("hash-only.hex");
    assert_eq!(bin["kind"], "binary");
    assert_eq!(hex["kind"], "Intel HEX");
    assert_eq!(bin["images"][0]["hash"], hex["images"][0]["hash"]);
    assert_eq!(hex["images"][0]["address"], 0x10000);
    assert_eq!(bin["images"][0]["signature"], "none");
    assert_eq!(bin["images"][0]["hash_verified"], true);
}

#[test]
fn shows_both_images_of_an_ncs_zip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dfu_application.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    let manifest = r#"{"format-version": 1, "files": [
        {"type": "application", "image_index": "0", "file": "app_update.bin", "load_address": "65536"},
        {"type": "net", "image_index": "1", "file": "net_core_app_update.bin"}]}"#;
    zip.start_file("manifest.json", opts).unwrap();
    zip.write_all(manifest.as_bytes()).unwrap();
    zip.start_file("app_update.bin", opts).unwrap();
    zip.write_all(&std::fs::read(fixture("ecdsa-p256.bin")).unwrap()).unwrap();
    zip.start_file("net_core_app_update.bin", opts).unwrap();
    zip.write_all(&std::fs::read(fixture("ed25519.bin")).unwrap()).unwrap();
    zip.finish().unwrap();

    smpflash()
        .args(["image", "show"])
        .arg(&path)
        .assert()
        .success()
        .stdout(predicate::str::contains("with 2 image(s)"))
        .stdout(predicate::str::contains("image 0 (app_update.bin)"))
        .stdout(predicate::str::contains("image 1 (net_core_app_update.bin)"))
        .stdout(predicate::str::contains("signature:        Ed25519"));
}

#[test]
fn raw_binary_is_refused_with_advice_and_exit_code_5() {
    smpflash()
        .args(["image", "show"])
        .arg(fixture("raw.bin"))
        .assert()
        .code(5)
        .stderr(predicate::str::contains("this looks like a raw binary; sign it with imgtool"));
}

#[test]
fn corrupt_image_reports_a_hash_mismatch_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixture("hash-only.bin")).unwrap();
    bytes[0x300] ^= 0xFF;
    let path = dir.path().join("corrupt.bin");
    std::fs::write(&path, bytes).unwrap();
    let out = smpflash().args(["--json", "image", "show"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["verdict"], "invalid");
    assert!(doc["error"].as_str().unwrap().starts_with("image hash mismatch"), "{doc}");
}
