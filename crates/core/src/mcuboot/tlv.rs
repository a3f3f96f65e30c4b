//! The type-length-value areas that follow the image body.

use std::fmt;

use serde::{Serialize, Serializer};

use super::error::ImageError;

/// Magic of the unprotected TLV area, which holds the hash and signature.
pub const TLV_INFO_MAGIC: u16 = 0x6907;

/// Magic of the protected TLV area, which is covered by the hash and signature.
pub const TLV_PROT_INFO_MAGIC: u16 = 0x6908;

/// Length of the info header that opens each area and of each entry's header.
const INFO_LEN: usize = 4;

/// What a TLV entry holds, from its type code (`IMAGE_TLV_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlvKind {
    /// Hash of the public key the image was signed with.
    KeyHash,
    /// The full public key the image was signed with.
    PubKey,
    /// SHA-256 of header, body and protected TLVs.
    Sha256,
    /// SHA-384 of header, body and protected TLVs.
    Sha384,
    /// SHA-512 of header, body and protected TLVs.
    Sha512,
    /// RSA-2048 PSS signature.
    Rsa2048Pss,
    /// ECDSA P-224 signature (legacy).
    Ecdsa224,
    /// ECDSA signature, P-256 or P-384 (DER encoded).
    EcdsaSig,
    /// RSA-3072 PSS signature.
    Rsa3072Pss,
    /// Ed25519 signature.
    Ed25519,
    /// Marks the signature as made over the image itself rather than its hash.
    SigPure,
    /// Image key encrypted with RSA-OAEP (2048).
    EncRsa2048,
    /// Image key wrapped with AES key wrap.
    EncKw,
    /// Image key exchanged with ECIES over P-256.
    EncEc256,
    /// Image key exchanged with ECIES over X25519.
    EncX25519,
    /// Image key exchanged with ECIES over X25519, HMAC-SHA512.
    EncX25519Sha512,
    /// Minimum version required of another image.
    Dependency,
    /// Security counter for rollback protection.
    SecCnt,
    /// CBOR boot record for measured boot.
    BootRecord,
    /// Size of the body once decompressed.
    DecompSize,
    /// Hash of the body once decompressed.
    DecompSha,
    /// Signature over the decompressed body.
    DecompSignature,
    /// A type this reader does not know, such as an imgtool `--custom-tlv`: kept, not refused,
    /// because MCUboot itself skips types it does not look for.
    Unknown(u16),
}

const KINDS: [(u16, TlvKind, &str); 22] = [
    (0x01, TlvKind::KeyHash, "KEYHASH"),
    (0x02, TlvKind::PubKey, "PUBKEY"),
    (0x10, TlvKind::Sha256, "SHA256"),
    (0x11, TlvKind::Sha384, "SHA384"),
    (0x12, TlvKind::Sha512, "SHA512"),
    (0x20, TlvKind::Rsa2048Pss, "RSA2048_PSS"),
    (0x21, TlvKind::Ecdsa224, "ECDSA224"),
    (0x22, TlvKind::EcdsaSig, "ECDSA_SIG"),
    (0x23, TlvKind::Rsa3072Pss, "RSA3072_PSS"),
    (0x24, TlvKind::Ed25519, "ED25519"),
    (0x25, TlvKind::SigPure, "SIG_PURE"),
    (0x30, TlvKind::EncRsa2048, "ENC_RSA2048"),
    (0x31, TlvKind::EncKw, "ENC_KW"),
    (0x32, TlvKind::EncEc256, "ENC_EC256"),
    (0x33, TlvKind::EncX25519, "ENC_X25519"),
    (0x34, TlvKind::EncX25519Sha512, "ENC_X25519_SHA512"),
    (0x40, TlvKind::Dependency, "DEPENDENCY"),
    (0x50, TlvKind::SecCnt, "SEC_CNT"),
    (0x60, TlvKind::BootRecord, "BOOT_RECORD"),
    (0x70, TlvKind::DecompSize, "DECOMP_SIZE"),
    (0x71, TlvKind::DecompSha, "DECOMP_SHA"),
    (0x72, TlvKind::DecompSignature, "DECOMP_SIGNATURE"),
];

impl TlvKind {
    /// The kind for a type code; never fails, unknown codes become [`TlvKind::Unknown`].
    pub fn from_code(code: u16) -> TlvKind {
        KINDS.iter().find(|(c, _, _)| *c == code).map(|(_, kind, _)| *kind).unwrap_or(TlvKind::Unknown(code))
    }

