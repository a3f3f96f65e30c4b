//! A whole MCUboot image: header, body, TLV areas and whatever padding follows, validated.

use std::fmt;

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256, Sha384, Sha512};

use super::error::ImageError;
use super::header::{HeaderFlags, ImageHeader, ImageVersion};
use super::tlv::{Tlv, TlvArea, TlvKind, TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC};
use crate::image_hash::ImageHash;

/// The trailer magic imgtool `--pad` writes at the very end of the slot with the default
/// maximum alignment of 8.
pub const BOOT_MAGIC: [u8; 16] =
    [0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80];

/// With `--max-align` 16 or 32 the magic becomes the alignment (u16) followed by these bytes.
const BOOT_MAGIC_ALIGNED_TAIL: [u8; 14] =
    [0x2d, 0xe1, 0x5d, 0x29, 0x41, 0x0b, 0x8d, 0x77, 0x67, 0x9c, 0x11, 0x0f, 0x1f, 0x8a];

/// DER ECDSA signatures over P-256 are at most 72 bytes (imgtool `--pad-sig` pads to exactly
/// that); P-384 ones are around 100, so anything clearly above the P-256 maximum is P-384.
const ECDSA_P256_MAX_SIG_LEN: usize = 80;

/// The digest algorithm of the image hash TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashKind {
    /// SHA-256, the default and what most devices are built for.
    Sha256,
    /// SHA-384, imgtool's default with ECDSA P-384 keys.
    Sha384,
    /// SHA-512, imgtool's choice for pure Ed25519 signatures.
    Sha512,
}

impl HashKind {
    fn from_tlv(kind: TlvKind) -> Option<HashKind> {
        match kind {
            TlvKind::Sha256 => Some(HashKind::Sha256),
            TlvKind::Sha384 => Some(HashKind::Sha384),
            TlvKind::Sha512 => Some(HashKind::Sha512),
            _ => None,
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashKind::Sha256 => 32,
            HashKind::Sha384 => 48,
            HashKind::Sha512 => 64,
        }
    }

    fn digest(self, data: &[u8]) -> ImageHash {
        let digest = match self {
            HashKind::Sha256 => Sha256::digest(data).to_vec(),
            HashKind::Sha384 => Sha384::digest(data).to_vec(),
            HashKind::Sha512 => Sha512::digest(data).to_vec(),
        };
        ImageHash::from(digest)
    }
}

impl fmt::Display for HashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HashKind::Sha256 => "SHA-256",
            HashKind::Sha384 => "SHA-384",
            HashKind::Sha512 => "SHA-512",
        })
    }
}

/// Which kind of signature the image carries, judged from its signature TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureKind {
    /// No signature TLV: only a device built without signature checking will boot it.
    None,
    /// RSA-2048 PSS.
    Rsa2048,
    /// RSA-3072 PSS.
    Rsa3072,
    /// ECDSA over P-224 (legacy).
    EcdsaP224,
    /// ECDSA over P-256.
    EcdsaP256,
    /// ECDSA over P-384.
    EcdsaP384,
    /// Ed25519 over the image hash.
    Ed25519,
    /// Ed25519 over the image itself (`imgtool sign --pure`).
    Ed25519Pure,
}

impl fmt::Display for SignatureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureKind::None => "none",
            SignatureKind::Rsa2048 => "RSA-2048",
            SignatureKind::Rsa3072 => "RSA-3072",
            SignatureKind::EcdsaP224 => "ECDSA-P224",
            SignatureKind::EcdsaP256 => "ECDSA-P256",
            SignatureKind::EcdsaP384 => "ECDSA-P384",
            SignatureKind::Ed25519 => "Ed25519",
            SignatureKind::Ed25519Pure => "Ed25519 (pure)",
        })
    }
}

/// The cipher an encrypted body uses, from the header flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// AES-128 in counter mode.
    Aes128,
    /// AES-256 in counter mode.
    Aes256,
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cipher::Aes128 => "AES-128",
            Cipher::Aes256 => "AES-256",
        })
    }
}

