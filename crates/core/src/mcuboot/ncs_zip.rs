//! nRF Connect SDK DFU packages (`dfu_application.zip`): a `manifest.json` naming one MCUboot
//! image per updatable core.

use std::io::{Cursor, Read};

use serde_json::Value;

use super::image::Image;
use super::PackageImage;
use crate::error::{Error, Result};

/// Largest entry read from a package; far beyond any slot, it only guards against zip bombs.
pub const MAX_ENTRY_LEN: u64 = 64 * 1024 * 1024;

const MANIFEST: &str = "manifest.json";

/// Reads every image a DFU package's manifest lists, sorted by image index.
///
/// # Errors
/// [`Error::BadPackage`] for an unreadable zip or manifest, a listed file that is absent or two
/// files claiming one image index; [`Error::PackageEntry`] wrapping the image error when a
/// listed file is not a valid MCUboot image.
pub fn read_dfu_zip(bytes: &[u8]) -> Result<Vec<PackageImage>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::BadPackage(format!("not a readable zip file: {e}")))?;

    let manifest = read_entry(&mut archive, MANIFEST).map_err(|e| match e {
        EntryError::Missing => {
            Error::BadPackage(format!("no {MANIFEST}: this zip is not an nRF Connect SDK DFU package"))
        }
        EntryError::Other(e) => e,
    })?;
    let manifest: Value = serde_json::from_slice(&manifest)
        .map_err(|e| Error::BadPackage(format!("{MANIFEST} is not valid JSON: {e}")))?;

    if let Some(v) = manifest.get("format-version") {
        match number(v) {
            Some(0 | 1) => {}
            _ => {
                return Err(Error::BadPackage(format!(
                    "{MANIFEST} has format-version {v}; only 0 and 1 are understood"
                )))
            }
        }
    }
    let files = manifest
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::BadPackage(format!("{MANIFEST} has no \"files\" list")))?;
    if files.is_empty() {
        return Err(Error::BadPackage(format!("{MANIFEST} lists no files")));
    }

    let mut images: Vec<PackageImage> = Vec::with_capacity(files.len());
    for (n, entry) in files.iter().enumerate() {
        let file = entry
            .get("file")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::BadPackage(format!("{MANIFEST} entry {n} has no \"file\" name")))?;
        let image_index = image_index(entry, file)?;
        if let Some(other) = images.iter().find(|i| i.image_index == image_index) {
            return Err(Error::BadPackage(format!(
                "{MANIFEST} gives image index {image_index} to both {} and {file}",
                other.name
            )));
        }
        let bytes = read_entry(&mut archive, file).map_err(|e| match e {
            EntryError::Missing => {
                Error::BadPackage(format!("{MANIFEST} lists {file} but the zip does not contain it"))
            }
            EntryError::Other(e) => e,
        })?;
        let image = Image::parse(bytes)
            .map_err(|e| Error::PackageEntry { entry: file.to_owned(), source: Box::new(e) })?;
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
fn image_index(entry: &Value, file: &str) -> Result<u32> {
    match entry.get("image_index") {
        Some(v) => number(v)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Error::BadPackage(format!("{MANIFEST}: {file} has a bad image_index {v}"))),
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
    Other(Error),
}

fn read_entry(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
) -> std::result::Result<Vec<u8>, EntryError> {
    let entry = match archive.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Err(EntryError::Missing),
        Err(e) => {
            return Err(EntryError::Other(Error::BadPackage(format!("cannot open {name} in the zip: {e}"))))
        }
    };
    if entry.size() > MAX_ENTRY_LEN {
        return Err(EntryError::Other(Error::BadPackage(format!(
            "{name} is {} bytes, more than any image slot",
            entry.size()
        ))));
    }
    let mut bytes = Vec::new();
    // The declared size is not trusted: the limit also applies to what inflates.
    entry
        .take(MAX_ENTRY_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| EntryError::Other(Error::BadPackage(format!("cannot read {name}: {e}"))))?;
    if bytes.len() as u64 > MAX_ENTRY_LEN {
        return Err(EntryError::Other(Error::BadPackage(format!(
            "{name} inflates to more than {MAX_ENTRY_LEN} bytes"
        ))));
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
        assert!(matches!(image_index(&bad, "b"), Err(Error::BadPackage(_))));
    }

    #[test]
    fn garbage_is_bad_package() {
        assert!(matches!(read_dfu_zip(b"PK\x03\x04nonsense"), Err(Error::BadPackage(_))));
    }
}
