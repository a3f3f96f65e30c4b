//! Signature checks at boot, as MCUboot built with a signing key makes them: imgtool-signed
//! fixtures verify with the keys that signed them and with no other, and over UDP an image
//! signed with the wrong key is erased at boot while the old image keeps running.

use p256::ecdsa::Signature;
use sha2::{Digest, Sha256};
use smpflash_core::command::image::*;
use smpflash_core::mcuboot::{Image, ImageVersion, TlvKind};
use smpflash_sim::image::keys::SigningKey;
use smpflash_sim::image::slot::{self, Invalid};
use smpflash_sim::Profile;

mod support;
use support::{fixture, fixtures, hash_of, instant, reset, state, upload, Rig};

/// The fixtures were signed for 0x40000 slots.
const MAX: usize = 0x3F000;

fn key_path(name: &str) -> String {
    format!("{}/keys/{name}", fixtures())
}

fn key(name: &str) -> SigningKey {
    SigningKey::load(key_path(name).as_ref()).unwrap()
}

/// A TLV value of the image, as the core's reader finds it.
fn tlv(image: &[u8], kind: TlvKind) -> Vec<u8> {
    let parsed = Image::parse(image.to_vec()).unwrap();
    let value = parsed.all_tlvs().find(|t| t.kind == kind).unwrap().value.clone();
    value
}

fn image_hash(image: &[u8]) -> [u8; 32] {
    tlv(image, TlvKind::Sha256).try_into().unwrap()
}

#[test]
fn imgtool_signatures_verify_with_the_keys_that_made_them() {
    for (image, key_file) in [
        ("ecdsa-p256.bin", "ecdsa-p256.pem"),
        ("ecdsa-p256.bin", "ecdsa-p256.pub.pem"),
        ("protected.bin", "ecdsa-p256.pem"),
        ("ed25519.bin", "ed25519.pem"),
    ] {
        let r = slot::validate_signed(&fixture(image), MAX, Some(&key(key_file)));
        assert!(r.is_ok(), "{image} with {key_file}: {r:?}");
    }
}

#[test]
fn key_hash_is_what_imgtool_writes() {
    for (image, key_file) in [("ecdsa-p256.bin", "ecdsa-p256.pem"), ("ed25519.bin", "ed25519.pem")] {
        assert_eq!(tlv(&fixture(image), TlvKind::KeyHash), key(key_file).key_hash(), "{key_file}");
    }
    // A private key and the public key derived from it are the same bootloader key.
    assert_eq!(key("ecdsa-p256.pem").key_hash(), key("ecdsa-p256.pub.pem").key_hash());
    assert!(key("ecdsa-p256.pem").can_sign() && !key("ecdsa-p256.pub.pem").can_sign());
}

#[test]
fn other_keys_are_unknown() {
    let p256 = key("ecdsa-p256.pem");
    let ed = key("ed25519.pem");
    for (image, key) in
        [("ecdsa-p256.bin", &ed), ("ed25519.bin", &p256), ("rsa-2048.bin", &p256), ("rsa-2048.bin", &ed)]
    {
        let bytes = fixture(image);
        let expected = Invalid::UnknownKey { key_hash: Some(hex::encode(tlv(&bytes, TlvKind::KeyHash))) };
        assert_eq!(slot::validate_signed(&bytes, MAX, Some(key)), Err(expected), "{image}");
    }
    let e = slot::validate_signed(&fixture("ecdsa-p256.bin"), MAX, Some(&ed)).unwrap_err();
    assert!(e.to_string().starts_with("image was signed with a key this bootloader does not hold"), "{e}");
}

#[test]
fn unsigned_images_are_refused_only_with_a_key() {
    let img = fixture("hash-only.bin");
    for key_file in ["ecdsa-p256.pem", "ed25519.pem"] {
        assert_eq!(slot::validate_signed(&img, MAX, Some(&key(key_file))), Err(Invalid::Unsigned));
    }
    assert!(slot::validate(&img, MAX).is_ok());
    // Without a key the bootloader checks hashes only, whoever signed the image.
    for image in ["ecdsa-p256.bin", "ed25519.bin", "rsa-2048.bin"] {
        assert!(slot::validate(&fixture(image), MAX).is_ok(), "{image}");
    }
}

#[test]
fn a_damaged_signature_is_bad() {
    // The signature TLV comes last in both, so the last byte is signature.
    for (image, key_file) in [("ecdsa-p256.bin", "ecdsa-p256.pem"), ("ed25519.bin", "ed25519.pem")] {
        let mut bytes = fixture(image);
        *bytes.last_mut().unwrap() ^= 0x01;
        let r = slot::validate_signed(&bytes, MAX, Some(&key(key_file)));
        assert_eq!(r, Err(Invalid::BadSignature), "{image}");
    }
    // A signature that does not even parse is just as bad.
    let k = key("ecdsa-p256.pem");
    let hash = image_hash(&fixture("ecdsa-p256.bin"));
    assert!(!k.verify(&hash, &[0x30, 0x02, 0x00, 0x00]));
    assert!(!key("ed25519.pem").verify(&hash, &[0; 63]));
}