/// How the body's AES key reaches the device, from the `ENC_*` TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyExchange {
    /// RSA-OAEP with a 2048-bit key.
    RsaOaep2048,
    /// AES key wrap with a shared key.
    AesKeyWrap,
    /// ECIES over P-256.
    EciesP256,
    /// ECIES over X25519 with HMAC-SHA256.
    EciesX25519,
    /// ECIES over X25519 with HMAC-SHA512.
    EciesX25519Sha512,
}

impl KeyExchange {
    fn from_tlv(kind: TlvKind) -> Option<KeyExchange> {
        match kind {
            TlvKind::EncRsa2048 => Some(KeyExchange::RsaOaep2048),
            TlvKind::EncKw => Some(KeyExchange::AesKeyWrap),
            TlvKind::EncEc256 => Some(KeyExchange::EciesP256),
            TlvKind::EncX25519 => Some(KeyExchange::EciesX25519),
            TlvKind::EncX25519Sha512 => Some(KeyExchange::EciesX25519Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for KeyExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyExchange::RsaOaep2048 => "RSA-OAEP-2048",
            KeyExchange::AesKeyWrap => "AES-KW",
            KeyExchange::EciesP256 => "ECIES-P256",
            KeyExchange::EciesX25519 => "ECIES-X25519",
            KeyExchange::EciesX25519Sha512 => "ECIES-X25519-SHA512",
        })
    }
}

/// Enums that are shown to people serialize as the same words, so text and JSON agree.
macro_rules! serialize_as_display {
    ($($ty:ty),*) => {$(
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
serialize_as_display!(HashKind, SignatureKind, Cipher, KeyExchange);

/// Whether and how the body is encrypted.
///
/// The two halves are independent because `imgtool sign --clear` stores a plain body that
/// still carries the key TLV, for devices that encrypt it on their way into the swap slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Encryption {
    /// Cipher of the stored body; `None` when the body is stored in the clear.
    pub cipher: Option<Cipher>,
    /// The key-exchange TLV present, if any.
    pub key_exchange: Option<KeyExchange>,
}

impl Encryption {
    /// Whether the stored body is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.cipher, self.key_exchange) {
            (None, None) => f.write_str("none"),
            (Some(c), Some(k)) => write!(f, "{c}, key exchanged with {k}"),
            (Some(c), None) => write!(f, "{c}, no key-exchange TLV"),
            (None, Some(k)) => write!(f, "none (stored in the clear, carries an {k} key TLV)"),
        }
    }
}

/// A `DEPENDENCY` TLV: this image needs another image at some minimum version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Dependency {
    /// Index of the image depended upon.
    pub image_id: u8,
    /// Lowest acceptable version of it.
    pub min_version: ImageVersion,
}

const DEPENDENCY_LEN: usize = 12;

/// A parsed and validated MCUboot image.
///
/// Holds the whole file, so that what gets uploaded is exactly what was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    bytes: Vec<u8>,
    header: ImageHeader,
    protected: Option<TlvArea>,
    tlvs: TlvArea,
    hash: ImageHash,
    hash_kind: HashKind,
    hash_verified: bool,
    dependencies: Vec<Dependency>,
    security_counter: Option<u32>,
}

