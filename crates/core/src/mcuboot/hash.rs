//! The image hash: the digest in an image's hash TLV, the value devices list in their image
//! state and take in `image test`/`confirm`.

use std::fmt;

use serde::{Serialize, Serializer};

use super::image::HashKind;

/// An image hash of one of the [`HashKind`]s: 32 bytes for SHA-256, 48 for SHA-384, 64 for
/// SHA-512.
///
/// Displayed, debug-printed and serialized as lowercase hex, the way `imgtool` and device
/// image lists show it. The digest lives on the heap so that errors holding two of them stay
/// small.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageHash {
    kind: HashKind,
    /// Exactly `kind.digest_len()` bytes.
    digest: Box<[u8]>,
}

impl ImageHash {
    /// A hash of `kind` from its digest bytes; `None` when `digest` is not
    /// [`HashKind::digest_len`] bytes long.
    pub fn new(kind: HashKind, digest: &[u8]) -> Option<ImageHash> {
        if digest.len() != kind.digest_len() {
            return None;
        }
        Some(ImageHash { kind, digest: digest.into() })
    }

    /// A SHA-256 image hash, the kind nearly every device uses.
    pub fn sha256(digest: [u8; 32]) -> ImageHash {
        ImageHash { kind: HashKind::Sha256, digest: Box::new(digest) }
    }

    /// Which digest this is.
    pub fn kind(&self) -> HashKind {
        self.kind
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.digest
    }
}

impl AsRef<[u8]> for ImageHash {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Lowercase hex of the digest.
impl fmt::Display for ImageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_bytes().iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Lowercase hex of the digest, like [`Display`](fmt::Display), so a failed assertion or a
/// `{:?}` of an error shows the hash people compare.
impl fmt::Debug for ImageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Serialized as its lowercase hex string.
impl Serialize for ImageHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_debugs_and_serializes_as_lowercase_hex() {
        let mut digest = [0u8; 32];
        digest[0] = 0xAB;
        digest[31] = 0x01;
        let hash = ImageHash::sha256(digest);
        let hex = format!("ab{}01", "00".repeat(30));
        assert_eq!(hash.to_string(), hex);
        assert_eq!(format!("{hash:?}"), hex);
        assert_eq!(serde_json::to_value(&hash).unwrap(), serde_json::Value::String(hex));
        assert_eq!(hash.as_bytes(), digest);
        assert_eq!(hash.kind(), HashKind::Sha256);
    }

    #[test]
    fn length_must_match_the_kind() {
        assert!(ImageHash::new(HashKind::Sha384, &[0; 32]).is_none());
        let h = ImageHash::new(HashKind::Sha384, &[7; 48]).unwrap();
        assert_eq!(h.as_bytes(), [7; 48]);
        assert_eq!(h.to_string().len(), 96);
        assert_ne!(ImageHash::new(HashKind::Sha256, &[0; 32]), ImageHash::new(HashKind::Sha512, &[0; 64]));
    }
}
