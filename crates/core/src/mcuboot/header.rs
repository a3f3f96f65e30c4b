//! The fixed 32-byte header at the start of every MCUboot image.

use std::fmt;

use serde::{Serialize, Serializer};

use super::error::ImageError;

/// The magic number that opens every MCUboot image (`IMAGE_MAGIC`).
pub const IMAGE_MAGIC: u32 = 0x96f3_b83d;

/// Size of the header structure itself; `hdr_size` may be larger when imgtool pads it.
pub const HEADER_LEN: usize = 32;

/// An image version as MCUboot compares it: major, minor, revision, then build number.
///
/// Ordering follows field order, which matches how MCUboot decides whether an upgrade is newer
/// (when it is built to look at the build number at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ImageVersion {
    /// Major version.
    pub major: u8,
    /// Minor version.
    pub minor: u8,
    /// Revision.
    pub revision: u16,
    /// Build number.
    pub build_num: u32,
}

impl ImageVersion {
    /// Decodes the 8-byte little-endian version structure used by the header and by
    /// dependency TLVs.
    pub fn from_le_bytes(bytes: [u8; 8]) -> Self {
        ImageVersion {
            major: bytes[0],
            minor: bytes[1],
            revision: u16::from_le_bytes([bytes[2], bytes[3]]),
            build_num: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }
}

/// Formats like imgtool's `--version` argument, `major.minor.revision+build`, so what the user
/// passed when signing is what they see.
impl fmt::Display for ImageVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}+{}", self.major, self.minor, self.revision, self.build_num)
    }
}

/// Serialized as its display string, the form people and imgtool's own JSON use.
impl Serialize for ImageVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The header's `ih_flags` word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HeaderFlags(pub u32);

impl HeaderFlags {
    /// Position-independent code.
    pub const PIC: u32 = 0x01;
    /// Body encrypted with AES-128.
    pub const ENCRYPTED_AES128: u32 = 0x04;
    /// Body encrypted with AES-256.
    pub const ENCRYPTED_AES256: u32 = 0x08;
    /// Image that MCUboot must not boot, e.g. a payload for another processor.
    pub const NON_BOOTABLE: u32 = 0x10;
    /// Image is copied to RAM at `load_addr` before it runs.
    pub const RAM_LOAD: u32 = 0x20;
    /// Image is built for the fixed flash address in `load_addr`.
    pub const ROM_FIXED: u32 = 0x100;
    /// Body compressed with LZMA1.
    pub const COMPRESSED_LZMA1: u32 = 0x200;
    /// Body compressed with LZMA2.
    pub const COMPRESSED_LZMA2: u32 = 0x400;
    /// Body compressed with the ARM Thumb filter before LZMA.
    pub const COMPRESSED_ARM_THUMB_FLT: u32 = 0x800;

    const NAMED: [(u32, &'static str); 9] = [
        (Self::PIC, "PIC"),
        (Self::ENCRYPTED_AES128, "ENCRYPTED_AES128"),
        (Self::ENCRYPTED_AES256, "ENCRYPTED_AES256"),
        (Self::NON_BOOTABLE, "NON_BOOTABLE"),
        (Self::RAM_LOAD, "RAM_LOAD"),
        (Self::ROM_FIXED, "ROM_FIXED"),
        (Self::COMPRESSED_LZMA1, "COMPRESSED_LZMA1"),
        (Self::COMPRESSED_LZMA2, "COMPRESSED_LZMA2"),
        (Self::COMPRESSED_ARM_THUMB_FLT, "COMPRESSED_ARM_THUMB_FLT"),
    ];

    /// The raw flag word.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `flag` (one of the associated constants) is set.
    pub fn contains(self, flag: u32) -> bool {
        self.0 & flag == flag
    }

    /// MCUboot's name for each set bit, lowest first; bits MCUboot does not define come out as
    /// `unknown (0x…)` so that nothing set goes unmentioned.
    pub fn names(self) -> Vec<String> {
        (0..32)
            .map(|bit| 1u32 << bit)
            .filter(|&mask| self.0 & mask != 0)
            .map(|mask| {
                Self::NAMED
                    .iter()
                    .find(|(value, _)| *value == mask)
                    .map(|(_, name)| (*name).to_owned())
                    .unwrap_or_else(|| format!("unknown ({mask:#x})"))
            })
            .collect()
    }
}

/// Lists the names joined by `|`, or `none`, the way a summary line wants them.
impl fmt::Display for HeaderFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join("|"))
        }
    }
}

