//! The device commands: each asks the library and renders the answer.

use std::path::Path;

use serde::Serialize;
use serde_bytes::ByteBuf;
use smpflash_core::command::image::{ImageErase, ImageStateRead, ImageStateWrite, SlotState};
use smpflash_core::command::os::{AppInfo, BootloaderInfo, BootloaderMode, Echo, Reset};
use smpflash_core::dfu::{self, DfuOptions, Mode};
use smpflash_core::mcuboot;
use smpflash_core::upload::{self, Limits, UploadOptions};
use smpflash_core::Error;

use crate::connect::Connected;
use crate::exit::{Code, Failure};
use crate::render::{self, Reporter};

/// Image state as `--json` prints it: hashes as hex.
#[derive(Serialize)]
pub struct SlotJson {
    image: u32,
    slot: u32,
    version: String,
    hash: Option<String>,
    bootable: bool,
    pending: bool,
    confirmed: bool,
    active: bool,
    permanent: bool,
}

impl From<&SlotState> for SlotJson {
    fn from(s: &SlotState) -> Self {
        SlotJson {
            image: s.image,
            slot: s.slot,
            version: s.version.clone(),
            hash: s.hash.as_ref().map(hex::encode),
            bootable: s.bootable,
            pending: s.pending,
            confirmed: s.confirmed,
            active: s.active,
            permanent: s.permanent,
        }
    }
}

fn slots_json(images: &[SlotState]) -> Vec<SlotJson> {
    images.iter().map(SlotJson::from).collect()
}

/// `echo TEXT`.
pub async fn echo(c: &Connected, text: &str, json: bool) -> Result<(), Failure> {
    let r = c.session.client().request(&Echo { d: text.into() }).await?;
    if json {
        render::json(&serde_json::json!({ "echo": r.r }));
    } else {
        println!("{}", r.r);
    }
    Ok(())
}

/// `params`.
pub async fn params(c: &Connected, json: bool) -> Result<(), Failure> {
    let l = Limits::query(c.session.client()).await?;
    if json {
        render::json(&l);
    } else if l.reported {
        println!(
            "buf_size {} bytes, buf_count {}: up to {} requests in flight",
            l.buf_size,
            l.buf_count,
            l.window()
        );
    } else {
        println!(
            "the device does not report its buffers; assuming {} bytes, 1 request in flight",
            l.buf_size
        );
    }
    Ok(())
}

