//! Reading the image in a slot the way img_mgmt does (header and hash TLV, no verification),
//! validating it the way MCUboot does before it boots or swaps, and building factory images.

use sha2::{Digest, Sha256};
use smpflash_core::mcuboot::tlv::{TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC};
use smpflash_core::mcuboot::{HeaderFlags, ImageHeader, ImageVersion, Tlv, TlvArea, TlvKind, IMAGE_MAGIC};

use crate::image::keys::SigningKey;

/// Header flags of an encrypted body (AES-128 or AES-256): the virtual bootloader holds no
/// decryption key, so it refuses either.
const ENCRYPTED: u32 = HeaderFlags::ENCRYPTED_AES128 | HeaderFlags::ENCRYPTED_AES256;

/// What img_mgmt reads from a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotImage {
    /// Header version.
    pub version: ImageVersion,
    /// The SHA-256 TLV value.
    pub hash: [u8; 32],
    /// Header flags.
    pub flags: u32,
    /// Bytes from the header to the end of the TLVs.
    pub total_len: usize,
    /// Header fields.
    pub header: ImageHeader,
}

impl SlotImage {
    /// Whether the header allows booting.
    pub fn bootable(&self) -> bool {
        self.flags & HeaderFlags::NON_BOOTABLE == 0
    }
}

/// Reads header and hash TLV from the start of `bytes`, as `img_mgmt_read_info` does; `None`
/// when there is no image (no magic, TLVs unreadable, or no hash).
pub fn read_info(bytes: &[u8]) -> Option<SlotImage> {
    let header = ImageHeader::parse(bytes).ok()?;
    let (_, area) = tlv_areas(bytes, &header)?;
    let sha = area.entries.iter().find(|t| t.kind == TlvKind::Sha256)?;
    let hash: [u8; 32] = sha.value.as_slice().try_into().ok()?;
    Some(SlotImage {
        version: header.version,
        hash,
        flags: header.flags.bits(),
        total_len: area.end(),
        header,
    })
}

/// The protected (if any) and unprotected TLV areas after the image body.
fn tlv_areas(bytes: &[u8], header: &ImageHeader) -> Option<(Option<TlvArea>, TlvArea)> {
    let body_end = header.hdr_size as usize + header.img_size as usize;
    let prot = match header.protect_tlv_size {
        0 => None,
        _ => Some(TlvArea::parse(bytes, body_end, TLV_PROT_INFO_MAGIC).ok()?),
    };
    let area = TlvArea::parse(bytes, prot.as_ref().map_or(body_end, |p| p.end()), TLV_INFO_MAGIC).ok()?;
    Some((prot, area))
}

/// Why MCUboot refused an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// No header magic.
    #[error("no MCUboot header")]
    NoHeader,
    /// TLVs missing or unreadable.
    #[error("no hash TLV")]
    NoHash,
    /// Image does not fit the slot's usable area.
    #[error("image of {size} bytes exceeds the {max} bytes usable in the slot")]
    TooLarge {
        /// Image size.
        size: usize,
        /// Usable bytes.
        max: usize,
    },
    /// The hash TLV does not match the contents.
    #[error("hash TLV does not match the image contents")]
    HashMismatch,
    /// Encrypted, but the bootloader holds no key.
    #[error("image is encrypted and this bootloader has no decryption key")]
    Encrypted,
    /// Older than the running image while downgrades are prevented.
    #[error("version {new} is older than the running {running} and downgrades are prevented")]
    Downgrade {
        /// Candidate version.
        new: ImageVersion,
        /// Running version.
        running: ImageVersion,
    },
    /// The bootloader holds a key and the image carries no signature at all.
    #[error("image has no signature but the bootloader requires one")]
    Unsigned,
    /// Signed, but no signature is by the bootloader's key.
    #[error(
        "image was signed with a key this bootloader does not hold (key hash {})",
        .key_hash.as_deref().unwrap_or("missing")
    )]
    UnknownKey {
        /// The image's KEYHASH TLV in hex, if it has one.
        key_hash: Option<String>,
    },
    /// Signed with the bootloader's key, but the signature does not verify.
    #[error("image signature does not verify with the bootloader's key")]
    BadSignature,
}

/// Validates the image at the start of `bytes` as MCUboot's `boot_image_check` does: header,
/// size, hash TLV recomputed over header + body + protected TLVs. Signatures are not looked at,
/// as in a bootloader built without a key; see [`validate_signed`].
pub fn validate(bytes: &[u8], max_size: usize) -> Result<SlotImage, Invalid> {
    validate_signed(bytes, max_size, None)
}

/// [`validate`], and with a `key` also the signature, as MCUboot built with that key does.
pub fn validate_signed(
    bytes: &[u8],
    max_size: usize,
    key: Option<&SigningKey>,
) -> Result<SlotImage, Invalid> {
    let header = ImageHeader::parse(bytes).map_err(|_| Invalid::NoHeader)?;
    let info = read_info(bytes).ok_or(Invalid::NoHash)?;
    if info.total_len > max_size {
        return Err(Invalid::TooLarge { size: info.total_len, max: max_size });
    }
    if info.flags & ENCRYPTED != 0 {
        return Err(Invalid::Encrypted);
    }
    let hashed = header.hdr_size as usize + header.img_size as usize + header.protect_tlv_size as usize;
    let digest: [u8; 32] = Sha256::digest(&bytes[..hashed]).into();
    if digest != info.hash {
        return Err(Invalid::HashMismatch);
    }
    if let Some(key) = key {
        check_signature(bytes, &header, &info.hash, key)?;
    }
    Ok(info)
}

