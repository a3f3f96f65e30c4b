//! What can be wrong with a firmware file: one variant per cause, each with the facts that
//! describe it.

use super::tlv::TlvKind;
use crate::image_hash::ImageHash;

/// Everything the image reader ([`load`](super::load), [`Package::from_bytes`](super::Package::from_bytes),
/// [`Image::parse`](super::Image::parse), [`parse_hex`](super::parse_hex),
/// [`read_dfu_zip`](super::read_dfu_zip)) can find wrong with a firmware file.
///
/// Converts into [`crate::Error`] as [`crate::Error::Image`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// Reading a firmware file failed at the OS level.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File involved.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The file has no MCUboot header at offset 0.
    #[error(
        "no MCUboot header (magic {found:#010x} instead of 0x96f3b83d): this looks like a raw \
         binary; sign it with imgtool or `west sign` first"
    )]
    NotMcubootImage {
        /// The first four bytes, read little-endian.
        found: u32,
    },

    /// The file ends before the header, body or TLV areas it describes.
    #[error("truncated image: {what} needs {needed} bytes but the file has {actual}")]
    TruncatedImage {
        /// Which part did not fit.
        what: &'static str,
        /// Bytes needed up to the end of that part.
        needed: usize,
        /// Bytes in the file.
        actual: usize,
    },

    /// A TLV area does not start with its magic.
    #[error("bad TLV magic at offset {offset:#x}: found {found:#06x}, expected {expected:#06x}")]
    BadTlvMagic {
        /// Offset of the TLV info header in the image.
        offset: usize,
        /// Magic found.
        found: u16,
        /// Magic expected (0x6907 or 0x6908).
        expected: u16,
    },

    /// A TLV info header declares an area shorter than the info header itself.
    #[error(
        "malformed TLV area: TLV area at {offset:#x} declares {total_len} bytes, less than its \
         own 4-byte header"
    )]
    TlvAreaTooShort {
        /// Offset of the TLV info header in the image.
        offset: usize,
        /// The length it declares (`it_tlv_tot`).
        total_len: usize,
    },

    /// The last bytes of a TLV area are too few to hold an entry header.
    #[error(
        "malformed TLV area: entry header at {offset:#x} runs past the end of the TLV area at {area_end:#x}"
    )]
    TlvHeaderOverrun {
        /// Offset of the would-be entry header in the image.
        offset: usize,
        /// Offset just past the area, as its info header declares it.
        area_end: usize,
    },

    /// A TLV entry declares a value longer than what is left of its area.
    #[error(
        "malformed TLV area: {kind} entry at {offset:#x} declares {len} bytes, past the end of \
         the TLV area at {area_end:#x}"
    )]
    TlvEntryOverrun {
        /// Type of the entry.
        kind: TlvKind,
        /// Offset of the entry's header in the image.
        offset: usize,
        /// Value length the entry declares.
        len: usize,
        /// Offset just past the area, as its info header declares it.
        area_end: usize,
    },

    /// The protected TLV area's own length disagrees with the image header's
    /// `ih_protect_tlv_size`.
    #[error(
        "malformed TLV area: protected TLV area at {offset:#x} is {actual} bytes but the header \
         says {declared}"
    )]
    ProtectedTlvSizeMismatch {
        /// Offset of the protected TLV info header in the image.
        offset: usize,
        /// Length the area's info header declares.
        actual: usize,
        /// Length the image header declares.
        declared: usize,
    },

    /// A TLV whose type fixes its length (hash, dependency, security counter) has another.
    #[error("malformed TLV area: {kind} entry at {offset:#x} is {len} bytes, expected {expected}")]
    TlvWrongLength {
        /// Type of the entry.
        kind: TlvKind,
        /// Offset of the entry's header in the image.
        offset: usize,
        /// Length of its value.
        len: usize,
        /// Length that type must have.
        expected: usize,
    },

    /// The image carries no hash TLV.
    #[error("image has no SHA-256 hash TLV: MCUboot will refuse it")]
    MissingHash,

    /// The hash TLV does not match the image contents.
    #[error(
        "image hash mismatch: the hash TLV says {stored} but the image hashes to {computed}; \
         the file is corrupt or was modified after signing"
    )]
    HashMismatch {
        /// The hash stored in the TLV.
        stored: ImageHash,
        /// The hash computed over header, body and protected TLVs.
        computed: ImageHash,
    },

    /// The image does not fit the slot it is meant for.
    #[error("image is {size} bytes but the slot holds only {slot_size} bytes")]
    ImageTooLarge {
        /// Bytes the image occupies.
        size: usize,
        /// Bytes in the slot.
        slot_size: usize,
    },

    /// A file read as Intel HEX is not UTF-8 text.
    #[error("bad Intel HEX file: not a text file (invalid UTF-8 at byte {valid_up_to})")]
    HexNotText {
        /// Offset of the first byte that is not valid UTF-8.
        valid_up_to: usize,
        /// The decoder's error.
        #[source]
        source: std::str::Utf8Error,
    },

    /// An Intel HEX record whose checksum byte does not match its contents.
    #[error(
        "bad Intel HEX file: line {line}: bad checksum: record says {found:#04x} but its bytes \
         sum to {expected:#04x}"
    )]
    HexChecksum {
        /// Line number, from 1.
        line: usize,
        /// The checksum the record's bytes add up to.
        expected: u8,
        /// The checksum byte the record carries.
        found: u8,
        /// The HEX parser's error.
        #[source]
        source: ihex::ReaderError,
    },

    /// A line that is not a well-formed Intel HEX record.
    #[error("bad Intel HEX file: line {line}: {source}")]
    HexBadRecord {
        /// Line number, from 1.
        line: usize,
        /// What the HEX parser found wrong.
        #[source]
        source: ihex::ReaderError,
    },

    /// The Intel HEX file ends without its end-of-file record.
    #[error("bad Intel HEX file: no end-of-file record: the file is probably truncated")]
    HexNoEndOfFile,

    /// The Intel HEX file has no data records.
    #[error("bad Intel HEX file: no data records")]
    HexNoData,

    /// A data record writes addresses an earlier record already wrote.
    #[error("bad Intel HEX file: line {line}: data at {address:#x} overlaps earlier records")]
    HexOverlap {
        /// Line number of the overlapping record, from 1.
        line: usize,
        /// Address of its first byte.
        address: u64,
    },

    /// The data of the Intel HEX file spans more than any image slot could hold.
    #[error(
        "bad Intel HEX file: data spans {span} bytes from {start:#x} to {end:#x}, more than any \
         image slot; is this a merged hex with the bootloader in it?"
    )]
    HexSpanTooLarge {
        /// Bytes from the lowest to just past the highest address written.
        span: u64,
        /// Lowest address written.
        start: u64,
        /// Address just past the highest written.
        end: u64,
        /// Largest span accepted ([`MAX_HEX_SPAN`](super::hex::MAX_HEX_SPAN)).
        max: u64,
    },

    /// The Intel HEX data starts above 4 GiB.
    #[error("bad Intel HEX file: data starts at {start:#x}, beyond the 32-bit address space")]
    HexAddressTooHigh {
        /// Lowest address written.
        start: u64,
    },

    /// The DFU package is not a zip archive.
    #[error("bad DFU package: not a readable zip file: {source}")]
    PackageNotZip {
        /// What the zip reader said.
        #[source]
        source: zip::result::ZipError,
    },

    /// The zip has no `manifest.json`.
    #[error("bad DFU package: no manifest.json: this zip is not an nRF Connect SDK DFU package")]
    ManifestMissing,

    /// `manifest.json` does not parse.
    #[error("bad DFU package: manifest.json is not valid JSON: {source}")]
    ManifestJson {
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },

    /// `manifest.json` has a `format-version` other than 0 or 1.
    #[error("bad DFU package: manifest.json has format-version {found}; only 0 and 1 are understood")]
    ManifestFormatVersion {
        /// The value found.
        found: serde_json::Value,
    },

    /// `manifest.json` has no `files` array.
    #[error("bad DFU package: manifest.json has no \"files\" list")]
    ManifestNoFilesList,

    /// `manifest.json` lists no files.
    #[error("bad DFU package: manifest.json lists no files")]
    ManifestNoImages,

    /// An entry of the manifest's `files` list without a `file` name.
    #[error("bad DFU package: manifest.json entry {index} has no \"file\" name")]
    ManifestEntryUnnamed {
        /// Position in the `files` list, from 0.
        index: usize,
    },

    /// A manifest entry's `image_index` is not a number that fits an image number.
    #[error("bad DFU package: manifest.json: {file} has a bad image_index {value}")]
    ManifestBadImageIndex {
        /// The entry's file name.
        file: String,
        /// The value found.
        value: serde_json::Value,
    },

    /// Two manifest entries for the same image number.
    #[error("bad DFU package: manifest.json gives image index {image_index} to both {first} and {second}")]
    DuplicateImageIndex {
        /// The image number claimed twice.
        image_index: u32,
        /// File of the first entry claiming it.
        first: String,
        /// File of the second.
        second: String,
    },

    /// A file the manifest lists is not in the zip.
    #[error("bad DFU package: manifest.json lists {name} but the zip does not contain it")]
    PackageEntryMissing {
        /// The file name.
        name: String,
    },

    /// A zip entry that cannot be opened (unsupported compression, encrypted, corrupt).
    #[error("bad DFU package: cannot open {name} in the zip: {source}")]
    PackageEntryUnreadable {
        /// The file name.
        name: String,
        /// What the zip reader said.
        #[source]
        source: zip::result::ZipError,
    },

    /// Reading a zip entry's contents failed (corrupt data, CRC error).
    #[error("bad DFU package: cannot read {name}: {source}")]
    PackageEntryRead {
        /// The file name.
        name: String,
        /// The error from decompressing it.
        #[source]
        source: std::io::Error,
    },

    /// A zip entry whose declared size exceeds the limit.
    #[error("bad DFU package: {name} is {len} bytes, more than any image slot")]
    PackageEntryTooLarge {
        /// The file name.
        name: String,
        /// Its declared uncompressed size.
        len: u64,
        /// The limit ([`MAX_ENTRY_LEN`](super::ncs_zip::MAX_ENTRY_LEN)).
        max: u64,
    },

    /// A zip entry that inflates past the limit although its declared size is within it.
    #[error("bad DFU package: {name} inflates to more than {max} bytes")]
    PackageEntryInflatesTooLarge {
        /// The file name.
        name: String,
        /// The limit ([`MAX_ENTRY_LEN`](super::ncs_zip::MAX_ENTRY_LEN)).
        max: u64,
    },

    /// An image inside a DFU package is bad; the entry is named because a package holds
    /// several images and the inner error alone would not say which one.
    #[error("{entry} in the DFU package: {source}")]
    PackageEntry {
        /// File name of the entry in the package.
        entry: String,
        /// What is wrong with that image.
        #[source]
        source: Box<ImageError>,
    },
}