fn optional<T>(r: Result<T, Error>) -> Result<Option<T>, Failure> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::Device(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `info`.
pub async fn info(c: &Connected, json: bool) -> Result<(), Failure> {
    let client = c.session.client();
    let bootloader = optional(client.request(&BootloaderInfo {}).await)?.map(|b| b.bootloader);
    let mode = optional(client.request(&BootloaderMode::default()).await)?;
    let app = optional(client.request(&AppInfo { format: Some("a".into()) }).await)?.map(|a| a.output);
    let transport = client.describe();
    if json {
        render::json(&serde_json::json!({
            "transport": transport,
            "bootloader": bootloader,
            "mode": mode.map(|m| m.mode()),
            "no_downgrade": mode.map(|m| m.no_downgrade),
            "application": app,
        }));
        return Ok(());
    }
    println!("connection:  {transport}");
    println!("bootloader:  {}", bootloader.as_deref().unwrap_or("unknown (the device does not say)"));
    match mode {
        Some(m) => println!(
            "mode:        {:?} ({}){}",
            m.mode(),
            m.mode,
            if m.no_downgrade { ", refuses downgrades" } else { "" }
        ),
        None => println!("mode:        unknown"),
    }
    println!("application: {}", app.as_deref().unwrap_or("unknown"));
    Ok(())
}

/// `reset`.
pub async fn reset(c: &Connected, force: bool, json: bool) -> Result<(), Failure> {
    c.session.client().request(&Reset { force: force.then_some(1) }).await?;
    if json {
        render::json(&serde_json::json!({ "reset": true }));
    } else {
        println!("device is resetting");
    }
    Ok(())
}

/// `image list`.
pub async fn list(c: &Connected, json: bool) -> Result<(), Failure> {
    let s = c.session.client().request(&ImageStateRead {}).await?;
    if json {
        render::json(&serde_json::json!({ "images": slots_json(&s.images) }));
    } else {
        render::image_table(&s.images);
    }
    Ok(())
}

/// Resolves a hash argument: full hex (any separators) or an unambiguous prefix of a hash the
/// device holds.
async fn resolve_hash(c: &Connected, text: &str) -> Result<Vec<u8>, Failure> {
    let clean: String = text.chars().filter(|ch| ch.is_ascii_hexdigit()).collect::<String>().to_lowercase();
    let bad = |m: String| Failure { code: Code::Usage, message: m };
    if clean.is_empty()
        || clean.len() != text.chars().filter(|ch| !matches!(ch, ':' | '-' | ' ' | '_')).count()
    {
        return Err(bad(format!("{text:?} is not a hex hash")));
    }
    let state = c.session.client().request(&ImageStateRead {}).await?;
    let hashes: Vec<String> = state.images.iter().filter_map(|s| s.hash.as_ref().map(hex::encode)).collect();
    let matches: Vec<&String> = hashes.iter().filter(|h| h.starts_with(&clean)).collect();
    match matches.as_slice() {
        [one] => Ok(hex::decode(one).expect("hex from hex::encode")),
        [] if clean.len() == 64 => Ok(hex::decode(&clean).expect("checked hex")),
        [] => Err(bad(format!("no image on the device has a hash starting with {clean}"))),
        _ => Err(bad(format!("{clean} matches {} images; give more digits", matches.len()))),
    }
}

/// `image test HASH` / `image confirm [HASH]`.
pub async fn mark(c: &Connected, hash: Option<&str>, confirm: bool, json: bool) -> Result<(), Failure> {
    let hash = match hash {
        Some(h) => Some(ByteBuf::from(resolve_hash(c, h).await?)),
        None => None,
    };
    let s = c.session.client().request(&ImageStateWrite { hash, confirm }).await?;
    if json {
        render::json(&serde_json::json!({ "images": slots_json(&s.images) }));
    } else {
        render::image_table(&s.images);
    }
    Ok(())
}

/// `image erase`.
pub async fn erase(c: &Connected, slot: Option<u32>, json: bool) -> Result<(), Failure> {
    c.session.client().request(&ImageErase { slot }).await?;
    if json {
        render::json(&serde_json::json!({ "erased": slot.unwrap_or(1) }));
    } else {
        println!("slot {} erased", slot.unwrap_or(1));
    }
    Ok(())
}

fn load(file: &Path, image: Option<u32>) -> Result<mcuboot::Package, Failure> {
    let mut package = mcuboot::load(file)?;
    if let Some(index) = image {
        if package.images.len() != 1 {
            return Err(Failure {
                code: Code::Usage,
                message: "--image applies to a single-image file; a zip says which image each file is".into(),
            });
        }
        package.images[0].image_index = index;
    }
    Ok(package)
}

/// `image upload FILE`.
pub async fn upload(
    c: &mut Connected,
    file: &Path,
    image: Option<u32>,
    opts: UploadOptions,
    json: bool,
) -> Result<(), Failure> {
    let package = load(file, image)?;
    let reporter = Reporter::new(json);
    let limits = Limits::query(c.session.client()).await?;
    let mut reports = Vec::new();
    for img in &package.images {
        let o = UploadOptions { image: img.image_index, ..opts.clone() };
        reports.push(upload::upload(&mut c.session, img.image.bytes(), &limits, &o, &reporter).await?);
    }
    if json {
        render::json(&serde_json::json!({ "uploads": reports }));
    }
    Ok(())
}

/// `dfu FILE`.
pub async fn dfu(
    c: &mut Connected,
    file: &Path,
    image: Option<u32>,
    mode: Option<Mode>,
    force: bool,
    upload: UploadOptions,
    json: bool,
) -> Result<(), Failure> {
    let package = load(file, image)?;
    let reporter = Reporter::new(json);
    let opts = DfuOptions { mode, upload, force, ..Default::default() };
    let report = dfu::dfu(&mut c.session, &package, &opts, &reporter).await?;
    if json {
        render::json(&serde_json::json!({
            "mode": report.mode,
            "uploads": report.uploads,
            "skipped": report.skipped,
            "reset": report.reset,
            "seconds": report.seconds,
            "before": slots_json(&report.before),
            "after": slots_json(&report.after),
        }));
    } else {
        eprintln!("• done in {:.1} s; image state now:", report.seconds);
        render::image_table(&report.after);
    }
    Ok(())
}