    /// The type code as stored in the image.
    pub fn code(self) -> u16 {
        match self {
            TlvKind::Unknown(code) => code,
            known => {
                KINDS.iter().find(|(_, kind, _)| *kind == known).map(|(code, _, _)| *code).unwrap_or_default()
            }
        }
    }

    /// MCUboot's name without the `IMAGE_TLV_` prefix, e.g. `SHA256`; `None` for unknown types.
    pub fn name(self) -> Option<&'static str> {
        KINDS.iter().find(|(_, kind, _)| *kind == self).map(|(_, _, name)| *name)
    }
}

/// The name, or `unknown (0xNN)` so an unfamiliar type is still identifiable.
impl fmt::Display for TlvKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown ({:#04x})", self.code()),
        }
    }
}

impl Serialize for TlvKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One TLV entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    /// What the entry holds.
    pub kind: TlvKind,
    /// Offset of the entry's own header within the image file.
    pub offset: usize,
    /// The value bytes.
    pub value: Vec<u8>,
}

/// Serialized with the numeric type next to the name and the value as hex, so JSON output
/// can be compared with `imgtool dumpinfo`.
impl Serialize for Tlv {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("Tlv", 5)?;
        s.serialize_field("type", &self.kind.code())?;
        s.serialize_field("name", &self.kind)?;
        s.serialize_field("offset", &self.offset)?;
        s.serialize_field("len", &self.value.len())?;
        s.serialize_field("value", &::hex::encode(&self.value))?;
        s.end()
    }
}

/// A TLV area: the 4-byte info header and the entries it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlvArea {
    /// Offset of the info header within the image file.
    pub offset: usize,
    /// The info magic: [`TLV_INFO_MAGIC`] or [`TLV_PROT_INFO_MAGIC`].
    pub magic: u16,
    /// Length of the whole area including the info header (`it_tlv_tot`).
    pub total_len: usize,
    /// The entries, in file order.
    pub entries: Vec<Tlv>,
}

impl TlvArea {
    /// Reads the area whose info header starts at `offset` in `image`, insisting on
    /// `expected_magic`.
    ///
    /// Fails with [`ImageError::TruncatedImage`] when the file ends inside the area,
    /// [`ImageError::BadTlvMagic`] on the wrong magic, [`ImageError::TlvAreaTooShort`] when the
    /// declared length cannot even hold the info header, and [`ImageError::TlvHeaderOverrun`] or
    /// [`ImageError::TlvEntryOverrun`] when the entries do not exactly fill the length the info
    /// header declares.
    pub fn parse(image: &[u8], offset: usize, expected_magic: u16) -> Result<TlvArea, ImageError> {
        let what_info = if expected_magic == TLV_PROT_INFO_MAGIC {
            "protected TLV info header"
        } else {
            "TLV info header"
        };
        let info = read(image, offset, INFO_LEN, what_info)?;
        let magic = u16::from_le_bytes([info[0], info[1]]);
        if magic != expected_magic {
            return Err(ImageError::BadTlvMagic { offset, found: magic, expected: expected_magic });
        }
        let total_len = usize::from(u16::from_le_bytes([info[2], info[3]]));
        if total_len < INFO_LEN {
            return Err(ImageError::TlvAreaTooShort { offset, total_len });
        }
        let what_area = if expected_magic == TLV_PROT_INFO_MAGIC { "protected TLV area" } else { "TLV area" };
        let area = read(image, offset, total_len, what_area)?;

        let mut entries = Vec::new();
        let mut pos = INFO_LEN;
        while pos < total_len {
            let at = offset + pos;
            let Some(head) = area.get(pos..pos + INFO_LEN) else {
                return Err(ImageError::TlvHeaderOverrun { offset: at, area_end: offset + total_len });
            };
            let code = u16::from_le_bytes([head[0], head[1]]);
            let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
            let start = pos + INFO_LEN;
            let Some(value) = area.get(start..start + len) else {
                return Err(ImageError::TlvEntryOverrun {
                    kind: TlvKind::from_code(code),
                    offset: at,
                    len,
                    area_end: offset + total_len,
                });
            };
            entries.push(Tlv { kind: TlvKind::from_code(code), offset: at, value: value.to_vec() });
            pos = start + len;
        }
        Ok(TlvArea { offset, magic, total_len, entries })
    }

    /// Whether this is the protected area.
    pub fn is_protected(&self) -> bool {
        self.magic == TLV_PROT_INFO_MAGIC
    }

