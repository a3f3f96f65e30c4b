//! `smpflash image show FILE`: render the image reader's findings.

use std::path::Path;

use serde::Serialize;
use smpflash_core::mcuboot::{self, Package, PackageImage, TlvArea};

use crate::exit::Failure;

#[derive(Serialize)]
struct Report<'a> {
    file: String,
    kind: String,
    verdict: &'static str,
    images: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct Entry<'a> {
    image_index: u32,
    name: &'a str,
    address: Option<u32>,
    #[serde(flatten)]
    image: &'a mcuboot::Image,
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

fn print_tlvs(area: &TlvArea, title: &str) {
    println!("  {title} (at {:#x}, {} bytes):", area.offset, area.total_len);
    for tlv in &area.entries {
        let shown = if tlv.value.len() <= 32 {
            hex::encode(&tlv.value)
        } else {
            format!("{}… ", hex::encode(&tlv.value[..16]))
        };
        println!("    {:<16} {:>4} bytes  {shown}", tlv.kind.to_string(), tlv.value.len());
    }
}

fn print_image(entry: &PackageImage) {
    let img = &entry.image;
    let h = img.header();
    println!("image {} ({})", entry.image_index, entry.name);
    if let Some(addr) = entry.address {
        println!("  address:          {addr:#010x}");
    }
    println!("  version:          {}", img.version());
    println!("  image hash:       {} ({})", img.hash_hex(), img.hash_kind());
    println!(
        "  header:           load_addr {:#x}, hdr_size {:#x}, img_size {} bytes, protected TLVs {} bytes",
        h.load_addr, h.hdr_size, h.img_size, h.protect_tlv_size
    );
    println!("  flags:            {}", h.flags);
    println!("  signature:        {}", img.signature());
    println!("  encryption:       {}", img.encryption());
    if let Some(counter) = img.security_counter() {
        println!("  security counter: {counter}");
    }
    for dep in img.dependencies() {
        println!("  depends on:       image {} >= {}", dep.image_id, dep.min_version);
    }
    println!(
        "  image size:       {} bytes (file {} bytes, trailer/padding {} bytes)",
        img.image_size(),
        img.bytes().len(),
        img.trailer_len()
    );
    if let Some(area) = img.protected_tlvs() {
        print_tlvs(area, "protected TLVs");
    }
    print_tlvs(img.tlvs(), "TLVs");
    println!("  verdict:          {}", verdict(img));
}

/// Runs the command.
pub fn run(file: &Path, json: bool) -> Result<(), Failure> {
    let package: Package = mcuboot::load(file)?;
    if json {
        let report = Report {
            file: file.display().to_string(),
            kind: package.kind.to_string(),
            verdict: "valid",
            images: package
                .images
                .iter()
                .map(|e| Entry {
                    image_index: e.image_index,
                    name: &e.name,
                    address: e.address,
                    image: &e.image,
                })
                .collect(),
        };
        println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
        return Ok(());
    }
    println!("{}: {} with {} image(s)", file.display(), package.kind, package.images.len());
    for entry in &package.images {
        print_image(entry);
    }
    Ok(())
}
