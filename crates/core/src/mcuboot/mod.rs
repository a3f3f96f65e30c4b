//! Reading MCUboot firmware images: signed `.bin` files, Intel `.hex` files and nRF Connect
//! SDK `dfu_application.zip` packages, validated the way the bootloader will judge them.

use std::fmt;
use std::path::Path;

use serde::Serialize;

pub mod error;
pub mod header;
pub mod hex;
pub mod image;
pub mod ncs_zip;
pub mod tlv;

pub use crate::image_hash::ImageHash;
pub use error::ImageError;
pub use header::{HeaderFlags, ImageHeader, ImageVersion, IMAGE_MAGIC};
pub use hex::{parse_hex, HexImage};
pub use image::{Cipher, Dependency, Encryption, HashKind, Image, KeyExchange, SignatureKind, BOOT_MAGIC};
pub use ncs_zip::read_dfu_zip;
pub use tlv::{Tlv, TlvArea, TlvKind};

/// The container a firmware file came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    /// A signed binary, uploaded as is.
    Bin,
    /// An Intel HEX file, flattened to a binary.
    Hex,
    /// An nRF Connect SDK DFU zip with a manifest.
    Zip,
}

impl fmt::Display for PackageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PackageKind::Bin => "binary",
            PackageKind::Hex => "Intel HEX",
            PackageKind::Zip => "DFU zip",
        })
    }
}

/// One image of a package, with the image slot number it is meant for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageImage {
    /// The image number to upload to (0 for the application core, 1 for the network core on
    /// nRF53). Always 0 for a lone `.bin` or `.hex`; the caller may override it.
    pub image_index: u32,
    /// The file name, for messages.
    pub name: String,
    /// Where the image lives in flash, when the file says: the base address of a hex file or
    /// the manifest's `load_address`.
    pub address: Option<u32>,
    /// The validated image.
    pub image: Image,
}

/// A firmware file opened for upload: one image, or several for a multi-core package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    /// What the file was.
    pub kind: PackageKind,
    /// Its images, by ascending image index.
    pub images: Vec<PackageImage>,
}

impl Package {
    /// Recognises and parses a firmware file's contents; `name` is the file name, used for
    /// messages and, when the content does not tell, its extension.
    ///
    /// A zip or an MCUboot image is recognised by its magic whatever the name; a `.hex` name
    /// or text starting with `:` is read as Intel HEX; anything else is taken as a binary, so a
    /// raw unsigned build gets [`ImageError::NotMcubootImage`] rather than a confusing format error.
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<Package, ImageError> {
        let ext = Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let looks_like_hex = || {
            let text = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
            text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':')
        };
        let kind = if bytes.starts_with(b"PK\x03\x04") || ext == "zip" {
            PackageKind::Zip
        } else if bytes.starts_with(&IMAGE_MAGIC.to_le_bytes()) {
            PackageKind::Bin
        } else if matches!(ext.as_str(), "hex" | "ihex" | "ihx") || looks_like_hex() {
            PackageKind::Hex
        } else {
            PackageKind::Bin
        };
        let images = match kind {
            PackageKind::Zip => read_dfu_zip(&bytes)?,
            PackageKind::Hex => {
                let hex = parse_hex(&bytes)?;
                vec![PackageImage {
                    image_index: 0,
                    name: name.to_owned(),
                    address: Some(hex.base_address),
                    image: Image::parse(hex.data)?,
                }]
            }
            PackageKind::Bin => vec![PackageImage {
                image_index: 0,
                name: name.to_owned(),
                address: None,
                image: Image::parse(bytes)?,
            }],
        };
        Ok(Package { kind, images })
    }

    /// The image meant for image number `index`, if the package has one.
    pub fn image(&self, index: u32) -> Option<&PackageImage> {
        self.images.iter().find(|i| i.image_index == index)
    }
}

/// Reads and validates a firmware file: `.bin`, `.hex` or an NCS `dfu_application.zip`.
///
/// # Errors
/// [`ImageError::Io`] when the file cannot be read, otherwise whatever [`Package::from_bytes`]
/// finds wrong with it.
pub fn load(path: &Path) -> Result<Package, ImageError> {
    let bytes =
        std::fs::read(path).map_err(|source| ImageError::Io { path: path.display().to_string(), source })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    Package::from_bytes(bytes, &name)
}