impl Image {
    /// Parses and validates an image file's bytes, verifying the hash TLV.
    ///
    /// The hash of an encrypted image covers the plaintext, so without the device's key it
    /// cannot be checked here; such images parse with [`Image::hash_verified`] false.
    ///
    /// # Errors
    /// [`ImageError::NotMcubootImage`], [`ImageError::TruncatedImage`],
    /// [`ImageError::BadTlvMagic`], a malformed TLV area ([`ImageError::TlvAreaTooShort`],
    /// [`ImageError::TlvHeaderOverrun`], [`ImageError::TlvEntryOverrun`],
    /// [`ImageError::ProtectedTlvSizeMismatch`], [`ImageError::TlvWrongLength`]),
    /// [`ImageError::MissingHash`] or [`ImageError::HashMismatch`].
    pub fn parse(bytes: Vec<u8>) -> Result<Image, ImageError> {
        let header = ImageHeader::parse(&bytes)?;
        let body_end = usize::from(header.hdr_size)
            .saturating_add(usize::try_from(header.img_size).unwrap_or(usize::MAX));
        if body_end > bytes.len() {
            return Err(ImageError::TruncatedImage {
                what: "image body",
                needed: body_end,
                actual: bytes.len(),
            });
        }

        let protect_len = usize::from(header.protect_tlv_size);
        let protected = if protect_len == 0 {
            None
        } else {
            let area = TlvArea::parse(&bytes, body_end, TLV_PROT_INFO_MAGIC)?;
            if area.total_len != protect_len {
                return Err(ImageError::ProtectedTlvSizeMismatch {
                    offset: body_end,
                    actual: area.total_len,
                    declared: protect_len,
                });
            }
            Some(area)
        };
        let hashed_end = body_end + protect_len;
        let tlvs = TlvArea::parse(&bytes, hashed_end, TLV_INFO_MAGIC)?;

        // MCUboot only trusts a hash in the unprotected area; one in the protected area would
        // have to cover itself.
        let (hash_kind, hash_tlv) = tlvs
            .entries
            .iter()
            .find_map(|t| HashKind::from_tlv(t.kind).map(|k| (k, t)))
            .ok_or(ImageError::MissingHash)?;
        if hash_tlv.value.len() != hash_kind.digest_len() {
            return Err(ImageError::TlvWrongLength {
                kind: hash_tlv.kind,
                offset: hash_tlv.offset,
                len: hash_tlv.value.len(),
                expected: hash_kind.digest_len(),
            });
        }
        let hash = ImageHash::from(&hash_tlv.value[..]);

        let all = protected.iter().flat_map(|a| &a.entries).chain(&tlvs.entries);
        let mut dependencies = Vec::new();
        let mut security_counter = None;
        for tlv in all {
            match tlv.kind {
                TlvKind::Dependency => {
                    expect_len(tlv, DEPENDENCY_LEN)?;
                    let mut version = [0u8; 8];
                    version.copy_from_slice(&tlv.value[4..12]);
                    dependencies.push(Dependency {
                        image_id: tlv.value[0],
                        min_version: ImageVersion::from_le_bytes(version),
                    });
                }
                TlvKind::SecCnt if security_counter.is_none() => {
                    expect_len(tlv, 4)?;
                    let v = &tlv.value;
                    security_counter = Some(u32::from_le_bytes([v[0], v[1], v[2], v[3]]));
                }
                _ => {}
            }
        }

        let encrypted = header.flags.0 & (HeaderFlags::ENCRYPTED_AES128 | HeaderFlags::ENCRYPTED_AES256) != 0;
        if !encrypted {
            let computed = hash_kind.digest(&bytes[..hashed_end]);
            if computed != hash {
                return Err(ImageError::HashMismatch { stored: hash, computed });
            }
        }

        Ok(Image {
            bytes,
            header,
            protected,
            tlvs,
            hash,
            hash_kind,
            hash_verified: !encrypted,
            dependencies,
            security_counter,
        })
    }

    /// The decoded header.
    pub fn header(&self) -> &ImageHeader {
        &self.header
    }

    /// The image version from the header.
    pub fn version(&self) -> ImageVersion {
        self.header.version
    }

    /// The image hash from the hash TLV: what a device lists in its image state and what
    /// `image test`/`confirm` take. 32 bytes for SHA-256, 48 or 64 for the others.
    pub fn hash(&self) -> &[u8] {
        self.hash.as_bytes()
    }

    /// [`Image::hash`] as an [`ImageHash`], which knows its kind and prints as hex.
    pub fn image_hash(&self) -> ImageHash {
        self.hash.clone()
    }

    /// [`Image::hash`] as lowercase hex.
    pub fn hash_hex(&self) -> String {
        self.hash.to_string()
    }

    /// Which digest the hash TLV holds.
    pub fn hash_kind(&self) -> HashKind {
        self.hash_kind
    }

    /// Whether the hash was checked against the contents; false only for encrypted images.
    pub fn hash_verified(&self) -> bool {
        self.hash_verified
    }

    /// The protected TLV area, if the image has one.
    pub fn protected_tlvs(&self) -> Option<&TlvArea> {
        self.protected.as_ref()
    }

    /// The unprotected TLV area.
    pub fn tlvs(&self) -> &TlvArea {
        &self.tlvs
    }