#[test]
fn ecdsa_is_checked_over_the_image_hash_as_a_prehashed_digest() {
    let k = key("ecdsa-p256.pem");
    let img = fixture("ecdsa-p256.bin");
    let hash = image_hash(&img);
    let sig = tlv(&img, TlvKind::EcdsaSig);
    assert!(k.verify(&hash, &sig));
    // OpenSSL-backed imgtool does not normalise S, and neither does MCUboot: the mirrored
    // signature (r, n - s) is as valid.
    let parsed = Signature::from_der(&sig).unwrap();
    let mirrored = Signature::from_scalars(parsed.r().to_bytes(), (-*parsed.s()).to_bytes()).unwrap();
    assert!(k.verify(&hash, mirrored.to_der().as_bytes()));
    // imgtool --pad-sig pads with zeros after the DER sequence.
    let mut padded = sig.clone();
    padded.resize(72, 0);
    assert!(k.verify(&hash, &padded));
    // Hashing the digest once more would be a different message.
    assert!(!k.verify(&Sha256::digest(hash).into(), &sig));
}

#[test]
fn signed_factory_images_validate() {
    let v = ImageVersion { major: 1, minor: 0, revision: 0, build_num: 0 };
    let built = slot::build(v, &[0x5A; 2000]);
    for key_file in ["ecdsa-p256.pem", "ed25519.pem"] {
        let k = key(key_file);
        let signed = slot::sign(&built, &k).unwrap();
        let info = slot::validate_signed(&signed, 4096, Some(&k)).unwrap();
        assert_eq!(info.total_len, signed.len());
        // The core's reader agrees on the layout.
        let parsed = Image::parse(signed.clone()).unwrap();
        assert_eq!(parsed.all_tlvs().count(), 3, "{key_file}");
    }
    assert!(slot::sign(&built, &key("ecdsa-p256.pub.pem")).is_none());
}

#[test]
fn the_profile_override_loads_a_key() {
    let mut p = Profile::by_name("zephyr-default").unwrap();
    assert_eq!(p.signing_key, None);
    p.apply_override(&format!("signing_key={}", key_path("ed25519.pem"))).unwrap();
    assert_eq!(p.signing_key.as_ref().map(SigningKey::algorithm), Some("Ed25519"));
    let e = p.apply_override(&format!("signing_key={}", key_path("rsa-2048.pem"))).unwrap_err();
    assert!(e.contains("not an ECDSA P-256 or Ed25519 key"), "{e}");
    assert!(p.apply_override("signing_key=/nonexistent.pem").is_err());
    // Serialized, a profile carries the public key only.
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains("BEGIN PUBLIC KEY") && !json.contains("PRIVATE"), "{json}");
    let back: Profile = serde_json::from_str(&json).unwrap();
    let k = back.signing_key.unwrap();
    assert_eq!(k.key_hash(), key("ed25519.pem").key_hash());
    assert!(!k.can_sign());
}

async fn rig(profile: &str, key_file: &str) -> Rig {
    let mut profile = Profile::by_name(profile).unwrap();
    profile.apply_override(&format!("signing_key={}", key_path(key_file))).unwrap();
    Rig::start(profile, instant()).await
}

async fn boot_log(rig: &Rig) -> Vec<String> {
    rig.device.snapshot().await.boot_log.into_iter().map(|e| e.what).collect()
}

#[tokio::test]
async fn a_foreign_signature_is_erased_at_boot_and_the_right_one_boots() {
    let r = rig("zephyr-default", "ecdsa-p256.pem").await;
    let before = state(&r.client).await;
    // The factory firmware is signed with the device's key, so it boots cleanly.
    assert!(boot_log(&r).await.is_empty(), "{:?}", boot_log(&r).await);

    let foreign = fixture("ed25519.bin");
    upload(&r.client, 0, &foreign).await.unwrap();
    r.client.request(&ImageStateWrite { hash: Some(hash_of(&foreign)), confirm: false }).await.unwrap();
    reset(&r).await;
    let after = state(&r.client).await;
    assert_eq!(after.len(), 1, "secondary erased: {after:?}");
    assert_eq!(after[0].hash, before[0].hash);
    assert!(after[0].active && after[0].confirmed);
    let log = boot_log(&r).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].contains("signed with a key this bootloader does not hold"), "{log:?}");
    assert!(log[0].contains("slot erased, old image kept"), "{log:?}");
    let slot1 = r.device.snapshot().await.flash.slot(1).iter().all(|&b| b == 0xFF);
    assert!(slot1, "secondary slot not erased");

    let ours = fixture("ecdsa-p256.bin");
    upload(&r.client, 0, &ours).await.unwrap();
    r.client.request(&ImageStateWrite { hash: Some(hash_of(&ours)), confirm: false }).await.unwrap();
    reset(&r).await;
    let s = state(&r.client).await;
    let running = s.iter().find(|s| s.slot == 0).unwrap();
    assert_eq!(running.hash.as_deref(), Some(&hash_of(&ours)[..]));
    assert!(running.active && !running.confirmed, "{s:?}");
    let log = boot_log(&r).await;
    assert_eq!(log, ["swapping in the secondary image for a test boot"]);
}

#[tokio::test]
async fn direct_xip_skips_a_slot_signed_with_another_key() {
    let r = rig("direct-xip", "ed25519.pem").await;
    let before = state(&r.client).await;
    upload(&r.client, 0, &fixture("ecdsa-p256.bin")).await.unwrap();
    reset(&r).await;
    let s = state(&r.client).await;
    let active = s.iter().find(|s| s.active).unwrap();
    assert_eq!((active.slot, &active.hash), (0, &before[0].hash));
    let log = boot_log(&r).await;
    assert!(log.iter().any(|l| l.contains("slot 1 skipped: image was signed with a key")), "{log:?}");

    upload(&r.client, 0, &fixture("ed25519.bin")).await.unwrap();
    reset(&r).await;
    let active = state(&r.client).await.into_iter().find(|s| s.active).unwrap();
    assert_eq!((active.slot, active.hash.as_deref()), (1, Some(&hash_of(&fixture("ed25519.bin"))[..])));
}
