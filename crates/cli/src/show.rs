//! `smpflash image show FILE`: render the image reader's findings.

use std::path::Path;

use std::io::{self, Write};

use serde::Serialize;
use smpflash_core::mcuboot::{self, Package, PackageImage, TlvArea};

use crate::exit::Failure;
use crate::output::Outcome;

/// What `image show` found in a file.
#[derive(Debug, Serialize)]
pub struct ShowReport {
    file: String,
    kind: String,
    /// Always "valid": a file that does not parse is an error, not a report.
    verdict: &'static str,
    #[serde(rename = "images")]
    package: PackageImages,
}

/// The package's images, serialized with their index, name and address beside the image.
#[derive(Debug)]
struct PackageImages(Package);

#[derive(Serialize)]
struct Entry<'a> {
    image_index: u32,
    name: &'a str,
    address: Option<u32>,
    #[serde(flatten)]
    image: &'a mcuboot::Image,
}

impl Serialize for PackageImages {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.images.iter().map(|e| Entry {
            image_index: e.image_index,
            name: &e.name,
            address: e.address,
            image: &e.image,
        }))
    }
}

/// What MCUboot would make of the image, in a sentence.
fn verdict(image: &mcuboot::Image) -> String {
    if image.encryption().is_encrypted() {
        return "encrypted: the hash covers the plaintext and can only be checked by a \
                bootloader holding the key"
            .into();
    }
    let mut s = format!("valid MCUboot image, {} hash verified", image.hash_kind());
    match image.signature() {
        mcuboot::SignatureKind::None => {
            s.push_str("; unsigned: a bootloader that requires signatures will refuse it")
        }
        kind => s.push_str(&format!("; signed with {kind}")),
    }
    if image.has_boot_magic() {
        s.push_str(
            "; the padded trailer carries the boot magic, so the image is pending as soon as it \
             is written",
        );
    }
    s
}

fn print_tlvs(out: &mut dyn Write, area: &TlvArea, title: &str) -> io::Result<()> {
    writeln!(out, "  {title} (at {:#x}, {} bytes):", area.offset, area.total_len)?;
    for tlv in &area.entries {
        let shown = if tlv.value.len() <= 32 {
            hex::encode(&tlv.value)
        } else {
            format!("{}… ", hex::encode(&tlv.value[..16]))
        };
        writeln!(out, "    {:<16} {:>4} bytes  {shown}", tlv.kind.to_string(), tlv.value.len())?;
    }
    Ok(())
}

fn print_image(out: &mut dyn Write, entry: &PackageImage) -> io::Result<()> {
    let img = &entry.image;
    let h = img.header();
    writeln!(out, "image {} ({})", entry.image_index, entry.name)?;
    if let Some(addr) = entry.address {
        writeln!(out, "  address:          {addr:#010x}")?;
    }
    writeln!(out, "  version:          {}", img.version())?;
    writeln!(out, "  image hash:       {} ({})", img.hash_hex(), img.hash_kind())?;
    writeln!(
        out,
        "  header:           load_addr {:#x}, hdr_size {:#x}, img_size {} bytes, protected TLVs {} bytes",
        h.load_addr, h.hdr_size, h.img_size, h.protect_tlv_size
    )?;
    writeln!(out, "  flags:            {}", h.flags)?;
    writeln!(out, "  signature:        {}", img.signature())?;
    writeln!(out, "  encryption:       {}", img.encryption())?;
    if let Some(counter) = img.security_counter() {
        writeln!(out, "  security counter: {counter}")?;
    }
    for dep in img.dependencies() {
        writeln!(out, "  depends on:       image {} >= {}", dep.image_id, dep.min_version)?;
    }
    writeln!(
        out,
        "  image size:       {} bytes (file {} bytes, trailer/padding {} bytes)",
        img.image_size(),
        img.bytes().len(),
        img.trailer_len()
    )?;
    if let Some(area) = img.protected_tlvs() {
        print_tlvs(out, area, "protected TLVs")?;
    }
    print_tlvs(out, img.tlvs(), "TLVs")?;
    writeln!(out, "  verdict:          {}", verdict(img))?;
    Ok(())
}

/// Runs the command.
pub fn run(file: &Path) -> Result<Outcome, Failure> {
    let package: Package = mcuboot::load(file)?;
    Ok(Outcome::Show(ShowReport {
        file: file.display().to_string(),
        kind: package.kind.to_string(),
        verdict: "valid",
        package: PackageImages(package),
    }))
}

/// The report as text.
pub fn text(out: &mut dyn Write, report: &ShowReport) -> io::Result<()> {
    let package = &report.package.0;
    writeln!(out, "{}: {} with {} image(s)", report.file, report.kind, package.images.len())?;
    for entry in &package.images {
        print_image(out, entry)?;
    }
    Ok(())
}