/// Walks the TLVs (protected, then unprotected) as `bootutil_img_validate` does: a KEYHASH
/// selects the key for the signature TLV after it, a signature whose key the bootloader does
/// not hold is skipped, and the last signature checked with the bootloader's key decides.
fn check_signature(
    bytes: &[u8],
    header: &ImageHeader,
    hash: &[u8; 32],
    key: &SigningKey,
) -> Result<(), Invalid> {
    let (prot, area) = tlv_areas(bytes, header).ok_or(Invalid::NoHash)?;
    let ours = key.key_hash();
    let mut selected = false;
    let mut verdict = None;
    let mut signed = false;
    let mut foreign_key = None;
    for tlv in prot.iter().flat_map(|a| &a.entries).chain(&area.entries) {
        match tlv.kind {
            TlvKind::KeyHash => {
                selected = tlv.value == ours;
                if !selected {
                    foreign_key.get_or_insert_with(|| hex::encode(&tlv.value));
                }
            }
            kind if kind == key.signature_tlv() => {
                signed = true;
                if selected {
                    verdict = Some(key.verify(hash, &tlv.value));
                }
                selected = false;
            }
            _ => signed |= is_signature(tlv),
        }
    }
    match verdict {
        Some(true) => Ok(()),
        Some(false) => Err(Invalid::BadSignature),
        None if signed => Err(Invalid::UnknownKey { key_hash: foreign_key }),
        None => Err(Invalid::Unsigned),
    }
}

/// Any signature TLV, including kinds a bootloader built for another algorithm ignores.
fn is_signature(tlv: &Tlv) -> bool {
    matches!(
        tlv.kind,
        TlvKind::Rsa2048Pss | TlvKind::Rsa3072Pss | TlvKind::Ecdsa224 | TlvKind::EcdsaSig | TlvKind::Ed25519
    )
}

/// Builds a hash-only MCUboot image (what `imgtool sign` makes without a key): the virtual
/// device's factory firmware.
pub fn build(version: ImageVersion, body: &[u8]) -> Vec<u8> {
    let hdr_size = 32u16;
    let mut out = Vec::with_capacity(32 + body.len() + 40);
    out.extend_from_slice(&IMAGE_MAGIC.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // load_addr
    out.extend_from_slice(&hdr_size.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // protect_tlv_size
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // flags
    out.push(version.major);
    out.push(version.minor);
    out.extend_from_slice(&version.revision.to_le_bytes());
    out.extend_from_slice(&version.build_num.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // pad
    out.extend_from_slice(body);
    let hash: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&TLV_INFO_MAGIC.to_le_bytes());
    out.extend_from_slice(&(4u16 + 4 + 32).to_le_bytes());
    out.extend_from_slice(&TlvKind::Sha256.code().to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(&hash);
    out
}

/// Adds the KEYHASH and signature TLVs `imgtool sign -k` writes, so the virtual factory
/// firmware passes the same check as updates when the bootloader holds a key; `None` without
/// the private half or a readable image.
pub fn sign(image: &[u8], key: &SigningKey) -> Option<Vec<u8>> {
    let info = read_info(image)?;
    let signature = key.sign(&info.hash)?;
    let header = &info.header;
    let tlv_off = header.hdr_size as usize + header.img_size as usize + header.protect_tlv_size as usize;
    let mut out = image[..info.total_len].to_vec();
    for (kind, value) in [(TlvKind::KeyHash, &key.key_hash()[..]), (key.signature_tlv(), &signature[..])] {
        out.extend_from_slice(&kind.code().to_le_bytes());
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        out.extend_from_slice(value);
    }
    let total = u16::try_from(out.len() - tlv_off).ok()?;
    out[tlv_off + 2..tlv_off + 4].copy_from_slice(&total.to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_images_read_and_validate() {
        let v = ImageVersion { major: 1, minor: 2, revision: 3, build_num: 4 };
        let img = build(v, &[0xAB; 1000]);
        let info = validate(&img, 4096).unwrap();
        assert_eq!(info.version, v);
        assert_eq!(info.total_len, img.len());
        // the core's full reader agrees
        let parsed = smpflash_core::mcuboot::Image::parse(img.clone()).unwrap();
        assert_eq!(parsed.hash(), &info.hash);
        let mut bad = img.clone();
        bad[100] ^= 1;
        assert_eq!(validate(&bad, 4096), Err(Invalid::HashMismatch));
        assert_eq!(validate(&img, 500), Err(Invalid::TooLarge { size: img.len(), max: 500 }));
        assert_eq!(validate(&[0xFF; 64], 4096), Err(Invalid::NoHeader));
        assert!(read_info(&[0xFF; 64]).is_none());
    }
}