    /// Every TLV entry, protected ones first.
    pub fn all_tlvs(&self) -> impl Iterator<Item = &Tlv> {
        self.protected.iter().flat_map(|a| &a.entries).chain(&self.tlvs.entries)
    }

    /// The signature kind, from the first signature TLV.
    pub fn signature(&self) -> SignatureKind {
        let pure = self.all_tlvs().any(|t| t.kind == TlvKind::SigPure);
        self.tlvs
            .entries
            .iter()
            .find_map(|t| match t.kind {
                TlvKind::Rsa2048Pss => Some(SignatureKind::Rsa2048),
                TlvKind::Rsa3072Pss => Some(SignatureKind::Rsa3072),
                TlvKind::Ecdsa224 => Some(SignatureKind::EcdsaP224),
                TlvKind::EcdsaSig if t.value.len() <= ECDSA_P256_MAX_SIG_LEN => {
                    Some(SignatureKind::EcdsaP256)
                }
                TlvKind::EcdsaSig => Some(SignatureKind::EcdsaP384),
                TlvKind::Ed25519 if pure => Some(SignatureKind::Ed25519Pure),
                TlvKind::Ed25519 => Some(SignatureKind::Ed25519),
                _ => None,
            })
            .unwrap_or(SignatureKind::None)
    }

    /// Whether and how the body is encrypted.
    pub fn encryption(&self) -> Encryption {
        let flags = self.header.flags;
        let cipher = if flags.contains(HeaderFlags::ENCRYPTED_AES256) {
            Some(Cipher::Aes256)
        } else if flags.contains(HeaderFlags::ENCRYPTED_AES128) {
            Some(Cipher::Aes128)
        } else {
            None
        };
        let key_exchange = self.all_tlvs().find_map(|t| KeyExchange::from_tlv(t.kind));
        Encryption { cipher, key_exchange }
    }

    /// The images this one depends on.
    pub fn dependencies(&self) -> &[Dependency] {
        &self.dependencies
    }

    /// The security counter, if the image carries one.
    pub fn security_counter(&self) -> Option<u32> {
        self.security_counter
    }

    /// Bytes from the start of the header to the end of the unprotected TLV area.
    pub fn image_size(&self) -> usize {
        self.tlvs.end()
    }

    /// Bytes after the TLVs, such as the padding and trailer imgtool `--pad` adds.
    pub fn trailer_len(&self) -> usize {
        self.bytes.len() - self.image_size()
    }

    /// Whether the file ends with the boot magic imgtool `--pad` writes.
    ///
    /// Worth telling the user: MCUboot treats such an image in the secondary slot as a
    /// pending test upgrade as soon as it lands, without an `image test` command.
    pub fn has_boot_magic(&self) -> bool {
        let Some(trailer) = self.bytes.get(self.image_size()..) else {
            return false;
        };
        let Some(last) = trailer.len().checked_sub(BOOT_MAGIC.len()).map(|s| &trailer[s..]) else {
            return false;
        };
        last == BOOT_MAGIC || last[2..] == BOOT_MAGIC_ALIGNED_TAIL
    }

    /// The whole file, padding included: what upload tools send to the device.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Gives up the image for its bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Fails with [`ImageError::ImageTooLarge`] when the file would not fit in a slot of
    /// `slot_size` bytes.
    ///
    /// Only the file itself is counted: room a swap-mode device needs for its trailer is not,
    /// since its size depends on the device's flash and MCUboot configuration.
    pub fn check_fits(&self, slot_size: usize) -> Result<(), ImageError> {
        if self.bytes.len() > slot_size {
            return Err(ImageError::ImageTooLarge { size: self.bytes.len(), slot_size });
        }
        Ok(())
    }
}

/// A summary for `--json` output: everything [`Image`]'s accessors tell, but not the bytes.
impl Serialize for Image {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Image", 14)?;
        s.serialize_field("header", &self.header)?;
        s.serialize_field("version", &self.header.version)?;
        s.serialize_field("hash", &self.hash_hex())?;
        s.serialize_field("hash_kind", &self.hash_kind)?;
        s.serialize_field("hash_verified", &self.hash_verified)?;
        s.serialize_field("signature", &self.signature())?;
        s.serialize_field("encryption", &self.encryption())?;
        s.serialize_field("security_counter", &self.security_counter)?;
        s.serialize_field("dependencies", &self.dependencies)?;
        s.serialize_field("image_size", &self.image_size())?;
        s.serialize_field("file_size", &self.bytes.len())?;
        s.serialize_field("trailer_len", &self.trailer_len())?;
        s.serialize_field("boot_magic", &self.has_boot_magic())?;
        s.serialize_field("protected_tlvs", &self.protected)?;
        s.serialize_field("tlvs", &self.tlvs)?;
        s.end()
    }
}