/// Serialized with both the raw word and the names, so JSON readers need no flag table.
impl Serialize for HeaderFlags {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("HeaderFlags", 2)?;
        s.serialize_field("bits", &self.0)?;
        s.serialize_field("names", &self.names())?;
        s.end()
    }
}

/// The decoded image header (`struct image_header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImageHeader {
    /// Address the image runs from, for RAM-load and ROM-fixed images; 0 otherwise.
    pub load_addr: u32,
    /// Offset of the body: the header plus any padding imgtool added.
    pub hdr_size: u16,
    /// Length of the protected TLV area, 0 when there is none.
    pub protect_tlv_size: u16,
    /// Length of the body.
    pub img_size: u32,
    /// Header flags.
    pub flags: HeaderFlags,
    /// Image version.
    pub version: ImageVersion,
}

impl ImageHeader {
    /// Decodes the header at the start of `bytes`.
    ///
    /// Fails with [`ImageError::NotMcubootImage`] when the magic is absent (including files too
    /// short to hold it) and with [`ImageError::TruncatedImage`] when the magic is there but the
    /// rest of the header is not.
    pub fn parse(bytes: &[u8]) -> Result<ImageHeader, ImageError> {
        let mut magic = [0u8; 4];
        let have = bytes.len().min(4);
        magic[..have].copy_from_slice(&bytes[..have]);
        let found = u32::from_le_bytes(magic);
        if have < 4 || found != IMAGE_MAGIC {
            return Err(ImageError::NotMcubootImage { found });
        }
        let Some(h) = bytes.get(..HEADER_LEN) else {
            return Err(ImageError::TruncatedImage {
                what: "image header",
                needed: HEADER_LEN,
                actual: bytes.len(),
            });
        };
        let u16_at = |at: usize| u16::from_le_bytes([h[at], h[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let mut version = [0u8; 8];
        version.copy_from_slice(&h[20..28]);
        Ok(ImageHeader {
            load_addr: u32_at(4),
            hdr_size: u16_at(8),
            protect_tlv_size: u16_at(10),
            img_size: u32_at(12),
            flags: HeaderFlags(u32_at(16)),
            version: ImageVersion::from_le_bytes(version),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_displays_like_imgtool() {
        let v = ImageVersion::from_le_bytes([1, 2, 3, 0, 4, 0, 0, 0]);
        assert_eq!(v.to_string(), "1.2.3+4");
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"1.2.3+4\"");
    }

    #[test]
    fn versions_order_like_mcuboot() {
        let a = ImageVersion { major: 1, minor: 2, revision: 3, build_num: 9 };
        let b = ImageVersion { major: 1, minor: 3, revision: 0, build_num: 0 };
        assert!(a < b);
    }

    #[test]
    fn flag_names_include_unknown_bits() {
        let flags = HeaderFlags(HeaderFlags::RAM_LOAD | HeaderFlags::NON_BOOTABLE | 0x8000);
        assert_eq!(flags.names(), ["NON_BOOTABLE", "RAM_LOAD", "unknown (0x8000)"]);
        assert_eq!(flags.to_string(), "NON_BOOTABLE|RAM_LOAD|unknown (0x8000)");
        assert_eq!(HeaderFlags(0).to_string(), "none");
    }

    #[test]
    fn short_inputs_are_told_apart() {
        assert!(matches!(ImageHeader::parse(&[]), Err(ImageError::NotMcubootImage { found: 0 })));
        assert!(matches!(
            ImageHeader::parse(&[0x3d, 0xb8, 0xf3, 0x96, 0, 0]),
            Err(ImageError::TruncatedImage { needed: 32, actual: 6, .. })
        ));
    }
}