    /// The first entry of a kind.
    pub fn find(&self, kind: TlvKind) -> Option<&Tlv> {
        self.entries.iter().find(|t| t.kind == kind)
    }

    /// Offset just past the area.
    pub fn end(&self) -> usize {
        self.offset + self.total_len
    }
}

fn read<'a>(image: &'a [u8], offset: usize, len: usize, what: &'static str) -> Result<&'a [u8], ImageError> {
    offset.checked_add(len).and_then(|end| image.get(offset..end)).ok_or(ImageError::TruncatedImage {
        what,
        needed: offset.saturating_add(len),
        actual: image.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(magic: u16, body: &[u8]) -> Vec<u8> {
        let mut v = magic.to_le_bytes().to_vec();
        v.extend_from_slice(&((body.len() + 4) as u16).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn kinds_round_trip_and_unknown_ones_are_named_by_code() {
        for (code, kind, name) in KINDS {
            assert_eq!(TlvKind::from_code(code), kind);
            assert_eq!(kind.code(), code);
            assert_eq!(kind.to_string(), name);
        }
        assert_eq!(TlvKind::from_code(0xa0).to_string(), "unknown (0xa0)");
        assert_eq!(TlvKind::from_code(0x1234).to_string(), "unknown (0x1234)");
        assert_eq!(TlvKind::from_code(0xa0).code(), 0xa0);
    }

    #[test]
    fn parses_entries_including_unknown_types() {
        let bytes = area(TLV_INFO_MAGIC, &[0x50, 0, 4, 0, 5, 0, 0, 0, 0xa0, 0, 1, 0, 9]);
        let a = TlvArea::parse(&bytes, 0, TLV_INFO_MAGIC).unwrap();
        assert_eq!(a.entries.len(), 2);
        assert_eq!(a.entries[0].kind, TlvKind::SecCnt);
        assert_eq!(a.entries[0].value, [5, 0, 0, 0]);
        assert_eq!(a.entries[1].kind, TlvKind::Unknown(0xa0));
        assert_eq!(a.entries[1].offset, 12);
        assert_eq!(a.end(), bytes.len());
    }

    #[test]
    fn overrunning_entries_are_bad_tlv() {
        let bytes = area(TLV_INFO_MAGIC, &[0x10, 0, 32, 0, 1, 2]);
        let err = TlvArea::parse(&bytes, 0, TLV_INFO_MAGIC).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::TlvEntryOverrun { kind: TlvKind::Sha256, offset: 4, len: 32, area_end: 10 }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "malformed TLV area: SHA256 entry at 0x4 declares 32 bytes, past the end of the TLV area at 0xa"
        );
        let bytes = area(TLV_INFO_MAGIC, &[0x10, 0]);
        let err = TlvArea::parse(&bytes, 0, TLV_INFO_MAGIC).unwrap_err();
        assert!(matches!(err, ImageError::TlvHeaderOverrun { offset: 4, area_end: 6 }), "{err:?}");
        assert!(err.to_string().starts_with("malformed TLV area: entry header at 0x4"), "{err}");
    }

    #[test]
    fn area_shorter_than_its_header_is_bad_tlv() {
        let bytes = [0x07, 0x69, 2, 0, 0, 0];
        let err = TlvArea::parse(&bytes, 0, TLV_INFO_MAGIC).unwrap_err();
        assert!(matches!(err, ImageError::TlvAreaTooShort { offset: 0, total_len: 2 }), "{err:?}");
    }

    #[test]
    fn wrong_magic_and_short_files_are_told_apart() {
        let bytes = area(TLV_INFO_MAGIC, &[]);
        assert!(matches!(
            TlvArea::parse(&bytes, 0, TLV_PROT_INFO_MAGIC),
            Err(ImageError::BadTlvMagic { found: TLV_INFO_MAGIC, expected: TLV_PROT_INFO_MAGIC, .. })
        ));
        let mut bytes = area(TLV_INFO_MAGIC, &[0x10, 0, 0, 0]);
        bytes.pop();
        assert!(matches!(
            TlvArea::parse(&bytes, 0, TLV_INFO_MAGIC),
            Err(ImageError::TruncatedImage { what: "TLV area", .. })
        ));
        assert!(matches!(
            TlvArea::parse(&bytes, 6, TLV_INFO_MAGIC),
            Err(ImageError::TruncatedImage { what: "TLV info header", .. })
        ));
    }
}