fn expect_len(tlv: &Tlv, len: usize) -> Result<(), ImageError> {
    if tlv.value.len() != len {
        return Err(ImageError::TlvWrongLength {
            kind: tlv.kind,
            offset: tlv.offset,
            len: tlv.value.len(),
            expected: len,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const PROTECTED: &[u8] =
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/images/protected.bin"));

    #[test]
    fn fixture_parses() {
        let image = Image::parse(PROTECTED.to_vec()).unwrap();
        assert!(image.hash_verified());
        assert_eq!(image.security_counter(), Some(5));
    }

    #[test]
    fn aligned_boot_magic_is_recognised() {
        let mut bytes = PROTECTED.to_vec();
        bytes.extend_from_slice(&[0xff; 32]);
        bytes.extend_from_slice(&[0x10, 0x00]);
        bytes.extend_from_slice(&BOOT_MAGIC_ALIGNED_TAIL);
        let image = Image::parse(bytes).unwrap();
        assert!(image.has_boot_magic());
        assert_eq!(image.trailer_len(), 48);
    }

    #[test]
    fn short_trailer_has_no_boot_magic() {
        let mut bytes = PROTECTED.to_vec();
        bytes.extend_from_slice(&BOOT_MAGIC[4..]);
        let image = Image::parse(bytes).unwrap();
        assert!(!image.has_boot_magic());
        assert_eq!(image.trailer_len(), 12);
    }

    #[test]
    fn bad_dependency_length_is_bad_tlv() {
        let mut bytes = PROTECTED.to_vec();
        let image = Image::parse(bytes.clone()).unwrap();
        let counter = image.all_tlvs().find(|t| t.kind == TlvKind::SecCnt).unwrap();
        // Re-label the 4-byte counter as a 12-byte dependency; the area itself still adds up.
        let at = counter.offset;
        bytes[at] = 0x40;
        let err = Image::parse(bytes).unwrap_err();
        assert!(
            matches!(err, ImageError::TlvWrongLength { kind: TlvKind::Dependency, offset, len: 4, expected: 12 } if offset == at),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("malformed TLV area: DEPENDENCY entry at {at:#x} is 4 bytes, expected 12")
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = Image::parse(bytes);
        }

        #[test]
        fn arbitrary_bytes_after_magic_never_panic(
            rest in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let mut bytes = 0x96f3_b83du32.to_le_bytes().to_vec();
            bytes.extend(rest);
            let _ = Image::parse(bytes);
        }

        #[test]
        fn mutated_fixture_never_panics(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..16),
            cut in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let mut bytes = PROTECTED.to_vec();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len()));
            }
            let _ = Image::parse(bytes);
        }

        #[test]
        fn mutated_size_fields_never_panic(
            hdr_size in any::<u16>(),
            protect in any::<u16>(),
            img_size in any::<u32>(),
        ) {
            let mut bytes = PROTECTED.to_vec();
            bytes[8..10].copy_from_slice(&hdr_size.to_le_bytes());
            bytes[10..12].copy_from_slice(&protect.to_le_bytes());
            bytes[12..16].copy_from_slice(&img_size.to_le_bytes());
            let _ = Image::parse(bytes);
        }

        #[test]
        fn mutated_tlv_lengths_never_panic(
            which in any::<prop::sample::Index>(),
            len in any::<u16>(),
        ) {
            let mut bytes = PROTECTED.to_vec();
            let image = Image::parse(bytes.clone()).unwrap();
            let tlvs: Vec<usize> = image.all_tlvs().map(|t| t.offset).collect();
            let at = tlvs[which.index(tlvs.len())] + 2;
            bytes[at..at + 2].copy_from_slice(&len.to_le_bytes());
            let _ = Image::parse(bytes);
        }
    }
}
