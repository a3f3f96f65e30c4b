//! The key a bootloader is built with to check image signatures (MCUboot's
//! `CONFIG_BOOT_SIGNATURE_KEY_FILE`): loaded from PEM, named in images by its key hash, and
//! used to verify the signature TLV over the image hash.

use std::fmt;
use std::path::Path;

use ed25519_dalek::{Signer as _, Verifier as _};
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use smpflash_core::mcuboot::TlvKind;

#[derive(Clone)]
enum Key {
    EcdsaP256 { public: p256::ecdsa::VerifyingKey, private: Option<p256::ecdsa::SigningKey> },
    // Boxed: dalek's keys carry their decompressed point, so the pair dwarfs the P-256 one.
    Ed25519 { public: ed25519_dalek::VerifyingKey, private: Option<Box<ed25519_dalek::SigningKey>> },
}

/// An image-signing key as the bootloader holds it: ECDSA P-256 or Ed25519. Given a private
/// key, its public half verifies and the private half signs the virtual factory firmware,
/// which a real device would have had signed on the production line.
#[derive(Clone)]
pub struct SigningKey {
    key: Key,
    /// DER SubjectPublicKeyInfo: what MCUboot embeds and what imgtool hashes into KEYHASH.
    public_der: Vec<u8>,
}

impl SigningKey {
    /// Reads a PEM key file: a public key (`PUBLIC KEY`), or a private key (`PRIVATE KEY`, as
    /// `imgtool keygen` writes, or `EC PRIVATE KEY`) of which the public half is used.
    pub fn load(path: &Path) -> Result<SigningKey, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        SigningKey::from_pem(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses a PEM key; see [`load`](Self::load).
    pub fn from_pem(text: &str) -> Result<SigningKey, String> {
        let key = if text.contains("-----BEGIN PUBLIC KEY-----") {
            p256::ecdsa::VerifyingKey::from_public_key_pem(text)
                .map(|public| Key::EcdsaP256 { public, private: None })
                .or_else(|_| {
                    ed25519_dalek::VerifyingKey::from_public_key_pem(text)
                        .map(|public| Key::Ed25519 { public, private: None })
                })
                .ok()
        } else if text.contains("-----BEGIN PRIVATE KEY-----") {
            p256::ecdsa::SigningKey::from_pkcs8_pem(text)
                .map(|k| Key::EcdsaP256 { public: *k.verifying_key(), private: Some(k) })
                .or_else(|_| {
                    ed25519_dalek::SigningKey::from_pkcs8_pem(text)
                        .map(|k| Key::Ed25519 { public: k.verifying_key(), private: Some(Box::new(k)) })
                })
                .ok()
        } else if text.contains("-----BEGIN EC PRIVATE KEY-----") {
            p256::SecretKey::from_sec1_pem(text).ok().map(|s| {
                let k = p256::ecdsa::SigningKey::from(s);
                Key::EcdsaP256 { public: *k.verifying_key(), private: Some(k) }
            })
        } else if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err("password-protected keys are not supported; give the public key instead".into());
        } else {
            return Err("not a PEM public or private key".into());
        };
        let key = key.ok_or("not an ECDSA P-256 or Ed25519 key (the only kinds supported)")?;
        let public_der = match &key {
            Key::EcdsaP256 { public, .. } => public.to_public_key_der(),
            Key::Ed25519 { public, .. } => public.to_public_key_der(),
        }
        .map_err(|e| format!("cannot encode the public key: {e}"))?
        .into_vec();
        Ok(SigningKey { key, public_der })
    }

    /// The algorithm, for messages.
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            Key::EcdsaP256 { .. } => "ECDSA P-256",
            Key::Ed25519 { .. } => "Ed25519",
        }
    }

    /// The KEYHASH TLV value of images signed with this key.
    pub fn key_hash(&self) -> [u8; 32] {
        Sha256::digest(&self.public_der).into()
    }

    /// The TLV type of this key's signatures; MCUboot is built for one signature type and
    /// ignores the others.
    pub fn signature_tlv(&self) -> TlvKind {
        match self.key {
            // DER-encoded; P-256 with this key.
            Key::EcdsaP256 { .. } => TlvKind::EcdsaSig,
            Key::Ed25519 { .. } => TlvKind::Ed25519,
        }
    }

    /// Whether the private half was given, so images can be signed.
    pub fn can_sign(&self) -> bool {
        match &self.key {
            Key::EcdsaP256 { private, .. } => private.is_some(),
            Key::Ed25519 { private, .. } => private.is_some(),
        }
    }

    /// Whether `signature` (a signature TLV value) signs `image_hash`. MCUboot verifies ECDSA
    /// over the image hash as an already-hashed digest, and Ed25519 with the 32-byte hash as
    /// the message.
    pub fn verify(&self, image_hash: &[u8; 32], signature: &[u8]) -> bool {
        match &self.key {
            Key::EcdsaP256 { public, .. } => p256::ecdsa::Signature::from_der(strip_der_padding(signature))
                .is_ok_and(|sig| public.verify_prehash(image_hash, &sig).is_ok()),
            Key::Ed25519 { public, .. } => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| public.verify(image_hash, &sig).is_ok()),
        }
    }

    /// The signature TLV value for `image_hash`, in the conventions of
    /// [`verify`](Self::verify); `None` without the private half.
    pub fn sign(&self, image_hash: &[u8; 32]) -> Option<Vec<u8>> {
        match &self.key {
            Key::EcdsaP256 { private, .. } => {
                let sig: p256::ecdsa::Signature = private.as_ref()?.sign_prehash(image_hash).ok()?;
                Some(sig.to_der().as_bytes().to_vec())
            }
            Key::Ed25519 { private, .. } => Some(private.as_ref()?.sign(image_hash).to_bytes().to_vec()),
        }
    }

    /// The public key as PEM, which is how a key is serialized: a profile written out never
    /// carries a private key.
    pub fn public_pem(&self) -> String {
        let pem = match &self.key {
            Key::EcdsaP256 { public, .. } => public.to_public_key_pem(LineEnding::LF),
            Key::Ed25519 { public, .. } => public.to_public_key_pem(LineEnding::LF),
        };
        pem.expect("a key that was decoded encodes again")
    }
}

/// imgtool's `--pad-sig` appends zeros after the DER sequence (MCUboot before 1.5 wanted a fixed
/// length); the bootloader reads the sequence and ignores the rest.
fn strip_der_padding(sig: &[u8]) -> &[u8] {
    match sig {
        [0x30, len, ..] if *len < 0x80 && sig.len() >= 2 + *len as usize => &sig[..2 + *len as usize],
        _ => sig,
    }
}

/// Names the key by algorithm and key hash; private key material stays out of logs.
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("key_hash", &hex::encode(self.key_hash()))
            .field("can_sign", &self.can_sign())
            .finish()
    }
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.public_der == other.public_der && self.can_sign() == other.can_sign()
    }
}

impl Eq for SigningKey {}

impl Serialize for SigningKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.public_pem())
    }
}

impl<'de> Deserialize<'de> for SigningKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SigningKey::from_pem(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
