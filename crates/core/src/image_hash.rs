//! The MCUboot image hash as a value: compared as bytes, printed as hex.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An MCUboot image hash (SHA-256, or SHA-384/512 for images that carry those).
///
/// It travels as a CBOR byte string in SMP messages and prints as lowercase hex in messages and
/// JSON: serialization asks the format whether it is human-readable, so one type serves both.
///
/// ```
/// use smpflash_core::ImageHash;
///
/// let h = ImageHash::from(vec![0xde, 0xad, 0xbe, 0xef]);
/// assert_eq!(h.to_string(), "deadbeef");
/// assert_eq!(serde_json::to_string(&h).unwrap(), "\"deadbeef\"");
/// assert_eq!(&h[..2], &[0xde, 0xad]);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct ImageHash(Vec<u8>);

impl ImageHash {
    /// The hash's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The first `n` bytes as hex, for tables where the whole hash does not fit.
    pub fn short(&self, n: usize) -> String {
        hex::encode(&self.0[..n.min(self.0.len())])
    }
}

impl From<Vec<u8>> for ImageHash {
    fn from(bytes: Vec<u8>) -> Self {
        ImageHash(bytes)
    }
}

impl From<&[u8]> for ImageHash {
    fn from(bytes: &[u8]) -> Self {
        ImageHash(bytes.to_vec())
    }
}

impl Deref for ImageHash {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for ImageHash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq<[u8]> for ImageHash {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == other
    }
}

impl fmt::Display for ImageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for ImageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageHash({self})")
    }
}

impl Serialize for ImageHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(&self.0))
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for ImageHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = String::deserialize(d)?;
            hex::decode(&text).map(ImageHash).map_err(serde::de::Error::custom)
        } else {
            serde_bytes::ByteBuf::deserialize(d).map(|b| ImageHash(b.into_vec()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_carries_bytes_and_json_carries_hex() {
        let h = ImageHash::from(vec![1, 2, 0xff]);
        let cbor = crate::cbor::to_vec(&h, "hash").unwrap();
        assert_eq!(cbor, [0x43, 1, 2, 0xff]);
        let back: ImageHash = crate::cbor::from_slice(&cbor, "hash").unwrap();
        assert_eq!(back, h);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, "\"0102ff\"");
        assert_eq!(serde_json::from_str::<ImageHash>(&json).unwrap(), h);
        assert!(serde_json::from_str::<ImageHash>("\"xyz\"").is_err());
    }
}
