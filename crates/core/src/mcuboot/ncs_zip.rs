//! nRF Connect SDK DFU packages (`dfu_application.zip`): a `manifest.json` naming one MCUboot
//! image per updatable core.

use std::io::{Cursor, Read};

use serde_json::Value;

use super::error::ImageError;
use super::image::Image;
use super::PackageImage;

/// Largest entry read from a package; far beyond any slot, it only guards against zip bombs.
pub const MAX_ENTRY_LEN: u64 = 64 * 1024 * 1024;

const MANIFEST: &str = "manifest.json";

/// Reads every image a DFU package's manifest lists, sorted by image index.
///
/// # Errors
/// [`ImageError::PackageNotZip`] for an unreadable zip; [`ImageError::ManifestMissing`],
/// [`ImageError::ManifestJson`] and the other `Manifest*` variants for a missing or unusable
/// manifest; [`ImageError::PackageEntryMissing`] for a listed file that is absent,
/// [`ImageError::DuplicateImageIndex`] for two files claiming one image index, the other
/// `PackageEntry*` variants for an entry that cannot be read; [`ImageError::PackageEntry`]
/// wrapping the image error when a listed file is not a valid MCUboot image.
pub fn read_dfu_zip(bytes: &[u8]) -> Result<Vec<PackageImage>, ImageError> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|source| ImageError::PackageNotZip { source })?;

    let manifest = read_entry(&mut archive, MANIFEST).map_err(|e| match e {
        EntryError::Missing => ImageError::ManifestMissing,
        EntryError::Other(e) => e,
    })?;
    let manifest: Value =
        serde_json::from_slice(&manifest).map_err(|source| ImageError::ManifestJson { source })?;

    if let Some(v) = manifest.get("format-version") {
        match number(v) {
            Some(0 | 1) => {}
            _ => return Err(ImageError::ManifestFormatVersion { found: v.clone() }),
        }
    }
    let files = manifest.get("files").and_then(Value::as_array).ok_or(ImageError::ManifestNoFilesList)?;
    if files.is_empty() {
        return Err(ImageError::ManifestNoImages);
    }

    let mut images: Vec<PackageImage> = Vec::with_capacity(files.len());
    for (n, entry) in files.iter().enumerate() {
        let file =
            entry.get("file").and_then(Value::as_str).ok_or(ImageError::ManifestEntryUnnamed { index: n })?;
        let image_index = image_index(entry, file)?;
        if let Some(other) = images.iter().find(|i| i.image_index == image_index) {
            return Err(ImageError::DuplicateImageIndex {
                image_index,
                first: other.name.clone(),
                second: file.to_owned(),
            });
        }
        let bytes = read_entry(&mut archive, file).map_err(|e| match e {
            EntryError::Missing => ImageError::PackageEntryMissing { name: file.to_owned() },
            EntryError::Other(e) => e,
        })?;
        let image = Image::parse(bytes)
            .map_err(|e| ImageError::PackageEntry { entry: file.to_owned(), source: Box::new(e) })?;
        images.push(PackageImage {
            image_index,
            name: file.to_owned(),
            address: entry.get("load_address").and_then(number).and_then(|a| u32::try_from(a).ok()),
            image,
        });
    }
    images.sort_by_key(|i| i.image_index);
    Ok(images)
}

/// Format-version 0 manifests may leave the index out; NCS then meant the application core
/// for the application and image 1 for the network core.
fn image_index(entry: &Value, file: &str) -> Result<u32, ImageError> {
    match entry.get("image_index") {
        Some(v) => number(v)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| ImageError::ManifestBadImageIndex { file: file.to_owned(), value: v.clone() }),
        None => {
            let kind = entry.get("type").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
            Ok(u32::from(kind.contains("net")))
        }
    }
}

/// NCS writes numbers sometimes as JSON numbers and sometimes as strings, decimal or `0x` hex.
fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim();
            match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            }
        }
        _ => None,
    }
}

enum EntryError {
    Missing,
    Other(ImageError),
}

fn read_entry(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
) -> std::result::Result<Vec<u8>, EntryError> {
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Err(EntryError::Missing),
        Err(source) => {
            return Err(EntryError::Other(ImageError::PackageEntryUnreadable {
                name: name.to_owned(),
                source,
            }))
        }
    };
    if entry.size() > MAX_ENTRY_LEN {
        return Err(EntryError::Other(ImageError::PackageEntryTooLarge {
            name: name.to_owned(),
            len: entry.size(),
            max: MAX_ENTRY_LEN,
        }));
    }
    let mut bytes = Vec::new();
    // The declared size is not trusted: the limit also applies to what inflates.
    entry.take(MAX_ENTRY_LEN + 1).read_to_end(&mut bytes).map_err(|source| {
        EntryError::Other(ImageError::PackageEntryRead { name: name.to_owned(), source })
    })?;
    if bytes.len() as u64 > MAX_ENTRY_LEN {
        return Err(EntryError::Other(ImageError::PackageEntryInflatesTooLarge {
            name: name.to_owned(),
            max: MAX_ENTRY_LEN,
        }));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_come_in_many_spellings() {
        assert_eq!(number(&serde_json::json!(65536)), Some(65536));
        assert_eq!(number(&serde_json::json!("65536")), Some(65536));
        assert_eq!(number(&serde_json::json!("0x10000")), Some(65536));
        assert_eq!(number(&serde_json::json!("x")), None);
        assert_eq!(number(&serde_json::json!(-1)), None);
    }

    #[test]
    fn index_defaults_follow_the_core() {
        let app = serde_json::json!({"type": "application"});
        let net = serde_json::json!({"type": "NETWORK"});
        assert_eq!(image_index(&app, "a").unwrap(), 0);
        assert_eq!(image_index(&net, "n").unwrap(), 1);
        let bad = serde_json::json!({"image_index": "one"});
        let err = image_index(&bad, "b").unwrap_err();
        assert!(
            matches!(&err, ImageError::ManifestBadImageIndex { file, value } if file == "b" && value == "one"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "bad DFU package: manifest.json: b has a bad image_index \"one\"");
    }

    #[test]
    fn garbage_is_bad_package() {
        let err = read_dfu_zip(b"PK\x03\x04nonsense").unwrap_err();
        assert!(matches!(err, ImageError::PackageNotZip { .. }), "{err:?}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
